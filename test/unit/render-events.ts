// Synthetic event sequences for the renderer tests, and a capturing Out.
import type { Out } from '../../lib/cli/context.js';
import type { FabricEvent, Failure, NodeId, PlannedNode, SuccessReason } from '../../lib/engine/events.js';
import type { GuardDecision } from '../../lib/guards/types.js';

export class CaptureOut implements Out {
  text = '';
  writes = 0;
  constructor(
    readonly isTTY = false,
    readonly columns = 100,
  ) {}
  write(s: string): boolean {
    this.text += s;
    this.writes++;
    return true;
  }
  get lines(): string[] {
    return this.text.split('\n');
  }
}

const AT = '2025-01-01T00:00:00.000Z';

export function planned(id: NodeId, extra: Partial<PlannedNode> = {}): PlannedNode {
  return {
    id,
    task: id.replace(/\[.*$/, ''),
    params: {},
    effect: 'read-only',
    deps: [],
    commands: [`echo ${id}`],
    cwd: '/repo',
    mutex: [],
    tags: [],
    skippedDeps: [],
    ...extra,
  };
}

/** Builds an event sequence step by step: `ev.start([...]).task('a', 'out\n').ok('a').end()`. */
export class Events {
  readonly list: FabricEvent[] = [];
  private ms = 0;
  push(...e: FabricEvent[]): this {
    this.list.push(...e);
    return this;
  }
  start(nodes: readonly (PlannedNode | NodeId)[], opts: { dryRun?: boolean; targets?: NodeId[]; ci?: boolean } = {}): this {
    const ns = nodes.map((n) => (typeof n === 'string' ? planned(n) : n));
    return this.push({ type: 'run-start', runId: 'r1', targets: opts.targets ?? [ns[ns.length - 1]?.id ?? 'x'], nodes: ns, ci: opts.ci ?? false, dryRun: opts.dryRun ?? false, at: AT });
  }
  guard(node: NodeId, decision: Partial<GuardDecision> & Pick<GuardDecision, 'guard' | 'outcome' | 'reason'>): this {
    return this.push({ type: 'guard-decision', node, decision: { kind: 'test', facts: {}, ...decision } });
  }
  begin(node: NodeId, attempt = 1): this {
    return this.push({ type: 'task-start', node, attempt, at: AT });
  }
  cmd(node: NodeId, command: string, exitCode: number | null = 0): this {
    return this.push(
      { type: 'command-start', node, command, pid: 1234 },
      { type: 'command-end', node, command, exitCode, signal: null, ms: 5 },
    );
  }
  out(node: NodeId, chunk: string, stream: 'stdout' | 'stderr' = 'stdout', replayed?: boolean): this {
    return this.push(replayed === undefined ? { type: 'task-output', node, stream, chunk } : { type: 'task-output', node, stream, chunk, replayed });
  }
  ok(node: NodeId, reason: SuccessReason = 'ran', ms = 120): this {
    this.ms += ms;
    return this.push({ type: 'task-success', node, reason, ms, exitCode: reason === 'ran' ? 0 : null, at: AT });
  }
  fail(node: NodeId, failure: Failure, ms = 50): this {
    this.ms += ms;
    return this.push({ type: 'task-failure', node, failure, ms, at: AT });
  }
  /** A node that starts, prints `lines`, and ends as given. */
  task(node: NodeId, output: string, end: SuccessReason | Failure = 'ran'): this {
    this.begin(node).cmd(node, `echo ${node}`);
    if (output) this.out(node, output);
    return typeof end === 'string' ? this.ok(node, end) : this.fail(node, end);
  }
  end(ok = true, interrupted = false): this {
    return this.push({ type: 'run-end', ok, ms: this.ms + 7, interrupted, at: AT });
  }
}

export function feed(sink: { onEvent(e: FabricEvent): void }, events: readonly FabricEvent[]): void {
  for (const e of events) sink.onEvent(e);
}

/** Removes ANSI colour codes. */
export const plainText = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
