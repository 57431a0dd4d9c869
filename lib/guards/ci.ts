/**
 * CI mode: the one rule. CI mode is on when the `CI` variable is set to anything except the empty
 * string, `0` or `false` (case-insensitive, surrounding blanks ignored), or when `--ci` is given.
 * So GitHub's `CI=true`, Samakia's `CI=1` and `CI=yes` all count; `CI=0`, `CI=false`, `CI=` do not.
 */
import type { Node } from '../engine/graph.js';
import type { Guard, GuardDecision, GuardFacts } from './types.js';
import { decision, quoted, readVar, shown } from './util.js';

export function isCiMode(env: Readonly<Record<string, string | undefined>>, flag?: boolean): boolean {
  if (flag === true) return true;
  const v = env['CI'];
  if (v === undefined) return false;
  const t = v.trim().toLowerCase();
  return t !== '' && t !== '0' && t !== 'false';
}

/** Why CI mode is on, for messages: `CI=true` or `--ci`. */
export function ciCause(facts: Pick<GuardFacts, 'env' | 'ci'>): string {
  const v = facts.env['CI'];
  return isCiMode(facts.env) ? `CI=${v}` : facts.ci ? '--ci' : 'not in CI';
}

/**
 * Denies in CI mode.
 * allow: `not in CI mode`; deny: the given reason, or `exposure.apply is not allowed in CI (CI mode is on: CI=1)`.
 */
export function ciRefuse(reason?: string): Guard {
  const guard: Guard = {
    kind: 'ci-refuse',
    name: 'ci-refuse',
    description: reason ?? 'refused in CI mode',
    evaluate(facts) {
      const seen = { ci: facts.ci, CI: facts.env['CI'] ?? null };
      if (!facts.ci) return decision(guard, 'allow', 'not in CI mode', seen);
      return decision(guard, 'deny', reason ?? `${facts.task} is not allowed in CI (CI mode is on: ${ciCause(facts)})`, seen, 'run it outside CI');
    },
  };
  return guard;
}

/** Name and kind of the CI-mode effect check that `evaluateGuards` adds for mutating nodes. */
export const CI_EFFECT_GUARD = { name: 'ci-mode-effect', kind: 'ci-effect' } as const;

/**
 * The CI-mode effect check for one node (only called in CI mode for mutating nodes): denied unless the
 * task declares a `ci` allowance and it holds (param value allowed, confirmation phrase given).
 *
 * deny: `tf.apply[ENV=samakia-prod] is mutating and CI mode is on (CI=1)` · `ENV "samakia-prod" is not allowed for tf.apply in CI (allowed: samakia-dev, samakia-staging)`
 *   · `confirmation phrase mismatch: CONFIRM_APPLY must be "I_UNDERSTAND_APPLY_IS_MUTATING" to run tf.apply in CI`.
 * allow: `mutating in CI, allowed: ENV "samakia-dev" is one of samakia-dev, samakia-staging and CONFIRM_APPLY holds the confirmation phrase (non-prod apply workflow)`.
 */
export function ciEffectDecision(node: Pick<Node, 'id' | 'effect' | 'ci'>, facts: GuardFacts): GuardDecision {
  const cause = ciCause(facts);
  const allowance = node.ci;
  if (!allowance) {
    return decision(
      CI_EFFECT_GUARD,
      'deny',
      `${node.id} is mutating and CI mode is on (${cause})`,
      { effect: node.effect, ci: true, cause },
      'select only read-only tasks in CI, or run it outside CI; a task may declare a `ci` allowance for specific CI-run mutations',
    );
  }
  if ('scope' in allowance) {
    return decision(CI_EFFECT_GUARD, 'allow', `mutating in CI, allowed: it writes only git-ignored files in the workspace (${allowance.reason})`, { effect: node.effect, ci: true, cause, scope: allowance.scope });
  }
  const value = readVar(facts, allowance.param);
  const seen: Record<string, unknown> = { effect: node.effect, ci: true, cause, [allowance.param]: shown(facts, allowance.param, value), allowed: allowance.allow };
  if (value === undefined || !allowance.allow.includes(value)) {
    return decision(
      CI_EFFECT_GUARD,
      'deny',
      `${allowance.param} ${quoted(facts, allowance.param, value)} is not allowed for ${facts.task} in CI (allowed: ${allowance.allow.join(', ')})`,
      seen,
      `set ${allowance.param} to one of ${allowance.allow.join(', ')}, or run it outside CI`,
    );
  }
  if (allowance.confirm) {
    const { variable, phrase } = allowance.confirm;
    const given = readVar(facts, variable);
    seen[variable] = given === phrase ? '[phrase matches]' : given === undefined ? null : '[phrase mismatch]';
    if (given !== phrase) {
      return decision(CI_EFFECT_GUARD, 'deny', `confirmation phrase mismatch: ${variable} must be ${JSON.stringify(phrase)} to run ${facts.task} in CI`, seen, `set ${variable}=${phrase}`);
    }
  }
  const confirmed = allowance.confirm ? ` and ${allowance.confirm.variable} holds the confirmation phrase` : '';
  return decision(
    CI_EFFECT_GUARD,
    'allow',
    `mutating in CI, allowed: ${allowance.param} ${quoted(facts, allowance.param, value)} is one of ${allowance.allow.join(', ')}${confirmed} (${allowance.reason})`,
    seen,
  );
}
