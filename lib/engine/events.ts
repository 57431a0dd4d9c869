/**
 * The one closed event union the engine emits. Renderers (lib/render/*), the evidence writer and the
 * tests consume it; nothing else is written to the terminal by the engine. Types only.
 */
import type { Diagnostic } from '../diagnostics/types.js';
import type { GuardDecision } from '../guards/types.js';

/** A node id: a task applied to a param set, e.g. `tf.plan[ENV=samakia-dns]`. */
export type NodeId = string;

/** What a node will do, as planned (also the dry-run and `fabric plan` content). */
export interface PlannedNode {
  readonly id: NodeId;
  readonly task: string;
  readonly params: Readonly<Record<string, string>>;
  readonly effect: 'read-only' | 'mutating';
  readonly deps: readonly NodeId[];
  /** Commands with templates expanded (secret values already redacted), or `<function name>` for TS steps. */
  readonly commands: readonly string[];
  readonly cwd: string;
  readonly variant?: string | undefined;
  readonly gate?: string | undefined;
  readonly mutex: readonly string[];
  readonly tags: readonly string[];
  /** Dependencies dropped because their `when` condition is false (shown in plans). */
  readonly skippedDeps: readonly { readonly task: string; readonly condition: string }[];
}

export type Failure =
  /** A command exited non-zero. */
  | { readonly reason: 'exit-non-zero'; readonly status: number; readonly command: string }
  /** A command was killed by a signal it was not sent by fabric. */
  | { readonly reason: 'signal'; readonly signal: string; readonly command: string }
  /** The task exceeded its `timeout`; its process group was killed. */
  | { readonly reason: 'timeout'; readonly ms: number }
  /** A dependency failed, so this node never started. */
  | { readonly reason: 'dependency-failed'; readonly dependency: NodeId }
  /** Not started because the run is failing fast after another node's failure. */
  | { readonly reason: 'not-started' }
  /** Cancelled by SIGINT/SIGTERM while running or before it started. */
  | { readonly reason: 'aborted' }
  /** A gate node (e.g. a quorum guard) reported a state that stops its dependents. */
  | { readonly reason: 'gate-closed'; readonly gate: NodeId; readonly detail: string }
  /** A declared output was not produced. */
  | { readonly reason: 'missing-output'; readonly paths: readonly string[] }
  /** A TypeScript task function threw. */
  | { readonly reason: 'function-threw'; readonly message: string }
  | { readonly reason: 'invalid-definition'; readonly diagnostics: readonly Diagnostic[] }
  | { readonly reason: 'internal-error'; readonly message: string };

export type SuccessReason = 'ran' | 'cached' | 'fresh';

export type FabricEvent =
  /** The analyzed plan, before guards are evaluated. `order` is a topological order of `nodes`. */
  | { readonly type: 'run-start'; readonly runId: string; readonly targets: readonly NodeId[]; readonly nodes: readonly PlannedNode[]; readonly ci: boolean; readonly dryRun: boolean; readonly at: string }
  /** One guard of one node, evaluated before anything starts. */
  | { readonly type: 'guard-decision'; readonly node: NodeId; readonly decision: GuardDecision }
  /** At least one guard (or the CI-mode effect check) denied: nothing runs. */
  | { readonly type: 'run-denied'; readonly denials: readonly { readonly node: NodeId; readonly decision: GuardDecision; readonly path: readonly NodeId[] }[] }
  /** A node's process is about to start (attempt counts from 1). */
  | { readonly type: 'task-start'; readonly node: NodeId; readonly attempt: number; readonly at: string }
  /** One command of a node started, with the pid of its process group leader. */
  | { readonly type: 'command-start'; readonly node: NodeId; readonly command: string; readonly pid: number | undefined }
  | { readonly type: 'command-end'; readonly node: NodeId; readonly command: string; readonly exitCode: number | null; readonly signal: string | null; readonly ms: number }
  /** Output, already redacted. */
  | { readonly type: 'task-output'; readonly node: NodeId; readonly stream: 'stdout' | 'stderr'; readonly chunk: string; readonly replayed?: boolean }
  /** A failed attempt that will be retried after `delayMs`. */
  | { readonly type: 'task-retry'; readonly node: NodeId; readonly attempt: number; readonly delayMs: number; readonly failure: Failure }
  /** A cache lookup result before running a node (`hit` means it will not run). */
  | { readonly type: 'cache'; readonly node: NodeId; readonly result: 'hit' | 'miss' | 'disabled' | 'corrupt'; readonly fingerprint?: string | undefined; readonly detail?: string | undefined }
  | { readonly type: 'task-success'; readonly node: NodeId; readonly reason: SuccessReason; readonly ms: number; readonly exitCode: number | null; readonly at: string }
  | { readonly type: 'task-failure'; readonly node: NodeId; readonly failure: Failure; readonly ms: number; readonly at: string }
  /** A gate's result: `open` lets dependents run. */
  | { readonly type: 'gate'; readonly node: NodeId; readonly state: 'pass' | 'warn' | 'fail'; readonly open: boolean; readonly detail: string }
  /** A non-fatal notice from the engine (e.g. a cacheable task with no inputs). */
  | { readonly type: 'warning'; readonly node?: NodeId | undefined; readonly message: string }
  /** SIGINT/SIGTERM received: running groups get SIGTERM, then SIGKILL after the grace period. */
  | { readonly type: 'run-interrupted'; readonly signal: string }
  | { readonly type: 'run-end'; readonly ok: boolean; readonly ms: number; readonly interrupted: boolean; readonly at: string };

export type EventType = FabricEvent['type'];

export interface EventSink {
  onEvent(event: FabricEvent): void;
  /** Called once after `run-end` (flush files, stop spinners). */
  close?(): Promise<void> | void;
}
