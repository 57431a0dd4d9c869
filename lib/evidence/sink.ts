/**
 * The evidence writer: an EventSink that turns the engine's event stream into a packet
 * `<dir>/<run-id>/` (layout in ./constants.ts). It is created by the `run` command and fed every event.
 *
 * Crash safety. Every file is written atomically (temp + rename). run.json is written at `run-start`
 * with status `interrupted` (meaning "not finished") and rewritten after every node with the list of
 * completed nodes, then once more with the real status; manifest.sha256 is rewritten right after
 * run.json. A node's files are staged under .partial/ and moved into nodes/ by one directory rename.
 * So a run killed with SIGKILL leaves a packet that verifies and says `interrupted`.
 *
 * `onEvent` is synchronous and cheap: it updates in-memory state; file work is queued in order on one
 * promise chain and drained by `close()`. Output is redacted again here (defence in depth) with a
 * streaming redactor per node and stream, and buffered; large output is appended to
 * .partial/<node>.<stream>.log as it comes.
 */
import { appendFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { EventSink, FabricEvent, Failure, NodeId } from '../engine/events.js';
import type { Graph, Node } from '../engine/graph.js';
import { graphDigest } from '../engine/plan.js';
import type { GuardDecision } from '../guards/types.js';
import { DEFAULT_SECRET_PATTERNS, StreamRedactor } from '../util/redact.js';
import { unreachable } from '../util/unreachable.js';
import {
  FABRIC_ENVELOPE_FILE,
  FABRIC_STATEMENT_FILE,
  FORMAT_VERSION,
  MANIFEST_FILE,
  NODE_KIND,
  NODE_MANIFEST_FILE,
  NODE_STATUSES,
  NODES_DIR,
  PARTIAL_DIR,
  PROVENANCE_ENVELOPE_FILE,
  PROVENANCE_STATEMENT_FILE,
  RUN_FILE,
  RUN_KIND,
} from './constants.js';
import { createEnvelope } from './dsse.js';
import { hashFile, safeNodeId, sha256Hex, writeFileAtomic } from './fsutil.js';
import { formatManifest } from './manifest.js';
import { fabricStatement, provenanceStatement, type ProvenanceContext } from './provenance.js';
import { redactArgv, redactByName, redactDeep, REDACTED } from './redact.js';
import { loadEd25519Signer, resolveGpgSigner, type Signer } from './sign.js';
import { signPacket, updateCompleteness } from './sign-packet.js';
import type { CommandRecord, FileDigest, GuardRecord, NodeManifest, NodeStatus, RunRecord, RunStatus, SignerRecord } from './types.js';

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
}

export interface EvidenceSink extends EventSink {
  /** The packet directory, `<dir>/<runId>`. */
  readonly packetDir: string;
  /** Waits until the files for every event seen so far are written (tests; a packet is consistent after each node anyway). */
  drain(): Promise<void>;
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
  redactors: Record<Stream, StreamRedactor>;
  buf: Record<Stream, string[]>;
  bufLen: Record<Stream, number>;
  /** Set once the node's terminal event was seen (its files are then queued). */
  ended: boolean;
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
  /** Packet files written so far (relative path → sha256), the content of manifest.sha256. */
  private readonly files = new Map<string, string>();
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
        this.enqueue('finish run', () => this.writeRun());
        return;
      }
      default:
        return unreachable(e);
    }
  }

  async drain(): Promise<void> {
    await this.queue;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.started) this.start();
    await this.queue;
    // Whatever is still buffered belongs to nodes that never ended: keep it in .partial/ for forensics.
    for (const s of this.states.values()) {
      if (s.ended) continue;
      for (const stream of ['stdout', 'stderr'] as const) {
        const tail = s.redactors[stream].end();
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
    const secrets = this.secrets;
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
      redactors: { stdout: new StreamRedactor(secrets), stderr: new StreamRedactor(secrets) },
      buf: { stdout: [], stderr: [] },
      bufLen: { stdout: 0, stderr: 0 },
      ended: false,
    };
    this.states.set(id, s);
    return s;
  }

  private uniqueSafeId(id: NodeId): string {
    const base = safeNodeId(id);
    const taken = new Set([...this.states.values()].map((s) => s.safeId.toLowerCase()));
    if (!taken.has(base.toLowerCase())) return base;
    // Case-insensitive file systems: ids that differ only in case get a hash suffix.
    return `${base}-${sha256Hex(id).slice(0, 8)}`;
  }

  private rel(abs: string): string {
    const r = relative(this.opts.repoRoot, abs);
    return r === '' ? '.' : r.split(sep).join('/');
  }

  private required(): number {
    const sign = this.opts.signing;
    const configured = this.signers.length || (sign?.ed25519Key ? 1 : 0) + (sign?.gpgKey ? 1 : 0);
    return sign?.required ?? (configured > 0 ? Math.min(configured, 2) : 0);
  }

  // ------------------------------------------------------------------ queued work

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
      try {
        this.signers = this.opts.signers ? [...this.opts.signers] : await loadSigners(this.opts.signing);
      } catch (e) {
        this.errors.push(`signing key: ${e instanceof Error ? e.message : String(e)}${(e as { file?: string }).file ? ` (${(e as { file?: string }).file})` : ''}`);
      }
      await this.writeRun();
    });
  }

  private output(s: NodeState, stream: Stream, chunk: string): void {
    if (s.ended) return; // its log is already written (no engine sends output after the end; defensive)
    const safe = s.redactors[stream].push(chunk);
    if (!safe) return;
    s.buf[stream].push(safe);
    s.bufLen[stream] += safe.length;
    if (s.bufLen[stream] >= FLUSH_AT) this.enqueue(`${s.id} ${stream}`, () => this.flush(s, stream));
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
  }

  private finish(s: NodeState, at: string): void {
    if (s.ended) return;
    s.ended = true;
    s.finishedOn = at;
    if (s.durationMs === null && s.startedOn) s.durationMs = Math.max(0, Date.parse(at) - Date.parse(s.startedOn));
    for (const stream of ['stdout', 'stderr'] as const) {
      const tail = s.redactors[stream].end();
      if (tail) s.buf[stream].push(tail);
    }
    if (!this.started) this.start();
    this.enqueue(`node ${s.id}`, () => this.writeNode(s));
  }

  private async writeNode(s: NodeState): Promise<void> {
    const stage = join(this.partialDir, `stage-${s.safeId}`);
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage, { recursive: true });
    const staged = new Map<string, string>();
    const put = async (name: string, data: string | Uint8Array): Promise<void> => {
      await writeFileAtomic(join(stage, name), data);
      staged.set(name, sha256Hex(data));
    };
    // Logs: what was appended to .partial/ plus what is still buffered.
    const logs = {} as Record<Stream, { path: string; sha256: string; size: number }>;
    for (const stream of ['stdout', 'stderr'] as const) {
      await this.flush(s, stream);
      const name = `${stream}.log`;
      const from = this.partialLog(s, stream);
      const exists = await stat(from).then(() => true, () => false);
      if (exists) await rename(from, join(stage, name));
      else await writeFileAtomic(join(stage, name), '');
      const h = await hashFile(join(stage, name));
      staged.set(name, h.sha256);
      logs[stream] = { path: name, ...h };
    }
    const node = s.node;
    const inputs = node && s.status !== 'denied' ? await this.digests(s, node.inputs, 'input') : [];
    const outputs = node && (s.status === 'ok' || s.status === 'cached') ? await this.digests(s, node.outputs, 'output') : [];
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
      attestations: signed ? [PROVENANCE_ENVELOPE_FILE, FABRIC_ENVELOPE_FILE] : [PROVENANCE_STATEMENT_FILE, FABRIC_STATEMENT_FILE],
    };
    const clean = redactDeep(manifest, this.secrets);
    await put(NODE_MANIFEST_FILE, json(clean));
    const statements = [provenanceStatement(clean, this.provenance), fabricStatement(clean)] as const;
    const names = clean.attestations;
    for (const [i, st] of statements.entries()) {
      const body = Buffer.from(JSON.stringify(redactDeep(st, this.secrets)), 'utf8');
      await put(names[i]!, signed ? json(await createEnvelope(body, this.signers)) : json(JSON.parse(body.toString('utf8'))));
    }
    const final = join(this.packetDir, NODES_DIR, s.safeId);
    await mkdir(join(this.packetDir, NODES_DIR), { recursive: true });
    await rm(final, { recursive: true, force: true });
    await rename(stage, final);
    for (const [name, h] of staged) this.files.set(`${NODES_DIR}/${s.safeId}/${name}`, h);
    this.completed.push(s.id);
    await this.writeRun();
  }

  /** `{path, sha256, size}` of every file the node's globs match under its cwd, paths relative to the repo root. */
  private async digests(s: NodeState, globs: readonly string[], what: 'input' | 'output'): Promise<FileDigest[]> {
    if (globs.length === 0 || !s.node) return [];
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

  private runRecord(): RunRecord {
    const g = this.opts.graph;
    const counts = Object.fromEntries(NODE_STATUSES.map((st) => [st, 0])) as Record<NodeStatus, number>;
    const written = new Set(this.completed);
    const nodes = [...this.states.values()].map((s) => {
      const st = written.has(s.id) ? (s.status ?? 'cancelled') : null;
      if (st) counts[st]++;
      return { id: s.id, safeId: s.safeId, task: s.node?.task.name ?? s.id, deps: [...(s.node?.deps ?? [])], status: st };
    });
    const edges: [string, string][] = [];
    for (const n of nodes) for (const d of n.deps) edges.push([n.id, d]);
    const vars: Record<string, string> = {};
    for (const t of g.targets) Object.assign(vars, g.nodes.get(t)?.vars ?? {});
    let digest: string | null = null;
    try {
      digest = graphDigest(g);
    } catch {
      digest = null;
    }
    const signers: SignerRecord[] = this.signers.map((s) => ({ type: s.type, keyId: s.keyId, fingerprint: s.fingerprint }));
    const rec: RunRecord = {
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
      graph: { edges },
      nodes,
      completed: [...this.completed],
      counts,
      denials: this.denials,
      signing: { required: this.required(), signers },
      warnings: [...this.runWarnings],
    };
    return redactDeep(rec, this.secrets);
  }

  /** Rewrites run.json, then manifest.sha256 over every packet file written so far. */
  private async writeRun(): Promise<void> {
    const text = json(this.runRecord());
    await writeFileAtomic(join(this.packetDir, RUN_FILE), text, this.partialDir);
    this.files.set(RUN_FILE, sha256Hex(text));
    const manifest = formatManifest([...this.files].map(([path, sha256]) => ({ path, sha256 })));
    await writeFileAtomic(join(this.packetDir, MANIFEST_FILE), manifest, this.partialDir);
  }
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
