/**
 * Small shared helpers for the Samakia glue: reading Make-style variables from a TaskContext, the one
 * CI rule, Make's word splitting of unquoted `${FLAGS}`, FABRIC_REPO_ROOT, repo scripts and the runner
 * env file. Nothing here loads zx, listr2 or ajv.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { childProcess, os } from './builtins.js';
import type { TaskContext } from '../../lib/api/types.js';

/** The part of a TaskContext the glue needs (tests build one by hand). */
export type GlueContext = Pick<TaskContext, 'params' | 'env' | 'cwd' | 'repoRoot' | 'signal' | 'log' | 'exec'>;

/** A glue failure with the exit code the Makefile used; its message is the operator-facing text. */
export class GlueError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'GlueError';
  }
}

/** A Make variable as the node sees it: its declared params first, then its environment. */
export function getVar(ctx: Pick<TaskContext, 'params' | 'env'>, name: string): string | undefined {
  const p = ctx.params[name];
  if (p !== undefined) return p;
  return ctx.env[name];
}

/** Like getVar, but an unset or empty value gives the default (Make's `?=` defaults as used by the recipes). */
export function varOr(ctx: Pick<TaskContext, 'params' | 'env'>, name: string, fallback: string): string {
  const v = getVar(ctx, name);
  return v === undefined || v === '' ? fallback : v;
}

/**
 * The one CI rule (same as lib/guards/ci.ts): CI is on when the value is set to anything except empty,
 * `0` or `false` (case-insensitive). Fixes Makefile defect 5, where `CI=true` slipped through `== "1"` tests.
 */
export function isCiValue(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/** Make's unquoted splice of `${TF_PLAN_FLAGS}` / `${ANSIBLE_FLAGS}`: split on whitespace, drop empties (no globbing). */
export function splitWords(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(/[ \t\n]+/).filter((w) => w !== '');
}

/** The user's home directory as the node sees it. */
export function homeOf(ctx: Pick<TaskContext, 'params' | 'env'>): string {
  return varOr(ctx, 'HOME', os().homedir());
}

/** `${HOME}/.config/samakia-fabric/env.sh` unless RUNNER_ENV_FILE is given. */
export function runnerEnvFile(ctx: Pick<TaskContext, 'params' | 'env'>): string {
  return varOr(ctx, 'RUNNER_ENV_FILE', join(homeOf(ctx), '.config', 'samakia-fabric', 'env.sh'));
}

/** `${HOME}/.cache/samakia-fabric/tf-bootstrap/samakia-minio` unless MINIO_BOOTSTRAP_DIR is given. */
export function minioBootstrapDir(ctx: Pick<TaskContext, 'params' | 'env'>): string {
  return varOr(ctx, 'MINIO_BOOTSTRAP_DIR', join(homeOf(ctx), '.cache', 'samakia-fabric', 'tf-bootstrap', 'samakia-minio'));
}

/** Runs a command without a shell and captures its output (never throws for a non-zero exit). */
export function capture(
  ctx: Pick<TaskContext, 'env' | 'cwd' | 'signal'>,
  argv: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('capture: empty argv'));
  return new Promise((resolvePromise, reject) => {
    childProcess().execFile(
      cmd,
      args,
      {
        cwd: opts.cwd ?? ctx.cwd,
        env: { ...ctx.env, ...opts.env },
        signal: ctx.signal,
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // spawn failure (ENOENT), abort or timeout kill: not an exit code
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return resolvePromise({ code: 127, stdout, stderr: stderr || `${cmd}: command not found` });
          if (ctx.signal.aborted) return reject(error);
          return resolvePromise({ code: error.signal ? 128 + 15 : 1, stdout, stderr });
        }
        resolvePromise({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * FABRIC_REPO_ROOT as the Makefile resolves it: the variable when given, else the git top level of the
 * working directory, else the repo root fabric found.
 */
export async function fabricRepoRoot(ctx: GlueContext): Promise<string> {
  const given = getVar(ctx, 'FABRIC_REPO_ROOT');
  if (given) return resolve(ctx.cwd, given);
  const r = await capture(ctx, ['git', '-C', ctx.repoRoot, 'rev-parse', '--show-toplevel']).catch(() => undefined);
  const top = r && r.code === 0 ? r.stdout.trim() : '';
  return top !== '' ? top : ctx.repoRoot;
}

/** Absolute path of a repo script; a missing script is a clear error naming the path and FABRIC_REPO_ROOT. */
export async function repoScriptPath(ctx: GlueContext, rel: string): Promise<string> {
  const root = await fabricRepoRoot(ctx);
  const p = isAbsolute(rel) ? rel : join(root, rel);
  if (!existsSync(p) || !statSync(p).isFile()) {
    throw new GlueError(`ERROR: script not found: ${p} (FABRIC_REPO_ROOT=${root})`, 127);
  }
  return p;
}

/**
 * Runs a repo script as the Makefile does (`bash <script> args`, under the node's env plus `env`),
 * through ctx.exec so output, redaction and cancellation behave like a command step. Resolves to the
 * exit code; codes in `okCodes` (and 0) do not throw.
 */
export async function runRepoScript(
  ctx: GlueContext,
  rel: string,
  argv: readonly string[] = [],
  opts: { env?: Record<string, string>; okCodes?: readonly number[] } = {},
): Promise<number> {
  const p = await repoScriptPath(ctx, rel);
  const code = await ctx.exec(['bash', p, ...argv], { ...(opts.env ? { env: opts.env } : {}), ...(opts.okCodes ? { okCodes: opts.okCodes } : {}) });
  if (code !== 0 && !(opts.okCodes ?? []).includes(code)) throw new GlueError(`${rel} exited with ${code}`, code);
  return code;
}

/**
 * Sources a bash env file (`set -a; source FILE`) the way recipes do, and returns the variables it
 * set or changed. A missing file gives `{}` (the Makefile sources it only if it exists).
 * The file name is passed as an argument, never spliced into the shell text.
 */
export async function sourceEnvFile(ctx: Pick<TaskContext, 'env' | 'cwd' | 'signal'>, file: string): Promise<Record<string, string>> {
  if (!existsSync(file)) return {};
  const script = 'set -a; source "$1" >/dev/null; env -0';
  const r = await capture(ctx, ['bash', '-euo', 'pipefail', '-c', script, 'source-env-file', file]);
  if (r.code !== 0) throw new GlueError(`ERROR: sourcing ${file} failed (exit ${r.code}): ${r.stderr.trim()}`, r.code);
  const before = ctx.env;
  const out: Record<string, string> = {};
  for (const entry of r.stdout.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const k = entry.slice(0, eq);
    const v = entry.slice(eq + 1);
    if (k === '_' || k === 'SHLVL' || k === 'PWD' || k === 'OLDPWD') continue;
    if (before[k] !== v) out[k] = v;
  }
  return out;
}

/**
 * Wraps a glue function as a task `run` function: a GlueError is logged (its message is the operator's
 * text) and becomes the task's exit code; anything else propagates (the engine reports it).
 * The wrapper keeps the inner function's name (shown in plans) and source (part of the cache fingerprint).
 */
export function glueTask(fn: (ctx: GlueContext) => Promise<number | void> | number | void): (ctx: TaskContext) => Promise<number> {
  const wrapped = async (ctx: TaskContext): Promise<number> => {
    try {
      return (await fn(ctx)) ?? 0;
    } catch (e) {
      if (e instanceof GlueError) {
        for (const line of e.message.split('\n')) ctx.log(line);
        return e.exitCode === 0 ? 1 : e.exitCode;
      }
      throw e;
    }
  };
  Object.defineProperty(wrapped, 'name', { value: fn.name || 'glue' });
  Object.defineProperty(wrapped, 'toString', { value: () => `glueTask(${fn.toString()})` });
  return wrapped;
}
