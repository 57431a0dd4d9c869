/**
 * Overrides: a failing check becomes `overridden` only with `VAR=1` and a reason, and the decision
 * records who overrode what, when and why (Samakia's HA_OVERRIDE + HA_OVERRIDE_REASON).
 */
import type { Guard, GuardDecision, OverrideRecord } from './types.js';
import { decision, errorMessage, nonBlankLength, readVar, shown } from './util.js';

export interface OverrideOptions {
  /** `HA_OVERRIDE`: must be `1` to override. */
  readonly variable: string;
  /** `HA_OVERRIDE_REASON`: why; recorded in the decision and the evidence. */
  readonly reasonVariable: string;
  /** Minimum number of non-blank characters in the reason (default 1). */
  readonly minReasonLength?: number;
}

/**
 * Wraps `check`. When it allows (or skips), so does the override. When it denies:
 * - without `VAR=1`: deny with the check's reason (the remedy mentions the override);
 * - `VAR=1` without a reason: deny `HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing`;
 * - a reason shorter than the minimum: deny `HA_OVERRIDE_REASON is too short (3 non-blank characters, at least 12 required)`;
 * - otherwise `overridden` with an OverrideRecord.
 */
export function override(check: Guard, opts: OverrideOptions): Guard {
  const min = Math.max(1, opts.minReasonLength ?? 1);
  const { variable, reasonVariable } = opts;
  const guard: Guard = {
    kind: 'override',
    name: `override(${variable}: ${check.name})`,
    description: `${check.description}; may be overridden with ${variable}=1 and ${reasonVariable} (at least ${min} character${min === 1 ? '' : 's'})`,
    async evaluate(facts) {
      let inner: GuardDecision;
      try {
        inner = await check.evaluate(facts);
      } catch (e) {
        inner = { guard: check.name, kind: check.kind, outcome: 'deny', reason: `guard threw: ${errorMessage(e)}`, facts: {} };
      }
      const flag = readVar(facts, variable);
      const reasonText = readVar(facts, reasonVariable) ?? '';
      const seen: Record<string, unknown> = {
        check: inner.guard,
        checkOutcome: inner.outcome,
        checkFacts: inner.facts,
        [variable]: shown(facts, variable, flag),
        [reasonVariable]: shown(facts, reasonVariable, readVar(facts, reasonVariable)),
      };
      if (inner.outcome !== 'deny') {
        return { ...decision(guard, inner.outcome, inner.reason, seen), ...(inner.override ? { override: inner.override } : {}) };
      }
      if (flag !== '1') {
        return decision(guard, 'deny', inner.reason, seen, `${inner.remedy ? `${inner.remedy}; or ` : ''}override with ${variable}=1 and ${reasonVariable}=<why>`);
      }
      const length = nonBlankLength(reasonText);
      if (length === 0) return decision(guard, 'deny', `${variable}=1 set but ${reasonVariable} is missing`, seen, `set ${reasonVariable} to why the override is needed`);
      if (length < min) {
        return decision(
          guard,
          'deny',
          `${reasonVariable} is too short (${length} non-blank character${length === 1 ? '' : 's'}, at least ${min} required)`,
          seen,
          `give a reason of at least ${min} characters in ${reasonVariable}`,
        );
      }
      const record: OverrideRecord = {
        variable,
        reasonVariable,
        reason: reasonText.trim(),
        operator: facts.operator,
        at: facts.now.toISOString(),
        overrode: inner.guard,
        overrodeReason: inner.reason,
      };
      return { ...decision(guard, 'overridden', `${inner.guard} overridden by ${variable}=1 (${reasonVariable}: ${JSON.stringify(record.reason)}): ${inner.reason}`, seen), override: record };
    },
  };
  return guard;
}
