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
  private pending = '';
  constructor(secrets: readonly string[]) {
    this.secrets = usable(secrets);
  }
  /**
   * Returns the text that is safe to emit now. Only a tail that could be the start of a secret is held
   * back, so a line that ends in anything else goes out at once.
   */
  push(chunk: string): string {
    if (this.secrets.length === 0) return chunk;
    const text = redactText(this.pending + chunk, this.secrets);
    const hold = this.heldTail(text);
    this.pending = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }
  /** Length of the longest suffix of `text` that is a proper prefix of some secret. */
  private heldTail(text: string): number {
    let best = 0;
    for (const s of this.secrets) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
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

/** `NAME=value`, optionally after `export`, at the start of a line of an env file. */
const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/** What may follow a value on its line: nothing, or blanks and a comment. */
const LINE_END = /^(?:\s+#.*|\s*)$/;

/**
 * The value an env-file assignment gives, when it can be known without running the file: one word,
 * unquoted, single-quoted, or double-quoted without expansions, and nothing after it on the line but
 * a comment. Undefined for anything bash would have to evaluate (`$`, backquotes, backslashes, shell
 * operators, words run together with quotes) or that does more than assign.
 */
function literalValue(raw: string): string | undefined {
  const quote = raw[0];
  if (quote === "'" || quote === '"') {
    const end = raw.indexOf(quote, 1);
    if (end === -1 || !LINE_END.test(raw.slice(end + 1))) return undefined;
    const value = raw.slice(1, end);
    return quote === '"' && /[$`\\]/.test(value) ? undefined : value;
  }
  // Unquoted: up to the first blank (a `#` inside a word is part of it, as in bash; a `~` would be
  // expanded in an assignment).
  const word = /^\S*/.exec(raw)![0];
  if (!LINE_END.test(raw.slice(word.length)) || /[$`\\'";&|<>()~]/.test(word)) return undefined;
  return word;
}

/**
 * The secret values an env file assigns (one `NAME=value` per line, as `set -a; . FILE` reads the
 * usual runner env file): the values of variables whose names match `patterns`. Lines fabric cannot
 * read without running them are skipped (a value it cannot know, it cannot redact).
 */
export function envFileSecrets(text: string, patterns: readonly string[] = DEFAULT_SECRET_PATTERNS): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = ASSIGNMENT.exec(line);
    if (!m || !isSecretName(m[1]!, patterns)) continue;
    const value = literalValue(m[2]!);
    if (value !== undefined && value !== '' && !out.includes(value)) out.push(value);
  }
  return out;
}
