// Gates, function steps (ctx.exec, ctx.$, ctx.log), the cache protocol, and zx staying unloaded for command graphs.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rigTest, test } from '../helpers/rig.js';
import type { CacheLookup, CacheProvider, CachedLog } from '../../lib/cache/types.js';
import type { Node } from '../../lib/engine/graph.js';
import type { TaskContext } from '../../lib/api/types.js';
import { fx, fxSh, gone, graphOf, pidsIn, run, until, type NodeSpec } from './scheduler-helpers.js';

// ---------------------------------------------------------------- gates

const GATE = { description: 'quorum', warnCode: 2, allowWarnVar: 'ALLOW_WARN' };
const CASES: [title: string, exit: string, vars: Record<string, string>, gate: [string, boolean], readOnly: string, mutating: string][] = [
  ['pass: exit 0 opens the gate for every dependent', '0', {}, ['pass', true], 'ok', 'ok'],
  ['warn without the variable: dependents fail with gate-closed', '2', {}, ['warn', false], 'gate-closed', 'gate-closed'],
  ['warn with ALLOW_WARN=1: read-only dependents run, mutating ones fail with gate-closed', '2', { ALLOW_WARN: '1' }, ['warn', true], 'ok', 'gate-closed'],
  ['warn with ALLOW_WARN=0: closed', '2', { ALLOW_WARN: '0' }, ['warn', false], 'gate-closed', 'gate-closed'],
  ['fail: any other exit fails the gate and closes it', '1', { ALLOW_WARN: '1' }, ['fail', false], 'gate-closed', 'gate-closed'],
];
for (const [title, exit, vars, [state, open], readOnly, mutating] of CASES) {
  rigTest(`gate ${title}`, async (rig) => {
    const count = rig.path('count');
    const g = graphOf(rig.dir, {
      quorum: { gate: GATE, vars, run: fx('exit.mjs', exit) },
      ro: { deps: ['quorum'], effect: 'read-only', run: fx('count.mjs', count, 'ro') },
      mut: { deps: ['quorum'], effect: 'mutating', run: fx('count.mjs', count, 'mut') },
      after: { deps: ['ro'], effect: 'read-only', run: fx('count.mjs', count, 'after') },
    }, ['after', 'mut']);
    const r = await run(g, { keepGoing: true });
    const ev = r.events.find((e) => e.type === 'gate');
    assert.ok(ev?.type === 'gate');
    assert.deepEqual([ev.node, ev.state, ev.open], ['quorum', state, open]);
    assert.ok(ev.detail.length > 0);
    const result = (node: string) => {
      const e = r.events.find((x) => (x.type === 'task-success' || x.type === 'task-failure') && x.node === node);
      return e?.type === 'task-success' ? 'ok' : e?.type === 'task-failure' ? e.failure.reason : 'none';
    };
    assert.equal(result('ro'), readOnly);
    assert.equal(result('mut'), mutating);
    assert.equal(result('after'), readOnly === 'ok' ? 'ok' : 'dependency-failed');
    const ran = existsSync(count) ? readFileSync(count, 'utf8').trim().split('\n').sort() : [];
    assert.deepEqual(ran, [...(readOnly === 'ok' ? ['after', 'ro'] : []), ...(mutating === 'ok' ? ['mut'] : [])].sort());
    assert.equal(result('quorum'), state === 'fail' ? 'exit-non-zero' : 'ok');
    assert.equal(r.outcome.ok, readOnly === 'ok' && mutating === 'ok');
    const closed = r.events.find((e) => e.type === 'task-failure' && e.failure.reason === 'gate-closed');
    if (closed?.type === 'task-failure' && closed.failure.reason === 'gate-closed') assert.equal(closed.failure.gate, 'quorum');
  });
}

rigTest('a gate selected for its own sake fails the run on a warning nobody allowed', async (rig) => {
  const warned = await run(graphOf(rig.dir, { quorum: { gate: GATE, run: fx('exit.mjs', '2') } }));
  const f = warned.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'gate-closed' && f.failure.gate === 'quorum');
  assert.equal(warned.outcome.ok, false);
  const allowed = await run(graphOf(rig.dir, { quorum: { gate: GATE, vars: { ALLOW_WARN: '1' }, run: fx('exit.mjs', '2') } }));
  assert.equal(allowed.outcome.ok, true);
});

// ---------------------------------------------------------------- function steps

rigTest('function steps: ctx.exec, ctx.$ (cwd, env, output), ctx.log, params; output redacted', async (rig) => {
  const seen: Partial<Record<'cwd' | 'repoRoot' | 'zxOut' | 'param', string>> = {};
  const g = graphOf(rig.dir, {
    fn: {
      secrets: ['tok-12345678'],
      params: { ENV: 'samakia-dns' },
      env: { GREETING: 'hello' },
      steps: [
        async function deploy(ctx: TaskContext) {
          seen.cwd = ctx.cwd;
          seen.repoRoot = ctx.repoRoot;
          seen.param = ctx.params.ENV ?? 'missing';
          ctx.log('token is tok-12345678');
          assert.equal(await ctx.exec(['/bin/echo', 'exec', 'tok-12345678']), 0);
          assert.equal(await ctx.exec('exit 3', { okCodes: [3] }), 3);
          assert.equal(await ctx.exec('echo "$EXTRA" >&2', { env: { EXTRA: 'extra-env' } }), 0);
          const out = await ctx.$`echo "$GREETING from zx"; pwd`;
          seen.zxOut = out.stdout;
        },
      ],
    },
  });
  const r = await run(g);
  assert.equal(r.outcome.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'task-failure')));
  assert.equal(seen.cwd, rig.dir);
  assert.equal(seen.repoRoot, rig.dir);
  assert.equal(seen.param, 'samakia-dns');
  assert.equal(seen.zxOut, `hello from zx\n${rig.dir}\n`);
  assert.equal(r.output('fn', 'stdout'), `token is [REDACTED]\nexec [REDACTED]\nhello from zx\n${rig.dir}\n`);
  assert.equal(r.output('fn', 'stderr'), 'extra-env\n');
  const commands = r.events.flatMap((e) => (e.type === 'command-start' ? [e.command] : []));
  assert.deepEqual(commands.slice(0, 4), ['<function deploy>', '/bin/echo exec [REDACTED]', 'exit 3', 'echo "$EXTRA" >&2']);
  assert.match(commands[4]!, /GREETING from zx/);
  assert.ok(r.pids('fn').length >= 4);
});

const FAILING: [title: string, spec: NodeSpec['run'], reason: string, check: (f: Record<string, unknown>) => void][] = [
  ['a throw fails with function-threw (message redacted)', () => { throw new Error('bad tok-12345678'); }, 'function-threw', (f) => assert.equal(f.message, 'bad [REDACTED]')],
  ['a returned non-zero number fails with exit-non-zero', function three() { return 3; }, 'exit-non-zero', (f) => assert.deepEqual([f.status, f.command], [3, '<function three>'])],
  ['ctx.exec of a failing command fails the step with that command', async (ctx: TaskContext) => { await ctx.exec(['/bin/sh', '-c', 'exit 5']); }, 'exit-non-zero', (f) => assert.deepEqual([f.status, f.command], [5, '/bin/sh -c \'exit 5\''])],
  ['a failing ctx.$ command fails with function-threw', async (ctx: TaskContext) => { await ctx.$`exit 7`; }, 'function-threw', (f) => assert.match(String(f.message), /exit code: 7/)],
];
for (const [title, fn, reason, check] of FAILING) {
  rigTest(`function steps: ${title}`, async (rig) => {
    const r = await run(graphOf(rig.dir, { fn: { secrets: ['tok-12345678'], run: fn! } }));
    const f = r.events.find((e) => e.type === 'task-failure');
    assert.ok(f?.type === 'task-failure', JSON.stringify(r.brief()));
    assert.equal(f.failure.reason, reason);
    check(f.failure as unknown as Record<string, unknown>);
  });
}

rigTest('function steps: a timeout aborts ctx.signal and kills the groups ctx.$ and ctx.exec started', async (rig) => {
  const pids = rig.path('pids');
  let aborted = false;
  const g = graphOf(rig.dir, {
    fn: {
      timeoutMs: 6_000,
      run: async (ctx: TaskContext) => {
        ctx.signal.addEventListener('abort', () => (aborted = true));
        void ctx.exec(`${fxSh('hang.mjs', pids, 'ignore-term')}`).catch(() => {});
        const hanging = ctx.$`${process.execPath} ${join(fileURLToPath(new URL('../../../test/fixtures/bin/', import.meta.url)), 'hang.mjs')} ${pids}`;
        hanging.catch(() => {});
        // Both processes are up (generous: on a machine where a process start costs ~4 ms and node's
        // ~100 ms, 2.5 s was once not enough under the parallel suite); then hang until the timeout.
        await until(() => pidsIn(pids).length === 2, 5_000, 'both pids recorded');
        await hanging;
      },
    },
  });
  const r = await run(g, { graceMs: 300 });
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'timeout', JSON.stringify(r.brief()));
  assert.equal(aborted, true);
  assert.equal(pidsIn(pids).length, 2);
  for (const pid of [...pidsIn(pids), ...r.pids('fn')]) assert.ok(gone(pid), `pid ${pid} survived`);
});

rigTest('function steps: commands still running when the function returns are terminated, with a warning', async (rig) => {
  const pids = rig.path('pids');
  const g = graphOf(rig.dir, {
    fn: {
      run: async (ctx: TaskContext) => {
        void ctx.exec(fx('hang.mjs', pids)).catch(() => {});
        await until(() => pidsIn(pids).length === 1, 5_000, 'hang started');
      },
    },
  });
  const r = await run(g, { graceMs: 300 });
  assert.equal(r.outcome.ok, true);
  assert.ok(r.events.some((e) => e.type === 'warning' && /still running/.test(e.message)), JSON.stringify(r.brief(['warning'])));
  for (const pid of pidsIn(pids)) assert.ok(gone(pid), `pid ${pid} survived`);
});

rigTest('a throwing emit (a renderer bug) rejects runGraph only after running processes ended, and starts nothing more', async (rig) => {
  const file = rig.path('count');
  const g = graphOf(rig.dir, {
    a: { run: fx('exit.mjs', '0') },
    slow: { run: fx('stamp.mjs', rig.path('stamps'), 'slow', '500') },
    b: { deps: ['a'], run: fx('count.mjs', file, 'b') },
  });
  await assert.rejects(
    run(g, { jobs: 2, emit: (e) => { if (e.type === 'task-success' && e.node === 'a') throw new Error('renderer broke'); } }),
    /renderer broke/,
  );
  assert.equal(existsSync(file), false);
  assert.match(readFileSync(rig.path('stamps'), 'utf8'), /slow end/);
});

// ---------------------------------------------------------------- cache protocol

class MemoryCache implements CacheProvider {
  readonly entries = new Map<string, CachedLog[]>();
  readonly lookups: { node: string; deps: Record<string, string>; force: boolean }[] = [];
  failLookup = false;
  async lookup(node: Node, deps: ReadonlyMap<string, string>, opts: { readonly force: boolean }): Promise<CacheLookup> {
    if (this.failLookup) throw new Error('store unreadable');
    this.lookups.push({ node: node.id, deps: Object.fromEntries(deps), force: opts.force });
    const fingerprint = `fp(${node.id}|${[...deps].map(([k, v]) => `${k}=${v}`).join(',')})`;
    if (!node.cacheable) return { result: 'disabled', fingerprint };
    const logs = this.entries.get(fingerprint);
    if (logs && !opts.force) return { result: 'hit', fingerprint, logs };
    return { result: 'miss', fingerprint, detail: logs ? 'forced' : 'not in the store' };
  }
  async save(node: Node, fingerprint: string, logs: readonly CachedLog[]): Promise<void> {
    this.entries.set(fingerprint, [...logs]);
  }
  async missingOutputs(node: Node): Promise<string[]> {
    return node.outputs.filter((o) => !existsSync(join(node.cwd, o)));
  }
}

rigTest('cache: a miss runs and saves redacted logs; a hit replays them without running; --force runs', async (rig) => {
  const count = rig.path('count');
  const cache = new MemoryCache();
  const g = graphOf(rig.dir, {
    gen: { secrets: ['pw-abcdefgh'], outputs: ['gen.txt'], steps: [`echo generated pw-abcdefgh; echo gen > gen.txt`, fx('count.mjs', count, 'gen')] },
    use: { deps: ['gen'], run: fx('count.mjs', count, 'use') },
  });
  const first = await run(g, { cache });
  assert.equal(first.outcome.ok, true);
  assert.deepEqual(first.brief(['cache', 'task-start', 'task-success']), ['cache gen miss', 'task-start gen', 'task-success gen ran', 'cache use miss', 'task-start use', 'task-success use ran']);
  assert.deepEqual(cache.lookups[1], { node: 'use', deps: { gen: 'fp(gen|)' }, force: false });
  assert.deepEqual(cache.entries.get('fp(gen|)'), [{ stream: 'stdout', chunk: 'generated [REDACTED]\n' }]);

  const second = await run(g, { cache });
  assert.equal(second.outcome.ok, true);
  assert.deepEqual(second.brief(['cache', 'task-start', 'task-success']), ['cache gen hit', 'task-success gen cached', 'cache use hit', 'task-success use cached']);
  const replay = second.events.find((e) => e.type === 'task-output');
  assert.ok(replay?.type === 'task-output' && replay.replayed === true && replay.chunk === 'generated [REDACTED]\n');
  assert.deepEqual(Object.fromEntries(second.outcome.statuses), { gen: 'cached', use: 'cached' });
  assert.equal(readFileSync(count, 'utf8'), 'gen\nuse\n');

  const forced = await run(g, { cache, force: true });
  assert.deepEqual(forced.brief(['cache', 'task-success']), ['cache gen miss', 'task-success gen ran', 'cache use miss', 'task-success use ran']);
  assert.equal(cache.lookups.at(-1)?.force, true);
  assert.equal(readFileSync(count, 'utf8'), 'gen\nuse\ngen\nuse\n');
});

rigTest('cache: a declared output that was not produced fails with missing-output and is not saved', async (rig) => {
  const cache = new MemoryCache();
  const g = graphOf(rig.dir, { gen: { outputs: ['never.txt'], run: 'echo hi' } });
  const r = await run(g, { cache });
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'missing-output');
  assert.deepEqual(f.failure.paths, ['never.txt']);
  assert.equal(cache.entries.size, 0);
});

rigTest('cache: a lookup that throws is a warning and the node runs', async (rig) => {
  const cache = new MemoryCache();
  cache.failLookup = true;
  const r = await run(graphOf(rig.dir, { a: { run: 'echo ran' } }), { cache });
  assert.equal(r.outcome.ok, true);
  assert.equal(r.output('a'), 'ran\n');
  assert.ok(r.events.some((e) => e.type === 'warning' && /store unreadable/.test(e.message)));
  assert.deepEqual(r.brief(['cache']), ['cache a disabled']);
});

rigTest('cache: gates are never looked up', async (rig) => {
  const cache = new MemoryCache();
  const r = await run(graphOf(rig.dir, { g: { gate: GATE, run: 'true' } }), { cache });
  assert.equal(cache.lookups.length, 0);
  assert.deepEqual(r.brief(['cache', 'task-success']), ['cache g disabled', 'task-success g ran']);
});

// ---------------------------------------------------------------- zx stays unloaded

rigTest('a command-only graph never loads zx; a function step does', async (rig) => {
  const helpers = new URL('./scheduler-helpers.js', import.meta.url).href;
  const hook = `export async function resolve(s, c, n) { if (s === 'zx' || s.startsWith('zx/')) throw new Error('zx was loaded'); return n(s, c); }`;
  await rig.write({
    'probe.mjs': `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
const { graphOf, run } = await import(${JSON.stringify(helpers)});
const dir = process.argv[2];
const withFn = process.argv[3] === 'fn';
const g = graphOf(dir, { a: { run: withFn ? async (ctx) => { await ctx.$\`true\`; } : 'echo plain' } });
const r = await run(g);
const f = r.events.find((e) => e.type === 'task-failure');
process.stdout.write(JSON.stringify({ ok: r.outcome.ok, failure: f ? f.failure : null }));
`,
  });
  const probe = (mode: string) =>
    new Promise<{ ok: boolean; failure: { reason: string; message?: string } | null }>((resolve, reject) => {
      const child = spawn(process.execPath, [rig.path('probe.mjs'), rig.dir, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', () => {
        try {
          resolve(JSON.parse(out));
        } catch (e) {
          reject(new Error(`probe printed ${out}`));
        }
      });
    });
  assert.deepEqual(await probe('plain'), { ok: true, failure: null });
  const withFn = await probe('fn');
  assert.equal(withFn.ok, false);
  assert.equal(withFn.failure?.reason, 'function-threw');
  assert.match(withFn.failure?.message ?? '', /zx was loaded/);
});

test.run();
