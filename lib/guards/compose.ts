/** Composition: conditional guards (`when`) and guards written as TypeScript functions (`custom`). */
import type { ParamCondition } from '../api/types.js';
import type { Guard, GuardDecision, GuardFacts, GuardOutcome, OverrideRecord } from './types.js';
import { conditionHolds, conditionLabel, decision, errorMessage, OUTCOMES, readVar, shown } from './util.js';

/**
 * Evaluates `guard` only when the condition on the node's params holds; otherwise `skip`.
 * skip: `skipped: applies only when ENV=samakia-prod (ENV is "samakia-dev")`.
 */
export function when(condition: ParamCondition, guard: Guard): Guard {
  const label = conditionLabel(condition);
  const wrapper: Guard = {
    kind: guard.kind,
    name: `${guard.name} when ${label}`,
    description: `${guard.description} (only when ${label})`,
    async evaluate(facts) {
      const value = readVar(facts, condition.param);
      if (!conditionHolds(condition, value)) {
        return decision(wrapper, 'skip', `skipped: applies only when ${label} (${condition.param} is ${value === undefined ? 'not set' : JSON.stringify(shown(facts, condition.param, value))})`, {
          [condition.param]: shown(facts, condition.param, value),
        });
      }
      const d = await guard.evaluate(facts);
      return { ...d, guard: wrapper.name };
    },
  };
  return wrapper;
}

/** What a custom guard returns: at least an outcome and a reason. A full GuardDecision is accepted too. */
export interface CustomVerdict {
  readonly outcome: GuardOutcome;
  readonly reason: string;
  readonly remedy?: string | undefined;
  readonly facts?: Readonly<Record<string, unknown>> | undefined;
  readonly override?: OverrideRecord | undefined;
}

/**
 * A guard written as a function of the facts. A malformed result (unknown outcome, no reason) or a
 * thrown error is a deny (fail closed).
 * @example custom('quorum-file', 'the quorum report must say PASS', (f) => ({ outcome: 'allow', reason: 'PASS' }))
 */
export function custom(name: string, description: string, fn: (facts: GuardFacts) => CustomVerdict | GuardDecision | Promise<CustomVerdict | GuardDecision>): Guard {
  const guard: Guard = {
    kind: 'custom',
    name,
    description,
    async evaluate(facts) {
      let r: unknown;
      try {
        r = await fn(facts);
      } catch (e) {
        return decision(guard, 'deny', `guard threw: ${errorMessage(e)}`, {}, 'fix the custom guard');
      }
      return normalizeVerdict(guard, r);
    },
  };
  return guard;
}

/** Checks the shape of a decision from user code; anything malformed becomes a deny. */
export function normalizeVerdict(guard: { readonly name: string; readonly kind: string }, r: unknown): GuardDecision {
  if (!r || typeof r !== 'object') return decision(guard, 'deny', `guard returned ${r === undefined ? 'nothing' : JSON.stringify(r)} instead of a decision`, {}, 'fix the guard');
  const v = r as Record<string, unknown>;
  if (typeof v['outcome'] !== 'string' || !OUTCOMES.includes(v['outcome'] as GuardOutcome)) {
    return decision(guard, 'deny', `guard returned an invalid outcome ${JSON.stringify(v['outcome'])} (expected one of ${OUTCOMES.join(', ')})`, {}, 'fix the guard');
  }
  if (typeof v['reason'] !== 'string' || v['reason'].trim() === '') return decision(guard, 'deny', 'guard returned a decision without a reason', {}, 'fix the guard');
  const facts = v['facts'] && typeof v['facts'] === 'object' ? (v['facts'] as Record<string, unknown>) : {};
  const out: GuardDecision = {
    ...decision(guard, v['outcome'] as GuardOutcome, v['reason'], facts, typeof v['remedy'] === 'string' ? v['remedy'] : undefined),
    ...(v['override'] && typeof v['override'] === 'object' ? { override: v['override'] as OverrideRecord } : {}),
    ...(Array.isArray(v['diagnostics']) ? { diagnostics: v['diagnostics'] as GuardDecision['diagnostics'] } : {}),
  };
  return out;
}
