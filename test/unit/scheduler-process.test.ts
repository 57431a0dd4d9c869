// Process handling of runGraph: timeouts, retries, interrupts (no process survives), redaction, leftovers.
import * as assert from 'node:assert/strict';
import type { CacheProvider } from '../../lib/cache/types.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rigTest, test } from '../helpers/rig.js';
import { fx, fxSh, gone, graphOf, pidsIn, run, until } from './scheduler-helpers.js';
import { startForkServerSpawner, type Spawner } from '../../lib/engine/spawn.js';

// The timeouts below leave room for the hanging node processes to start (and record their pids)
// first: under the parallel suite on a slow machine two node starts can take over two seconds.
rigTest('a timeout kills the whole group (also a child ignoring SIGTERM) and fails with reason timeout', async (rig) => {
  const pids = rig.path('pids');
  const g = graphOf(rig.dir, {
    slow: { timeoutMs: 5000, run: `${fxSh('hang.mjs', pids)} & ${fxSh('hang.mjs', pids, 'ignore-term')} & wait` },
  });
  const t0 = Date.now();
  const r = await run(g, { graceMs: 300 });
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'timeout' && f.failure.ms === 5000, JSON.stringify(f));
  assert.ok(Date.now() - t0 >= 5000);
  const all = [...pidsIn(pids), ...r.pids('slow')];
  assert.equal(all.length, 3);
  for (const pid of all) assert.ok(gone(pid), `pid ${pid} survived the timeout`);
  assert.equal(r.outcome.statuses.get('slow'), 'failed');
});

rigTest('retries: a command failing twice then succeeding, with task-retry events and exponential backoff', async (rig) => {
  const counter = rig.path('counter');
  const g = graphOf(rig.dir, { flaky: { retries: 3, retryDelayMs: 40, run: fx('flaky.mjs', counter, '2') } });
  const r = await run(g);
  assert.equal(r.outcome.ok, true);
  assert.equal(readFileSync(counter, 'utf8').trim(), '3');
  const retries = r.events.flatMap((e) => (e.type === 'task-retry' ? [[e.attempt, e.delayMs, e.failure.reason]] : []));
  assert.deepEqual(retries, [[1, 40, 'exit-non-zero'], [2, 80, 'exit-non-zero']]);
  const starts = r.events.flatMap((e) => (e.type === 'task-start' ? [e.attempt] : []));
  assert.deepEqual(starts, [1, 2, 3]);
  assert.equal(r.output('flaky', 'stdout'), 'attempt 1\nattempt 2\nattempt 3\n');
});

rigTest('retries exhausted: the last failure is reported', async (rig) => {
  const counter = rig.path('counter');
  const g = graphOf(rig.dir, { flaky: { retries: 1, retryDelayMs: 5, run: fx('flaky.mjs', counter, '5') } });
  const r = await run(g);
  assert.equal(r.outcome.ok, false);
  assert.equal(readFileSync(counter, 'utf8').trim(), '2');
  assert.deepEqual(r.brief(['task-start', 'task-retry', 'task-failure']), ['task-start flaky', 'task-retry', 'task-start flaky', 'task-failure flaky exit-non-zero']);
});

rigTest('a timed-out attempt is retried', async (rig) => {
  const counter = rig.path('counter');
  const g = graphOf(rig.dir, { flaky: { retries: 1, timeoutMs: 5000, retryDelayMs: 5, run: fx('flaky.mjs', counter, '1', 'hang') } });
  const r = await run(g, { graceMs: 200 });
  assert.equal(r.outcome.ok, true, JSON.stringify(r.brief()));
  const retry = r.events.find((e) => e.type === 'task-retry');
  assert.ok(retry?.type === 'task-retry' && retry.failure.reason === 'timeout');
  for (const pid of r.pids('flaky')) assert.ok(gone(pid));
});

rigTest('an interrupt: run-interrupted, SIGTERM then SIGKILL to every group, no process survives, nothing else starts', async (rig) => {
  const pids = rig.path('pids');
  const ac = new AbortController();
  const g = graphOf(rig.dir, {
    a: { run: fx('hang.mjs', pids) },
    b: { run: `${fxSh('hang.mjs', pids)} & ${fxSh('hang.mjs', pids, 'ignore-term')} & wait` },
    c: { deps: ['a'], run: `touch '${rig.path('c')}'` },
    d: { run: `touch '${rig.path('d')}'` },
  });
  const running = run(g, { jobs: 2, signal: ac.signal, graceMs: 400 });
  await until(() => pidsIn(pids).length === 3, 10_000, 'three hanging processes');
  const t0 = Date.now();
  ac.abort('SIGINT');
  const r = await running;
  assert.ok(Date.now() - t0 >= 350, 'the child ignoring SIGTERM was given the grace period');
  assert.equal(r.outcome.interrupted, true);
  assert.equal(r.outcome.ok, false);
  const all = [...pidsIn(pids), ...r.pids()];
  assert.equal(all.length, 5);
  for (const pid of all) assert.ok(gone(pid), `pid ${pid} survived the interrupt`);
  assert.equal(rig.exists('c'), false);
  assert.equal(rig.exists('d'), false);
  const interrupted = r.events.find((e) => e.type === 'run-interrupted');
  assert.ok(interrupted?.type === 'run-interrupted' && interrupted.signal === 'SIGINT');
  assert.deepEqual(Object.fromEntries(r.outcome.statuses), { a: 'cancelled', b: 'cancelled', c: 'cancelled', d: 'cancelled' });
  assert.deepEqual(r.brief(['task-failure']).sort(), ['task-failure a aborted', 'task-failure b aborted', 'task-failure c aborted', 'task-failure d aborted']);
  const endEv = r.events.at(-1);
  assert.ok(endEv?.type === 'run-end' && endEv.interrupted && !endEv.ok);
});

rigTest('an interrupt during a retry backoff stops at once and does not retry', async (rig) => {
  const counter = rig.path('counter');
  const ac = new AbortController();
  const g = graphOf(rig.dir, { flaky: { retries: 5, retryDelayMs: 20_000, run: fx('flaky.mjs', counter, '9') } });
  const running = run(g, { signal: ac.signal, emit: (e) => e.type === 'task-retry' && ac.abort('SIGTERM') });
  const r = await running;
  assert.equal(r.outcome.interrupted, true);
  assert.equal(readFileSync(counter, 'utf8').trim(), '1');
  assert.deepEqual(r.brief(['task-start', 'task-retry', 'run-interrupted', 'task-failure']), ['task-start flaky', 'task-retry', 'run-interrupted', 'task-failure flaky aborted']);
});

rigTest('an already aborted signal starts nothing', async (rig) => {
  const ac = new AbortController();
  ac.abort('SIGTERM');
  const r = await run(graphOf(rig.dir, { a: { run: `touch '${rig.path('a')}'` } }), { signal: ac.signal });
  assert.equal(r.outcome.interrupted, true);
  assert.equal(rig.exists('a'), false);
  assert.deepEqual(r.brief(['task-start', 'run-interrupted', 'task-failure']), ['run-interrupted', 'task-failure a aborted']);
});

rigTest('the secrets of an env file a step loads are learned when that step starts (an earlier step may write the file)', async (rig) => {
  const g = graphOf(rig.dir, {
    leak: {
      secretPatterns: ['TOKEN'],
      steps: [
        // The value is put together by the step, so that no command text spells it.
        { cmd: `printf 'API_TOKEN=tok-from-%s\\nREGION=eu-west-1\\n' "file-1" > runner.env` },
        { cmd: 'set -a; . ./runner.env; set +a; echo "token=$API_TOKEN region=$REGION"; echo "$API_TOKEN" >&2; exit 3', secretEnvFiles: ['runner.env'] },
      ],
    },
    missing: { secretPatterns: ['TOKEN'], steps: [{ cmd: 'echo no file here', secretEnvFiles: ['absent.env', '/dev/null', '.'] }] },
  });
  const r = await run(g, { keepGoing: true });
  assert.equal(r.output('leak', 'stdout'), 'token=[REDACTED] region=eu-west-1\n');
  assert.equal(r.output('leak', 'stderr'), '[REDACTED]\n');
  assert.ok(!JSON.stringify(r.events).includes('tok-from-file-1'), 'no event carries the value');
  assert.equal(r.output('missing', 'stdout'), 'no file here\n', 'a missing file, a device and a directory are skipped');
});

rigTest('logs replayed from the cache are redacted again with what is secret now: the node, and its env files as they are', async (rig) => {
  writeFileSync(join(rig.dir, 'runner.env'), 'API_TOKEN=rotated-into-file-42\n');
  const stored = [{ stream: 'stdout' as const, chunk: 'token=rotated-into-file-42 param=param-secret-7\n' }, { stream: 'stderr' as const, chunk: 'plain\n' }];
  const cache: CacheProvider = {
    lookup: async () => ({ result: 'hit', fingerprint: 'f'.repeat(64), logs: stored, restored: [] }),
    save: async () => assert.fail('a hit is not saved'),
    missingOutputs: async () => [],
  };
  const g = graphOf(rig.dir, { hit: { secrets: ['param-secret-7'], secretPatterns: ['TOKEN'], steps: [{ cmd: 'false', secretEnvFiles: ['runner.env'] }] } });
  const r = await run(g, { cache });
  assert.equal(r.outcome.ok, true);
  assert.equal(r.output('hit', 'stdout'), 'token=[REDACTED] param=[REDACTED]\n');
  assert.equal(r.output('hit', 'stderr'), 'plain\n');
});

rigTest('the cache is told before each node that runs starts (gates and mutating nodes too), never for a hit', async (rig) => {
  const calls: string[] = [];
  const cache: CacheProvider = {
    lookup: async (node) => (node.id === 'hit' ? { result: 'hit', fingerprint: 'f'.repeat(64), logs: [], restored: [] } : { result: 'miss', fingerprint: 'e'.repeat(64) }),
    save: async () => undefined,
    missingOutputs: async () => [],
    willRun: (node) => void calls.push(`willRun ${node.id}`),
  };
  const g = graphOf(rig.dir, {
    hit: { run: 'true' },
    ro: { deps: ['hit'], run: 'true' },
    mut: { deps: ['ro'], effect: 'mutating', run: 'true' },
    gated: { deps: ['mut'], run: 'true', gate: { description: 'a live check', warnCode: 3, allowWarnVar: undefined } },
  });
  const r = await run(g, {
    cache,
    jobs: 1,
    emit: (e) => {
      if (e.type === 'task-start') calls.push(`task-start ${e.node}`);
    },
  });
  assert.equal(r.outcome.ok, true, JSON.stringify(r.brief()));
  assert.deepEqual(calls, ['willRun ro', 'task-start ro', 'willRun mut', 'task-start mut', 'willRun gated', 'task-start gated']);
});

rigTest('a secret split across two output chunks is redacted; it never appears in any chunk', async (rig) => {
  const secret = 'hunter2-very-secret';
  const g = graphOf(rig.dir, {
    leak: { secrets: [secret], steps: [fx('chunks.mjs', '150', 'before hunter2-ve', 'ry-secret after\n'), { cmd: `echo "${secret}" >&2` }] },
  });
  const r = await run(g);
  assert.equal(r.outcome.ok, true);
  const chunks = r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : []));
  assert.ok(chunks.length >= 2);
  for (const c of chunks) {
    assert.ok(!c.includes(secret), `chunk leaked: ${c}`);
    assert.ok(!c.includes('ry-secret'), `chunk leaked a tail: ${c}`);
    assert.ok(!c.includes('hunter2'), `chunk leaked a head: ${c}`);
  }
  assert.equal(r.output('leak', 'stdout'), 'before [REDACTED] after\n');
  assert.equal(r.output('leak', 'stderr'), '[REDACTED]\n');
  // The two writes really were two chunks: the first one's safe part came out before the second write.
  const stdout = r.events.filter((e) => e.type === 'task-output' && e.stream === 'stdout').length;
  assert.ok(stdout >= 2, `expected several stdout chunks, got ${stdout}`);
});

rigTest('processes a command leaves behind in its group are terminated, with a warning', async (rig) => {
  const pids = rig.path('pids');
  const g = graphOf(rig.dir, { bg: { run: `${fxSh('hang.mjs', pids)} & while [ ! -s '${pids}' ]; do sleep 0.05; done; echo started` } });
  const r = await run(g, { graceMs: 300 });
  assert.equal(r.outcome.ok, true);
  assert.equal(r.output('bg'), 'started\n');
  const [pid] = pidsIn(pids);
  assert.ok(pid && gone(pid), 'the background process was terminated');
  assert.ok(r.events.some((e) => e.type === 'warning' && e.node === 'bg' && /left processes running/.test(e.message)));
});

/** Runs `fn` with a spawner on its own native fork server (none without a C compiler: then nothing runs). */
async function withNativeServer(fn: (server: NonNullable<Awaited<ReturnType<typeof startForkServerSpawner>>>) => Promise<void>): Promise<void> {
  const server = await startForkServerSpawner('native');
  if (!server) return; // no C compiler here
  try {
    await fn(server);
  } finally {
    server.close();
  }
}

rigTest('a job slot goes to the next node as its command ends (held on the fork server); the event stream is unchanged: -j respected, each node in order', async (rig) => {
  await withNativeServer(async (server) => {
    let held = 0;
    const sent: { sent: boolean }[] = [];
    const spawner: Spawner = {
      spawn: (spec) => server.spawn(spec),
      after: (running, spec) => {
        const h = server.after!(running, spec);
        if (h) (held++, sent.push(h));
        return h;
      },
    };
    const specs: Record<string, { run: string; deps?: string[] }> = {};
    for (let i = 0; i < 12; i++) specs[`n${i}`] = { run: `echo out-${i}; touch '${rig.path(`ran-${i}`)}'` };
    specs.all = { run: 'true', deps: Object.keys(specs) };
    const r = await run(graphOf(rig.dir, specs), { spawner, jobs: 2 });
    assert.equal(r.outcome.ok, true);
    assert.ok(held > 0 && sent.some((h) => h.sent), `held ${held}, started ${sent.filter((h) => h.sent).length}`);
    let running = 0;
    let most = 0;
    for (const e of r.events) {
      if (e.type === 'task-start') most = Math.max(most, ++running);
      if (e.type === 'task-success' || e.type === 'task-failure') running--;
    }
    assert.ok(most <= 2, `${most} nodes ran at once at -j 2`);
    for (let i = 0; i < 12; i++) {
      assert.equal(r.output(`n${i}`, 'stdout'), `out-${i}\n`);
      assert.ok(rig.exists(`ran-${i}`));
      const order = ['task-start', 'command-start', 'task-output', 'command-end', 'task-success'].map((t) => r.index((e) => e.type === t && 'node' in e && e.node === `n${i}`));
      assert.deepEqual([...order].sort((a, b) => a - b), order, `n${i}: ${order.join(' ')}`);
    }
  });
});

rigTest('a node held behind a long command takes a slot that frees elsewhere when nothing else is ready', async (rig) => {
  await withNativeServer(async (server) => {
    let held = 0;
    const spawner: Spawner = { spawn: (spec) => server.spawn(spec), after: (running, spec) => ((held += 1), server.after!(running, spec)) };
    // short and long start at once (in rank order; the second start fills the slots, so x is held
    // behind long). short ends and nothing else is ready: x takes its slot instead of waiting for long.
    const g = graphOf(rig.dir, { short: { run: 'true' }, long: { run: 'sleep 1.5' }, x: { run: 'true' } });
    const r = await run(g, { spawner, jobs: 2 });
    assert.equal(r.outcome.ok, true);
    assert.ok(held > 0, 'a node was held');
    const longEnd = r.index((e) => e.type === 'task-success' && e.node === 'long');
    for (const x of ['short', 'x']) {
      const start = r.index((e) => e.type === 'task-start' && e.node === x);
      assert.ok(start >= 0 && start < longEnd, `${x} waited for long: ${r.brief(['task-start', 'task-success']).join(' / ')}`);
    }
  });
});

rigTest('after a failure no held command starts: fail-fast stops the run as before', async (rig) => {
  await withNativeServer(async (server) => {
    const specs: Record<string, { run: string }> = { bad: { run: 'sleep 0.2; exit 4' } };
    for (let i = 0; i < 8; i++) specs[`n${i}`] = { run: `sleep 0.3; touch '${rig.path(`ran-${i}`)}'` };
    const r = await run(graphOf(rig.dir, specs), { spawner: server, jobs: 2 });
    assert.equal(r.outcome.ok, false);
    const failedAt = r.index((e) => e.type === 'task-failure' && e.node === 'bad');
    const startsAfter = r.events.slice(failedAt).filter((e) => e.type === 'task-start');
    assert.deepEqual(startsAfter, [], 'a node started after the failure was seen');
    const ran = Array.from({ length: 8 }, (_, i) => rig.exists(`ran-${i}`)).filter(Boolean).length;
    const started = r.events.filter((e) => e.type === 'task-start' && e.node !== 'bad').length;
    assert.equal(ran, started, 'every command that ran belongs to a node the event stream started');
  });
});

test.run();
