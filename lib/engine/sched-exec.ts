/**
 * One attempt of one node: its steps in order, each command in its own process group, output through
 * a per-command, per-stream redactor, the node's timeout, and cancellation by the run's abort signal.
 * Function steps get a TaskContext; zx is imported only when a function step actually runs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Command, TaskContext } from '../api/types.js';
import type { CachedLog } from '../cache/types.js';
import { StreamRedactor, envFileSecrets, redactText } from '../util/redact.js';
import type { FabricEvent, Failure } from './events.js';
import type { Node, ResolvedStep } from './graph.js';
import { displayCommand, groupAlive, killGroup, spawnGroupLeader, type ExitInfo, type ProcessHandle, type SpawnSpec, type Spawner, type StreamName } from './spawn.js';

export interface ExecDeps {
  readonly emit: (e: FabricEvent) => void;
  readonly graceMs: number;
  readonly repoRoot: string;
  readonly spawner: Spawner;
  /** The run's abort signal (SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
  /**
   * Called when an attempt has started the node's last step, a command: the scheduler may hold the
   * next node's first command back behind it (`Spawner.after`).
   */
  readonly lastCommand?: (node: Node, handle: ProcessHandle) => void;
  /** The process already started for the node's first command (it was held behind another), if any. */
  readonly adopt?: (node: Node, spec: SpawnSpec) => ProcessHandle | undefined;
}

export type AttemptResult =
  | { readonly ok: true; readonly exitCode: number | null; readonly warned: boolean; readonly logs: readonly CachedLog[] }
  | { readonly ok: false; readonly failure: Failure; readonly logs: readonly CachedLog[] };

type StopCause = 'timeout' | 'aborted';

/** Thrown by `ctx.exec` for a command that did not succeed; the attempt fails with the carried failure. */
export class ExecFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.reason === 'exit-non-zero' ? `command \`${failure.command}\` exited with ${failure.status}` : failure.reason === 'signal' ? `command \`${failure.command}\` was killed by ${failure.signal}` : failure.reason);
    this.name = 'ExecFailure';
  }
}

/** Thrown by `ctx.exec` once the attempt is being stopped (timeout or interrupt). */
class StoppedError extends Error {
  constructor(cause: StopCause) {
    super(cause === 'timeout' ? 'the task timed out' : 'the run was interrupted');
    this.name = 'AbortError';
  }
}

function isNonEmptyCodeList(codes: readonly number[] | undefined, code: number): boolean {
  return codes !== undefined && codes.includes(code);
}

/** Env files larger than this are not read for secrets. */
const ENV_FILE_MAX = 1024 * 1024;

/**
 * The secret values that the env files `files` (relative to the node's cwd) assign, as they are now
 * (see `CommandStep.secretEnvFiles`). A missing or unreadable file, or anything but a regular file of
 * at most ENV_FILE_MAX bytes, gives none: the command cannot load it either.
 */
export function secretsOfEnvFiles(node: Node, files: readonly string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    const path = resolvePath(node.cwd, file);
    let text: string;
    try {
      const st = statSync(path);
      if (!st.isFile() || st.size > ENV_FILE_MAX) continue;
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    for (const v of envFileSecrets(text, node.secretPatterns)) if (!out.includes(v)) out.push(v);
  }
  return out;
}

/**
 * Everything a node's output must not show in clear, as far as it is known without running it: its
 * secrets and those of the env files its command steps load. Logs replayed from the cache are
 * redacted with it again (they were redacted with what was known when they were stored).
 */
export function replaySecrets(node: Node): readonly string[] {
  const files = node.steps.flatMap((s) => (s.kind === 'command' ? s.secretEnvFiles : []));
  return files.length === 0 ? node.secrets : [...new Set([...node.secrets, ...secretsOfEnvFiles(node, files)])];
}

class Attempt {
  private readonly ac = new AbortController();
  private cause: StopCause | undefined;
  /** Set once the attempt has ended: a runaway function can no longer log or start processes. */
  private finished = false;
  private readonly handles = new Set<ProcessHandle>();
  private readonly zxGroups = new Set<number>();
  private readonly kills: Promise<void>[] = [];
  readonly logs: CachedLog[] = [];
  /** The node's secrets plus values a task function registered with `ctx.secret()` at run time. */
  private readonly secrets: string[];

  constructor(
    private readonly node: Node,
    private readonly deps: ExecDeps,
  ) {
    this.secrets = [...node.secrets];
  }

  private emit(e: FabricEvent): void {
    if (!this.finished) this.deps.emit(e);
  }

  stop(cause: StopCause): void {
    if (this.cause) return;
    this.cause = cause;
    this.ac.abort(cause);
    for (const h of this.handles) this.kills.push(h.terminate(this.deps.graceMs));
    for (const pgid of this.zxGroups) this.kills.push(killGroup(pgid, this.deps.graceMs));
  }

  private stopFailure(): Failure {
    return this.cause === 'timeout' ? { reason: 'timeout', ms: this.node.timeoutMs ?? 0 } : { reason: 'aborted' };
  }

  private output(stream: StreamName, text: string, collect = true): void {
    if (text === '' || this.finished) return;
    this.emit({ type: 'task-output', node: this.node.id, stream, chunk: text });
    if (!collect) return;
    // Adjacent chunks of one stream are kept as one log entry (the redactor splits them arbitrarily).
    const last = this.logs.at(-1);
    if (last?.stream === stream) this.logs[this.logs.length - 1] = { stream, chunk: last.chunk + text };
    else this.logs.push({ stream, chunk: text });
  }

  private async runCommand(cmd: Command, display: string, cwd: string, env: Readonly<Record<string, string>>, step?: { readonly first: boolean; readonly last: boolean }): Promise<ExitInfo> {
    const red = { stdout: new StreamRedactor(this.secrets), stderr: new StreamRedactor(this.secrets) };
    const started = Date.now();
    // Output can arrive before `started` resolves (a fork server's "started" and the first output in one
    // read): it is held until command-start is out, so a command's output always follows its start.
    let early: [StreamName, string][] | undefined = [];
    const onOutput = (s: StreamName, c: string): void => {
      const text = red[s].push(c);
      if (early) early.push([s, text]);
      else this.output(s, text);
    };
    const spec = { cmd, cwd, env, graceMs: this.deps.graceMs, onOutput };
    const h = (step?.first ? this.deps.adopt?.(this.node, spec) : undefined) ?? this.deps.spawner.spawn(spec);
    this.handles.add(h);
    if (this.cause) this.kills.push(h.terminate(this.deps.graceMs));
    else if (step?.last) this.deps.lastCommand?.(this.node, h);
    // The pid is known once the command runs (a fork server reports it asynchronously).
    await h.started;
    this.emit({ type: 'command-start', node: this.node.id, command: display, pid: h.pid });
    const held = early;
    early = undefined;
    for (const [s, text] of held) this.output(s, text);
    const exit = await h.exited;
    this.handles.delete(h);
    this.output('stdout', red.stdout.end());
    this.output('stderr', red.stderr.end());
    if (exit.error !== undefined) {
      // A missing working directory makes spawn report ENOENT for the program: name the real cause.
      const why = existsSync(cwd) ? exit.error : `the working directory ${cwd} does not exist`;
      this.output('stderr', redactText(`fabric: cannot start \`${display}\`: ${why}\n`, this.secrets));
    }
    this.emit({ type: 'command-end', node: this.node.id, command: display, exitCode: exit.code, signal: exit.signal, ms: Date.now() - started });
    if (exit.leftovers && !this.cause) {
      this.emit({ type: 'warning', node: this.node.id, message: `\`${display}\` left processes running in its process group after it exited; they were terminated (use setsid to start a daemon)` });
    }
    return exit;
  }

  async run(): Promise<AttemptResult> {
    const node = this.node;
    let exitCode: number | null = null;
    let warned = false;
    const steps = node.steps;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (this.cause) return this.fail(this.stopFailure());
      if (step.kind === 'command') {
        this.learnSecrets(step.secretEnvFiles);
        const exit = await this.runCommand(step.cmd, step.display, node.cwd, commandEnv(node, step), { first: i === 0, last: i === steps.length - 1 });
        if (this.cause) return this.fail(this.stopFailure());
        const code = exit.code;
        exitCode = code;
        if (exit.signal === null && code !== null) {
          if (code === 0 || step.okCodes.includes(code)) continue;
          if (node.gate && code === node.gate.warnCode) {
            warned = true;
            continue;
          }
        }
        if (step.ignoreFailure) continue;
        return this.fail(
          exit.signal !== null
            ? { reason: 'signal', signal: exit.signal, command: step.display }
            : { reason: 'exit-non-zero', status: code ?? 1, command: step.display },
        );
      }
      const r = await this.runFunction(step);
      if (!r.ok) return this.fail(r.failure);
      exitCode = r.exitCode;
    }
    return { ok: true, exitCode, warned, logs: this.logs };
  }

  /** Adds the secret values of the env files a command is about to load (read now: an earlier step may have written them). */
  private learnSecrets(files: readonly string[]): void {
    if (files.length === 0) return;
    for (const v of secretsOfEnvFiles(this.node, files)) if (!this.secrets.includes(v)) this.secrets.push(v);
  }

  private fail(failure: Failure): AttemptResult {
    return { ok: false, failure, logs: this.logs };
  }

  /** Waits for every kill this attempt started, and reaps groups that ctx.$ left behind. */
  async settle(): Promise<void> {
    const stray = [...this.handles].filter((h) => !h.terminated);
    const strayZx = this.cause ? [] : [...this.zxGroups].filter(groupAlive);
    if (stray.length + strayZx.length > 0) {
      this.emit({ type: 'warning', node: this.node.id, message: `the task function returned while ${stray.length + strayZx.length} command(s) it started were still running; they were terminated (await ctx.exec / ctx.$)` });
    }
    this.finished = true;
    for (const h of stray) this.kills.push(h.terminate(this.deps.graceMs));
    for (const pgid of strayZx) this.kills.push(killGroup(pgid, this.deps.graceMs));
    await Promise.all(this.kills);
  }

  private async runFunction(step: Extract<ResolvedStep, { kind: 'function' }>): Promise<{ ok: true; exitCode: number | null } | { ok: false; failure: Failure }> {
    const started = Date.now();
    this.emit({ type: 'command-start', node: this.node.id, command: step.display, pid: undefined });
    const end = (exitCode: number | null) =>
      this.emit({ type: 'command-end', node: this.node.id, command: step.display, exitCode, signal: null, ms: Date.now() - started });
    type Settled = { kind: 'returned'; value: unknown } | { kind: 'threw'; error: unknown } | { kind: 'stopped' };
    const stopped = new Promise<Settled>((r) => {
      if (this.ac.signal.aborted) r({ kind: 'stopped' });
      else this.ac.signal.addEventListener('abort', () => r({ kind: 'stopped' }), { once: true });
    });
    const called = Promise.resolve()
      .then(() => this.context())
      .then((ctx) => step.fn(ctx))
      .then(
        (value): Settled => ({ kind: 'returned', value }),
        (error: unknown): Settled => ({ kind: 'threw', error }),
      );
    const settled = await Promise.race([called, stopped]);
    if (settled.kind === 'stopped' || this.cause) {
      end(null);
      return { ok: false, failure: this.stopFailure() };
    }
    if (settled.kind === 'threw') {
      end(null);
      const e = settled.error;
      if (e instanceof ExecFailure) return { ok: false, failure: e.failure };
      const message = e instanceof Error ? e.message : String(e);
      return { ok: false, failure: { reason: 'function-threw', message: redactText(message, this.secrets) } };
    }
    const value = settled.value;
    if (typeof value === 'number' && value !== 0) {
      end(value);
      return { ok: false, failure: { reason: 'exit-non-zero', status: value, command: step.display } };
    }
    end(typeof value === 'number' ? value : 0);
    return { ok: true, exitCode: typeof value === 'number' ? value : 0 };
  }

  private ctx: TaskContext | undefined;

  private async context(): Promise<TaskContext> {
    if (this.ctx) return this.ctx;
    const node = this.node;
    const zx = await import('zx');
    const $ = zx.$({
      cwd: node.cwd,
      env: { ...node.env },
      signal: this.ac.signal,
      quiet: true,
      verbose: false,
      detached: true,
      log: (() => {}) as unknown as typeof zx.log,
      spawn: ((file: string, args: readonly string[], options: SpawnOptions) => this.zxSpawn(file, args, options, zx.$.prefix)) as unknown as typeof import('node:child_process').spawn,
    });
    this.ctx = {
      $: $ as TaskContext['$'],
      params: node.params,
      env: node.env,
      cwd: node.cwd,
      repoRoot: this.deps.repoRoot,
      signal: this.ac.signal,
      log: (message: string) => this.output('stdout', redactText(message.endsWith('\n') ? message : message + '\n', this.secrets)),
      secret: (value: string) => {
        if (value !== '' && !this.secrets.includes(value)) this.secrets.push(value);
      },
      exec: (cmd, opts) => this.exec(cmd, opts),
    };
    return this.ctx;
  }

  private async exec(cmd: Command, opts?: { env?: Record<string, string>; cwd?: string; okCodes?: readonly number[] }): Promise<number> {
    if (this.cause || this.finished) throw new StoppedError(this.cause ?? 'aborted');
    const display = redactText(displayCommand(cmd), this.secrets);
    const cwd = opts?.cwd !== undefined ? resolvePath(this.node.cwd, opts.cwd) : this.node.cwd;
    const exit = await this.runCommand(cmd, display, cwd, { ...this.node.env, ...opts?.env });
    if (this.cause) throw new StoppedError(this.cause);
    if (exit.signal !== null) throw new ExecFailure({ reason: 'signal', signal: exit.signal, command: display });
    const code = exit.code ?? 1;
    if (code === 0 || isNonEmptyCodeList(opts?.okCodes, code)) return code;
    throw new ExecFailure({ reason: 'exit-non-zero', status: code, command: display });
  }

  /** zx's spawn, made to put each command in its own group and to tee its output into the task log. */
  private zxSpawn(file: string, args: readonly string[], options: SpawnOptions, prefix: string | undefined): ChildProcess {
    const child = spawnGroupLeader(file, args, options);
    const started = Date.now();
    let shown = args.length ? [file, ...args].join(' ') : file;
    if (prefix && shown.startsWith(prefix)) shown = shown.slice(prefix.length).trimStart();
    const display = redactText(shown, this.secrets);
    if (child.pid !== undefined) {
      this.zxGroups.add(child.pid);
      if (this.cause) this.kills.push(killGroup(child.pid, this.deps.graceMs));
      else if (this.finished) void killGroup(child.pid, 0);
    }
    this.emit({ type: 'command-start', node: this.node.id, command: display, pid: child.pid });
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      const dec = new StringDecoder('utf8');
      const red = new StreamRedactor(this.secrets);
      stream.on('data', (d: Buffer | string) => this.output(name, red.push(typeof d === 'string' ? d : dec.write(d))));
      stream.on('close', () => this.output(name, red.push(dec.end()) + red.end()));
    }
    child.on('exit', (code, signal) => {
      this.emit({ type: 'command-end', node: this.node.id, command: display, exitCode: code, signal, ms: Date.now() - started });
    });
    return child;
  }
}

/**
 * Runs one attempt of `node`. Resolves once every process the attempt started is gone (also after a
 * timeout or an interrupt: SIGTERM to each group, SIGKILL after the grace period).
 */
export async function runAttempt(node: Node, deps: ExecDeps): Promise<AttemptResult> {
  const attempt = new Attempt(node, deps);
  const onAbort = () => attempt.stop('aborted');
  if (deps.signal.aborted) attempt.stop('aborted');
  else deps.signal.addEventListener('abort', onAbort, { once: true });
  const timer = node.timeoutMs !== undefined && node.timeoutMs > 0 ? setTimeout(() => attempt.stop('timeout'), node.timeoutMs) : undefined;
  try {
    return await attempt.run();
  } finally {
    if (timer) clearTimeout(timer);
    deps.signal.removeEventListener('abort', onAbort);
    await attempt.settle();
  }
}

/** The environment of a command step: most steps declare no env of their own, and the node's (read-only) env is used as it is. */
export function commandEnv(node: Node, step: Extract<Node['steps'][number], { kind: 'command' }>): Readonly<Record<string, string>> {
  return hasKeys(step.env) ? { ...node.env, ...step.env } : node.env;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
