/**
 * Small helpers shared by the guard kinds: building decisions, showing values without leaking
 * secrets, rendering and evaluating param conditions, and message templates.
 */
import type { ParamCondition } from '../api/types.js';
import { isSecretName } from '../util/redact.js';
import type { GuardDecision, GuardFacts, GuardOutcome } from './types.js';
import { conditionHolds } from '../engine/condition.js';

/** Same semantics as dependency conditions in the analyzer (one implementation). */
export { conditionHolds };

/** Options every param-style guard accepts. */
export interface MessageOptions {
  /** What the operator can do to pass (replaces the default remedy). Templates: `{{value}}`, `{{param}}`, `{{task}}`, `{{node}}`. */
  readonly remedy?: string;
  /** Replaces the default deny reason, e.g. `ENV must be samakia-minio`. Same templates as `remedy`. */
  readonly message?: string;
}

export function decision(
  guard: { readonly name: string; readonly kind: string },
  outcome: GuardOutcome,
  reason: string,
  facts: Record<string, unknown>,
  remedy?: string,
): GuardDecision {
  return remedy === undefined ? { guard: guard.name, kind: guard.kind, outcome, reason, facts } : { guard: guard.name, kind: guard.kind, outcome, reason, remedy, facts };
}

/** Whether a variable's value must not be shown in clear. */
export function isSecretVar(facts: GuardFacts, name: string, value: string | undefined): boolean {
  if (isSecretName(name)) return true;
  if (facts.secretNames?.includes(name)) return true;
  return value !== undefined && value !== '' && (facts.secrets?.includes(value) ?? false);
}

/** A variable's value as recorded in a decision's facts: `[set, N chars]` for secrets, `null` when unset. */
export function shown(facts: GuardFacts, name: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (isSecretVar(facts, name, value)) return value === '' ? '[set, empty]' : `[set, ${value.length} chars]`;
  return value;
}

/** A value inside a message: quoted, or `[secret]`, or "not set". */
export function quoted(facts: GuardFacts, name: string, value: string | undefined): string {
  if (value === undefined) return 'not set';
  if (isSecretVar(facts, name, value)) return '[secret]';
  return JSON.stringify(value);
}

/** Reads a variable: node params > CLI/dependency vars > environment (already merged in `facts.vars`). */
export function readVar(facts: GuardFacts, name: string): string | undefined {
  return facts.vars[name];
}

/** Expands `{{value}}`, `{{param}}`, `{{task}}`, `{{node}}` in a user-written message. */
export function fill(text: string, facts: GuardFacts, param: string, value: string | undefined): string {
  return text.replace(/\{\{\s*(value|param|task|node)\s*\}\}/g, (_m, k: string) => {
    switch (k) {
      case 'value':
        return value === undefined ? '' : isSecretVar(facts, param, value) ? '[secret]' : value;
      case 'param':
        return param;
      case 'task':
        return facts.task;
      default:
        return facts.node;
    }
  });
}

/** How a condition reads in guard names and plans (`ENV=samakia-prod`, `ENV!=x`, `ENV in a|b`). */
export function conditionLabel(c: ParamCondition): string {
  if (c.description) return c.description;
  if (c.equals !== undefined) return `${c.param}=${c.equals}`;
  if (c.notEquals !== undefined) return `${c.param}!=${c.notEquals}`;
  if (c.oneOf) return `${c.param} in ${c.oneOf.join('|')}`;
  return `${c.param} is set`;
}

/** Number of non-blank characters (whitespace does not count towards a minimum reason length). */
export function nonBlankLength(text: string): number {
  return text.replace(/\s/gu, '').length;
}

export const OUTCOMES: readonly GuardOutcome[] = ['allow', 'deny', 'overridden', 'skip'];

/** A short message from anything thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
