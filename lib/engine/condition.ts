/** Conditions on a node's params (conditional dependencies, conditional guards): one semantics everywhere. */
import type { ParamCondition } from '../api/types.js';

export function conditionText(c: ParamCondition): string {
  if (c.description) return c.description;
  if (c.equals !== undefined) return `${c.param} == ${JSON.stringify(c.equals)}`;
  if (c.notEquals !== undefined) return `${c.param} != ${JSON.stringify(c.notEquals)}`;
  if (c.oneOf) return `${c.param} in [${c.oneOf.map((v) => JSON.stringify(v)).join(', ')}]`;
  return `${c.param} is set`;
}

export function conditionHolds(c: ParamCondition, value: string | undefined): boolean {
  if (c.equals !== undefined) return value === c.equals;
  if (c.notEquals !== undefined) return value !== c.notEquals;
  if (c.oneOf) return value !== undefined && c.oneOf.includes(value);
  return value !== undefined && value !== '';
}
