// Test rig: a temp-dir fixture repo per test, the real CLI in a child process, the JSON event stream
// as the oracle, a timeout on everything, and the directory kept when a test fails.
import { test as uvuTest } from 'uvu';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, readFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FabricEvent } from '../../lib/engine/events.js';

/** The repository root (tests run from build/test/...). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FABRIC_BIN = join(ROOT, 'bin', 'fabric.js');
export const FIXTURE_BIN = join(ROOT, 'test', 'fixtures', 'bin');
/** Absolute path of a fixture command, for use inside generated fabricfiles. */
export const fixture = (name: string): string => join(FIXTURE_BIN, name);

export async function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

export interface FabricRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Parsed NDJSON events (when run with --output=json or --events). */
  events: FabricEvent[];
  /** `type node detail` strings, e.g. `task-failure a exit-non-zero`, for compact assertions. */
  brief(types?: readonly string[]): string[];
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Called with the child as soon as it is spawned (signals, etc). */
  onSpawn?: (child: ChildProcess) => void;
  timeoutMs?: number;
  /** Node as a user starts it: without the `--enable-source-maps` the tests otherwise add (for fabric's own stacks). */
  plainNode?: boolean;
}

export function briefOf(events: readonly FabricEvent[], types?: readonly string[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (types && !types.includes(e.type)) continue;
    switch (e.type) {
      case 'task-start': out.push(`task-start ${e.node}`); break;
      case 'task-success': out.push(`task-success ${e.node} ${e.reason}`); break;
      case 'task-failure': out.push(`task-failure ${e.node} ${e.failure.reason}`); break;
      case 'cache': out.push(`cache ${e.node} ${e.result}`); break;
      case 'guard-decision': out.push(`guard ${e.node} ${e.decision.guard} ${e.decision.outcome}`); break;
      default: if (types) out.push(e.type);
    }
  }
  return out;
}

export class Rig {
  private constructor(readonly dir: string) {}
  static async create(name: string): Promise<Rig> {
    const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
    const dir = await mkdtemp(join(tmpdir(), `fabric-${slug}-`));
    return new Rig(dir);
  }
  path(...p: string[]): string {
    return join(this.dir, ...p);
  }
  async write(files: Record<string, string>, mode?: number): Promise<void> {
    for (const [rel, text] of Object.entries(files)) {
      const p = this.path(rel);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, text);
      if (mode !== undefined) await chmod(p, mode);
    }
  }
  async read(rel: string): Promise<string> {
    return readFile(this.path(rel), 'utf8');
  }
  exists(rel: string): boolean {
    return existsSync(this.path(rel));
  }
  /** Lets a `wait-for.mjs <file>` fixture command continue. */
  async release(name: string): Promise<void> {
    await writeFile(this.path(`.release-${name}`), '');
  }
  /** Runs the real CLI. The environment is the test's, minus CI variables unless given. */
  fabric(args: readonly string[], opts: RunOptions = {}): Promise<FabricRun> {
    const env: Record<string, string | undefined> = { ...process.env, CI: undefined, GITHUB_ACTIONS: undefined, FORCE_COLOR: '0', ...opts.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [...(opts.plainNode ? [] : ['--enable-source-maps']), FABRIC_BIN, ...args], {
      cwd: opts.cwd ?? this.dir,
      env: env as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
    const done = new Promise<FabricRun>((resolve) => {
      child.on('close', (code, signal) => {
        const events: FabricEvent[] = [];
        for (const line of stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const parsed = JSON.parse(line) as FabricEvent;
            if (parsed && typeof parsed === 'object' && 'type' in parsed) events.push(parsed);
          } catch {
            /* not an event line */
          }
        }
        resolve({ code, signal, stdout, stderr, events, brief: (types) => briefOf(events, types) });
      });
    });
    return withTimeout(done, opts.timeoutMs ?? 60_000, `fabric ${args.join(' ')}`).catch((e) => {
      child.kill('SIGKILL');
      throw e;
    });
  }
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A uvu test with its own temp-dir rig and a timeout; the dir is kept (and printed) on failure. */
export function rigTest(name: string, fn: (rig: Rig) => Promise<void>, { ms = 60_000 } = {}): void {
  test(name, async () => {
    const rig = await Rig.create(name);
    try {
      await withTimeout(fn(rig), ms, name);
      await rig.remove();
    } catch (e) {
      console.error(`kept ${rig.dir}`);
      throw e;
    }
  });
}

/** A plain uvu test with a timeout. */
export function timedTest(name: string, fn: () => Promise<void> | void, { ms = 30_000 } = {}): void {
  test(name, async () => {
    await withTimeout(Promise.resolve().then(fn), ms, name);
  });
}

/**
 * uvu's default suite, except that registering a test after `test.run()` throws: uvu would start the
 * suite without it, and the file would report every test passed with one never run.
 */
let started = false;
export const test: typeof uvuTest = new Proxy(uvuTest, {
  apply(target, self, args: Parameters<typeof uvuTest>) {
    if (started) throw new Error(`test "${String(args[0])}" is registered after test.run(): it would never run`);
    return Reflect.apply(target, self, args);
  },
  get(target, prop, receiver) {
    const value = Reflect.get(target, prop, receiver) as unknown;
    if (prop === 'run') {
      return () => {
        started = true;
        target.run();
      };
    }
    if ((prop === 'only' || prop === 'skip') && typeof value === 'function') {
      return (...args: unknown[]) => {
        if (started) throw new Error(`test.${prop} "${String(args[0])}" is registered after test.run(): it would never run`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    }
    return value;
  },
});
