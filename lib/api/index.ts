/**
 * The public DSL: what `fabricfile.ts` and `tasks/*.ts` import from 'fabric'.
 * Nothing here runs a process or loads zx, listr2 or ajv.
 */
import { defineTask } from './registry.js';
import type { TaskDef, TaskSpec } from './types.js';

export type * from './types.js';
export type { Guard, GuardDecision, GuardFacts, GuardOutcome, CiMutationAllowance, OverrideRecord } from '../guards/types.js';
export * from '../guards/index.js';

/**
 * Declare a task. `name` is dotted (`dns.up`); the declaration site is recorded for diagnostics.
 * @example task('lint', { effect: 'read-only', run: 'eslint .', inputs: ['src/**'] })
 */
export function task(name: string, spec: TaskSpec = {}): TaskDef {
  return defineTask(name, spec);
}
