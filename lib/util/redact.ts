/**
 * Redaction of secret values in text, including a streaming form that catches a secret split
 * across two chunks (it holds back the last `maxSecretLength - 1` characters until more text or end).
 */
export const REDACTED = '[REDACTED]';

/** Secret values shorter than this are not redacted (they would mangle ordinary text); guarded by callers. */
export const MIN_SECRET_LENGTH = 4;

function usable(secrets: readonly string[]): string[] {
  const uniq = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))];
  // Longest first, so a secret that contains another is replaced whole.
  return uniq.sort((a, b) => b.length - a.length);
}

export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of usable(secrets)) out = out.split(s).join(REDACTED);
  return out;
}

export class StreamRedactor {
  private readonly secrets: string[];
  private readonly hold: number;
  private pending = '';
  constructor(secrets: readonly string[]) {
    this.secrets = usable(secrets);
    this.hold = this.secrets.reduce((m, s) => Math.max(m, s.length - 1), 0);
  }
  /** Returns the text that is safe to emit now. */
  push(chunk: string): string {
    if (this.secrets.length === 0) return chunk;
    const text = redactText(this.pending + chunk, this.secrets);
    if (text.length <= this.hold) {
      this.pending = text;
      return '';
    }
    // Never cut inside a [REDACTED] marker we just produced; hold back a possible secret prefix.
    let cut = text.length - this.hold;
    const marker = text.lastIndexOf(REDACTED, cut);
    if (marker !== -1 && marker + REDACTED.length > cut) cut = marker + REDACTED.length;
    this.pending = text.slice(cut);
    return text.slice(0, cut);
  }
  /** Flushes what is held back (end of stream). */
  end(): string {
    const rest = redactText(this.pending, this.secrets);
    this.pending = '';
    return rest;
  }
}

/** Default name patterns for env vars whose values are secret (configurable). */
export const DEFAULT_SECRET_PATTERNS: readonly string[] = ['TOKEN', 'SECRET', 'PASSWORD', 'PASSPHRASE', 'KEY', 'CREDENTIAL'];

export function isSecretName(name: string, patterns: readonly string[] = DEFAULT_SECRET_PATTERNS): boolean {
  const upper = name.toUpperCase();
  return patterns.some((p) => upper.includes(p.toUpperCase()));
}
