// `fabric run` end to end through the real CLI, with the JSON event stream as the oracle.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture, rigTest, test, type Rig } from '../helpers/rig.js';
import { processAlive } from '../../lib/engine/spawn.js';
import type { FabricEvent } from '../../lib/engine/events.js';

const node = process.execPath;
const FF = (body: string) => `import { task } from 'fabric';\nconst NODE = ${JSON.stringify(node)};\nconst fx = (n: string) => ${JSON.stringify(fixture('') + '/')} + n;\n${body}\n`;

function intervals(log: string): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  for (const line of log.trim().split('\n')) {
    const [name, what, t] = line.split(' ');
    const cur = m.get(name!) ?? [0, 0];
    if (what === 'start') cur[0] = Number(t);
    else cur[1] = Number(t);
    m.set(name!, cur);
  }
  return m;
}
const overlap = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];

async function waitFor(rig: Rig, rel: string, lines: number, ms = 45_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const got = readFileSync(rig.path(rel), 'utf8').trim().split('\n').filter(Boolean);
      if (got.length >= lines) return got;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${rel} did not get ${lines} lines`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

rigTest('a diamond runs its shared dependency once', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('d', { effect: 'read-only', run: [[NODE, fx('count.mjs'), 'count.log', 'd']] });
task('b', { effect: 'read-only', deps: ['d'], run: [[NODE, fx('count.mjs'), 'count.log', 'b']] });
task('c', { effect: 'read-only', deps: ['d'], run: [[NODE, fx('count.mjs'), 'count.log', 'c']] });
task('a', { effect: 'read-only', deps: ['b', 'c'], run: [[NODE, fx('count.mjs'), 'count.log', 'a']] });`),
  });
  const r = await rig.fabric(['run', 'a', '--output=json', '--no-evidence']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await rig.read('count.log')).trim().split('\n').sort(), ['a', 'b', 'c', 'd']);
  const starts = r.brief(['task-start']);
  assert.equal(starts.length, 4);
  assert.equal(starts[0], 'task-start d');
  assert.equal(starts[3], 'task-start a');
});

rigTest('independent tasks overlap with -j2 and not with -j1; a mutex prevents overlap', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('x', { effect: 'read-only', run: [[NODE, fx('stamp.mjs'), 'times.log', 'x', '400']] });
task('y', { effect: 'read-only', run: [[NODE, fx('stamp.mjs'), 'times.log', 'y', '400']] });
task('mx', { effect: 'read-only', mutex: 'proxmox-api', run: [[NODE, fx('stamp.mjs'), 'mutex.log', 'mx', '400']] });
task('my', { effect: 'read-only', mutex: 'proxmox-api', run: [[NODE, fx('stamp.mjs'), 'mutex.log', 'my', '400']] });
task('both', { effect: 'read-only', deps: ['x', 'y'] });
task('mboth', { effect: 'read-only', deps: ['mx', 'my'] });`),
  });
  const two = await rig.fabric(['run', 'both', '-j2', '--output=json', '--no-evidence']);
  assert.equal(two.code, 0, two.stderr);
  let t = intervals(await rig.read('times.log'));
  assert.ok(overlap(t.get('x')!, t.get('y')!), `expected overlap with -j2: ${JSON.stringify([...t])}`);
  await rig.write({ 'times.log': '' });
  const one = await rig.fabric(['run', 'both', '-j', '1', '--output=json', '--no-evidence']);
  assert.equal(one.code, 0, one.stderr);
  t = intervals(await rig.read('times.log'));
  assert.ok(!overlap(t.get('x')!, t.get('y')!), `expected no overlap with -j1: ${JSON.stringify([...t])}`);
  const m = await rig.fabric(['run', 'mboth', '-j4', '--output=json', '--no-evidence']);
  assert.equal(m.code, 0, m.stderr);
  const mt = intervals(await rig.read('mutex.log'));
  assert.ok(!overlap(mt.get('mx')!, mt.get('my')!), `mutex holders overlapped: ${JSON.stringify([...mt])}`);
});

rigTest('a failure: dependents never start, exit 1; --keep-going runs what is not downstream', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('bad', { effect: 'read-only', run: [[NODE, fx('exit.mjs'), '3', 'boom']] });
task('slow', { effect: 'read-only', run: [[NODE, fx('wait-for.mjs'), '.release-slow']] });
task('after-slow', { effect: 'read-only', deps: ['slow'], run: [[NODE, fx('count.mjs'), 'after.log', 'after-slow']] });
task('needs-bad', { effect: 'read-only', deps: ['bad'], run: [[NODE, fx('count.mjs'), 'needs.log', 'needs-bad']] });
task('all', { effect: 'read-only', deps: ['bad', 'after-slow', 'needs-bad'] });`),
  });
  // `slow` ends only once `bad` has failed (seen in the streamed event log), so nothing races.
  const releaseAfterFailure = async () => {
    await waitFor(rig, 'events.ndjson', 1);
    for (;;) {
      const text = readFileSync(rig.path('events.ndjson'), 'utf8');
      if (/"type":"task-failure","node":"bad"/.test(text)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await rig.release('slow');
  };
  const [ff] = await Promise.all([rig.fabric(['run', 'all', '-j2', '--output=plain', '--events', 'events.ndjson', '--no-evidence']), releaseAfterFailure()]);
  ff.events.push(...readFileSync(rig.path('events.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as FabricEvent));
  assert.equal(ff.code, 1);
  const fail = ff.events.find((e) => e.type === 'task-failure' && e.node === 'bad');
  assert.ok(fail && fail.type === 'task-failure' && fail.failure.reason === 'exit-non-zero' && fail.failure.status === 3);
  assert.ok(ff.brief().includes('task-failure needs-bad dependency-failed'));
  assert.ok(!rig.exists('needs.log'));
  assert.ok(!rig.exists('after.log'), 'fail-fast: nothing new starts after the failure');
  await rig.release('slow');
  const kg = await rig.fabric(['run', 'all', '-j2', '--keep-going', '--output=json', '--no-evidence']);
  assert.equal(kg.code, 1);
  assert.equal((await rig.read('after.log')).trim(), 'after-slow');
  assert.ok(!rig.exists('needs.log'));
  assert.ok(kg.brief().includes('task-failure all dependency-failed'));
});

rigTest('SIGINT: every process group is killed (even one ignoring SIGTERM), exit 130', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('h1', { effect: 'read-only', run: [[NODE, fx('hang.mjs'), 'pids.log']] });
task('h2', { effect: 'read-only', run: 'node ' + fx('hang.mjs') + ' pids.log ignore-term & node ' + fx('hang.mjs') + ' pids.log; wait' });
task('both', { effect: 'read-only', deps: ['h1', 'h2'] });`),
  });
  let child: import('node:child_process').ChildProcess | undefined;
  const done = rig.fabric(['run', 'both', '-j2', '--output=json', '--no-evidence'], { onSpawn: (c) => (child = c), env: { PATH: `${node.replace(/\/node$/, '')}:${process.env['PATH'] ?? ''}` } });
  const pids = (await waitFor(rig, 'pids.log', 3)).map(Number);
  child!.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130, r.stderr);
  assert.ok(r.events.some((e) => e.type === 'run-interrupted'));
  // A zombie whose parent died is not a survivor (this sandbox's init may not reap it at once).
  for (const pid of pids) assert.equal(processAlive(pid), false, `pid ${pid} survived`);
}, { ms: 90_000 });

rigTest('timeout fails the task with reason timeout; retries rerun a flaky task', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('slow', { effect: 'read-only', timeout: '5s', run: [[NODE, fx('hang.mjs'), 'slow.pids']] });
task('flaky', { effect: 'read-only', retries: 2, retryDelay: 10, run: [[NODE, fx('flaky.mjs'), 'flaky.count', '2']] });`),
  });
  const t = await rig.fabric(['run', 'slow', '--output=json', '--no-evidence']);
  assert.equal(t.code, 1);
  assert.ok(t.brief().includes('task-failure slow timeout'));
  const pid = Number((await rig.read('slow.pids')).trim());
  assert.equal(processAlive(pid), false, `pid ${pid} survived the timeout`);
  const f = await rig.fabric(['run', 'flaky', '--output=json', '--no-evidence']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal((await rig.read('flaky.count')).trim(), '3');
  assert.equal(f.events.filter((e) => e.type === 'task-retry').length, 2);
});

rigTest('--dry-run prints the plan and starts no process', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('make-file', { description: 'writes a file', params: { NAME: { default: 'created.txt' } }, run: 'echo hi > {{NAME}}' });
task('top', { deps: ['make-file'], run: [[NODE, fx('count.mjs'), 'top.log']] });`),
  });
  const plain = await rig.fabric(['run', 'top', 'NAME=other file.txt', '--dry-run', '--output=plain']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /echo hi > 'other file\.txt'/);
  assert.match(plain.stdout, /nothing was run/i);
  const json = await rig.fabric(['run', 'top', '--dry-run', '--output=json']);
  assert.equal(json.code, 0);
  assert.deepEqual(json.brief(['task-start']), []);
  const start = json.events.find((e) => e.type === 'run-start');
  assert.ok(start && start.type === 'run-start' && start.dryRun);
  assert.deepEqual(start.nodes.map((n) => n.id), ['make-file', 'top']);
  assert.ok(!rig.exists('created.txt') && !rig.exists('other file.txt') && !rig.exists('top.log'));
});

rigTest('Make-style VAR=value params and the environment reach commands; undeclared variables do not', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('show', { effect: 'read-only', params: { ENV: { default: 'samakia-prod' } }, env: ['PASSED'], run: 'echo "ENV=$ENV PASSED=\${PASSED:-} DROPPED=\${DROPPED:-}"' });`),
  });
  const r = await rig.fabric(['show', 'ENV=samakia-dns', '--output=json', '--no-evidence'], { env: { PASSED: 'yes', DROPPED: 'no' } });
  assert.equal(r.code, 0, r.stderr);
  const out = r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join('');
  assert.match(out, /ENV=samakia-dns PASSED=yes DROPPED=\n/);
  // A declared passthrough variable given on the command line wins over the environment (make exports it).
  const cli = await rig.fabric(['show', 'PASSED=from-cli', '--output=json', '--no-evidence'], { env: { PASSED: 'yes' } });
  assert.match(cli.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join(''), /PASSED=from-cli /);
});

rigTest('in CI mode every command sees CI=1, whatever spelling turned CI mode on', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('ci', { effect: 'read-only', run: 'echo "CI=\${CI:-unset}"' });`) });
  const text = (r: { events: FabricEvent[] }) => r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join('');
  assert.equal(text(await rig.fabric(['ci', '--output=json', '--no-evidence'], { env: { CI: 'true' } })), 'CI=1\n');
  assert.equal(text(await rig.fabric(['ci', '--ci', '--output=json', '--no-evidence'])), 'CI=1\n');
  assert.equal(text(await rig.fabric(['ci', '--output=json', '--no-evidence'], { env: { CI: 'false' } })), 'CI=unset\n');
});

rigTest('a task function can register a secret found at run time; later output is redacted', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
import { readFileSync } from 'node:fs';
task('uses-env-file', {
  effect: 'read-only',
  run: async (ctx) => {
    const token = readFileSync('runner.env', 'utf8').trim();
    ctx.secret(token);
    ctx.log('token is ' + token);
    await ctx.exec(['sh', '-c', 'printf "%s\\n" "$0"', token]);
  },
});`),
    'runner.env': 'tok-9f8e7d6c5b4a\n',
  });
  const r = await rig.fabric(['run', 'uses-env-file', '--output=json', '--no-evidence']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('tok-9f8e7d6c5b4a'), 'the secret leaked into the event stream');
  const out = r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join('');
  assert.equal(out, 'token is [REDACTED]\n[REDACTED]\n');
});

rigTest('a missing working directory is named as the cause', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', { effect: 'read-only', cwd: 'no/such/dir', run: 'echo hi; true' });`) });
  const r = await rig.fabric(['run', 'a', '--output=json', '--no-evidence']);
  assert.equal(r.code, 1);
  const err = r.events.flatMap((e) => (e.type === 'task-output' && e.stream === 'stderr' ? [e.chunk] : [])).join('');
  assert.match(err, /cannot start `echo hi; true`: the working directory .*no\/such\/dir does not exist/);
});

test.run();
