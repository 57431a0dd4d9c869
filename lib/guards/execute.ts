/** Execute flags: `X_EXECUTE=1` runs the execute form; anything else runs the dry-run form. The choice is in the plan. */
import type { Effect, RunSpec, Variants } from '../api/types.js';

export interface ExecuteFlagOptions {
  readonly execute: RunSpec;
  readonly dryRun: RunSpec;
  /** Effect of the execute form (default `mutating`: fail closed). */
  readonly executeEffect?: Effect;
  /** Effect of the dry-run form (default: the task's own `effect`). */
  readonly dryRunEffect?: Effect;
}

/** The variant case chosen by `VAR=1`. */
export const EXECUTE_CASE = '1';
/** The fallback variant case. */
export const DRY_RUN_CASE = 'dry-run';

/**
 * A `variants` value for a task: the task must declare `variable` as a param.
 * @example task('tenants.apply', { params: { TENANT_EXECUTE: { default: '' } }, ...,
 *   variants: executeFlag('TENANT_EXECUTE', { execute: 'apply.sh', dryRun: 'apply.sh --dry-run', dryRunEffect: 'read-only' }) })
 */
export function executeFlag(variable: string, opts: ExecuteFlagOptions): Variants {
  return {
    param: variable,
    cases: {
      [EXECUTE_CASE]: { description: `execute (${variable}=1)`, run: opts.execute, effect: opts.executeEffect ?? 'mutating' },
      [DRY_RUN_CASE]: opts.dryRunEffect !== undefined ? { description: `${variable} is not 1`, run: opts.dryRun, effect: opts.dryRunEffect } : { description: `${variable} is not 1`, run: opts.dryRun },
    },
    fallback: DRY_RUN_CASE,
  };
}
