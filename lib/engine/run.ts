/**
 * The scheduler: guards first (nothing starts on a denial), then the graph in parallel up to `jobs`,
 * fail-fast or keep-going, mutexes, gates, the content cache, retries with backoff, timeouts, and an
 * interrupt that leaves no process of any task alive. Its only output channel is `emit`.
 */
import type { CacheLookup, CacheProvider } from '../cache/types.js';
import type { GuardDecision, GuardFacts } from '../guards/types.js';
import { evaluateGuards } from '../guards/evaluate.js';
import type { FabricEvent, Failure, NodeId } from './events.js';
import type { Graph, Node } from './graph.js';
import { plannedNodes } from './plan.js';
import { commandEnv, replaySecrets, runAttempt, type ExecDeps } from './sched-exec.js';
import { redactText } from '../util/redact.js';
import { RankHeap, ReadyTracker } from './sched-ready.js';
import { abortableSleep, backoffMs, normaliseJobs, seededRandom, shuffleInPlace } from './sched-util.js';
import { groupSpawner, type HeldProcess, type ProcessHandle, type SpawnSpec, type Spawner, type StreamName } from './spawn.js';

export interface RunGraphOptions {
  /** Analyzed, resolved and validated (lib/engine/analyze.ts). */
  readonly graph: Graph;
  readonly runId: string;
  /** `-j N`: at most this many nodes run at once (Infinity allowed). */
  readonly jobs: number;
  readonly keepGoing: boolean;
  readonly dryRun: boolean;
  readonly ci: boolean;
  /** The only output channel. */
  readonly emit: (e: FabricEvent) => void;
  /** Aborted on SIGINT/SIGTERM by the CLI (the reason should be the signal name). */
  readonly signal: AbortSignal;
  /** SIGTERM → SIGKILL grace (default 3000). */
  readonly graceMs?: number;
  /** Absent: no cache. */
  readonly cache?: CacheProvider;
  /** `--force`: run even on a cache hit. */
  readonly force?: boolean;
  readonly guardFacts: (node: Node) => GuardFacts;
  /** Shuffle ready siblings (reproducibly) so that a missing edge shows up early. */
  readonly shuffleSeed?: number;
  /** How processes are started (default: one process group per command with child_process.spawn). */
  readonly spawner?: Spawner;
}

export type NodeStatus = 'ok' | 'cached' | 'failed' | 'cancelled' | 'denied' | 'skipped-after-failure' | 'not-run';

export interface RunOutcome {
  readonly ok: boolean;
  readonly interrupted: boolean;
  readonly denied: boolean;
  readonly statuses: ReadonlyMap<NodeId, NodeStatus>;
}

const now = () => new Date().toISOString();

/** How long the first commands of a run wait for the spawner's helper (Spawner.prepare) at most. */
const PREPARE_WAIT_MS = 50;

/** `p`, or nothing after `ms`. The timer keeps the process alive meanwhile: a booting fork server does not. */
function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(t);
      resolve();
    };
    p.then(done, done);
  });
}

function signalName(signal: AbortSignal): string {
  return typeof signal.reason === 'string' && signal.reason !== '' ? signal.reason : 'SIGINT';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function runGraph(opts: RunGraphOptions): Promise<RunOutcome> {
  const started = Date.now();
  const { graph, emit } = opts;
  const statuses = new Map<NodeId, NodeStatus>();
  const end = (ok: boolean, interrupted: boolean, denied: boolean): RunOutcome => {
    emit({ type: 'run-end', ok, ms: Date.now() - started, interrupted, at: now() });
    return { ok, interrupted, denied, statuses };
  };

  emit({ type: 'run-start', runId: opts.runId, targets: graph.targets, nodes: plannedNodes(graph), ci: opts.ci, dryRun: opts.dryRun, at: now() });

  // Guards, for the whole selection, before anything starts; each decision is emitted as soon as it is
  // made (a confirm guard may be prompting). An evaluator that throws denies (fail closed).
  let denials: readonly { readonly node: NodeId; readonly decision: GuardDecision; readonly path: readonly NodeId[] }[];
  try {
    const r = await evaluateGuards(graph, opts.guardFacts, { ci: opts.ci, onDecision: (node, decision) => emit({ type: 'guard-decision', node, decision }) });
    denials = r.denials;
  } catch (e) {
    const decision: GuardDecision = { guard: 'guard evaluation', kind: 'internal', outcome: 'deny', reason: `guard evaluation failed: ${errorMessage(e)}`, facts: {} };
    const first = graph.targets[0] ?? graph.order[0] ?? '';
    emit({ type: 'guard-decision', node: first, decision });
    denials = [{ node: first, decision, path: [first] }];
  }
  if (denials.length > 0) {
    emit({ type: 'run-denied', denials });
    const denied = new Set(denials.map((d) => d.node));
    for (const id of graph.order) statuses.set(id, denied.has(id) ? 'denied' : 'not-run');
    return end(false, false, true);
  }
  if (opts.dryRun) {
    for (const id of graph.order) statuses.set(id, 'not-run');
    return end(true, false, false);
  }
  const sched = new Scheduler(opts, statuses);
  const interrupted = await sched.run();
  const ok = !interrupted && graph.order.every((id) => statuses.get(id) === 'ok' || statuses.get(id) === 'cached');
  return end(ok, interrupted, false);
}

type GateState = { readonly state: 'pass' | 'warn' | 'fail'; readonly open: boolean; readonly detail: string };

type NodeResult =
  | { readonly ok: true; readonly reason: 'ran' | 'cached'; readonly exitCode: number | null; readonly warned: boolean }
  | { readonly ok: false; readonly failure: Failure };

/** A ready node whose first command waits behind a running node's last command (Scheduler.reserve). */
interface Reservation {
  readonly node: Node;
  /** The running node it waits for. */
  readonly behind: NodeId;
  readonly held: HeldProcess;
  /** Hands the command's output (held until now) to the attempt that adopts it. */
  attach(onOutput: SpawnSpec['onOutput']): void;
}

class Scheduler {
  private readonly graph: Graph;
  private readonly jobs: number;
  private readonly pending = new Set<NodeId>();
  private readonly running = new Map<NodeId, Promise<void>>();
  private readonly heldMutexes = new Set<string>();
  private readonly rank = new Map<NodeId, number>();
  private readonly fingerprints = new Map<NodeId, string>();
  private readonly gates = new Map<NodeId, GateState>();
  /** Whether the spawner was prepared, and while it is getting ready (see execute). */
  private prepared = false;
  private preparing: Promise<unknown> | undefined;
  private readonly random: (() => number) | undefined;
  private readonly exec: ExecDeps;
  private readonly tracker: ReadyTracker;
  private failed = false;
  private interrupted = false;
  private fatal: { error: unknown } | undefined;
  /**
   * Ready nodes whose first command waits behind a running node's last command (`reserve`), by the
   * waiting node's id; `behind` maps the running node to it.
   */
  private readonly reserved = new Map<NodeId, Reservation>();
  private readonly behind = new Map<NodeId, NodeId>();
  /** Reserved nodes whose command was started (the one it waited for ended): the node starts next. */
  private readonly launched = new Map<NodeId, Reservation>();

  constructor(
    private readonly opts: RunGraphOptions,
    private readonly statuses: Map<NodeId, NodeStatus>,
  ) {
    this.graph = opts.graph;
    this.jobs = normaliseJobs(opts.jobs);
    this.graph.order.forEach((id, i) => {
      this.rank.set(id, i);
      this.pending.add(id);
    });
    this.tracker = new ReadyTracker(this.graph.order, (id) => this.graph.nodes.get(id)?.deps ?? [], this.rank);
    this.random = opts.shuffleSeed !== undefined ? seededRandom(opts.shuffleSeed) : undefined;
    this.exec = {
      emit: opts.emit,
      graceMs: opts.graceMs ?? 3000,
      repoRoot: this.graph.repoRoot,
      spawner: opts.spawner ?? groupSpawner,
      signal: opts.signal,
      lastCommand: (node, handle) => this.reserve(node, handle),
      adopt: (node, spec) => this.adopt(node, spec),
    };
  }

  /** Runs to completion; resolves whether the run was interrupted. */
  async run(): Promise<boolean> {
    const onAbort = () => this.interrupt();
    if (this.opts.signal.aborted) this.interrupt();
    else this.opts.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        this.pump();
        const answers = [...this.reserved.values()].filter((r) => r.held.waiting).map((r) => r.held.settled);
        if (this.running.size === 0 && answers.length === 0) break;
        await Promise.race(answers.length ? [...this.running.values(), ...answers] : this.running.values());
      }
    } finally {
      this.opts.signal.removeEventListener('abort', onAbort);
    }
    if (this.fatal) throw this.fatal.error;
    // Whatever never started.
    for (const id of this.graph.order) {
      if (!this.pending.has(id)) continue;
      if (this.interrupted) this.neverStarted(id, { reason: 'aborted' }, 'cancelled');
      else if (this.failed) this.neverStarted(id, { reason: 'not-started' }, 'skipped-after-failure');
      else this.neverStarted(id, { reason: 'internal-error', message: `the scheduler could not start ${id} (a dependency is missing from the graph)` }, 'failed');
    }
    return this.interrupted;
  }

  private interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.cancelReservations();
    // Running attempts listen to the same signal: each SIGTERMs its groups and SIGKILLs after the grace period.
    this.opts.emit({ type: 'run-interrupted', signal: signalName(this.opts.signal) });
  }

  private node(id: NodeId): Node {
    const n = this.graph.nodes.get(id);
    if (!n) throw new Error(`node ${id} is not in the graph`);
    return n;
  }

  /** Whether nothing stops new nodes from starting (no interrupt, no fatal error, no failure without --keep-going). */
  private get startable(): boolean {
    return !this.interrupted && !this.fatal && !(this.failed && !this.opts.keepGoing) && !this.opts.signal.aborted;
  }

  /**
   * The job slot of a running node `a` goes to the next ready node the moment `a`'s last command
   * exits, without waiting for this event loop (bench/RESULTS.md, twelfth pass): the next node's
   * first command is held by the fork server, which starts it itself when it reaps `a`'s command
   * with exit 0, an empty process group and its output closed (`Spawner.after`). Only when every
   * slot is taken, and only where that exit decides the outcome: `a`'s last step is this command, it
   * has no outputs to check, no gate, no timeout that could still fire; and only for a next node
   * whose start decides nothing before its command: no mutex, no gate, never served from the cache
   * (not cacheable, or no cache), no inputs (its fingerprint hashes none while its command runs), a
   * command as its first step, no secret env files to read first. When `a` ends in any other way,
   * when the server sees any other command fail, or when the scheduler stops starting nodes
   * (`cancelReservations`), the held command is dropped and the node goes back with the ready ones.
   * The node itself starts (events, attempt) in the scheduler's own order, right after `a` ended,
   * and its attempt adopts the running process (`adopt`).
   */
  private reserve(a: Node, handle: ProcessHandle): void {
    const spawner = this.exec.spawner;
    if (!spawner.after || this.random || !this.startable || this.behind.has(a.id)) return;
    if (a.outputs.length > 0 || a.gate || (a.timeoutMs !== undefined && a.timeoutMs > 0)) return;
    // Only when every slot is taken (`a` counted, also while it is being started): a ready node that
    // can start now is never made to wait behind another.
    if (this.running.size + (this.running.has(a.id) ? 0 : 1) + this.unanswered < this.jobs) return;
    const id = this.tracker.take();
    if (id === undefined) return;
    const b = this.graph.nodes.get(id);
    const step = b?.steps[0];
    if (
      !b ||
      !this.pending.has(id) ||
      this.reserved.has(id) ||
      step?.kind !== 'command' ||
      step.secretEnvFiles.length > 0 ||
      b.mutex.length > 0 ||
      b.gate ||
      b.inputs.length > 0 ||
      (this.opts.cache && b.cacheable)
    ) {
      this.tracker.putBack(id);
      return;
    }
    const early: [StreamName, string][] = [];
    let sink: ((stream: StreamName, chunk: string) => void) | undefined;
    const spec: SpawnSpec = {
      cmd: step.cmd,
      cwd: b.cwd,
      env: commandEnv(b, step),
      graceMs: this.exec.graceMs,
      onOutput: (stream, chunk) => (sink ? sink(stream, chunk) : early.push([stream, chunk])),
    };
    // The command may start at any moment from now on: the cache stops reusing this run's stats (as at any start).
    this.opts.cache?.willRun?.(b);
    const held = spawner.after(handle, spec);
    if (!held) {
      this.tracker.putBack(id);
      return;
    }
    const r: Reservation = {
      node: b,
      behind: a.id,
      held,
      attach: (onOutput) => {
        sink = onOutput;
        for (const [stream, chunk] of early.splice(0)) onOutput(stream, chunk);
      },
    };
    this.reserved.set(id, r);
    this.behind.set(a.id, id);
  }

  /**
   * The process started for `node`'s first command while it was reserved. Its attempt asks when it
   * runs that step (the first of its first attempt), whose command, cwd and env (`commandEnv`) are the
   * ones `reserve` held.
   */
  private adopt(node: Node, spec: SpawnSpec): ProcessHandle | undefined {
    const r = this.launched.get(node.id);
    if (!r) return undefined;
    this.launched.delete(node.id);
    r.attach(spec.onOutput);
    return r.held.handle;
  }

  /**
   * Reservations whose running node has ended: the ones whose command was started start their node
   * now (it runs); the dropped ones go back with the ready nodes. A reservation whose command can no
   * longer start (the attempt failed) goes back at once. One the server has not answered for yet
   * stays, and holds a job slot, until it does (`run` waits for that too).
   */
  private settleReservations(): void {
    for (const r of [...this.reserved.values()]) {
      if (r.held.waiting || (r.held.sent && this.running.has(r.behind))) continue;
      this.reserved.delete(r.node.id);
      this.behind.delete(r.behind);
      if (r.held.sent) {
        this.launched.set(r.node.id, r);
        this.start(r.node);
      } else if (this.pending.has(r.node.id)) this.tracker.putBack(r.node.id);
    }
  }

  /** Nothing may start any more: every command still held is asked to be dropped. */
  private cancelReservations(): void {
    for (const r of this.reserved.values()) r.held.cancel();
  }

  /** Reservations whose running node ended while the server's answer is still out: they hold a slot. */
  private get unanswered(): number {
    let n = 0;
    for (const r of this.reserved.values()) if (r.held.waiting && !this.running.has(r.behind)) n++;
    return n;
  }

  /** Starts every ready node that fits in a free job slot and whose mutexes are free (lowest rank first, or shuffled). */
  private pump(): void {
    this.settleReservations();
    if (this.interrupted || this.fatal || (this.failed && !this.opts.keepGoing)) return;
    if (this.running.size >= this.jobs) return;
    this.startReady();
    // A slot is free and nothing else is ready: a node still held behind a running one takes it
    // instead. Its command is dropped on the server ('K'); the answer wakes the run loop, and the
    // node goes back with the ready ones (or, when the one it waited for ended first, it runs).
    if (this.running.size + this.unanswered < this.jobs && this.tracker.readyCount === 0) {
      for (const r of this.reserved.values()) if (r.held.waiting && this.running.has(r.behind)) r.held.cancel();
    }
  }

  private startReady(): void {
    const ready = this.random ? shuffleInPlace(this.tracker.takeAll(), this.random) : undefined;
    const waiting: NodeId[] = [];
    for (;;) {
      const id = ready ? ready.shift() : this.running.size + this.unanswered < this.jobs ? this.tracker.take() : undefined;
      if (id === undefined) break;
      if (!this.pending.has(id)) continue;
      const node = this.graph.nodes.get(id);
      if (!node) continue;
      // A node waiting for a mutex holds no job slot: the next ready node may take it.
      if (this.running.size + this.unanswered >= this.jobs || node.mutex.some((m) => this.heldMutexes.has(m))) {
        waiting.push(id);
        continue;
      }
      this.start(node);
    }
    for (const id of waiting) this.tracker.putBack(id);
  }

  /** Whether `dependent` may run as far as its dependency `dep` is concerned. */
  private passable(dep: NodeId, dependent: Node): boolean {
    const s = this.statuses.get(dep);
    if (s === 'cached') return true;
    if (s !== 'ok') return false;
    const gate = this.gates.get(dep);
    return !gate || gate.state === 'pass' || (gate.state === 'warn' && gate.open && dependent.effect === 'read-only');
  }

  /** Why `node` can never run, if one of its dependencies settled without letting it through. */
  private blocked(node: Node): Failure | undefined {
    for (const dep of node.deps) {
      const s = this.statuses.get(dep);
      if (s === undefined || this.passable(dep, node)) continue;
      const gate = this.gates.get(dep);
      if (gate && (gate.state === 'fail' || s === 'ok')) {
        const detail =
          gate.state === 'warn' && gate.open ? `${gate.detail}; only read-only dependents may pass a warning and ${node.id} is mutating` : gate.detail;
        return { reason: 'gate-closed', gate: dep, detail };
      }
      return { reason: 'dependency-failed', dependency: dep };
    }
    return undefined;
  }

  /**
   * After a node settled: its dependents it lets through may become ready; every node that can no
   * longer run fails now, in topological order (what a sweep over all pending nodes would find).
   */
  private settled(id: NodeId): void {
    const blocked = new RankHeap(this.rank);
    for (const b of this.tracker.settle(id, (d) => this.passable(id, this.node(d)))) blocked.push(b);
    if (this.interrupted) return;
    for (let b = blocked.pop(); b !== undefined; b = blocked.pop()) {
      if (!this.pending.has(b)) continue;
      const failure = this.blocked(this.node(b));
      if (!failure) continue;
      this.neverStarted(b, failure, 'skipped-after-failure');
      for (const x of this.tracker.settle(b, () => false)) blocked.push(x);
    }
  }

  private neverStarted(id: NodeId, failure: Failure, status: NodeStatus): void {
    this.pending.delete(id);
    this.statuses.set(id, status);
    if (failure.reason !== 'aborted') this.failed = true;
    if (!this.startable) this.cancelReservations();
    this.opts.emit({ type: 'task-failure', node: id, failure, ms: 0, at: now() });
  }

  private start(node: Node): void {
    this.pending.delete(node.id);
    for (const m of node.mutex) this.heldMutexes.add(m);
    const t0 = Date.now();
    const p = this.execute(node)
      .catch((e: unknown): NodeResult => ({ ok: false, failure: { reason: 'internal-error', message: errorMessage(e) } }))
      .then((r) => (this.launched.has(node.id) ? this.stopUnadopted(node.id).then(() => r) : r))
      .then((r) => this.finish(node, r, Date.now() - t0))
      .catch((e: unknown) => {
        // Only a throwing `emit` (a renderer bug) gets here: start nothing more, let running nodes end, then rethrow.
        this.fatal ??= { error: e };
        this.failed = true;
        this.cancelReservations();
      })
      .finally(() => {
        for (const m of node.mutex) this.heldMutexes.delete(m);
        this.running.delete(node.id);
      });
    this.running.set(node.id, p);
  }

  /**
   * A reserved node's command was started but the node ended before its attempt took it (an interrupt
   * came first): the process is stopped like any other of an ended node, and waited for.
   */
  private async stopUnadopted(id: NodeId): Promise<void> {
    const r = this.launched.get(id);
    this.launched.delete(id);
    if (r) await r.held.handle.terminate(this.exec.graceMs);
  }

  private finish(node: Node, r: NodeResult, ms: number): void {
    const emit = this.opts.emit;
    if (node.gate && !(!r.ok && r.failure.reason === 'aborted')) {
      const gate = this.gateState(node, r);
      this.gates.set(node.id, gate);
      emit({ type: 'gate', node: node.id, state: gate.state, open: gate.open, detail: gate.detail });
      // A gate run for its own sake (a selected target) fails the run on a warning nobody allowed, as the check's exit code did under make.
      if (r.ok && gate.state === 'warn' && !gate.open && this.opts.graph.targets.includes(node.id)) {
        r = { ok: false, failure: { reason: 'gate-closed', gate: node.id, detail: gate.detail } };
      }
    }
    if (r.ok) {
      this.statuses.set(node.id, r.reason === 'cached' ? 'cached' : 'ok');
      emit({ type: 'task-success', node: node.id, reason: r.reason, ms, exitCode: r.exitCode, at: now() });
    } else {
      const aborted = r.failure.reason === 'aborted';
      this.statuses.set(node.id, aborted ? 'cancelled' : 'failed');
      if (!aborted) this.failed = true;
      if (!this.startable) this.cancelReservations();
      emit({ type: 'task-failure', node: node.id, failure: r.failure, ms, at: now() });
    }
    this.settled(node.id);
  }

  private gateState(node: Node, r: NodeResult): GateState {
    const gate = node.gate!;
    if (!r.ok) return { state: 'fail', open: false, detail: `gate failed: ${describeFailure(r.failure)}` };
    if (!r.warned) return { state: 'pass', open: true, detail: r.reason === 'cached' ? 'passed (cached)' : 'passed' };
    const v = gate.allowWarnVar;
    const value = v === undefined ? undefined : (node.params[v] ?? node.vars[v] ?? node.env[v]);
    const open = value === '1';
    const detail =
      v === undefined
        ? `gate warned (exit ${gate.warnCode}); no variable lets dependents run on a warning`
        : open
          ? `gate warned (exit ${gate.warnCode}); ${v}=1 lets read-only dependents run`
          : `gate warned (exit ${gate.warnCode}); set ${v}=1 to let read-only dependents run`;
    return { state: 'warn', open, detail };
  }

  private async execute(node: Node): Promise<NodeResult> {
    const { emit, signal } = this.opts;
    if (signal.aborted) return { ok: false, failure: { reason: 'aborted' } };
    const cache = this.opts.cache;
    let lookup: CacheLookup | undefined;
    if (cache) {
      if (node.gate) {
        // A gate is a live check (quorum, window): always run it.
        emit({ type: 'cache', node: node.id, result: 'disabled', detail: 'gates always run' });
      } else {
        const depFingerprints = new Map<NodeId, string>();
        for (const d of node.deps) {
          const fp = this.fingerprints.get(d);
          if (fp !== undefined) depFingerprints.set(d, fp);
        }
        try {
          lookup = await cache.lookup(node, depFingerprints, { force: this.opts.force ?? false });
        } catch (e) {
          lookup = { result: 'disabled', detail: `cache lookup failed: ${errorMessage(e)}` };
          emit({ type: 'warning', node: node.id, message: `cache lookup failed, running without the cache: ${errorMessage(e)}` });
        }
        emit({ type: 'cache', node: node.id, result: lookup.result, fingerprint: lookup.fingerprint, detail: lookup.result === 'hit' ? undefined : lookup.detail });
        if (signal.aborted) return { ok: false, failure: { reason: 'aborted' } };
        if (lookup.result === 'hit') {
          const secrets = lookup.logs.length > 0 ? replaySecrets(node) : [];
          for (const log of lookup.logs) emit({ type: 'task-output', node: node.id, stream: log.stream, chunk: secrets.length ? redactText(log.chunk, secrets) : log.chunk, replayed: true });
          this.fingerprints.set(node.id, lookup.fingerprint);
          return { ok: true, reason: 'cached', exitCode: null, warned: false };
        }
      }
    }

    // The first node that will run a command lets the spawner start its helper (the fork server): not
    // before the guards passed, and never in a run that is all cache hits (starting it forks this
    // process). The first commands wait for it to be ready, PREPARE_WAIT_MS at most: without it each
    // would fork this process too (~6 ms of this thread apiece), while it boots in ~2 ms.
    if (node.steps.some((st) => st.kind === 'command')) {
      if (!this.prepared) {
        this.prepared = true;
        const ready = this.exec.spawner.prepare?.();
        if (ready) this.preparing = waitAtMost(ready, PREPARE_WAIT_MS).then(() => (this.preparing = undefined));
      }
      if (this.preparing) await this.preparing;
    }
    // From here on the node's steps may write files: the cache stops reusing this run's earlier stats.
    cache?.willRun?.(node);
    let attempt = 1;
    let result: Awaited<ReturnType<typeof runAttempt>>;
    for (;;) {
      emit({ type: 'task-start', node: node.id, attempt, at: now() });
      result = await runAttempt(node, this.exec);
      if (result.ok) break;
      if (result.failure.reason === 'aborted' || signal.aborted) return { ok: false, failure: { reason: 'aborted' } };
      if (attempt > node.retries) return { ok: false, failure: result.failure };
      const delayMs = backoffMs(node.retryDelayMs, attempt);
      emit({ type: 'task-retry', node: node.id, attempt, delayMs, failure: result.failure });
      if (!(await abortableSleep(delayMs, signal))) return { ok: false, failure: { reason: 'aborted' } };
      attempt++;
    }

    if (cache && !node.gate) {
      const missing = await cache.missingOutputs(node);
      if (missing.length > 0) return { ok: false, failure: { reason: 'missing-output', paths: missing } };
      // Every success with a fingerprint is recorded (non-cacheable nodes too: `fabric explain` diffs against it).
      if (lookup && lookup.result !== 'hit' && lookup.fingerprint !== undefined) {
        try {
          await cache.save(node, lookup.fingerprint, result.logs);
        } catch (e) {
          emit({ type: 'warning', node: node.id, message: `could not save to the cache: ${errorMessage(e)}` });
        }
      }
      if (lookup?.fingerprint !== undefined) this.fingerprints.set(node.id, lookup.fingerprint);
    }
    return { ok: true, reason: 'ran', exitCode: result.exitCode, warned: result.warned };
  }
}

function describeFailure(f: Failure): string {
  switch (f.reason) {
    case 'exit-non-zero':
      return `exit ${f.status}`;
    case 'signal':
      return `killed by ${f.signal}`;
    case 'timeout':
      return `timed out after ${f.ms} ms`;
    case 'function-threw':
      return `threw: ${f.message}`;
    default:
      return f.reason;
  }
}
