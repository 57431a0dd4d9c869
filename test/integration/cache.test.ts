// The content cache through the real CLI: incremental runs (the fixture command counts executions),
// restored outputs, missing outputs, corruption, two concurrent runs, and `fabric explain`.
import * as assert from 'node:assert/strict';
import { readdir, readFile, rm, stat, truncate, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { inlineBytes, Store } from '../../lib/cache/store.js';
import { fixture, rigTest, test, type Rig } from '../helpers/rig.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A bash command that records one execution of `name` in count.log. */
const count = (name: string) => `${q(process.execPath)} ${q(fixture('count.mjs'))} count.log ${name}`;
const FF = (body: string) => `import { task } from 'fabric';\n${body}\n`;

async function counts(rig: Rig): Promise<string[]> {
  const text = await readFile(rig.path('count.log'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean);
}

const PIPELINE = FF(`
task('gen', { effect: 'read-only', inputs: ['src/**'], outputs: ['out/gen.txt'],
  run: ${JSON.stringify(`${count('gen')} && mkdir -p out && cat src/*.txt > out/gen.txt && echo generated`)} });
task('lint', { effect: 'read-only', deps: ['gen'], inputs: ['out/gen.txt'], env: ['REGION', 'API_TOKEN'],
  params: { LEVEL: { default: 'low' } }, run: ${JSON.stringify(`${count('lint')} {{LEVEL}}`)} });
`);

async function setup(rig: Rig, fabricfile = PIPELINE): Promise<void> {
  await rig.write({ 'fabricfile.ts': fabricfile, 'src/a.txt': 'alpha\n', 'src/b.txt': 'beta\n' });
}

const run = async (rig: Rig, args: string[], env: Record<string, string | undefined> = {}) => {
  const r = await rig.fabric(['run', ...args, '--output=json', '--no-evidence'], { env });
  if (r.code !== 0 && r.code !== 1) throw new Error(`fabric run ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  if (!r.events.some((e) => e.type === 'run-end')) throw new Error(`fabric run ${args.join(' ')}: no run-end event (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r;
};
const brief = (r: { brief(t?: readonly string[]): string[] }) => r.brief(['task-success', 'task-failure']);

rigTest('a second run with no change runs nothing; its logs are replayed as cached', async (rig) => {
  await setup(rig);
  const first = await run(rig, ['lint']);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(brief(first), ['task-success gen ran', 'task-success lint ran']);
  const second = await run(rig, ['lint']);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(second.brief(['cache', 'task-success']), ['cache gen hit', 'task-success gen cached', 'cache lint hit', 'task-success lint cached']);
  assert.deepEqual(await counts(rig), ['gen', 'lint low']);
  const replayed = second.events.filter((e) => e.type === 'task-output' && e.replayed);
  assert.deepEqual(replayed.map((e) => e.type === 'task-output' && [e.node, e.chunk.trim()]), [['gen', 'generated']]);
});

rigTest('one changed input byte reruns the task, and its changed output reruns the dependent', async (rig) => {
  await setup(rig);
  await run(rig, ['lint']);
  await writeFile(rig.path('src/a.txt'), 'alphA\n');
  const r = await run(rig, ['lint']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(brief(r), ['task-success gen ran', 'task-success lint ran']);
  const miss = r.events.find((e) => e.type === 'cache' && e.node === 'gen');
  assert.equal(miss?.type === 'cache' && miss.detail, 'input changed: src/a.txt');
  assert.deepEqual(await counts(rig), ['gen', 'lint low', 'gen', 'lint low']);
});

rigTest('a declared env var change reruns; an undeclared one does not; a secret one is never stored in clear', async (rig) => {
  await setup(rig);
  await run(rig, ['lint'], { REGION: 'eu', UNRELATED: '1', API_TOKEN: 'tok-secret-1111' });
  const undeclared = await run(rig, ['lint'], { REGION: 'eu', UNRELATED: '2', API_TOKEN: 'tok-secret-1111' });
  assert.deepEqual(brief(undeclared), ['task-success gen cached', 'task-success lint cached']);
  const declared = await run(rig, ['lint'], { REGION: 'us', UNRELATED: '2', API_TOKEN: 'tok-secret-1111' });
  assert.deepEqual(brief(declared), ['task-success gen cached', 'task-success lint ran']);
  const miss = declared.events.find((e) => e.type === 'cache' && e.node === 'lint');
  assert.equal(miss?.type === 'cache' && miss.detail, 'env REGION: "eu" → "us"');
  const secret = await run(rig, ['lint'], { REGION: 'us', API_TOKEN: 'tok-secret-2222' });
  assert.deepEqual(brief(secret), ['task-success gen cached', 'task-success lint ran']);
  const smiss = secret.events.find((e) => e.type === 'cache' && e.node === 'lint');
  assert.equal(smiss?.type === 'cache' && smiss.detail, 'env API_TOKEN changed (secret, value not shown)');
  assert.ok(!secret.stdout.includes('tok-secret'), 'secret in the event stream');
  const stored = await readTree(rig.path('.fabric', 'cache'));
  assert.ok(!stored.includes('tok-secret-1111') && !stored.includes('tok-secret-2222'), 'secret in the store');
});

rigTest('a command text change reruns the task', async (rig) => {
  await setup(rig);
  await run(rig, ['lint']);
  await rig.write({ 'fabricfile.ts': PIPELINE.replace(`{{LEVEL}}`, `{{LEVEL}} strict`) });
  const r = await run(rig, ['lint']);
  assert.deepEqual(brief(r), ['task-success gen cached', 'task-success lint ran']);
  const miss = r.events.find((e) => e.type === 'cache' && e.node === 'lint');
  assert.match(miss?.type === 'cache' ? miss.detail ?? '' : '', /^command changed \(step 1\): .*count\.log lint low → .*count\.log lint low strict$/);
});

rigTest('a deleted output is restored from the cache without running; --force runs; --no-cache neither reads nor writes', async (rig) => {
  await setup(rig);
  await run(rig, ['gen']);
  await chmod(rig.path('out/gen.txt'), 0o640);
  await run(rig, ['gen', '--force']); // records the new mode
  await rm(rig.path('out'), { recursive: true });
  const r = await run(rig, ['gen']);
  assert.deepEqual(brief(r), ['task-success gen cached']);
  assert.equal(await rig.read('out/gen.txt'), 'alpha\nbeta\n');
  assert.deepEqual(await counts(rig), ['gen', 'gen']);
  const forced = await run(rig, ['gen', '--force']);
  assert.deepEqual(forced.brief(['cache', 'task-success']), ['cache gen miss', 'task-success gen ran']);
  await rm(rig.path('.fabric'), { recursive: true });
  const off = await run(rig, ['gen', '--no-cache']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(brief(off), ['task-success gen ran']);
  assert.equal(rig.exists('.fabric/cache'), false);
});

rigTest('an output that was not produced fails the task (and is not stored)', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('build', { effect: 'read-only', inputs: ['src/**'], outputs: ['out/made.txt', 'out/never.txt'],
      run: ${JSON.stringify(`${count('build')} && mkdir -p out && echo x > out/made.txt`)} });`),
    'src/a.txt': 'a',
  });
  const r = await run(rig, ['build']);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(brief(r), ['task-failure build missing-output']);
  const f = r.events.find((e) => e.type === 'task-failure');
  assert.deepEqual(f?.type === 'task-failure' && f.failure.reason === 'missing-output' && f.failure.paths, ['out/never.txt']);
  const again = await run(rig, ['build']);
  assert.deepEqual(brief(again), ['task-failure build missing-output'], 'a failed task is never cached');
  assert.deepEqual(await counts(rig), ['build', 'build']);
});

rigTest('a truncated cache entry is a miss with exactly one warning, then is replaced', async (rig) => {
  await setup(rig);
  await run(rig, ['gen']);
  const entries = await listFiles(rig.path('.fabric', 'cache', 'entries'));
  assert.equal(entries.length, 1);
  await truncate(entries[0]!, Math.floor((await stat(entries[0]!)).size / 2));
  const r = await run(rig, ['gen']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.brief(['cache', 'task-success']), ['cache gen corrupt', 'task-success gen ran']);
  const warnings = r.events.filter((e) => e.type === 'warning');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!.type === 'warning' ? warnings[0]!.message : '', /cache entry [0-9a-f]{12} is not valid JSON.*removed it/);
  const after = await run(rig, ['gen']);
  assert.deepEqual(after.brief(['cache', 'warning']), ['cache gen hit']);
});

rigTest('two concurrent runs on one repo leave a valid store', async (rig) => {
  const N = 16;
  const tasks = Array.from({ length: N }, (_, i) =>
    `task('t${i}', { effect: 'read-only', inputs: ['src/**'], outputs: ['out/t${i}/**'], run: ${JSON.stringify(`${count(`t${i}`)} && mkdir -p out/t${i} && for k in 1 2 3; do seq 1 2000 | sed "s/^/t${i}-$k /" > out/t${i}/f$k; done && echo t${i} done`)} });`,
  ).join('\n');
  await rig.write({ 'fabricfile.ts': FF(`${tasks}\ntask('all', { effect: 'read-only', deps: [${Array.from({ length: N }, (_, i) => `'t${i}'`).join(', ')}] });`), 'src/in.txt': 'in' });
  const [a, b] = await Promise.all([run(rig, ['all', '-j4']), run(rig, ['all', '-j4'])]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  // Both runs execute every task and write the same outputs: an output the other run rewrote before
  // this one stored it is not stored (that warning, and no other).
  for (const w of [...a.events, ...b.events]) {
    if (w.type === 'warning') assert.match(w.message, /^cache: output out\/t\d+\/f\d of t\d+ changed after the task ended \(is another process writing it\?\): not stored$/);
  }
  const store = new Store(rig.path('.fabric', 'cache'));
  let stored = 0;
  for (let i = 0; i < N; i++) {
    const rec = await store.readRun(`t${i}`);
    assert.ok(rec?.lastSuccess, `t${i} recorded`);
    const e = await store.readEntry(rec.lastSuccess.fingerprint);
    assert.notEqual(e.state, 'corrupt', `t${i} entry`);
    if (e.state !== 'ok') continue; // both runs saw the other rewrite an output: neither stored it
    stored++;
    assert.equal(e.entry.outputs.length, 3);
    // Stored content verifies. (That it is a whole output of one run, never a mix, is what the check
    // above is for; it narrows the race to a rewrite that straddles the whole store, which is not
    // asserted here: the unit test of the check is deterministic.)
    for (const o of e.entry.outputs) {
      const bytes = o.inline ? inlineBytes(o) : await store.readBlob(o.sha256);
      assert.ok(Buffer.isBuffer(bytes), `stored content of t${i}/${o.path} verifies`);
    }
  }
  assert.deepEqual((await listFiles(rig.path('.fabric'))).filter((f) => f.endsWith('.tmp')), []);
  // A third run is served from the cache where an entry was stored, and reruns the rest.
  await rm(rig.path('out'), { recursive: true });
  const c = await run(rig, ['all']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.brief(['task-success']).filter((l) => l.endsWith(' cached')).length, stored);
  assert.equal(c.brief(['task-success']).length, N + 1);
}, { ms: 90_000 });

rigTest('explain: fresh after a run; then names the changed file, env var, param and dependency', async (rig) => {
  await setup(rig);
  assert.match((await rig.fabric(['explain', 'lint'])).stdout, /^lint: never ran: never ran$/m);
  await run(rig, ['lint'], { REGION: 'eu' });
  const fresh = await rig.fabric(['explain', 'lint', '--all'], { env: { REGION: 'eu' } });
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, /^gen: fresh \(will not run\): nothing changed since the last successful run/m);
  assert.match(fresh.stdout, /^lint: fresh \(will not run\)/m);
  await writeFile(rig.path('src/b.txt'), 'BETA\n');
  await writeFile(rig.path('src/c.txt'), 'new\n');
  const r = await rig.fabric(['explain', 'lint', 'LEVEL=high'], { env: { REGION: 'us' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^gen: stale: 2 changes since the last successful run/m);
  assert.match(r.stdout, /^ {2}input changed: src\/b\.txt$/m);
  assert.match(r.stdout, /^ {2}input added: src\/c\.txt$/m);
  assert.match(r.stdout, /^lint\[LEVEL=high\]: never ran: never ran with these params/m);
  assert.match(r.stdout, /^ {2}param LEVEL: "low" → "high"$/m);
  assert.match(r.stdout, /^ {2}env REGION: "eu" → "us"$/m);
  assert.match(r.stdout, /^ {2}dependency changed: gen \(/m);
  const j = await rig.fabric(['explain', 'lint', '--json'], { env: { REGION: 'eu' } });
  const doc = JSON.parse(j.stdout) as { nodes: { node: string; status: string; changes: { kind: string; path?: string; dependency?: string }[] }[] };
  assert.deepEqual(doc.nodes.map((n) => [n.node, n.status]), [['gen', 'stale'], ['lint', 'stale']]);
  assert.deepEqual(doc.nodes[0]!.changes, [{ kind: 'input-changed', path: 'src/b.txt' }, { kind: 'input-added', path: 'src/c.txt' }]);
  assert.deepEqual(doc.nodes[1]!.changes.map((c) => c.kind), ['dependency-changed']);
  // Explain ran nothing and wrote nothing the run would notice.
  assert.deepEqual(await counts(rig), ['gen', 'lint low']);
  // Back to the recorded state: cached (restorable), not stale.
  await rm(rig.path('src/c.txt'));
  await writeFile(rig.path('src/b.txt'), 'beta\n');
  await rm(rig.path('out/gen.txt'));
  const back = await rig.fabric(['explain', 'gen']);
  assert.match(back.stdout, /^gen: cached \(will not run\): in the cache: a run restores 1 output instead of running$/m);
  assert.match(back.stdout, /^ {2}would restore: out\/gen\.txt$/m);
});

rigTest('explain of a secret env var shows its name only; a mutating task is explained as always running', async (rig) => {
  await setup(rig);
  await rig.write({ 'fabricfile.ts': PIPELINE + `task('deploy', { effect: 'mutating', run: ${JSON.stringify(count('deploy'))} });\n` });
  await run(rig, ['lint', 'deploy'], { API_TOKEN: 'tok-aaaa-1111' });
  const r = await rig.fabric(['explain', 'lint', 'deploy'], { env: { API_TOKEN: 'tok-bbbb-2222' } });
  assert.match(r.stdout, /^ {2}env API_TOKEN changed \(secret, value not shown\)$/m);
  assert.ok(!r.stdout.includes('tok-'), r.stdout);
  assert.match(r.stdout, /^deploy: fresh: nothing changed since the last successful run .*not cacheable, so a run runs it again$/m);
});

rigTest('cache stats, prune and clean through the CLI', async (rig) => {
  await setup(rig);
  await run(rig, ['lint']);
  const s = await rig.fabric(['cache', 'stats', '--json']);
  assert.equal(s.code, 0, s.stderr);
  const stats = JSON.parse(s.stdout) as { entries: number; runs: number; byTask: unknown };
  assert.equal(stats.entries, 2);
  assert.equal(stats.runs, 2);
  assert.match((await rig.fabric(['cache', 'stats'])).stdout, /entries: 2 /);
  const p = await rig.fabric(['cache', 'prune', '--max-size', '0']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^pruned 2 entries/);
  const rerun = await run(rig, ['lint']);
  assert.deepEqual(brief(rerun), ['task-success gen ran', 'task-success lint ran']);
  const bad = await rig.fabric(['cache', 'prune', '--older-than', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--older-than needs a duration such as 12h or 7d, got "soon"/);
  const typo = await rig.fabric(['cache', 'stat']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /did you mean 'fabric cache stats'\?/);
  const c = await rig.fabric(['cache', 'clean']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(rig.exists('.fabric/cache'), false);
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out;
}

async function readTree(dir: string): Promise<string> {
  let out = '';
  for (const f of await listFiles(dir)) out += (await readFile(f)).toString('latin1');
  return out;
}

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

rigTest('run records are written when a run ends: a failed run shows in explain; a SIGKILLed run records nothing, its entries still serve', async (rig) => {
  const node = q(process.execPath);
  await setup(rig, PIPELINE + `
task('deploy', { effect: 'mutating', env: ['CODE'], run: ${JSON.stringify(`${count('deploy')} && ${node} ${q(fixture('exit.mjs'))} $CODE`)} });
task('slow', { effect: 'mutating', deps: ['gen'], run: ${JSON.stringify(`${node} ${q(fixture('wait-for.mjs'))} .release-slow .pid-slow`)} });
`);
  assert.equal((await run(rig, ['deploy'], { CODE: '0' })).code, 0);
  const runs = rig.path('.fabric', 'cache', 'runs.json');
  const ok = JSON.parse(await readFile(runs, 'utf8')) as { runs: { node: string; last: { outcome: string } }[] };
  assert.deepEqual(ok.runs.map((r) => [r.node, r.last.outcome]), [['deploy', 'succeeded']]);
  // A failed run ends normally: the node is recorded as started, after its last success.
  assert.equal((await run(rig, ['deploy'], { CODE: '3' })).code, 1);
  const failed = await rig.fabric(['explain', 'deploy', '--json'], { env: { CODE: '3' } });
  const doc = JSON.parse(failed.stdout) as { nodes: { status: string; fingerprint: string; lastRun: { outcome: string; fingerprint: string }; lastSuccess: { fingerprint: string }; changes: { kind: string }[]; notes: string[] }[] };
  const d = doc.nodes[0]!;
  assert.equal(d.status, 'stale');
  assert.deepEqual([d.lastRun.outcome, d.lastRun.fingerprint === d.fingerprint, d.lastSuccess.fingerprint === d.fingerprint], ['started', true, false]);
  assert.deepEqual(d.changes.map((c) => c.kind), ['env']);
  assert.ok(d.notes.some((n) => /did not succeed/.test(n)), d.notes.join('\n'));
  // Killed while `slow` runs (after gen was stored): no record of that run, gen's entry serves.
  const before = await readFile(runs, 'utf8');
  let failedWait: unknown;
  const killed = await rig.fabric(['run', 'slow', '--output=json', '--no-evidence'], {
    onSpawn: (child) => {
      until(() => rig.exists('.pid-slow'), 'slow to start').then(
        () => child.kill('SIGKILL'),
        (e: unknown) => ((failedWait = e), child.kill('SIGKILL')),
      );
    },
  });
  if (failedWait) throw failedWait;
  assert.equal(killed.signal, 'SIGKILL');
  await rig.release('slow'); // lets the orphaned wait-for exit
  assert.equal(await readFile(runs, 'utf8'), before);
  const after = await rig.fabric(['explain', 'slow', '--all']);
  assert.match(after.stdout, /^gen: cached \(will not run\): in the cache \(built /m);
  assert.match(after.stdout, /^slow: never ran/m);
  const rerun = await run(rig, ['slow']);
  assert.deepEqual(rerun.brief(['task-success']), ['task-success gen cached', 'task-success slow ran']);
});

rigTest('an input file named __proto__ is part of the fingerprint like any other', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('gen', { effect: 'read-only', inputs: ['__proto__'], run: ${JSON.stringify(count('gen'))} });`),
  });
  await writeFile(rig.path('__proto__'), 'one\n');
  await run(rig, ['gen']);
  assert.deepEqual(brief(await run(rig, ['gen'])), ['task-success gen cached']);
  await writeFile(rig.path('__proto__'), 'two\n');
  const r = await run(rig, ['gen']);
  assert.deepEqual(brief(r), ['task-success gen ran']);
  const miss = r.events.find((e) => e.type === 'cache' && e.node === 'gen');
  assert.equal(miss?.type === 'cache' && miss.detail, 'input changed: __proto__');
});


rigTest('a secret value inside a node id (a plain param equal to a secret env var) reaches no file of the store', async (rig) => {
  // Node ids carry their params in clear, and ids name run records, entries and dependencies in keys.
  // A secret param never enters an id, but a plain param's value can also be a secret env var's.
  const SECRET = 'tok-in-an-id-4242';
  await rig.write({
    'fabricfile.ts': FF(`
task('up', { effect: 'read-only', inputs: ['src/**'], outputs: ['out/up.txt'], env: ['API_TOKEN'], params: { K: {} },
  run: ${JSON.stringify(`${count('up')} && mkdir -p out && echo up > out/up.txt`)} });
task('use', { effect: 'read-only', deps: [{ task: 'up', params: { K: '{{K}}' } }], inputs: ['out/up.txt'], params: { K: {} },
  run: ${JSON.stringify(`${count('use')}`)} });
task('use2', { effect: 'read-only', deps: [{ task: 'up', params: { K: 'other' } }], inputs: ['out/up.txt'],
  run: ${JSON.stringify(`${count('use2')}`)} });`),
    'src/a.txt': 'a',
  });
  const env = { API_TOKEN: SECRET };
  const first = await run(rig, ['use', `K=${SECRET}`], env);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(brief(first), [`task-success up[K=<secret>] ran`, `task-success use[K=<secret>] ran`]);
  const stored = await readTree(rig.path('.fabric', 'cache'));
  assert.ok(!stored.includes(SECRET), 'a secret in an id reached the store');
  // Run records still tell the nodes apart: a second run is a hit, and another value is its own node.
  const second = await run(rig, ['use', `K=${SECRET}`], env);
  assert.deepEqual(brief(second), [`task-success up[K=<secret>] cached`, `task-success use[K=<secret>] cached`]);
  const other = await run(rig, ['use2'], env);
  assert.deepEqual(brief(other), ['task-success up[K=other] ran', 'task-success use2 ran']);
  const explained = await rig.fabric(['explain', 'use', `K=${SECRET}`, '--json'], { env });
  assert.equal(explained.code, 0, explained.stderr);
  assert.ok(!explained.stdout.includes(SECRET), 'explain printed the secret');
  assert.match(explained.stdout, /"status": ?"fresh"/);
  assert.ok(!(await readTree(rig.path('.fabric', 'cache'))).includes(SECRET), 'a secret in an id reached the store');
  assert.deepEqual(await counts(rig), ['up', 'use', 'up', 'use2']);
});

test.run();
