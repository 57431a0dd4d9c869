/**
 * Process spawning for the scheduler: one process group per command, piped output, and a kill that
 * always finishes the job (SIGTERM to the group, SIGKILL after a grace period, then wait until no live
 * member is left). Kept small and behind the `Spawner` interface so that a later performance pass can
 * replace it (e.g. a fork server per job slot). Raw `child_process.spawn`, no zx on this path.
 *
 * Policy: a command is finished when its group is empty. If the group leader exits while other members
 * of its group are still alive (e.g. `server &` in a bash command), those are terminated the same way
 * and the exit reports `leftovers: true` (the scheduler turns that into a warning). A task that really
 * wants a daemon must detach it into its own session (`setsid`).
 */
import { spawn as cpSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Command } from '../api/types.js';
import { directExec } from './sched-direct.js';

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
  /** Pid of the group leader (= the process group id); undefined if spawning failed. */
  readonly pid: number | undefined;
  /** Resolves once the leader exited, its output was drained and no member of its group is alive. */
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM the whole group, SIGKILL after `graceMs`; resolves when no member is alive. Idempotent. */
  terminate(graceMs: number): Promise<void>;
  /** Whether `terminate` was called. */
  readonly terminated: boolean;
}

export interface Spawner {
  spawn(spec: SpawnSpec): ProcessHandle;
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
 * Starts `spec.cmd` as a group leader: an argv directly; a string under bash, or, when bash would only
 * exec one program, that program directly with the env bash would give it (sched-direct.ts). If the
 * direct spawn fails to start, bash runs the command after all, so its messages and exit codes apply.
 */
function spawnCommand(spec: SpawnSpec): ChildProcess {
  const options: SpawnOptions = { cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] };
  if (typeof spec.cmd === 'string') {
    const direct = directExec(spec.cmd, spec.cwd, spec.env);
    if (direct) {
      let child: ChildProcess | undefined;
      try {
        child = spawnGroupLeader(direct.file, direct.args, { ...options, env: { ...direct.env }, argv0: direct.argv0 });
      } catch {
        child = undefined;
      }
      if (child?.pid !== undefined) return child;
      child?.on('error', () => undefined);
    }
  }
  const [file, args] = commandArgv(spec.cmd);
  return spawnGroupLeader(file, args, { ...options, env: { ...spec.env } });
}

class GroupProcess implements ProcessHandle {
  readonly pid: number | undefined;
  readonly exited: Promise<ExitInfo>;
  private killing: Promise<void> | undefined;

  constructor(spec: SpawnSpec) {
    let child: ChildProcess;
    try {
      child = spawnCommand(spec);
    } catch (e) {
      this.pid = undefined;
      this.exited = Promise.resolve({ code: 127, signal: null, error: e instanceof Error ? e.message : String(e), leftovers: false });
      return;
    }
    this.pid = child.pid;
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => spec.onOutput(name, chunk));
    }
    this.exited = new Promise<ExitInfo>((resolve) => {
      let closed = false;
      let onClosed: (() => void) | undefined;
      child.on('close', () => {
        closed = true;
        onClosed?.();
      });
      child.on('error', (e) => {
        // Spawning failed (no 'exit' follows), e.g. ENOENT for an argv command.
        if (child.pid === undefined) resolve({ code: 127, signal: null, error: e.message, leftovers: false });
      });
      child.on('exit', (code, signal) => {
        void (async () => {
          let leftovers = false;
          const pid = child.pid!;
          if (groupAlive(pid)) {
            leftovers = this.killing === undefined;
            await this.terminate(spec.graceMs);
          }
          if (!closed) {
            // Output may still be draining; a process outside the group (setsid) may hold the pipes open.
            await new Promise<void>((r) => {
              const t = setTimeout(r, 1_000);
              onClosed = () => {
                clearTimeout(t);
                r();
              };
            });
            if (!closed) {
              child.stdout?.destroy();
              child.stderr?.destroy();
            }
          }
          resolve({ code, signal, leftovers });
        })();
      });
    });
  }

  get terminated(): boolean {
    return this.killing !== undefined;
  }

  terminate(graceMs: number): Promise<void> {
    if (this.pid === undefined) return Promise.resolve();
    return (this.killing ??= killGroup(this.pid, graceMs));
  }
}

/** The default spawner: `child_process.spawn`, one process group per command. */
export const groupSpawner: Spawner = {
  spawn: (spec) => new GroupProcess(spec),
};
