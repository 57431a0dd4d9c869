/**
 * The evidence writer: an EventSink that turns the engine's event stream into a packet
 * `<dir>/<run-id>/` (layout in ./constants.ts). It is created by the `run` command and fed every event.
 *
 * Crash safety. A node's files are written into a staging directory under .partial/ and moved into
 * nodes/ by one directory rename, so nodes/ never holds a torn node. run.json and manifest.sha256 are
 * written at checkpoints: at `run-start` (status `interrupted`, meaning "not finished"), then at most
 * every CHECKPOINT_MS while nodes complete (with the list of completed nodes), and once more at the
 * end with the real status. A checkpoint writes and fsyncs both files under temporary names and then
 * renames them back to back, so the two always agree. A run killed with SIGKILL therefore leaves a
 * packet that verifies and says `interrupted`; the node directories that completed after the last
 * checkpoint are not in run.json's `completed` list nor in the manifest, and `evidence verify` reports
 * them as not covered (it does not count them as evidence). Writing run.json after every node instead
 * made the packet quadratic in the number of nodes.
 *
 * `onEvent` is synchronous and cheap: it updates in-memory state; file work is queued in order on one
 * promise chain and drained by `close()`. Output is redacted again here (defence in depth) with a
 * streaming redactor per node and stream, and buffered; large output is appended to
 * .partial/<node>.<stream>.log as it comes.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { relativePosix } from '../util/paths.js';
import type { EventSink, FabricEvent, Failure, NodeId } from '../engine/events.js';
import type { Graph, Node } from '../engine/graph.js';
import { graphDigest } from '../engine/plan.js';
import type { GuardDecision } from '../guards/types.js';
import { DEFAULT_SECRET_PATTERNS, StreamRedactor } from '../util/redact.js';
import { unreachable } from '../util/unreachable.js';
import {
  ATTESTATION_BUNDLE_FILE,
  EMPTY_SHA256,
  FORMAT_VERSION,
  LOG_FILES,
  MANIFEST_FILE,
  NODE_KIND,
  NODE_MANIFEST_FILE,
  NODE_STATUSES,
  NODES_DIR,
  PARTIAL_DIR,
  RUN_FILE,
  STATEMENTS_FILE,
  RUN_KIND,
} from './constants.js';
import { createEnvelope } from './dsse.js';
import type { KnownDigests } from '../cache/types.js';
import { hashFile, safeNodeId, sha256Hex, writeSyncedTemp } from './fsutil.js';
import { ManifestLines } from './manifest.js';
import { fabricStatement, provenanceStatement, type ProvenanceContext } from './provenance.js';
import { redactArgv, redactByName, redactDeep, REDACTED } from './redact.js';
import { loadEd25519Signer, resolveGpgSigner, type Signer } from './sign.js';
import { signPacket, updateCompleteness } from './sign-packet.js';
import type { CommandRecord, FileDigest, GuardRecord, LogDigest, NodeManifest, NodeStatus, RunRecord, RunStatus, SignerRecord } from './types.js';

export interface SigningOptions {
  /** Path of a PEM ed25519 private key. */
  readonly ed25519Key?: string | undefined;
  /** A GPG key (id, fingerprint or user id) with a secret key in `gpgHome` (or the default home). */
  readonly gpgKey?: string | undefined;
  readonly gpgHome?: string | undefined;
  /** Distinct keys that must sign (2 = dual control). Default: the number of configured keys, at least 1. */
  readonly required?: 1 | 2 | undefined;
  /** Id of the ed25519 key (signature file name); default: the key file's name without extension. */
  readonly keyId?: string | undefined;
}

export interface EvidenceOptions {
  /** Evidence root, e.g. `<repo>/evidence`; the packet is `<dir>/<runId>`. */
  readonly dir: string;
  readonly runId: string;
  readonly graph: Graph;
  readonly argv: readonly string[];
  readonly version: string;
  readonly repoRoot: string;
  readonly ci: boolean;
  /** `user@host`. */
  readonly operator: string;
  readonly git: { readonly commit?: string | undefined; readonly dirty?: boolean | undefined };
  /** Values that must never be written in clear (in addition to every node's own `secrets`). */
  readonly secretValues: readonly string[];
  readonly signing?: SigningOptions | undefined;
  /** Signers loaded beforehand with `loadSigners` (so a bad key fails before anything runs). */
  readonly signers?: readonly Signer[] | undefined;
  /** Name patterns of secret env vars (config `secretPatterns`); default TOKEN, SECRET, PASSWORD, ... */
  readonly secretPatterns?: readonly string[] | undefined;
  /**
   * Digests of a node's input/output files that something else already computed in this run (the
   * cache, for its fingerprint); the writer hashes only what this does not cover.
   */
  readonly knownDigests?: ((node: Node) => KnownDigests | undefined) | undefined;
  /** Longest interval between two checkpoints of run.json and manifest.sha256 while nodes complete (default 250 ms). */
  readonly checkpointMs?: number | undefined;
}

export interface EvidenceSink extends EventSink {
  /** The packet directory, `<dir>/<runId>`. */
  readonly packetDir: string;
  /**
   * Waits until the files for every event seen so far are written and, unless `checkpoint` is false,
   * checkpoints run.json and the manifest now (tests; the packet verifies at any moment anyway).
   */
  drain(opts?: { readonly checkpoint?: boolean }): Promise<void>;
  /** Drains queued writes, writes the last run.json and manifest, signs. Rejects with EvidenceError if anything failed. */
  close(): Promise<void>;
}

/** Evidence could not be (completely) written. The message lists each problem. */
export class EvidenceError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`evidence: ${problems.length} problem${problems.length === 1 ? '' : 's'} writing the packet:\n  ${problems.join('\n  ')}`);
    this.name = 'EvidenceError';
  }
}

/** Loads the configured signing keys (throws EvidenceKeyError with the file on a bad key). */
export async function loadSigners(signing: SigningOptions | undefined): Promise<Signer[]> {
  const out: Signer[] = [];
  if (!signing) return out;
  if (signing.ed25519Key) out.push(await loadEd25519Signer(signing.ed25519Key, signing.keyId));
  if (signing.gpgKey) out.push(await resolveGpgSigner(signing.gpgKey, signing.gpgHome));
  return out;
}

type Stream = 'stdout' | 'stderr';
const FLUSH_AT = 256 * 1024;
const CHECKPOINT_MS = 250;
/**
 * Node records in progress at once, and started per event-loop turn. A record's files are written
 * synchronously; what it may wait for is signing (gpg) or, without the cache's digests, globbing.
 */
const WRITE_CONCURRENCY = 4;

interface NodeState {
  readonly id: NodeId;
  readonly safeId: string;
  readonly node: Node | undefined;
  guards: GuardDecision[];
  cache: NodeManifest['cache'];
  fingerprint: string | null;
  commands: (CommandRecord & { done: boolean })[];
  attempt: number;
  retries: NodeManifest['retries'];
  startedOn: string | null;
  finishedOn: string | null;
  durationMs: number | null;
  status: NodeStatus | null;
  successReason: NodeManifest['successReason'];
  failure: NodeManifest['failure'];
  gateResult: { state: 'pass' | 'warn' | 'fail'; open: boolean; detail: string } | null;
  exitCode: number | null;
  signal: string | null;
  warnings: string[];
  /** Created on the first output of a stream. */
  redactors: Partial<Record<Stream, StreamRedactor>>;
  buf: Record<Stream, string[]>;
  bufLen: Record<Stream, number>;
  /** Whether part of the stream's output was already appended to its log in .partial/. */
  spilled: Record<Stream, boolean>;
  /** Set once the node's terminal event was seen (its files are then queued). */
  ended: boolean;
  /** Order in which nodes ended (run.json lists completed nodes in this order). */
  seq: number;
  /** The node's own file work (spilled output, then its record), in order. */
  io: Promise<void> | undefined;
  /** Its record is written (it is in run.json's `completed` and its files in the manifest). */
  written: boolean;
  /** run.json's entry for the node as JSON, and the status it was made with (see `runText`). */
  runLine: string | undefined;
  runLineStatus: NodeStatus | null;
}

/**
 * An array of run.json whose elements are JSON already (redacted, one element per line): the node
 * entries, edges and completed ids are serialized once each, not at every checkpoint.
 */
class LaidArray {
  private laid: { readonly indent: string; readonly text: string } | undefined;
  constructor(readonly items: readonly string[]) {}
  /** The array's text at an indent, kept: the edges' array is the same at every checkpoint. */
  text(indent: string): string {
    if (this.laid?.indent !== indent) {
      const text = this.items.length === 0 ? '[]' : `[\n${indent}  ${this.items.join(`,\n${indent}  `)}\n${indent}]`;
      this.laid = { indent, text };
    }
    return this.laid.text;
  }
}

const now = (): string => new Date().toISOString();

function statusOfFailure(f: Failure): NodeStatus {
  switch (f.reason) {
    case 'dependency-failed':
    case 'not-started':
    case 'gate-closed':
      return 'skipped-after-failure';
    case 'aborted':
      return 'cancelled';
    case 'exit-non-zero':
    case 'signal':
    case 'timeout':
    case 'missing-output':
    case 'function-threw':
    case 'invalid-definition':
    case 'internal-error':
      return 'failed';
    default:
      return unreachable(f);
  }
}

function toGuardRecord(d: GuardDecision): GuardRecord {
  return {
    guard: d.guard,
    kind: d.kind,
    outcome: d.outcome,
    reason: d.reason,
    ...(d.remedy !== undefined ? { remedy: d.remedy } : {}),
    facts: JSON.parse(JSON.stringify(d.facts ?? {})) as Record<string, unknown>,
    ...(d.override ? { override: { ...d.override } } : {}),
  };
}

export function createEvidenceSink(opts: EvidenceOptions): EvidenceSink {
  return new Writer(opts);
}

class Writer implements EvidenceSink {
  readonly packetDir: string;
  private readonly partialDir: string;
  private readonly patterns: readonly string[];
  private readonly secrets: readonly string[];
  private readonly states = new Map<NodeId, NodeState>();
  /** Packet files written so far (relative path -> sha256), the content of manifest.sha256. */
  private readonly files = new ManifestLines();
  /** run.json's edges as JSON, made once for a set of nodes (nodes do not change during a run). */
  private edgeLines: { readonly nodes: number; readonly lines: LaidArray } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly errors: string[] = [];
  private readonly runWarnings: string[] = [];
  private signers: Signer[] = [];
  private started = false;
  private ended = false;
  private closed = false;
  private startedOn = now();
  private finishedOn: string | null = null;
  private durationMs: number | null = null;
  private runStatus: RunStatus = 'interrupted';
  private interruptSignal: string | null = null;
  private dryRun = false;
  private ci: boolean;
  private readonly completed: NodeId[] = [];
  private denials: RunRecord['denials'] = [];
  private readonly provenance: ProvenanceContext;
  private readonly takenSafeIds = new Set<string>();
  /** The plan digest, computed once (the graph does not change during a run). */
  private planDigest: string | null | undefined;
  private lastCheckpoint = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;
  /** Nodes completed since the last checkpoint. */
  private dirty = false;
  /** A checkpoint is on the queue and has not started: later nodes wait for it. */
  private checkpointQueued = false;
  /** Resolves once the packet directory exists (start's file work is done). */
  private startDone: Promise<void> = Promise.resolve();
  private ends = 0;
  private readonly toWrite: NodeState[] = [];
  private writing = 0;
  private pumpScheduled: NodeJS.Immediate | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: EvidenceOptions) {
    this.packetDir = join(opts.dir, opts.runId);
    this.partialDir = join(this.packetDir, PARTIAL_DIR);
    this.patterns = opts.secretPatterns ?? DEFAULT_SECRET_PATTERNS;
    const all = new Set(opts.secretValues);
    for (const n of opts.graph.nodes.values()) for (const s of n.secrets) all.add(s);
    this.secrets = [...all];
    this.ci = opts.ci;
    for (const id of opts.graph.order) this.state(id);
    for (const id of opts.graph.nodes.keys()) this.state(id);
    this.provenance = {
      runId: opts.runId,
      fabricVersion: opts.version,
      gitCommit: opts.git.commit ?? null,
      fabricfile: this.rel(opts.graph.fabricfile),
    };
  }

  // ------------------------------------------------------------------ events (synchronous)

  onEvent(e: FabricEvent): void {
    if (this.closed) return;
    switch (e.type) {
      case 'run-start':
        this.startedOn = e.at;
        this.dryRun = e.dryRun;
        this.ci = e.ci;
        for (const n of e.nodes) this.state(n.id);
        return this.start();
      case 'guard-decision':
        this.state(e.node).guards.push(e.decision);
        return;
      case 'run-denied': {
        this.denials = e.denials.map((d) => ({ node: d.node, guard: d.decision.guard, reason: d.decision.reason, path: [...d.path] }));
        const at = now();
        for (const s of this.states.values()) {
          if (s.ended) continue;
          const own = e.denials.filter((d) => d.node === s.id);
          s.status = 'denied';
          s.failure = own.length
            ? { reason: 'denied', guards: own.map((d) => ({ guard: d.decision.guard, reason: d.decision.reason, remedy: d.decision.remedy ?? null })) }
            : { reason: 'run-denied', deniedBy: e.denials.map((d) => ({ node: d.node, guard: d.decision.guard })) };
          this.finish(s, at);
        }
        return;
      }
      case 'task-start': {
        const s = this.state(e.node);
        s.attempt = Math.max(s.attempt, e.attempt);
        s.startedOn ??= e.at;
        return;
      }
      case 'command-start':
        this.state(e.node).commands.push({ command: e.command, pid: e.pid ?? null, exitCode: null, signal: null, ms: null, attempt: Math.max(1, this.state(e.node).attempt), done: false });
        return;
      case 'command-end': {
        const s = this.state(e.node);
        const c = [...s.commands].reverse().find((x) => !x.done && x.command === e.command);
        const rec = { exitCode: e.exitCode, signal: e.signal, ms: e.ms, done: true };
        if (c) Object.assign(c, rec);
        else s.commands.push({ command: e.command, pid: null, attempt: Math.max(1, s.attempt), ...rec });
        s.exitCode = e.exitCode;
        s.signal = e.signal;
        return;
      }
      case 'task-output':
        return this.output(this.state(e.node), e.stream, e.chunk);
      case 'task-retry':
        this.state(e.node).retries.push({ attempt: e.attempt, delayMs: e.delayMs, failure: { ...e.failure } });
        return;
      case 'cache': {
        const s = this.state(e.node);
        s.cache = { result: e.result, detail: e.detail ?? null };
        if (e.fingerprint) s.fingerprint = e.fingerprint;
        return;
      }
      case 'task-success': {
        const s = this.state(e.node);
        s.status = e.reason === 'ran' ? 'ok' : 'cached';
        s.successReason = e.reason;
        if (e.exitCode !== null || s.exitCode === null) s.exitCode = e.exitCode;
        s.durationMs = e.ms;
        return this.finish(s, e.at);
      }
      case 'task-failure': {
        const s = this.state(e.node);
        s.status = statusOfFailure(e.failure);
        s.failure = { ...e.failure };
        if (e.failure.reason === 'exit-non-zero') s.exitCode = e.failure.status;
        if (e.failure.reason === 'signal') s.signal = e.failure.signal;
        s.durationMs = e.ms;
        return this.finish(s, e.at);
      }
      case 'gate':
        this.state(e.node).gateResult = { state: e.state, open: e.open, detail: e.detail };
        return;
      case 'warning':
        if (e.node !== undefined) this.state(e.node).warnings.push(e.message);
        else this.runWarnings.push(e.message);
        return;
      case 'run-interrupted':
        this.interruptSignal = e.signal;
        return;
      case 'run-end': {
        this.finishedOn = e.at;
        this.durationMs = e.ms;
        this.runStatus = e.interrupted ? 'interrupted' : this.denials.length > 0 ? 'denied' : e.ok ? 'ok' : 'failed';
        for (const s of this.states.values()) {
          if (s.ended) continue;
          s.status = e.interrupted ? 'cancelled' : e.ok ? 'cancelled' : 'skipped-after-failure';
          s.failure = { reason: e.interrupted ? 'aborted' : this.dryRun ? 'dry-run' : 'not-run' };
          this.finish(s, e.at);
        }
        this.ended = true;
        this.cancelCheckpointTimer();
        this.enqueue('finish run', async () => {
          await this.writesIdle();
          await this.writeRun();
        });
        return;
      }
      default:
        return unreachable(e);
    }
  }

  async drain(opts: { readonly checkpoint?: boolean } = {}): Promise<void> {
    await this.settle();
    if (opts.checkpoint !== false && this.dirty && !this.closed) {
      this.queueCheckpoint();
      await this.queue;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.started) this.start();
    this.cancelCheckpointTimer();
    await this.settle();
    // Closed without a run-end (the run was cut short): one last checkpoint with every node written.
    if (this.dirty) await this.writeRun().catch((e: unknown) => this.errors.push(`checkpoint: ${e instanceof Error ? e.message : String(e)}`));
    // Whatever is still buffered belongs to nodes that never ended: keep it in .partial/ for forensics.
    for (const s of this.states.values()) {
      if (s.ended) continue;
      await s.io;
      for (const stream of ['stdout', 'stderr'] as const) {
        const tail = s.redactors[stream]?.end();
        if (tail) s.buf[stream].push(tail);
        await this.flush(s, stream).catch((e: unknown) => this.errors.push(`${s.id} ${stream}: ${String(e)}`));
      }
    }
    try {
      if (this.ended) await rm(this.partialDir, { recursive: true, force: true });
      if (this.signers.length > 0 || this.required() > 0) {
        if (this.signers.length > 0) await signPacket(this.packetDir, this.signers);
        await updateCompleteness(this.packetDir, this.required());
      }
    } catch (e) {
      this.errors.push(`signing: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (this.errors.length > 0) throw new EvidenceError(this.errors);
  }

  // ------------------------------------------------------------------ state

  private state(id: NodeId): NodeState {
    let s = this.states.get(id);
    if (s) return s;
    const node = this.opts.graph.nodes.get(id);
    s = {
      id,
      safeId: this.uniqueSafeId(id),
      node,
      guards: [],
      cache: null,
      fingerprint: null,
      commands: [],
      attempt: 0,
      retries: [],
      startedOn: null,
      finishedOn: null,
      durationMs: null,
      status: null,
      successReason: null,
      failure: null,
      gateResult: null,
      exitCode: null,
      signal: null,
      warnings: [],
      redactors: {},
      buf: { stdout: [], stderr: [] },
      bufLen: { stdout: 0, stderr: 0 },
      spilled: { stdout: false, stderr: false },
      ended: false,
      seq: 0,
      io: undefined,
      written: false,
      runLine: undefined,
      runLineStatus: null,
    };
    this.states.set(id, s);
    return s;
  }

  private uniqueSafeId(id: NodeId): string {
    // Made from the id as the packet shows it, redacted: ids never hold a secret param's value, but a
    // param's value can be a secret env var's value too, and a directory name is not redacted (nor may
    // it carry a hash of the secret).
    const shown = redactDeep(id, this.secrets);
    const base = safeNodeId(shown);
    // Case-insensitive file systems: ids that differ only in case get a hash suffix; ids that differ
    // only in a secret, a number.
    let safe = this.takenSafeIds.has(base.toLowerCase()) && shown === id ? `${base}-${sha256Hex(id).slice(0, 8)}` : base;
    for (let n = 2; this.takenSafeIds.has(safe.toLowerCase()); n++) safe = `${base}-${n}`;
    this.takenSafeIds.add(safe.toLowerCase());
    return safe;
  }

  private rel(abs: string): string {
    return relativePosix(this.opts.repoRoot, abs);
  }

  private required(): number {
    const sign = this.opts.signing;
    const configured = this.signers.length || (sign?.ed25519Key ? 1 : 0) + (sign?.gpgKey ? 1 : 0);
    return sign?.required ?? (configured > 0 ? Math.min(configured, 2) : 0);
  }

  // ------------------------------------------------------------------ queued work

  /** Waits for the queue, every node write, and the checkpoints those writes queued. */
  private async settle(): Promise<void> {
    await this.queue;
    await this.writesIdle();
    await Promise.all([...this.states.values()].map((s) => s.io));
    await this.queue;
  }

  /** Resolves when no node record is being written or waiting to be. */
  private writesIdle(): Promise<void> {
    if (this.writing === 0 && this.toWrite.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Chains file work of one node after the packet directory exists and after the node's earlier work. */
  private nodeIo(s: NodeState, label: string, work: () => Promise<void>): Promise<void> {
    if (!this.started) this.start();
    s.io = (s.io ?? this.startDone).then(work).catch((e: unknown) => {
      this.errors.push(`${label}: ${e instanceof Error ? e.message : String(e)}`);
    });
    return s.io;
  }

  /** Starts queued node records, up to WRITE_CONCURRENCY at once. */
  private pumpWrites(): void {
    while (this.writing < WRITE_CONCURRENCY && this.toWrite.length > 0) {
      const s = this.toWrite.shift()!;
      this.writing++;
      void this.nodeIo(s, `node ${s.id}`, () => this.writeNode(s)).then(() => {
        this.writing--;
        // The next records in a later turn: a thousand nodes ending at once never hold the loop.
        this.schedulePump();
        if (this.writing === 0 && this.toWrite.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private enqueue(label: string, work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((e: unknown) => {
      this.errors.push(`${label}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.enqueue('start', async () => {
      await mkdir(this.partialDir, { recursive: true });
      await mkdir(join(this.packetDir, NODES_DIR), { recursive: true });
      try {
        this.signers = this.opts.signers ? [...this.opts.signers] : await loadSigners(this.opts.signing);
      } catch (e) {
        this.errors.push(`signing key: ${e instanceof Error ? e.message : String(e)}${(e as { file?: string }).file ? ` (${(e as { file?: string }).file})` : ''}`);
      }
      await this.writeRun();
    });
    this.startDone = this.queue;
  }

  private output(s: NodeState, stream: Stream, chunk: string): void {
    if (s.ended) return; // its log is already written (no engine sends output after the end; defensive)
    const safe = (s.redactors[stream] ??= new StreamRedactor(this.secrets)).push(chunk);
    if (!safe) return;
    s.buf[stream].push(safe);
    s.bufLen[stream] += safe.length;
    if (s.bufLen[stream] >= FLUSH_AT) void this.nodeIo(s, `${s.id} ${stream}`, () => this.flush(s, stream));
  }

  private partialLog(s: NodeState, stream: Stream): string {
    return join(this.partialDir, `${s.safeId}.${stream}.log`);
  }

  /** Appends the buffered (redacted) output to the node's in-flight log in .partial/. */
  private async flush(s: NodeState, stream: Stream): Promise<void> {
    const text = s.buf[stream].join('');
    s.buf[stream] = [];
    s.bufLen[stream] = 0;
    if (!text) return;
    await mkdir(this.partialDir, { recursive: true });
    await appendFile(this.partialLog(s, stream), text);
    s.spilled[stream] = true;
  }

  private finish(s: NodeState, at: string): void {
    if (s.ended) return;
    s.ended = true;
    s.finishedOn = at;
    if (s.durationMs === null && s.startedOn) s.durationMs = Math.max(0, Date.parse(at) - Date.parse(s.startedOn));
    for (const stream of ['stdout', 'stderr'] as const) {
      const tail = s.redactors[stream]?.end();
      if (tail) s.buf[stream].push(tail);
    }
    if (!this.started) this.start();
    s.seq = ++this.ends;
    this.toWrite.push(s);
    this.schedulePump();
  }

  /**
   * Node records are started from a setImmediate, not from the event itself: the engine's reaction to
   * a node's end (starting its dependents) comes first, and the (synchronous) record writes of the
   * nodes that ended in one turn of the event loop happen after it, off the critical path.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = setImmediate(() => {
      this.pumpScheduled = undefined;
      this.pumpWrites();
    });
  }

  private async writeNode(s: NodeState): Promise<void> {
    // The staging directory is moved into nodes/ by one rename: its files need no atomic write of their own.
    // The small files of a record are written synchronously: on a local disk each call is a few
    // microseconds of kernel time, while an fs/promises call costs a round trip through libuv's thread
    // pool (a wake-up and two context switches): ~0.1-0.3 ms each on a 2-CPU VM, 5-10x the write itself
    // (bench/RESULTS.md). Large logs (spilled to .partial/ as they came) are still moved and hashed
    // asynchronously.
    const stage = join(this.partialDir, `stage-${s.safeId}`);
    mkdirSync(stage, { recursive: true });
    const staged = new Map<string, string>();
    const put = (name: string, data: string | Uint8Array): void => {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data; // converted once, for the write and the hash
      writeFileSync(join(stage, name), bytes);
      staged.set(name, sha256Hex(bytes));
    };
    // Logs: what was appended to .partial/ plus what is still buffered; no file for a stream with no output.
    const logs = {} as Record<Stream, LogDigest>;
    for (const stream of ['stdout', 'stderr'] as const) {
      const name = LOG_FILES[stream];
      if (s.spilled[stream]) {
        await this.flush(s, stream);
        await rename(this.partialLog(s, stream), join(stage, name));
        const h = await hashFile(join(stage, name));
        staged.set(name, h.sha256);
        logs[stream] = { path: name, ...h };
      } else {
        const data = Buffer.from(s.buf[stream].join(''), 'utf8');
        s.buf[stream] = [];
        s.bufLen[stream] = 0;
        if (data.length === 0) {
          logs[stream] = { path: null, sha256: EMPTY_SHA256, size: 0 };
          continue;
        }
        put(name, data);
        logs[stream] = { path: name, sha256: staged.get(name)!, size: data.length };
      }
    }
    const node = s.node;
    const known = node && node.inputs.length + node.outputs.length > 0 ? this.opts.knownDigests?.(node) : undefined;
    const inputs = node && s.status !== 'denied' ? await this.digests(s, node.inputs, 'input', known?.inputs) : [];
    const outputs = node && (s.status === 'ok' || s.status === 'cached') ? await this.digests(s, node.outputs, 'output', known?.outputs) : [];
    const spec = node?.task.spec;
    const secretParams = new Set(Object.entries(spec?.params ?? {}).filter(([, p]) => p.secret).map(([k]) => k));
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(node?.params ?? {})) params[k] = secretParams.has(k) ? REDACTED : v;
    const env: Record<string, string> = {};
    for (const name of node?.envNames ?? []) {
      const v = node?.env[name];
      if (v !== undefined) env[name] = v;
    }
    const signed = this.signers.length > 0;
    const manifest: NodeManifest = {
      kind: NODE_KIND,
      formatVersion: FORMAT_VERSION,
      runId: this.opts.runId,
      node: s.id,
      safeId: s.safeId,
      task: node?.task.name ?? s.id,
      description: spec?.description ?? null,
      params,
      effect: node?.effect ?? 'mutating',
      variant: node?.variant ?? null,
      deps: [...(node?.deps ?? [])],
      cwd: node ? this.rel(node.cwd) : '.',
      plannedCommands: node ? node.steps.map((st) => st.display) : [],
      commands: s.commands.map(({ done: _done, ...c }) => c),
      env: redactByName(env, this.patterns),
      guards: s.guards.map(toGuardRecord),
      cache: s.cache,
      fingerprint: s.fingerprint,
      status: s.status ?? 'cancelled',
      successReason: s.successReason,
      failure: s.failure,
      gate: node?.gate
        ? { description: node.gate.description, state: s.gateResult?.state ?? null, open: s.gateResult?.open ?? null, detail: s.gateResult?.detail ?? null }
        : null,
      attempts: s.attempt,
      retries: s.retries,
      startedOn: s.startedOn,
      finishedOn: s.finishedOn ?? now(),
      durationMs: s.durationMs,
      exitCode: s.exitCode,
      signal: s.signal,
      inputs,
      outputs,
      logs,
      warnings: s.warnings,
      attestations: [signed ? ATTESTATION_BUNDLE_FILE : STATEMENTS_FILE],
    };
    const clean = redactDeep(manifest, this.secrets);
    // Pretty-printed: a node that lists 10,000 inputs would take ~2x as long through layoutJson (a
    // JSON.stringify call per element), and a node manifest is written once, not at every checkpoint.
    put(NODE_MANIFEST_FILE, JSON.stringify(clean, null, 2) + '\n');
    const manifestSha = staged.get(NODE_MANIFEST_FILE)!;
    const lines: string[] = [];
    for (const st of [provenanceStatement(clean, this.provenance, manifestSha), fabricStatement(clean, manifestSha)]) {
      const body = JSON.stringify(redactDeep(st, this.secrets));
      lines.push(signed ? JSON.stringify(await createEnvelope(Buffer.from(body, 'utf8'), this.signers)) : body);
    }
    put(clean.attestations[0]!, lines.join('\n') + '\n');
    const final = join(this.packetDir, NODES_DIR, s.safeId);
    renameSync(stage, final);
    for (const [name, h] of staged) this.files.set(`${NODES_DIR}/${s.safeId}/${name}`, h);
    this.completed.push(s.id);
    s.written = true;
    this.dirty = true;
    if (!this.ended) this.checkpointSoon();
  }

  /**
   * Writes run.json and manifest.sha256 now when the last checkpoint is CHECKPOINT_MS old, otherwise
   * once that much time has passed (the writes stay ordered on the queue).
   */
  private checkpointSoon(): void {
    const every = this.opts.checkpointMs ?? CHECKPOINT_MS;
    if (this.checkpointQueued) return; // the queued one will see this node
    const wait = this.lastCheckpoint + every - Date.now();
    if (wait <= 0) return this.queueCheckpoint();
    if (this.checkpointTimer) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      if (this.dirty && !this.closed) this.queueCheckpoint();
    }, wait);
    this.checkpointTimer.unref();
  }

  /** Puts one checkpoint on the queue (none if one is already waiting there). */
  private queueCheckpoint(): void {
    if (this.checkpointQueued) return;
    this.checkpointQueued = true;
    this.enqueue('checkpoint', () => this.writeRun());
  }

  private cancelCheckpointTimer(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
  }

  /** `{path, sha256, size}` of every file the node's globs match under its cwd, paths relative to the repo root. */
  private async digests(s: NodeState, globs: readonly string[], what: 'input' | 'output', known?: KnownDigests['inputs']): Promise<FileDigest[]> {
    if (globs.length === 0 || !s.node) return [];
    if (known) {
      const out = known.map((d) => ({ path: this.rel(d.path), sha256: d.sha256, size: d.size }));
      return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    }
    const { default: fg } = await import('fast-glob');
    const cwd = s.node.cwd;
    let paths: string[];
    try {
      paths = await fg([...globs], { cwd, dot: true, onlyFiles: true, absolute: true, followSymbolicLinks: true, suppressErrors: true });
    } catch (e) {
      s.warnings.push(`${what} globs could not be expanded: ${e instanceof Error ? e.message : String(e)}`);
      return [];
    }
    const out: FileDigest[] = [];
    for (const p of [...new Set(paths)].sort()) {
      try {
        out.push({ path: this.rel(p), ...(await hashFile(p)) });
      } catch (e) {
        s.warnings.push(`${what} ${this.rel(p)} could not be hashed: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * run.json's text. The node entries, edges and completed ids (nearly all of it at 1000 nodes) are
   * laid out from JSON made once per element: a node's entry changes once, when its record is written.
   * The text is exactly `layoutJson` of the whole record, redacted (a test holds it to that).
   */
  private runText(): string {
    const g = this.opts.graph;
    const counts = Object.fromEntries(NODE_STATUSES.map((st) => [st, 0])) as Record<NodeStatus, number>;
    const nodes: string[] = [];
    for (const s of this.states.values()) {
      const st = s.written ? (s.status ?? 'cancelled') : null;
      if (st) counts[st]++;
      if (s.runLine === undefined || s.runLineStatus !== st) {
        const entry = { id: s.id, safeId: s.safeId, task: s.node?.task.name ?? s.id, deps: [...(s.node?.deps ?? [])], status: st };
        s.runLine = JSON.stringify(redactDeep(entry, this.secrets));
        s.runLineStatus = st;
      }
      nodes.push(s.runLine);
    }
    if (this.edgeLines?.nodes !== this.states.size) {
      const lines: string[] = [];
      for (const s of this.states.values()) for (const d of s.node?.deps ?? []) lines.push(JSON.stringify(redactDeep([s.id, d], this.secrets)));
      this.edgeLines = { nodes: this.states.size, lines: new LaidArray(lines) };
    }
    // Written up to WRITE_CONCURRENCY at a time: `completed` lists the nodes in the order they ended.
    const completed = this.completed
      .map((id) => this.states.get(id)!)
      .sort((x, y) => x.seq - y.seq)
      .map((s) => JSON.stringify(redactDeep(s.id, this.secrets)));
    const vars: Record<string, string> = {};
    for (const t of g.targets) Object.assign(vars, g.nodes.get(t)?.vars ?? {});
    if (this.planDigest === undefined) {
      try {
        this.planDigest = graphDigest(g);
      } catch {
        this.planDigest = null;
      }
    }
    const digest = this.planDigest;
    const signers: SignerRecord[] = this.signers.map((s) => ({ type: s.type, keyId: s.keyId, fingerprint: s.fingerprint }));
    // Redacted in two parts around the laid-out arrays; the keys stay in RunRecord's order.
    const head = redactDeep(
      {
        kind: RUN_KIND,
        formatVersion: FORMAT_VERSION,
        runId: this.opts.runId,
        fabricVersion: this.opts.version,
        argv: redactArgv(this.opts.argv, this.patterns),
        targets: [...g.targets],
        vars: redactByName(vars, this.patterns),
        repoRoot: this.opts.repoRoot,
        fabricfile: this.rel(g.fabricfile),
        git: { commit: this.opts.git.commit ?? null, dirty: this.opts.git.dirty ?? null },
        operator: this.opts.operator,
        ci: this.ci,
        dryRun: this.dryRun,
        startedOn: this.startedOn,
        finishedOn: this.ended ? this.finishedOn : null,
        durationMs: this.ended ? this.durationMs : null,
        status: this.ended ? this.runStatus : 'interrupted',
        interruptSignal: this.interruptSignal,
        planDigest: digest,
      } satisfies Partial<RunRecord>,
      this.secrets,
    );
    const tail = redactDeep(
      {
        counts,
        denials: this.denials,
        signing: { required: this.required(), signers },
        warnings: [...this.runWarnings],
      } satisfies Partial<RunRecord>,
      this.secrets,
    );
    return layoutJson({ ...head, graph: { edges: this.edgeLines.lines }, nodes: new LaidArray(nodes), completed: new LaidArray(completed), ...tail });
  }

  /**
   * A checkpoint: run.json, and manifest.sha256 over every packet file written so far. Both are written
   * and fsynced under temporary names in .partial/, then renamed into place one right after the other.
   */
  private async writeRun(): Promise<void> {
    this.cancelCheckpointTimer();
    this.checkpointQueued = false;
    this.dirty = false;
    // The interval counts from the start of a checkpoint: nodes that end while it is written wait for
    // the next one instead of queueing another at once.
    this.lastCheckpoint = Date.now();
    // One Buffer, hashed and written: the text is converted to bytes once, not once for each.
    const text = Buffer.from(this.runText());
    this.files.set(RUN_FILE, sha256Hex(text));
    const manifest = this.files.text();
    const runTmp = await writeSyncedTemp(text, this.partialDir);
    const manifestTmp = await writeSyncedTemp(manifest, this.partialDir);
    await rename(runTmp, join(this.packetDir, RUN_FILE));
    await rename(manifestTmp, join(this.packetDir, MANIFEST_FILE));
  }


}

/**
 * run.json's text: indented by two spaces down to the second level of objects, and every array one
 * element per line, an element that is an object or an array on one line of its own (each node, each
 * edge, each completed id). At 1000 nodes that is ~115 KB against 193 KB pretty-printed
 * (`JSON.stringify(v, null, 2)`, four lines per edge), and each checkpoint converts, hashes, writes
 * and fsyncs the whole text (bench/RESULTS.md, eleventh pass). Still one node or edge per line to
 * read and to diff.
 */
export function layoutJson(value: unknown): string {
  return layout(value, '', 0) + '\n';
}

function layout(value: unknown, indent: string, depth: number): string {
  if (value instanceof LaidArray) return value.text(indent);
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(value) ?? 'null';
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + (JSON.stringify(v) ?? 'null')).join(',\n')}\n${indent}]`;
  }
  if (depth >= 2) return JSON.stringify(value);
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol');
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${layout(v, inner, depth + 1)}`).join(',\n')}\n${indent}}`;
}
