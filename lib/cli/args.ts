/**
 * A small declarative argv parser shared by every command: long flags (`--jobs 4`, `--jobs=4`),
 * short aliases (`-j4`, `-j 4`), booleans (`--keep-going`, `--no-cache`), repeated values, `--`,
 * Make-style `VAR=value` assignments, and an error with a suggestion for an unknown flag.
 */
import { nearest } from '../util/suggest.js';

export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: 'boolean' | 'string' | 'number';
  readonly repeat?: boolean;
  readonly description: string;
  /** Shown as `--name VALUE` in help. */
  readonly value?: string;
}

export interface Parsed {
  readonly flags: Record<string, string | number | boolean | string[] | undefined>;
  readonly positionals: string[];
  /** `VAR=value` arguments, in order (later wins). */
  readonly vars: Record<string, string>;
}

export class UsageError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

const VAR = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], opts: { vars?: boolean } = {}): Parsed {
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  const vars: Record<string, string> = {};
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const set = (spec: FlagSpec, raw: string | boolean) => {
    let value: string | number | boolean = raw;
    if (spec.type === 'number') {
      value = Number(raw);
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${spec.name} needs a number, got "${String(raw)}"`);
    }
    if (spec.repeat) {
      const prev = (flags[spec.name] as string[] | undefined) ?? [];
      flags[spec.name] = [...prev, String(value)];
    } else flags[spec.name] = value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      let spec = byName.get(name);
      if (!spec && name.startsWith('no-')) {
        const neg = byName.get(name.slice(3));
        if (neg?.type === 'boolean') {
          flags[neg.name] = false;
          continue;
        }
      }
      if (!spec) {
        const near = nearest(name, specs.map((s) => s.name));
        throw new UsageError(`unknown flag --${name}`, near ? `did you mean --${near}?` : undefined);
      }
      if (spec.type === 'boolean') {
        if (eq !== -1) {
          const v = arg.slice(eq + 1);
          if (!['true', 'false', '1', '0'].includes(v)) throw new UsageError(`--${name} takes no value (or true/false), got "${v}"`);
          set(spec, v === 'true' || v === '1');
        } else set(spec, true);
        continue;
      }
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`--${name} needs a value${spec.value ? ` (${spec.value})` : ''}`);
      }
      set(spec, value);
      spec = undefined;
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      const letter = arg[1]!;
      const spec = byShort.get(letter);
      if (!spec) {
        throw new UsageError(`unknown flag ${arg}`, specs.some((s) => s.short) ? `flags with a short form: ${specs.filter((s) => s.short).map((s) => `-${s.short}`).join(' ')}` : undefined);
      }
      if (spec.type === 'boolean') {
        if (arg.length > 2) throw new UsageError(`-${letter} takes no value`);
        set(spec, true);
        continue;
      }
      let value = arg.slice(2);
      if (value.startsWith('=')) value = value.slice(1);
      if (value === '') {
        const next = argv[++i];
        if (next === undefined) throw new UsageError(`-${letter} needs a value`);
        value = next;
      }
      set(spec, value);
      continue;
    }
    const m = opts.vars ? VAR.exec(arg) : null;
    if (m) vars[m[1]!] = m[2]!;
    else positionals.push(arg);
  }
  return { flags, positionals, vars };
}

export function flagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type !== 'boolean' ? ` ${s.value ?? s.type.toUpperCase()}` : ''}`;
    return [left, s.description] as const;
  });
  const w = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, d]) => `  ${l.padEnd(w)}  ${d}`).join('\n');
}
