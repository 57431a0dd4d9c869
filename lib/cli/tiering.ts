/**
 * V8's optimizing compiler, tuned for a short-lived orchestrator.
 *
 * fabric's own code is glue around system calls, hashing and JSON, all native. In a run of a thousand
 * short tasks, V8 marks sixty-odd of fabric's functions hot and TurboFan compiles them on its
 * background threads: ~370 ms of compile time in a one-second run (the analyzer's node builder alone
 * 50 ms, the scheduler's 33 ms; `--trace-opt-verbose`), on the same two CPUs that the commands need,
 * for code that then runs a few hundred more times. A larger interrupt budget makes a function wait
 * 16 times longer before it is considered for optimization: a long run still optimizes its hot
 * loops, a one-second run mostly does not pay for compiles it cannot amortize (bench/RESULTS.md, fifth
 * pass: fabric's CPU time in W1 without evidence 0.68–0.82 s before, 0.48–0.63 s after; W6, whose
 * 10,000-file loop gains from early optimization, within noise).
 *
 * `run` sets it when it starts, before the fabricfile is evaluated and the graph is built. A budget
 * given by the user (`node --interrupt-budget=N`, or in NODE_OPTIONS) wins. Only on V8 11 (Node 20
 * and 21), where it was measured: later V8s tier up through Maglev first, and an unknown flag would
 * make V8 print an error at every start.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default is 66 KiB of bytecode budget (Node 20: 67584). */
export const INTERRUPT_BUDGET = 1 << 20;

const GIVEN = /^--interrupt[-_]budget(=|$)/;

/** The V8 versions the budget was measured on (Node 20 and 21 ship V8 11). */
const MEASURED_V8 = /^11\./;

/** The flag to set, or undefined when the user chose a budget themselves or V8 is not one it was measured on. */
export function tieringFlag(execArgv: readonly string[], nodeOptions: string | undefined, v8Version: string): string | undefined {
  if (!MEASURED_V8.test(v8Version)) return undefined;
  const args = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  return args.some((a) => GIVEN.test(a)) ? undefined : `--interrupt-budget=${INTERRUPT_BUDGET}`;
}

/** Applies {@link tieringFlag} to this process (once; later calls do nothing). */
let applied = false;
export function tuneTiering(execArgv: readonly string[], nodeOptions: string | undefined): void {
  if (applied) return;
  applied = true;
  const flag = tieringFlag(execArgv, nodeOptions, process.versions.v8);
  if (flag) setFlagsFromString(flag);
}
