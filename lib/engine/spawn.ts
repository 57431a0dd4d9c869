/**
 * Process spawning for the scheduler: one process group per command, piped output, and a kill that
 * always finishes the job (SIGTERM to the group, SIGKILL after a grace period, then wait until no live
 * member is left). Behind the `Spawner` interface; commands are started by a fork server
 * (sched-forkserver.ts) when Perl is there, else by raw `child_process.spawn`; no zx on this path.
 *
 * Policy: a command is finished when its group is empty. If the group leader exits while other members
 * of its group are still alive (e.g. `server &` in a bash command), those are terminated the same way
 * and the exit reports `leftovers: true` (the scheduler turns that into a warning). A task that really
 * wants a daemon must detach it into its own session (`setsid`).
 */
import { spawn as cpSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from '../api/types.js';
import { directExec } from './sched-direct.js';
import { ForkServer, launchable, type ForkServerKind, type HeldCommand, type Launch, type LaunchEvents, type RemoteCommand } from './sched-forkserver.js';

export type StreamName = 'stdout' | 'stderr';

export interface SpawnSpec {
  readonly cmd: Command;
  readonly cwd: string;
  /** The complete environment of the process (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** Decoded (UTF-8) output, in arrival order per stream; never redacted here. */
  readonly onOutput: (stream: StreamName, chunk: string) => void;
  /** SIGTERM → SIGKILL grace used when members outlive the leader. */
  readonly graceMs: number;
}

export interface ExitInfo {
  /** Exit code; 127 when the process could not be started at all. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started (e.g. ENOENT). */
  readonly error?: string | undefined;
  /** Other members of the group were still alive when the leader exited (they were killed). */
  readonly leftovers: boolean;
}

export interface ProcessHandle {
  /** Pid of the group leader (= the process group id); undefined until `started`, and if spawning failed. */
  readonly pid: number | undefined;
  /** Resolves once the command runs (`pid` is set) or could not be started. */
  readonly started: Promise<void>;
  /** Resolves once the leader exited, its output was drained and no member of its group is alive. */
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM the whole group, SIGKILL after `graceMs`; resolves when no member is alive. Idempotent. */
  terminate(graceMs: number): Promise<void>;
  /** Whether `terminate` was called. */
  readonly terminated: boolean;
}

/** A command held back until another one ends (see `Spawner.after`). */
export interface HeldProcess {
  /** The command's handle, once started a handle like any other. */
  readonly handle: ProcessHandle;
  /** It was started (the command it waited for ended cleanly). */
  readonly sent: boolean;
  /** Neither started nor dropped yet. */
  readonly waiting: boolean;
  /** Resolves once it was started or dropped. */
  readonly settled: Promise<void>;
  /** Asks for it to be dropped if it was not started yet; `settled` tells how that ended. */
  cancel(): void;
}

export interface Spawner {
  spawn(spec: SpawnSpec): ProcessHandle;
  /**
   * Holds `spec` back until `running` (a handle this spawner returned, still running) ends: the fork
   * server starts it by itself the moment that command is reaped with exit 0, an empty process group
   * and its output closed, and tells so before that command's exit; in any other case (or after
   * `cancel`) it is dropped and never starts. The job slot goes from one command to the next
   * without waiting for this process's event loop. Undefined when this spawner cannot (no native
   * fork server, or `running` is not one of its commands).
   */
  after?(running: ProcessHandle, spec: SpawnSpec): HeldProcess | undefined;
  /**
   * Called once per run, just before its first command (so after its guards passed, and never in a run
   * of cache hits only): start helpers now. A promise says when they are ready: the first command
   * waits for it (a little while at most) rather than take the slow path while they boot.
   */
  prepare?(): void | Promise<unknown>;
}

/** `bash -euo pipefail -c <cmd>` for strings (as the Samakia Makefile's SHELL), the argv itself otherwise. */
export function commandArgv(cmd: Command): [file: string, args: string[]] {
  if (typeof cmd === 'string') return ['bash', ['-euo', 'pipefail', '-c', cmd]];
  const [file, ...args] = cmd;
  return [file ?? '', args];
}

/** Quotes one word for a POSIX shell (for display only; the engine never builds shell strings from argv). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function displayCommand(cmd: Command): string {
  return typeof cmd === 'string' ? cmd : cmd.map(shellQuote).join(' ');
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    // ESRCH: the group is empty. EPERM: a member we may not signal (not ours any more): treat as gone.
    return false;
  }
}

/**
 * Whether any live (non-zombie) process is in the group. `kill(-pgid, 0)` alone also counts zombies,
 * which stay around forever under an init that does not reap (some containers), so on Linux the
 * answer is confirmed from /proc.
 */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may contain spaces and parens, so parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    const pgrp = Number(rest[2]);
    if (pgrp === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

/** Whether a single process is alive (zombies count as dead). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (let step = 5; ; step = Math.min(step * 2, 50)) {
    if (!groupAlive(pgid)) return true;
    if (Date.now() >= until) return false;
    await sleep(Math.min(step, Math.max(1, until - Date.now())));
  }
}

/**
 * Waits (bounded) until the group has no member at all, zombies included: members orphaned by the
 * leader's death are reaped by init, which some container inits do only every few seconds. Waiting
 * for it means that once a kill resolves, `kill -0` on any member's pid fails (ESRCH).
 */
async function waitReaped(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (signalGroup(pgid, 0) && Date.now() < until) await sleep(25);
}

/** SIGTERM the group, SIGKILL after `graceMs` if anything is left, then wait (bounded) until it is empty. */
export async function killGroup(pgid: number, graceMs: number): Promise<void> {
  if (!signalGroup(pgid, 'SIGTERM')) return;
  // A stopped member would never act on SIGTERM.
  signalGroup(pgid, 'SIGCONT');
  if (!(await waitGroupGone(pgid, graceMs))) {
    signalGroup(pgid, 'SIGKILL');
    await waitGroupGone(pgid, 5_000);
  }
  await waitReaped(pgid, 3_000);
}

/** Spawns `file args` as the leader of a new process group (used for command steps and zx). */
export function spawnGroupLeader(file: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  return cpSpawn(file, args, { ...options, detached: true });
}

/**
 * What to exec for `spec`, in order: for a string, the program itself when bash would only exec it
 * (sched-direct.ts), then `bash -euo pipefail -c`; for an argv, the argv. A launch that cannot be
 * started makes way for the next one, so bash's own messages and exit codes apply in the end.
 */
function launchPlan(spec: SpawnSpec): Launch[] {
  const plan: Launch[] = [];
  if (typeof spec.cmd === 'string') {
    const direct = directExec(spec.cmd, spec.cwd, spec.env);
    if (direct) plan.push({ file: direct.file, argv0: direct.argv0, args: direct.args, cwd: spec.cwd, env: direct.env });
  }
  const [file, args] = commandArgv(spec.cmd);
  plan.push({ file, argv0: file, args, cwd: spec.cwd, env: spec.env });
  return plan;
}

/**
 * Whether the fork server can take the plan: its last launch (the command as given, or bash) is the
 * one to check. A direct exec before it adds only fields that cannot hold a NUL (plain words, a path
 * found in PATH, the working directory's path, SHLVL's digits) to the same environment, so it can be
 * sent whenever the last launch can (tested in sched-direct.test.ts); checking it too walked the whole
 * environment once more per command.
 */
function serverTakes(plan: readonly Launch[]): boolean {
  return launchable(plan[plan.length - 1]!);
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The message Node's `spawn` gives for an errno, so that both spawn paths report failures alike. */
export function spawnErrorMessage(file: string, errno: number): string {
  const name = ERRNO_NAMES.get(errno) ?? `Unknown system error -${errno}`;
  // Node emits these as 'error' events naming the file, and throws `spawn <code>` for the rest.
  return ['EACCES', 'EAGAIN', 'EMFILE', 'ENFILE', 'ENOENT'].includes(name) ? `spawn ${file} ${name}` : `spawn ${name}`;
}

/**
 * The policy shared by both spawn paths: once the leader exits, any member left in its group is
 * terminated (and reported as leftovers); output is drained for up to a second more.
 */
abstract class GroupHandle implements ProcessHandle {
  pid: number | undefined;
  readonly started: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  protected markStarted!: () => void;
  private resolveExit!: (e: ExitInfo) => void;
  private startSettled = false;
  private killing: Promise<void> | undefined;
  private closed = false;
  private onClosed: (() => void) | undefined;

  constructor(protected readonly spec: SpawnSpec) {
    this.started = new Promise<void>((r) => (this.markStarted = r)).then(() => {
      this.startSettled = true;
    });
    this.exited = new Promise<ExitInfo>((r) => (this.resolveExit = r));
  }

  /** Output is no longer read (the leader exited and the streams stayed open too long). */
  protected abstract destroyStreams(): void | Promise<void>;

  protected runs(pid: number): void {
    this.pid = pid;
    this.markStarted();
  }

  protected notStarted(error: string): void {
    this.markStarted();
    this.resolveExit({ code: 127, signal: null, error, leftovers: false });
  }

  protected streamsClosed(): void {
    this.closed = true;
    this.onClosed?.();
  }

  /** The leader exited: kill what is left of its group, drain output (bounded), then resolve. */
  protected leaderExited(code: number | null, signal: NodeJS.Signals | null, error?: string, groupMembers = true): void {
    void (async () => {
      let leftovers = false;
      const pid = this.pid;
      // groupMembers false: the fork server found the group empty when it reaped the leader.
      if (pid !== undefined && groupMembers && groupAlive(pid)) {
        leftovers = this.killing === undefined;
        await this.terminate(this.spec.graceMs);
      }
      if (!this.closed) {
        // Output may still be draining; a process outside the group (setsid) may hold the pipes open.
        await new Promise<void>((r) => {
          const t = setTimeout(r, 1_000);
          this.onClosed = () => {
            clearTimeout(t);
            r();
          };
        });
        if (!this.closed) await this.destroyStreams();
      }
      this.resolveExit({ code, signal, leftovers, ...(error !== undefined ? { error } : {}) });
    })();
  }

  get terminated(): boolean {
    return this.killing !== undefined;
  }

  terminate(graceMs: number): Promise<void> {
    if (this.startSettled && this.pid === undefined) return Promise.resolve();
    return (this.killing ??= this.started.then(() => (this.pid === undefined ? undefined : killGroup(this.pid, graceMs))));
  }
}

/** A command started by `child_process.spawn` in this process. */
class GroupProcess extends GroupHandle {
  private child: ChildProcess | undefined;

  constructor(spec: SpawnSpec, plan: Launch[]) {
    super(spec);
    let child: ChildProcess | undefined;
    let lastError: unknown;
    for (const [i, l] of plan.entries()) {
      const last = i === plan.length - 1;
      try {
        child = spawnGroupLeader(l.file, l.args, { cwd: l.cwd, env: { ...l.env }, stdio: ['ignore', 'pipe', 'pipe'], ...(l.argv0 !== l.file ? { argv0: l.argv0 } : {}) });
      } catch (e) {
        lastError = e;
        child = undefined;
        continue;
      }
      if (child.pid !== undefined || last) break;
      child.on('error', () => undefined);
      child = undefined;
    }
    if (!child) {
      this.notStarted(lastError instanceof Error ? lastError.message : String(lastError));
      return;
    }
    this.child = child;
    const c = child;
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = c[name];
      if (!stream) continue;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => spec.onOutput(name, chunk));
    }
    c.on('close', () => this.streamsClosed());
    c.on('error', (e) => {
      // Spawning failed (no 'exit' follows), e.g. ENOENT for an argv command.
      if (c.pid === undefined) this.notStarted(e.message);
    });
    c.on('exit', (code, signal) => this.leaderExited(code, signal));
    if (c.pid !== undefined) this.runs(c.pid);
  }

  protected destroyStreams(): void {
    this.child?.stdout?.destroy();
    this.child?.stderr?.destroy();
  }
}

/** A command started by the fork server (sched-forkserver.ts), with the same observable behaviour. */
class ServerProcess extends GroupHandle {
  private remote: RemoteCommand | undefined;
  /** The first launch when it is held (see `Spawner.after`): undefined when the server would not hold it. */
  held: HeldCommand | undefined;
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private reading = true;
  /** Set by destroyStreams: what the server read before it stopped is still delivered, then no more. */
  private stopping: (() => void) | undefined;

  constructor(
    spec: SpawnSpec,
    readonly server: ForkServer,
    private readonly plan: Launch[],
    hold?: { readonly after: number; readonly settle: () => void },
  ) {
    super(spec);
    this.next(hold);
  }

  /** The server's id of the command's current launch. */
  get remoteId(): number | undefined {
    return this.remote?.id;
  }

  private next(hold?: { readonly after: number; readonly settle: () => void }): void {
    const launch = this.plan.shift()!;
    const events: LaunchEvents = {
      started: (pid) => {
        hold?.settle();
        this.runs(pid);
      },
      failed: (errno) => {
        hold?.settle();
        if (this.plan.length > 0) this.next();
        else this.notStarted(spawnErrorMessage(launch.file, errno));
      },
      dropped: () => hold?.settle(),
      data: (stream, chunk) => {
        if (!this.reading) return;
        const text = this.decoders[stream].write(chunk);
        if (text !== '') this.spec.onOutput(stream, text);
      },
      exit: (code, signal, members) => this.leaderExited(code, signal, undefined, members),
      closed: () => {
        // End of output: the decoders' last bytes are flushed, as a Node stream does at its end (not
        // after a destroy, which drops them).
        if (this.reading && !this.stopping) {
          for (const stream of ['stdout', 'stderr'] as const) {
            const rest = this.decoders[stream].end();
            if (rest !== '') this.spec.onOutput(stream, rest);
          }
        }
        this.reading = false;
        this.streamsClosed();
        this.stopping?.();
      },
      lost: (reason) => {
        hold?.settle();
        this.reading = false;
        if (this.pid === undefined) this.notStarted(reason);
        else this.leaderExited(null, null, `${reason} while the command ran; its process group was terminated`);
        this.streamsClosed();
        this.stopping?.();
      },
    };
    if (hold) this.remote = this.held = this.server.launchAfter(hold.after, launch, events);
    else this.remote = this.server.launch(launch, events);
  }

  protected destroyStreams(): Promise<void> {
    return new Promise<void>((resolve) => {
      // Bounded, in case the server no longer answers.
      const t = setTimeout(resolve, 5_000);
      this.stopping = () => {
        clearTimeout(t);
        resolve();
      };
      this.remote?.stopReading();
    }).then(() => {
      this.reading = false;
    });
  }
}

let server: ForkServer | undefined | null = null;

/** The shared fork server, started on first use (undefined without Perl, or once it was lost). */
function forkServer(): ForkServer | undefined {
  if (server === null) server = ForkServer.start();
  return server && server.lost === undefined ? server : undefined;
}

/** `Spawner.after` on a fork server: `running` must be one of its commands. */
function holdAfter(running: ProcessHandle, spec: SpawnSpec): HeldProcess | undefined {
  // Only the native server holds commands.
  if (!(running instanceof ServerProcess) || running.server.kind !== 'native' || !running.server.ready) return undefined;
  const after = running.remoteId;
  if (after === undefined) return undefined;
  const plan = launchPlan(spec);
  if (!serverTakes(plan)) return undefined;
  let settle!: () => void;
  const settled = new Promise<void>((r) => (settle = r));
  const p = new ServerProcess(spec, running.server, plan, { after, settle });
  const held = p.held;
  if (!held?.waiting) return undefined;
  return {
    handle: p,
    get sent() {
      return held.sent;
    },
    get waiting() {
      return held.waiting;
    },
    settled,
    cancel: () => held.cancel(),
  };
}

/** Commands through `child_process.spawn` only. */
export const nodeSpawner: Spawner = {
  spawn: (spec) => new GroupProcess(spec, launchPlan(spec)),
};

/**
 * A spawner on its own fork server (`kind`, else the default choice), once the server is ready
 * (undefined when there is none). For tests and benchmarks; `close()` ends the server.
 */
export async function startForkServerSpawner(kind?: ForkServerKind): Promise<(Spawner & { readonly server: ForkServer; close(): void }) | undefined> {
  const own = ForkServer.start(kind);
  if (!own) return undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([own.whenReady(), new Promise((r) => (timer = setTimeout(r, 5000)))]);
  clearTimeout(timer);
  if (!own.ready) {
    own.close();
    return undefined;
  }
  return {
    server: own,
    spawn: (spec) => {
      const plan = launchPlan(spec);
      return own.ready && serverTakes(plan) ? new ServerProcess(spec, own, plan) : new GroupProcess(spec, plan);
    },
    after: holdAfter,
    close: () => own.close(),
  };
}

/**
 * The default spawner: one process group per command, started by the fork server when it is ready
 * (it starts with the first command, which, like any command while it boots, goes through
 * `child_process.spawn`), else by `child_process.spawn`.
 */
export const groupSpawner: Spawner = {
  prepare: () => forkServer()?.whenReady(),
  spawn: (spec) => {
    const plan = launchPlan(spec);
    const s = forkServer();
    return s?.ready && serverTakes(plan) ? new ServerProcess(spec, s, plan) : new GroupProcess(spec, plan);
  },
  after: holdAfter,
};
