/**
 * Redaction for the evidence writer (defence in depth: the engine redacts output already). Every JSON
 * record passes through `redactDeep` before it is written, so a secret value that slipped into a guard
 * fact, a command line or a param is replaced wherever it is.
 */
import { DEFAULT_SECRET_PATTERNS, isSecretName, redactText, REDACTED } from '../util/redact.js';

export { REDACTED };

export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[redactText(k, secrets)] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

/** `NAME → value`, with the value of every secret-pattern name replaced by [REDACTED]. */
export function redactByName(vars: Readonly<Record<string, string | undefined>>, patterns: readonly string[] = DEFAULT_SECRET_PATTERNS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) out[k] = isSecretName(k, patterns) ? REDACTED : v;
  return out;
}

/** argv with `VAR=value` arguments of secret-pattern names redacted (secret values are redacted by redactDeep). */
export function redactArgv(argv: readonly string[], patterns: readonly string[] = DEFAULT_SECRET_PATTERNS): string[] {
  return argv.map((a) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(a);
    return m && isSecretName(m[1]!, patterns) ? `${m[1]}=${REDACTED}` : a;
  });
}
