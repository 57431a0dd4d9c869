/** `{{NAME}}` templates in commands, env values, cwd, globs and dependency params. */

const TEMPLATE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Quotes a value for bash: safe for any byte sequence except NUL. */
export function shellQuote(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export type Lookup = (name: string) => string | undefined;

export interface ExpandResult {
  readonly text: string;
  /** Names referenced but not defined. */
  readonly missing: readonly string[];
}

/** Expands templates; `quote` shell-quotes each substituted value (for bash command strings). */
export function expand(text: string, lookup: Lookup, quote = false): ExpandResult {
  const missing: string[] = [];
  const out = text.replace(TEMPLATE, (_m, name: string) => {
    const v = lookup(name);
    if (v === undefined) {
      missing.push(name);
      return '';
    }
    return quote ? shellQuote(v) : v;
  });
  return { text: out, missing };
}

export function templateNames(text: string): string[] {
  return [...text.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/** Parses `90s`, `5m`, `1h`, `250ms` or a number of milliseconds. */
export function parseDuration(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const mult = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return n * mult > 0 ? n * mult : undefined;
}
