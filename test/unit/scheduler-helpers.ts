// Hand-built graphs for the scheduler's unit tests: the analyzer is not involved, so each test says
// exactly which resolved nodes the scheduler gets. Commands are real processes (fixture commands).
import { readFileSync } from 'node:fs';
import type { Command, TaskFunction } from '../../lib/api/types.js';
import type { FabricEvent, NodeId } from '../../lib/engine/events.js';
import type { Graph, Node, ResolvedStep } from '../../lib/engine/graph.js';
import type { Guard, GuardFacts } from '../../lib/guards/types.js';
import { runGraph, type RunGraphOptions, type RunOutcome } from '../../lib/engine/run.js';
import { briefOf, fixture } from '../helpers/rig.js';

export const NODE = process.execPath;
/** argv running a fixture command with this node binary. */
export const fx = (name: string, ...args: string[]): string[] => [NODE, fixture(name), ...args];
/** The same as a bash string (for steps that need a shell). */
export const fxSh = (name: string, ...args: string[]): string => [NODE, fixture(name), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');

export const BASE_ENV: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' };

export type StepSpec = Command | TaskFunction | Partial<Extract<ResolvedStep, { kind: 'command' }>> & { cmd: Command };

export interface NodeSpec {
  deps?: string[];
  /** One step. */
  run?: StepSpec;
  /** Several steps, in order. */
  steps?: StepSpec[];
  effect?: 'read-only' | 'mutating';
  mutex?: string[];
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  gate?: { description: string; warnCode: number; allowWarnVar: string | undefined };
  secrets?: string[];
  secretPatterns?: string[];
  env?: Record<string, string>;
  vars?: Record<string, string>;
  params?: Record<string, string>;
  guards?: Guard[];
  outputs?: string[];
  cwd?: string;
}

function step(s: StepSpec): ResolvedStep {
  if (typeof s === 'function') return { kind: 'function', fn: s, display: `<function ${s.name || 'anonymous'}>`, source: s.toString() };
  if (typeof s === 'string' || Array.isArray(s)) return { kind: 'command', cmd: s as Command, display: typeof s === 'string' ? s : s.join(' '), env: {}, okCodes: [], ignoreFailure: false, secretEnvFiles: [] };
  const c = s as Partial<Extract<ResolvedStep, { kind: 'command' }>> & { cmd: Command };
  return { kind: 'command', cmd: c.cmd, display: c.display ?? (typeof c.cmd === 'string' ? c.cmd : c.cmd.join(' ')), env: c.env ?? {}, okCodes: c.okCodes ?? [], ignoreFailure: c.ignoreFailure ?? false, secretEnvFiles: c.secretEnvFiles ?? [] };
}

function topo(specs: Record<string, NodeSpec>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const d of specs[id]?.deps ?? []) visit(d);
    out.push(id);
  };
  for (const id of Object.keys(specs)) visit(id);
  return out;
}

export function graphOf(dir: string, specs: Record<string, NodeSpec>, targets?: string[]): Graph {
  const nodes = new Map<NodeId, Node>();
  for (const [id, s] of Object.entries(specs)) {
    const runs = s.steps ?? (s.run === undefined ? [] : [s.run]);
    nodes.set(id, {
      id,
      task: { name: id, spec: {}, site: () => undefined, __fabricTask: true },
      params: s.params ?? {},
      vars: s.vars ?? {},
      effect: s.effect ?? 'read-only',
      deps: s.deps ?? [],
      skippedDeps: [],
      steps: runs.map(step),
      cwd: s.cwd ?? dir,
      env: { ...BASE_ENV, ...s.env },
      envNames: [],
      secrets: s.secrets ?? [],
      secretPatterns: s.secretPatterns ?? [],
      timeoutMs: s.timeoutMs,
      retries: s.retries ?? 0,
      retryDelayMs: s.retryDelayMs ?? 10,
      mutex: s.mutex ?? [],
      tags: [],
      inputs: [],
      outputs: s.outputs ?? [],
      cacheable: true,
      guards: s.guards ?? [],
      ci: undefined,
      variant: undefined,
      gate: s.gate,
    });
  }
  return { repoRoot: dir, fabricfile: `${dir}/fabricfile.ts`, nodes, targets: targets ?? Object.keys(specs), order: topo(specs) };
}

export function factsFor(repoRoot: string): (node: Node) => GuardFacts {
  return (node) => ({
    node: node.id,
    task: node.task.name,
    effect: node.effect,
    params: node.params,
    vars: { ...node.vars },
    env: {},
    ci: false,
    interactive: false,
    now: new Date(),
    operator: 'test@localhost',
    repoRoot,
    selection: [],
    keyrings: {},
  });
}

export interface Ran {
  outcome: RunOutcome;
  events: FabricEvent[];
  brief(types?: readonly string[]): string[];
  /** All (redacted) output of a node, per stream or both, in order. */
  output(node: string, stream?: 'stdout' | 'stderr'): string;
  /** Index of the first event matching. */
  index(pred: (e: FabricEvent) => boolean): number;
  pids(node?: string): number[];
}

export async function run(graph: Graph, opts: Partial<RunGraphOptions> = {}): Promise<Ran> {
  const events: FabricEvent[] = [];
  const outcome = await runGraph({
    graph,
    runId: 'test-run',
    jobs: 4,
    keepGoing: false,
    dryRun: false,
    ci: false,
    signal: new AbortController().signal,
    graceMs: 500,
    guardFacts: factsFor(graph.repoRoot),
    ...opts,
    emit: (e) => {
      events.push(e);
      opts.emit?.(e);
    },
  });
  return {
    outcome,
    events,
    brief: (types) => briefOf(events, types),
    output: (node, stream) =>
      events
        .filter((e): e is Extract<FabricEvent, { type: 'task-output' }> => e.type === 'task-output' && e.node === node && (!stream || e.stream === stream))
        .map((e) => e.chunk)
        .join(''),
    index: (pred) => events.findIndex(pred),
    pids: (node) => events.flatMap((e) => (e.type === 'command-start' && (!node || e.node === node) && e.pid !== undefined ? [e.pid] : [])),
  };
}

/** Lines `NAME start|end EPOCH [PID]` written by stamp.mjs. */
export function stamps(file: string): Record<string, { start: number; end: number }> {
  const out: Record<string, { start: number; end: number }> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, what, at] = line.split(' ');
    if (!name || !at) continue;
    const e = (out[name] ??= { start: NaN, end: NaN });
    if (what === 'start') e.start = Number(at);
    if (what === 'end') e.end = Number(at);
  }
  return out;
}

/** Pids recorded one per line by hang.mjs / wait-for.mjs. */
export function pidsIn(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Whether a process is gone: `kill(pid, 0)` fails with ESRCH. A zombie (state Z) also counts as gone: it
 * has exited and only waits to be reaped, and in some containers pid 1 never reaps reparented orphans.
 */
export function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `cond()` or the deadline. */
export async function until(cond: () => boolean, ms = 10_000, label = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await sleep(20);
  }
}
