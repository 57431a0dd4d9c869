/** Param checks: equals, one of, not equals, pattern, non-empty. Each has an exact default message and a remedy. */
import type { Guard, GuardFacts } from './types.js';
import { decision, fill, quoted, readVar, shown, type MessageOptions } from './util.js';

interface ParamCheck {
  readonly kind: string;
  readonly name: string;
  readonly description: string;
  /** The allow reason, or the default deny reason and remedy. */
  test(value: string | undefined, facts: GuardFacts): { ok: true; reason: string } | { ok: false; reason: string; remedy: string };
}

function paramGuard(param: string, check: ParamCheck, opts: MessageOptions | undefined): Guard {
  const guard: Guard = {
    kind: check.kind,
    name: check.name,
    description: check.description,
    evaluate(facts) {
      const value = readVar(facts, param);
      const seen = { [param]: shown(facts, param, value) };
      const r = check.test(value, facts);
      if (r.ok) return decision(guard, 'allow', r.reason, seen);
      const reason = opts?.message !== undefined ? fill(opts.message, facts, param, value) : r.reason;
      const remedy = opts?.remedy !== undefined ? fill(opts.remedy, facts, param, value) : r.remedy;
      return decision(guard, 'deny', reason, seen, remedy);
    },
  };
  return guard;
}

/**
 * The variable must equal `value`.
 * @example paramEquals('ENV', 'samakia-minio', { message: 'ENV must be samakia-minio' })
 * allow: `ENV is "samakia-minio"`; deny: `ENV must be "samakia-minio" (got "samakia-prod")`, remedy `set ENV=samakia-minio`.
 */
export function paramEquals(param: string, value: string, opts?: MessageOptions): Guard {
  return paramGuard(
    param,
    {
      kind: 'param-equals',
      name: `param-equals(${param}=${value})`,
      description: `${param} must be ${JSON.stringify(value)}`,
      test: (v, facts) =>
        v === value
          ? { ok: true, reason: `${param} is ${quoted(facts, param, v)}` }
          : { ok: false, reason: `${param} must be ${JSON.stringify(value)} (${v === undefined ? `${param} is not set` : `got ${quoted(facts, param, v)}`})`, remedy: `set ${param}=${value}` },
    },
    opts,
  );
}

/**
 * The variable must be one of `values`.
 * allow: `ENV is "samakia-dev" (one of samakia-dev, samakia-staging)`; deny: `ENV must be one of samakia-dev, samakia-staging (got "samakia-prod")`.
 */
export function paramOneOf(param: string, values: readonly string[], opts?: MessageOptions): Guard {
  const list = values.join(', ');
  return paramGuard(
    param,
    {
      kind: 'param-one-of',
      name: `param-one-of(${param} in ${values.join('|')})`,
      description: `${param} must be one of ${list}`,
      test: (v, facts) =>
        v !== undefined && values.includes(v)
          ? { ok: true, reason: `${param} is ${quoted(facts, param, v)} (one of ${list})` }
          : { ok: false, reason: `${param} must be one of ${list} (${v === undefined ? `${param} is not set` : `got ${quoted(facts, param, v)}`})`, remedy: `set ${param} to one of: ${list}` },
    },
    opts,
  );
}

/**
 * The variable must not be `value` (or any of the values). An unset variable passes.
 * allow: `ENV is "samakia-dev", not samakia-minio`; deny: `ENV must not be "samakia-minio"`.
 */
export function paramNotEquals(param: string, valueOrValues: string | readonly string[], opts?: MessageOptions): Guard {
  const values = typeof valueOrValues === 'string' ? [valueOrValues] : [...valueOrValues];
  const list = values.join(', ');
  return paramGuard(
    param,
    {
      kind: 'param-not-equals',
      name: `param-not-equals(${param}!=${values.join('|')})`,
      description: `${param} must not be ${values.length === 1 ? JSON.stringify(values[0]) : `one of ${list}`}`,
      test: (v, facts) =>
        v === undefined || !values.includes(v)
          ? { ok: true, reason: v === undefined ? `${param} is not set (not ${list})` : `${param} is ${quoted(facts, param, v)}, not ${list}` }
          : { ok: false, reason: `${param} must not be ${quoted(facts, param, v)}`, remedy: `set ${param} to another value than ${list}` },
    },
    opts,
  );
}

/**
 * The whole value must match the regular expression (anchored). An invalid pattern denies (fail closed).
 * allow: `VERSION matches /v\d+/`; deny: `VERSION must match /v\d+/ (got "x")`.
 */
export function paramPattern(param: string, regexSource: string, opts?: MessageOptions): Guard {
  let re: RegExp | undefined;
  let bad: string | undefined;
  try {
    re = new RegExp(`^(?:${regexSource})$`, 'u');
  } catch (e) {
    bad = e instanceof Error ? e.message : String(e);
  }
  return paramGuard(
    param,
    {
      kind: 'param-pattern',
      name: `param-pattern(${param}~/${regexSource}/)`,
      description: `${param} must match /${regexSource}/`,
      test: (v, facts) => {
        if (!re) return { ok: false, reason: `invalid pattern /${regexSource}/ for ${param}: ${bad}`, remedy: 'fix the pattern in the task definition' };
        return v !== undefined && re.test(v)
          ? { ok: true, reason: `${param} matches /${regexSource}/` }
          : { ok: false, reason: `${param} must match /${regexSource}/ (${v === undefined ? `${param} is not set` : `got ${quoted(facts, param, v)}`})`, remedy: `set ${param} to a value matching /${regexSource}/` };
      },
    },
    opts,
  );
}

/**
 * The variable must be set and not blank.
 * allow: `TENANT is set`; deny: `TENANT is required`, remedy `set TENANT=<value>`.
 */
export function paramNonEmpty(param: string, opts?: MessageOptions): Guard {
  return paramGuard(
    param,
    {
      kind: 'param-non-empty',
      name: `param-non-empty(${param})`,
      description: `${param} must be set`,
      test: (v) => (v !== undefined && v.trim() !== '' ? { ok: true, reason: `${param} is set` } : { ok: false, reason: `${param} is required`, remedy: `set ${param}=<value>` }),
    },
    opts,
  );
}
