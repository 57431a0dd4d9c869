// Scheduling semantics of runGraph: order, parallelism, mutexes, failure policy, dry-run, guards, steps.
import * as assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { rigTest, test } from '../helpers/rig.js';
import type { Guard } from '../../lib/guards/types.js';
import { backoffMs, normaliseJobs, seededRandom, shuffleInPlace } from '../../lib/engine/sched-util.js';
import { fx, fxSh, graphOf, run, stamps } from './scheduler-helpers.js';
import { nodeSpawner, type ExitInfo, type Spawner } from '../../lib/engine/spawn.js';
import { createLocalCache } from '../../lib/cache/local.js';

rigTest('a diamond runs its shared dependency once, dependencies first', async (rig) => {
  const count = rig.path('count');
  const g = graphOf(rig.dir, {
    d: { run: fx('count.mjs', count, 'd') },
    b: { deps: ['d'], run: fx('count.mjs', count, 'b') },
    c: { deps: ['d'], run: fx('count.mjs', count, 'c') },
    a: { deps: ['b', 'c'], run: fx('count.mjs', count, 'a') },
  }, ['a']);
  const r = await run(g, { jobs: 4 });
  assert.equal(r.outcome.ok, true);
  const lines = readFileSync(count, 'utf8').trim().split('\n');
  assert.equal(lines.filter((l) => l === 'd').length, 1);
  assert.equal(lines[0], 'd');
  assert.equal(lines[3], 'a');
  assert.deepEqual(r.brief(['task-start']).filter((x) => x === 'task-start d'), ['task-start d']);
  assert.deepEqual([...r.outcome.statuses.values()], ['ok', 'ok', 'ok', 'ok']);
  const types = r.events.map((e) => e.type);
  assert.equal(types[0], 'run-start');
  assert.equal(types.at(-1), 'run-end');
  const start = r.events[0]!;
  assert.ok(start.type === 'run-start');
  assert.deepEqual(start.nodes.map((n) => n.id), g.order);
});

for (const jobs of [2, 1]) {
  rigTest(`two independent tasks ${jobs === 2 ? 'overlap' : 'do not overlap'} with jobs=${jobs}`, async (rig) => {
    const file = rig.path('stamps');
    const g = graphOf(rig.dir, { x: { run: fx('stamp.mjs', file, 'x', '700') }, y: { run: fx('stamp.mjs', file, 'y', '700') } });
    const r = await run(g, { jobs });
    assert.equal(r.outcome.ok, true);
    const s = stamps(file);
    const [first, second] = s.x!.start <= s.y!.start ? [s.x!, s.y!] : [s.y!, s.x!];
    if (jobs === 2) assert.ok(second.start < first.end, `expected overlap: ${JSON.stringify(s)}`);
    else assert.ok(second.start >= first.end, `expected no overlap: ${JSON.stringify(s)}`);
  });
}

rigTest('a mutex prevents overlap, and a node waiting for a mutex holds no job slot', async (rig) => {
  const file = rig.path('stamps');
  const g = graphOf(rig.dir, {
    m1: { mutex: ['proxmox'], run: fx('stamp.mjs', file, 'm1', '600') },
    m2: { mutex: ['other', 'proxmox'], run: fx('stamp.mjs', file, 'm2', '600') },
    free: { run: fx('stamp.mjs', file, 'free', '100') },
  });
  const r = await run(g, { jobs: 2 });
  assert.equal(r.outcome.ok, true);
  const s = stamps(file);
  const [first, second] = s.m1!.start <= s.m2!.start ? [s.m1!, s.m2!] : [s.m2!, s.m1!];
  assert.ok(second.start >= first.end, `mutex holders overlapped: ${JSON.stringify(s)}`);
  // m2 waits for the mutex: 'free' takes the second slot while m1 runs.
  assert.ok(s.free!.start < first.end, `free did not run beside the mutex holder: ${JSON.stringify(s)}`);
});

rigTest('a failure: dependents never start and fail with dependency-failed', async (rig) => {
  const marker = rig.path('ran');
  const g = graphOf(rig.dir, {
    a: { run: fx('exit.mjs', '3', 'boom') },
    b: { deps: ['a'], run: fx('count.mjs', marker, 'b') },
    c: { deps: ['b'], run: fx('count.mjs', marker, 'c') },
  }, ['c']);
  const r = await run(g);
  assert.equal(r.outcome.ok, false);
  assert.equal(existsSync(marker), false);
  assert.deepEqual(r.brief(), ['task-start a', 'task-failure a exit-non-zero', 'task-failure b dependency-failed', 'task-failure c dependency-failed']);
  const fb = r.events.find((e) => e.type === 'task-failure' && e.node === 'c');
  assert.ok(fb?.type === 'task-failure' && fb.failure.reason === 'dependency-failed' && fb.failure.dependency === 'b');
  const fa = r.events.find((e) => e.type === 'task-failure' && e.node === 'a');
  assert.ok(fa?.type === 'task-failure' && fa.failure.reason === 'exit-non-zero' && fa.failure.status === 3);
  assert.equal(r.output('a', 'stdout'), 'boom\n');
  assert.deepEqual(Object.fromEntries(r.outcome.statuses), { a: 'failed', b: 'skipped-after-failure', c: 'skipped-after-failure' });
});

rigTest('fail-fast: no new node starts after a failure, running ones finish', async (rig) => {
  const file = rig.path('stamps');
  const g = graphOf(rig.dir, {
    slow: { run: fx('stamp.mjs', file, 'slow', '800') },
    bad: { run: fx('exit.mjs', '1') },
    later: { run: fx('stamp.mjs', file, 'later', '0') },
    after: { deps: ['bad'], run: fx('stamp.mjs', file, 'after', '0') },
  });
  const r = await run(g, { jobs: 2 });
  assert.equal(r.outcome.ok, false);
  const s = stamps(file);
  assert.ok(Number.isFinite(s.slow?.end), 'the running node finished');
  assert.equal(s.later, undefined);
  assert.equal(s.after, undefined);
  assert.deepEqual(r.brief(['task-success', 'task-failure']).sort(), ['task-failure after dependency-failed', 'task-failure bad exit-non-zero', 'task-failure later not-started', 'task-success slow ran'].sort());
  assert.equal(r.outcome.statuses.get('later'), 'skipped-after-failure');
});

rigTest('keep-going: everything not downstream of a failure runs', async (rig) => {
  const file = rig.path('stamps');
  const g = graphOf(rig.dir, {
    bad: { run: fx('exit.mjs', '1') },
    later: { run: fx('stamp.mjs', file, 'later', '0') },
    after: { deps: ['bad'], run: fx('stamp.mjs', file, 'after', '0') },
    top: { deps: ['later', 'after'], run: fx('stamp.mjs', file, 'top', '0') },
  });
  const r = await run(g, { jobs: 1, keepGoing: true });
  assert.equal(r.outcome.ok, false);
  const s = stamps(file);
  assert.ok(s.later, 'later ran');
  assert.equal(s.after, undefined);
  assert.equal(s.top, undefined);
  assert.deepEqual(Object.fromEntries(r.outcome.statuses), { bad: 'failed', later: 'ok', after: 'skipped-after-failure', top: 'skipped-after-failure' });
});

rigTest('dry-run starts nothing: a command that would create a file does not', async (rig) => {
  const g = graphOf(rig.dir, { make: { run: `touch '${rig.path('created')}'` }, top: { deps: ['make'], run: fx('count.mjs', rig.path('count')) } });
  const r = await run(g, { dryRun: true });
  assert.equal(r.outcome.ok, true);
  assert.equal(rig.exists('created'), false);
  assert.equal(rig.exists('count'), false);
  assert.deepEqual(r.events.map((e) => e.type), ['run-start', 'run-end']);
  assert.deepEqual([...r.outcome.statuses.values()], ['not-run', 'not-run']);
  const start = r.events[0]!;
  assert.ok(start.type === 'run-start' && start.dryRun);
});

const denyAll: Guard = {
  kind: 'test-deny',
  name: 'test-deny',
  description: 'always denies',
  evaluate: () => ({ guard: 'test-deny', kind: 'test-deny', outcome: 'deny', reason: 'never', remedy: 'do not', facts: {} }),
};
const allowAll: Guard = {
  kind: 'test-allow',
  name: 'test-allow',
  description: 'always allows',
  evaluate: () => ({ guard: 'test-allow', kind: 'test-allow', outcome: 'allow', reason: 'fine', facts: {} }),
};

rigTest('a guard denial: run-denied and nothing starts (not even nodes without guards)', async (rig) => {
  const g = graphOf(rig.dir, {
    dep: { guards: [allowAll], run: `touch '${rig.path('dep')}'` },
    top: { deps: ['dep'], guards: [denyAll], effect: 'mutating', run: `touch '${rig.path('top')}'` },
  }, ['top']);
  const r = await run(g);
  assert.equal(r.outcome.ok, false);
  assert.equal(r.outcome.denied, true);
  assert.equal(rig.exists('dep'), false);
  assert.equal(rig.exists('top'), false);
  assert.deepEqual(r.brief(['guard-decision', 'run-denied', 'task-start', 'run-end']), ['guard dep test-allow allow', 'guard top test-deny deny', 'run-denied', 'run-end']);
  const denied = r.events.find((e) => e.type === 'run-denied');
  assert.ok(denied?.type === 'run-denied');
  assert.deepEqual(denied.denials.map((d) => [d.node, d.path]), [['top', ['top']]]);
  assert.deepEqual(Object.fromEntries(r.outcome.statuses), { dep: 'not-run', top: 'denied' });
});

rigTest('the spawner is prepared (the fork server started) only after the guards passed, and only when a command will run', async (rig) => {
  const prepared: string[] = [];
  const spawner: Spawner = { spawn: (spec) => nodeSpawner.spawn(spec), prepare: () => void prepared.push('prepare') };
  const cmd = `touch '${rig.path('x')}'`;
  await run(graphOf(rig.dir, { top: { guards: [denyAll], effect: 'mutating', run: cmd } }), { spawner });
  assert.deepEqual(prepared, [], 'prepared for a denied run');
  await run(graphOf(rig.dir, { top: { run: cmd } }), { spawner, dryRun: true });
  assert.deepEqual(prepared, [], 'prepared for a dry run');
  await run(graphOf(rig.dir, { top: { run: () => undefined } }), { spawner });
  assert.deepEqual(prepared, [], 'prepared for a run without commands');
  const cache = createLocalCache({ dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: [], warn: () => {} });
  const g = () => graphOf(rig.dir, { dep: { run: cmd, outputs: ['x'] }, top: { guards: [allowAll], deps: ['dep'], run: cmd, outputs: ['x'] } });
  const r = await run(g(), { spawner, cache });
  await cache.close();
  assert.equal(r.outcome.ok, true);
  assert.deepEqual(prepared, ['prepare'], 'prepared once per run');
  prepared.length = 0;
  const again = await run(g(), { spawner, cache: createLocalCache({ dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: [], warn: () => {} }) });
  assert.deepEqual(again.brief(['cache']), ['cache dep hit', 'cache top hit']);
  assert.deepEqual(prepared, [], 'prepared for a run of cache hits only');
});

rigTest('the first commands wait for the spawner to be ready, a little while at most', async (rig) => {
  const order: string[] = [];
  const ready = (ms: number | undefined): Spawner => ({
    spawn: (spec) => (order.push('spawn'), nodeSpawner.spawn(spec)),
    prepare: () => (order.push('prepare'), ms === undefined ? new Promise(() => undefined) : new Promise((r) => setTimeout(() => (order.push('ready'), r(true)), ms))),
  });
  const g = () => graphOf(rig.dir, { a: { run: `touch '${rig.path('a')}'` }, b: { run: `touch '${rig.path('b')}'` } });
  const r = await run(g(), { spawner: ready(30) });
  assert.equal(r.outcome.ok, true);
  assert.deepEqual(order, ['prepare', 'ready', 'spawn', 'spawn'], 'both first commands waited for the helper');
  // A helper that never gets ready only delays the first commands: the run goes on without it.
  order.length = 0;
  const t0 = Date.now();
  const slow = await run(g(), { spawner: ready(undefined) });
  assert.equal(slow.outcome.ok, true);
  assert.deepEqual(order, ['prepare', 'spawn', 'spawn']);
  assert.ok(Date.now() - t0 < 10_000);
});

rigTest("a command's output follows its command-start, even when it arrives before the spawner says it started", async (rig) => {
  // A spawner that delivers output first and reports the start a moment later (a fork server's
  // "started" frame and the first output can reach fabric in one read).
  const spawner: Spawner = {
    spawn: (spec) => {
      spec.onOutput('stdout', 'early line\n');
      let resolveExit: (x: ExitInfo) => void = () => undefined;
      const exited = new Promise<ExitInfo>((r) => (resolveExit = r));
      const started = new Promise<void>((r) => setTimeout(r, 20));
      void started.then(() => {
        spec.onOutput('stdout', 'late line\n');
        resolveExit({ code: 0, signal: null, leftovers: false });
      });
      return { pid: 4242, started, exited, terminate: async () => undefined, terminated: false };
    },
  };
  const r = await run(graphOf(rig.dir, { a: { run: '/bin/true' } }), { spawner });
  assert.equal(r.outcome.ok, true);
  assert.deepEqual(
    r.events.filter((e) => e.type === 'command-start' || e.type === 'task-output' || e.type === 'command-end').map((e) => (e.type === 'task-output' ? `output ${e.chunk.trim()}` : e.type)),
    ['command-start', 'output early line', 'output late line', 'command-end'],
  );
});

rigTest('guards that allow: decisions are emitted, then the run proceeds', async (rig) => {
  const g = graphOf(rig.dir, { a: { guards: [allowAll], run: `touch '${rig.path('a')}'` } });
  const r = await run(g);
  assert.equal(r.outcome.ok, true);
  assert.equal(rig.exists('a'), true);
  assert.deepEqual(r.brief(), ['guard a test-allow allow', 'task-start a', 'task-success a ran']);
});

rigTest('okCodes count as success; ignoreFailure steps never fail the node; the first failing step stops the attempt', async (rig) => {
  const count = rig.path('count');
  const g = graphOf(rig.dir, {
    ok: { steps: [{ cmd: fx('exit.mjs', '3'), okCodes: [3] }, { cmd: fx('exit.mjs', '1'), ignoreFailure: true }, fx('count.mjs', count, 'ok-last')] },
    bad: { steps: [{ cmd: fx('exit.mjs', '4'), okCodes: [3] }, fx('count.mjs', count, 'bad-last')] },
  });
  const r = await run(g, { keepGoing: true });
  assert.equal(r.outcome.statuses.get('ok'), 'ok');
  assert.equal(r.outcome.statuses.get('bad'), 'failed');
  assert.equal(readFileSync(count, 'utf8'), 'ok-last\n');
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'exit-non-zero' && f.failure.status === 4);
  const ends = r.events.filter((e) => e.type === 'command-end' && e.node === 'ok').map((e) => (e.type === 'command-end' ? e.exitCode : null));
  assert.deepEqual(ends, [3, 1, 0]);
});

rigTest('a string command runs under bash -euo pipefail; an argv array runs without a shell', async (rig) => {
  const g = graphOf(rig.dir, {
    pipefail: { run: 'false | true; echo not-reached' },
    unset: { run: 'echo "$NOT_SET_ANYWHERE"' },
    argv: { run: ['/bin/echo', '$HOME', '; touch x', "it's"] },
  });
  const r = await run(g, { keepGoing: true });
  assert.equal(r.outcome.statuses.get('pipefail'), 'failed');
  assert.equal(r.output('pipefail'), '');
  assert.equal(r.outcome.statuses.get('unset'), 'failed');
  assert.equal(r.output('argv', 'stdout'), "$HOME ; touch x it's\n");
  assert.equal(rig.exists('x'), false);
});

rigTest('the environment is exactly node.env plus step env; cwd is node.cwd', async (rig) => {
  await rig.write({ 'sub/.keep': '' });
  const g = graphOf(rig.dir, {
    env: { env: { ONLY: 'this' }, cwd: rig.path('sub'), steps: [{ cmd: ['/usr/bin/env'], env: { STEP: 'yes' } }, ['/bin/pwd']] },
  });
  const before = process.env.FABRIC_SCHED_LEAK;
  process.env.FABRIC_SCHED_LEAK = 'leaked';
  try {
    const r = await run(g);
    assert.equal(r.outcome.ok, true);
    const lines = r.output('env', 'stdout').trim().split('\n');
    const names = lines.slice(0, -1).map((l) => l.split('=')[0]).sort();
    assert.deepEqual(names, ['HOME', 'LANG', 'ONLY', 'PATH', 'STEP']);
    assert.equal(lines.at(-1), rig.path('sub'));
  } finally {
    if (before === undefined) delete process.env.FABRIC_SCHED_LEAK;
    else process.env.FABRIC_SCHED_LEAK = before;
  }
});

rigTest('a command that cannot be started fails with 127 and says why', async (rig) => {
  const g = graphOf(rig.dir, { missing: { run: [rig.path('no-such-binary')] } });
  const r = await run(g);
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'exit-non-zero' && f.failure.status === 127, JSON.stringify(f));
  assert.match(r.output('missing', 'stderr'), /cannot start .*no-such-binary.*ENOENT/);
});

rigTest('a node without steps succeeds once its dependencies did', async (rig) => {
  const g = graphOf(rig.dir, { a: { run: fx('exit.mjs', '0') }, all: { deps: ['a'] } });
  const r = await run(g);
  assert.equal(r.outcome.ok, true);
  assert.deepEqual(r.brief(), ['task-start a', 'task-success a ran', 'task-start all', 'task-success all ran']);
});

rigTest('shuffleSeed: the same seed gives the same start order, another seed another order', async (rig) => {
  const specs = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`n${i}`, { run: fx('exit.mjs', '0') }]));
  const order = async (seed: number | undefined) =>
    (await run(graphOf(rig.dir, specs), { jobs: 1, ...(seed === undefined ? {} : { shuffleSeed: seed }) })).brief(['task-start']);
  const plain = await order(undefined);
  assert.deepEqual(plain, Object.keys(specs).map((n) => `task-start ${n}`));
  const a = await order(7);
  assert.deepEqual(await order(7), a);
  const b = await order(8);
  assert.notDeepEqual(a, b);
  assert.deepEqual([...a].sort(), [...plain].sort());
});

rigTest('jobs=Infinity and shell-quoted fixture strings work', async (rig) => {
  const g = graphOf(rig.dir, { q: { run: `${fxSh('exit.mjs', '0', "it's quoted")} && echo ok` } });
  const r = await run(g, { jobs: Infinity });
  assert.equal(r.outcome.ok, true);
  assert.equal(r.output('q'), "it's quoted\nok\n");
});

rigTest('run-start carries the plan with secret param values redacted', async (rig) => {
  const g = graphOf(rig.dir, { a: { params: { TOKEN: 'tok-1234567', ENV: 'dev', NOTE: 'has tok-1234567 inside' }, secrets: ['tok-1234567'], run: 'true' } });
  const r = await run(g, { dryRun: true });
  const start = r.events[0]!;
  assert.ok(start.type === 'run-start');
  assert.deepEqual(start.nodes[0]!.params, { TOKEN: '[REDACTED]', ENV: 'dev', NOTE: 'has [REDACTED] inside' });
  assert.ok(!JSON.stringify(r.events).includes('tok-1234567'));
});

test('sched-util: backoff doubles from the base and is capped; jobs are normalised; shuffle is a permutation', () => {
  for (const [base, attempt, ms] of [[250, 1, 250], [250, 2, 500], [250, 3, 1000], [100, 4, 800], [0, 5, 0], [10_000, 20, 300_000]] as const) {
    assert.equal(backoffMs(base, attempt), ms, `backoff(${base}, ${attempt})`);
  }
  for (const [given, jobs] of [[0, 1], [-3, 1], [2.7, 2], [NaN, 1], [Infinity, Infinity], [8, 8]] as const) assert.equal(normaliseJobs(given), jobs);
  const items = Array.from({ length: 20 }, (_, i) => i);
  const shuffled = shuffleInPlace([...items], seededRandom(42));
  assert.notDeepEqual(shuffled, items);
  assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
});

test.run();
