// Unit tests of the content cache with real files in temp dirs and real analyzed nodes (the analyzer
// builds them from task definitions; no process runs: each test "runs" a node by writing its outputs).
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, rm, stat, utimes, writeFile, mkdir, truncate } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { TaskDef, TaskSpec } from '../../lib/api/types.js';
import { analyze } from '../../lib/engine/analyze.js';
import type { NodeId } from '../../lib/engine/events.js';
import type { Graph, Node } from '../../lib/engine/graph.js';
import type { CacheLookup } from '../../lib/cache/types.js';
import { createLocalCache, type LocalCache } from '../../lib/cache/local.js';
import { computeKey, SecretDigester, fingerprintOf } from '../../lib/cache/fingerprint.js';
import { diffKeys, describeChange } from '../../lib/cache/diff.js';
import { StatCache, readStatCacheFile, sha256File } from '../../lib/cache/stat-cache.js';
import { canonicalJsonGeneral } from '../../lib/util/canonical-json.js';
import { rigTest, timedTest, test, type Rig } from '../helpers/rig.js';

const def = (name: string, spec: TaskSpec = {}): TaskDef => ({ name, spec, site: () => undefined, __fabricTask: true });

function graphOf(rig: Rig, tasks: TaskDef[], targets: string[], opts: { vars?: Record<string, string>; env?: Record<string, string> } = {}): Graph {
  const r = analyze({ tasks, targets, vars: opts.vars ?? {}, env: { PATH: '/usr/bin:/bin', ...opts.env }, repoRoot: rig.dir, fabricfile: join(rig.dir, 'fabricfile.ts'), secretPatterns: ['TOKEN', 'SECRET', 'PASSWORD'] });
  if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
  return r.value;
}

interface Harness {
  cache: LocalCache;
  warnings: string[];
}
function cacheFor(rig: Rig, extra: { enabled?: boolean } = {}): Harness {
  const warnings: string[] = [];
  const cache = createLocalCache({ dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: ['TOKEN', 'SECRET', 'PASSWORD'], warn: (m) => warnings.push(m), ...extra });
  return { cache, warnings };
}

/**
 * What the scheduler does, with `produce` standing in for the commands: lookup in topological order,
 * "run" on a miss, check outputs, save. Returns each node's lookup and which nodes ran.
 */
async function simulate(h: Harness, g: Graph, produce: (n: Node) => Promise<void> = async () => {}, force = false) {
  const fps = new Map<NodeId, string>();
  const lookups = new Map<NodeId, CacheLookup>();
  const ran: NodeId[] = [];
  for (const id of g.order) {
    const node = g.nodes.get(id)!;
    const deps = new Map<NodeId, string>();
    for (const d of node.deps) if (fps.has(d)) deps.set(d, fps.get(d)!);
    const l = await h.cache.lookup(node, deps, { force });
    lookups.set(id, l);
    if (l.result !== 'hit') {
      ran.push(id);
      h.cache.willRun?.(node);
      await produce(node);
      const missing = await h.cache.missingOutputs(node);
      if (missing.length) throw new Error(`missing outputs of ${id}: ${missing.join(', ')}`);
      if (l.fingerprint !== undefined) await h.cache.save(node, l.fingerprint, [{ stream: 'stdout', chunk: `ran ${id}\n` }]);
    }
    if (l.fingerprint !== undefined) fps.set(id, l.fingerprint);
  }
  await h.cache.close();
  // Node ids carry params (`lint[LEVEL=high]`); tests name nodes by task.
  const idOf = (task: string) => g.order.find((id) => g.nodes.get(id)!.task.name === task)!;
  return { lookups, ran: ran.map((id) => g.nodes.get(id)!.task.name), fps, result: (task: string) => lookups.get(idOf(task))!.result, lookup: (task: string) => lookups.get(idOf(task))!, fp: (task: string) => fps.get(idOf(task)) };
}

const lint = (extra: TaskSpec = {}) => def('lint', { effect: 'read-only', run: 'echo lint', inputs: ['src/**'], ...extra });

/** Rewrites `rel` with `text`, dated an hour back: only its size and ctime tell it changed, and no stat is racy. */
async function rewriteOld(rig: Rig, rel: string, text: string): Promise<void> {
  await writeFile(rig.path(rel), text);
  const t = Date.now() / 1000 - 3600;
  await utimes(rig.path(rel), t, t);
}

// ---- stats within a run ----

rigTest("a file is stat'ed once per run until a node is about to run; after willRun every lookup stats afresh", async (rig) => {
  await rig.write({ 'data.txt': 'one\n' });
  await rewriteOld(rig, 'data.txt', 'one\n');
  const look = def('look', { effect: 'read-only', run: 'true', inputs: ['data.txt'] });
  const use = def('use', { effect: 'read-only', run: 'true', inputs: ['data.txt'] });
  const g = graphOf(rig, [look, use], ['look', 'use']);
  const h = cacheFor(rig);
  await h.cache.lookup(g.nodes.get('look')!, new Map(), { force: false });
  await rewriteOld(rig, 'data.txt', 'three\n');
  // Nothing has run: the run's first look at data.txt stands (one stat per file per run).
  const before = await h.cache.lookup(g.nodes.get('use')!, new Map(), { force: false });
  h.cache.willRun!(g.nodes.get('look')!);
  const after = await h.cache.lookup(g.nodes.get('use')!, new Map(), { force: false });
  await h.cache.close();
  // A new run (a new provider) sees the file as it is now: so must the lookup after willRun.
  const fresh = cacheFor(rig);
  const now = await fresh.cache.lookup(g.nodes.get('use')!, new Map(), { force: false });
  await fresh.cache.close();
  assert.notEqual(before.fingerprint, after.fingerprint, 'after willRun the changed file is seen');
  assert.equal(after.fingerprint, now.fingerprint);
});

rigTest('a hit that writes an output back ends the stats of the run: a dependent reading that output sees what was restored', async (rig) => {
  await rig.write({ 'src.txt': 'source\n' });
  const gen = def('gen', { effect: 'read-only', run: 'true', inputs: ['src.txt'], outputs: ['out.txt'] });
  const use = def('use', { effect: 'read-only', run: 'true', deps: ['gen'], inputs: ['out.txt'] });
  const g = graphOf(rig, [gen, use], ['use']);
  const first = await simulate(cacheFor(rig), g, async (n) => {
    if (n.task.name === 'gen') await rewriteOld(rig, 'out.txt', 'generated\n');
  });
  assert.deepEqual(first.ran, ['gen', 'use']);
  // The output is changed behind fabric's back; the next run restores it and the dependent is a hit.
  await rewriteOld(rig, 'out.txt', 'tampered with\n');
  const second = await simulate(cacheFor(rig), g);
  assert.equal(second.result('gen'), 'hit');
  assert.deepEqual((second.lookup('gen') as { restored?: readonly string[] }).restored, ['out.txt']);
  assert.equal(await readFile(rig.path('out.txt'), 'utf8'), 'generated\n');
  assert.equal(second.result('use'), 'hit', JSON.stringify(second.lookup('use')));
  assert.deepEqual(second.ran, []);
});

// ---- fingerprint: what is in the key ----

rigTest('a second lookup with no change is a hit; the key changes with an input byte', async (rig) => {
  await rig.write({ 'src/a.txt': 'hello', 'src/b.txt': 'world' });
  const h = cacheFor(rig);
  const g = graphOf(rig, [lint()], ['lint']);
  const first = await simulate(h, g);
  assert.equal(first.result('lint'), 'miss');
  const second = await simulate(cacheFor(rig), g);
  assert.equal(second.result('lint'), 'hit');
  assert.deepEqual(second.ran, []);
  await rig.write({ 'src/a.txt': 'hellp' });
  const third = await simulate(cacheFor(rig), g);
  assert.equal(third.result('lint'), 'miss');
  const l = third.lookup('lint');
  assert.equal(l.result === 'miss' && l.detail, 'input changed: src/a.txt');
});

const VARIATIONS: [string, TaskSpec, TaskSpec, Record<string, string>, Record<string, string>, boolean, string][] = [
  ['declared env var value', { env: ['REGION'] }, { env: ['REGION'] }, { REGION: 'eu' }, { REGION: 'us' }, true, 'env REGION: "eu" → "us"'],
  ['undeclared env var', {}, {}, { REGION: 'eu' }, { REGION: 'us' }, false, ''],
  ['command text', { run: 'echo a' }, { run: 'echo b' }, {}, {}, true, 'command changed (step 1): echo a → echo b'],
  ['argv command', { run: [['echo', 'a b']] }, { run: [['echo', 'a c']] }, {}, {}, true, `command changed (step 1): echo 'a b' → echo 'a c'`],
  ['step env', { run: { cmd: 'x', env: { A: '1' } } }, { run: { cmd: 'x', env: { A: '2' } } }, {}, {}, true, 'command changed (step 1): A=1 x → A=2 x'],
  ['ok codes', { run: { cmd: 'x' } }, { run: { cmd: 'x', okCodes: [2] } }, {}, {}, true, 'command changed (step 1): x → x (ok codes: 2)'],
  ['output globs', { outputs: [] }, { outputs: ['out/x'] }, {}, {}, true, 'outputs changed: [] → ["out/x"]'],
];
for (const [title, before, after, envBefore, envAfter, changes, described] of VARIATIONS) {
  rigTest(`key: ${title} ${changes ? 'changes' : 'does not change'} the fingerprint`, async (rig) => {
    await rig.write({ 'src/a.txt': 'x', 'out/x': 'o' });
    const h = cacheFor(rig);
    const a = (await simulate(h, graphOf(rig, [lint(before)], ['lint'], { env: envBefore }))).lookups.get('lint')!;
    const b = (await simulate(cacheFor(rig), graphOf(rig, [lint(after)], ['lint'], { env: envAfter }))).lookups.get('lint')!;
    assert.equal(a.fingerprint !== b.fingerprint, changes);
    assert.equal(b.result, changes ? 'miss' : 'hit');
    if (changes) assert.equal(b.result === 'miss' && b.detail, described);
  });
}

rigTest('key: a param change names the param; a dependency change names the dependency', async (rig) => {
  await rig.write({ 'src/a.txt': 'x', 'gen/in.txt': '1' });
  const tasks = (genCmd: string) => [
    def('gen', { effect: 'read-only', run: genCmd, inputs: ['gen/**'] }),
    def('lint', { effect: 'read-only', run: 'echo {{LEVEL}}', deps: ['gen'], inputs: ['src/**'], params: { LEVEL: { default: 'low' } } }),
  ];
  await simulate(cacheFor(rig), graphOf(rig, tasks('gen a'), ['lint']));
  const p = await simulate(cacheFor(rig), graphOf(rig, tasks('gen a'), ['lint'], { vars: { LEVEL: 'high' } }));
  const lp = p.lookup('lint');
  assert.equal(p.result('gen'), 'hit');
  assert.equal(lp.result === 'miss' && lp.detail, 'first run of lint[LEVEL=high]; since lint: command changed (step 1): echo low → echo high; param LEVEL: "low" → "high"');
  await rig.write({ 'gen/in.txt': '2' });
  const d = await simulate(cacheFor(rig), graphOf(rig, tasks('gen a'), ['lint'], { vars: { LEVEL: 'high' } }));
  const ld = d.lookup('lint');
  assert.deepEqual(d.ran, ['gen', 'lint']);
  assert.match(ld.result === 'miss' ? ld.detail ?? '' : '', /^dependency changed: gen \([0-9a-f]{12} → [0-9a-f]{12}\)$/);
});

rigTest('secrets are in the key only as keyed digests: never in clear, yet a change is detected', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const task = def('lint', { effect: 'read-only', run: 'curl -H {{API_KEY}} x', inputs: ['src/**'], env: ['DB_PASSWORD'], params: { API_KEY: { secret: true } } });
  const h = cacheFor(rig);
  const g1 = graphOf(rig, [task], ['lint'], { vars: { API_KEY: 'sk-live-aaaa1111' }, env: { DB_PASSWORD: 'hunter2hunter2' } });
  const r1 = await simulate(h, g1);
  const g2 = graphOf(rig, [task], ['lint'], { vars: { API_KEY: 'sk-live-bbbb2222' }, env: { DB_PASSWORD: 'hunter3hunter3' } });
  const r2 = await simulate(cacheFor(rig), g2);
  assert.equal(r2.result('lint'), 'miss');
  const l2 = r2.lookup('lint');
  const detail = (l2.result === 'miss' && l2.detail) || '';
  // Node ids never carry secrets, so both runs are the node `lint[API_KEY=<secret>]` and compare directly.
  assert.match(detail, /^command changed \(step 1\): curl -H \[SECRET:([0-9a-f]{16})\] x → curl -H \[SECRET:(?!\1)[0-9a-f]{16}\] x; param API_KEY changed \(secret, value not shown\); env DB_PASSWORD changed \(secret, value not shown\)$/);
  // Nothing in the store holds a secret in clear.
  const all = await readTree(rig.path('.fabric', 'cache'));
  for (const secret of ['sk-live-aaaa1111', 'sk-live-bbbb2222', 'hunter2hunter2', 'hunter3hunter3']) assert.ok(!all.includes(secret), `${secret} found in the store`);
  assert.notEqual(r1.fp('lint'), r2.fp('lint'));
  // The digest is keyed per store: another store gives another fingerprint for the same secret.
  const other = createLocalCache({ dir: rig.path('other-cache'), repoRoot: rig.dir, secretPatterns: ['PASSWORD'], warn: () => {} });
  const l3 = await other.lookup(g1.nodes.get(g1.targets[0]!)!, new Map(), { force: false });
  assert.notEqual(l3.fingerprint, r1.fp('lint'));
  const keyMode = (await stat(rig.path('.fabric', 'cache', 'hmac.key'))).mode & 0o777;
  assert.equal(keyMode, 0o600);
});

async function readTree(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out += await readTree(p);
    else out += (await readFile(p)).toString('latin1');
  }
  return out;
}

timedTest('diffKeys reports each kind of change (table)', () => {
  const base = {
    version: 1, platform: 'linux', arch: 'x64', task: 't', effect: 'read-only', variant: null, cwd: '.',
    steps: [{ kind: 'command' as const, cmd: 'a', env: {}, okCodes: [], ignoreFailure: false }],
    params: { P: 'x', S: { secret: 'hmac-sha256:1' } }, env: { E: 'e', T: { secret: 'hmac-sha256:2' } },
    inputGlobs: ['src/**'], inputs: { 'src/a': '1', 'src/b': '2' }, outputs: [], deps: { d: 'f1' },
  };
  const CASES: [string, object, string[]][] = [
    ['nothing', {}, []],
    ['input added/removed/changed', { inputs: { 'src/a': '9', 'src/c': '3' } }, ['input changed: src/a', 'input removed: src/b', 'input added: src/c']],
    ['env unset', { env: { E: null, T: { secret: 'hmac-sha256:2' } } }, ['env E: "e" → (unset)']],
    ['secret env', { env: { E: 'e', T: { secret: 'hmac-sha256:3' } } }, ['env T changed (secret, value not shown)']],
    ['secret param', { params: { P: 'x', S: { secret: 'hmac-sha256:9' } } }, ['param S changed (secret, value not shown)']],
    ['dependency', { deps: { d: 'f2', e: 'f3' } }, ['dependency changed: d (f1 → f2)', 'dependency added: e']],
    ['step added', { steps: [...base.steps, { kind: 'function', name: '<function f>', source: 'x' }] }, [`command added (step 2): <function f> (source 2d711642)`]],
    ['platform', { platform: 'darwin' }, ['platform changed: linux → darwin']],
  ];
  for (const [title, change, want] of CASES) {
    assert.deepEqual(diffKeys(base, { ...base, ...change } as typeof base).map(describeChange), want, title);
  }
});

// ---- store: outputs, modes, logs, corruption ----

const build = (extra: TaskSpec = {}) => def('build', { effect: 'read-only', run: 'make', inputs: ['src/**'], outputs: ['out/**'], ...extra });
async function produceOutputs(rig: Rig, files: Record<string, [string, number]>): Promise<void> {
  for (const [p, [text, mode]] of Object.entries(files)) {
    await mkdir(dirname(rig.path(p)), { recursive: true });
    await writeFile(rig.path(p), text);
    await chmod(rig.path(p), mode);
  }
}

rigTest('a hit restores deleted or changed outputs byte-exact with their modes, and replays the logs', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const bin = Buffer.from([0, 255, 1, 2, 3, 10, 13]);
  const g = graphOf(rig, [build()], ['build']);
  await simulate(cacheFor(rig), g, async () => {
    await produceOutputs(rig, { 'out/run.sh': ['#!/bin/sh\necho hi\n', 0o755], 'out/deep/data.txt': ['data', 0o640] });
    await writeFile(rig.path('out/bin.dat'), bin);
  });
  await rm(rig.path('out/run.sh'));
  await writeFile(rig.path('out/deep/data.txt'), 'tampered');
  await chmod(rig.path('out/bin.dat'), 0o600);
  const h = cacheFor(rig);
  const r = await simulate(h, g, async () => assert.fail('must not run'));
  const l = r.lookup('build');
  assert.equal(l.result, 'hit');
  if (l.result !== 'hit') return;
  assert.deepEqual(l.logs, [{ stream: 'stdout', chunk: 'ran build\n' }]);
  assert.deepEqual([...(l.restored ?? [])].sort(), ['out/deep/data.txt', 'out/run.sh']);
  assert.equal(await rig.read('out/run.sh'), '#!/bin/sh\necho hi\n');
  assert.equal((await stat(rig.path('out/run.sh'))).mode & 0o777, 0o755);
  assert.equal(await rig.read('out/deep/data.txt'), 'data');
  assert.equal((await stat(rig.path('out/deep/data.txt'))).mode & 0o777, 0o640);
  assert.deepEqual(await readFile(rig.path('out/bin.dat')), bin);
  assert.equal((await stat(rig.path('out/bin.dat'))).mode & 0o777, 0o644);
  assert.deepEqual(h.warnings, []);
});

rigTest('sha256File hashes the whole file whatever size the stat gave: empty, small, past its buffer, grown, shrunk, one after another', async (rig) => {
  const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
  const files: Record<string, Buffer> = {
    'empty.bin': Buffer.alloc(0),
    'small.bin': bytes(38, 1),
    'block.bin': bytes(65536, 2), // the size of the first buffer
    'big.bin': bytes(300_000, 3), // past the first buffer: it grows
    'large.bin': bytes(1_500_000, 4), // past what is read synchronously
  };
  for (const [name, data] of Object.entries(files)) await writeFile(rig.path(name), data);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  // The stat's size, and sizes that are wrong because the file changed after the stat.
  for (let round = 0; round < 2; round++) {
    for (const [name, data] of Object.entries(files)) {
      for (const size of [data.length, Math.max(0, data.length - 7), data.length + 100, 0]) {
        assert.equal(await sha256File(rig.path(name), size), sha(data), `${name} with size ${size}`);
      }
      assert.equal(await sha256File(rig.path(name)), sha(data), `${name} without a size`);
    }
  }
  // A small file right after a large one is not hashed with the large one's leftover bytes.
  assert.equal(await sha256File(rig.path('big.bin'), 300_000), sha(files['big.bin']!));
  assert.equal(await sha256File(rig.path('small.bin'), 38), sha(files['small.bin']!));
  await assert.rejects(sha256File(rig.path('absent.bin'), 10), { code: 'ENOENT' });
});

rigTest('a stored small output is hashed from the bytes kept in the entry, and the stat cache learns that hash', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [build()], ['build']);
  await simulate(cacheFor(rig), g, () => produceOutputs(rig, { 'out/o.txt': ['small output', 0o644] }));
  const row = readStatCacheFile(rig.path('.fabric', 'cache', 'stat-cache.bin'))?.find((r) => r.path === rig.path('out', 'o.txt'));
  assert.ok(row, 'no stat-cache row for the stored output');
  const st = await stat(rig.path('out', 'o.txt'));
  assert.deepEqual([row.size, row.mtimeMs, row.ctimeMs, row.ino, row.sha256], [st.size, st.mtimeMs, st.ctimeMs, st.ino, createHash('sha256').update('small output').digest('hex')]);
});

rigTest('a truncated entry is corrupt: one warning, removed, the node runs; the next run is a hit', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [build()], ['build']);
  const first = await simulate(cacheFor(rig), g, () => produceOutputs(rig, { 'out/o.txt': ['o', 0o644] }));
  const fp = first.fp('build')!;
  const entry = rig.path('.fabric', 'cache', 'entries', fp.slice(0, 2), `${fp}.json`);
  const size = (await stat(entry)).size;
  await truncate(entry, Math.floor(size / 2));
  const h = cacheFor(rig);
  const second = await simulate(h, g, () => produceOutputs(rig, { 'out/o.txt': ['o', 0o644] }));
  assert.equal(second.result('build'), 'corrupt');
  assert.equal(h.warnings.length, 1);
  assert.match(h.warnings[0]!, /cache entry [0-9a-f]{12} is not valid JSON.*removed it/);
  // Looking it up again in the same process does not warn again (it was replaced by a good entry).
  const h3 = cacheFor(rig);
  assert.equal((await simulate(h3, g)).result('build'), 'hit');
  assert.deepEqual(h3.warnings, []);
});

rigTest('a stored output blob that is missing is a miss; one whose content is wrong is corrupt (never a hit)', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [build()], ['build']);
  // Larger than INLINE_OUTPUT_MAX: stored as a blob, not in the entry.
  const original = 'original output\n'.repeat(2000);
  await simulate(cacheFor(rig), g, () => produceOutputs(rig, { 'out/o.txt': [original, 0o644] }));
  const blobs = rig.path('.fabric', 'cache', 'blobs');
  const sha = (await import('node:crypto')).createHash('sha256').update(original).digest('hex');
  const blob = join(blobs, sha.slice(0, 2), sha);
  await writeFile(blob, original.replace('original', 'originaX'));
  await rm(rig.path('out/o.txt'));
  const h = cacheFor(rig);
  let ran = 0;
  const r = await simulate(h, g, async () => {
    ran++;
    await produceOutputs(rig, { 'out/o.txt': [original, 0o644] });
  });
  assert.equal(r.result('build'), 'corrupt');
  assert.equal(ran, 1);
  assert.equal(h.warnings.length, 1);
  assert.match(h.warnings[0]!, /stored content of output out\/o.txt .* does not match its hash/);
  // Saved again after the run: now remove the blob entirely.
  await rm(blob);
  await rm(rig.path('out/o.txt'));
  const h2 = cacheFor(rig);
  const r2 = await simulate(h2, g, () => produceOutputs(rig, { 'out/o.txt': [original, 0o644] }));
  const l2 = r2.lookup('build');
  assert.equal(l2.result, 'miss');
  assert.equal(l2.result === 'miss' && l2.detail, 'the stored content of output out/o.txt is missing from the cache');
  assert.equal(await rig.read('out/o.txt'), original);
});

rigTest('small outputs are inline in the entry (no blob): restored byte-exact with their modes; a large one is a blob', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const bin = Buffer.from([0, 255, 254, 0xc3, 0x28, 10, 13, 0xf0, 0x9f]); // not valid UTF-8: base64
  const big = 'b'.repeat(20_000);
  const g = graphOf(rig, [build()], ['build']);
  const h1 = cacheFor(rig);
  await simulate(h1, g, async () => {
    await produceOutputs(rig, { 'out/run.sh': ['#!/bin/sh\necho hé\n', 0o755], 'out/big.txt': [big, 0o640], 'out/empty': ['', 0o600] });
    await writeFile(rig.path('out/bin.dat'), bin);
    await chmod(rig.path('out/bin.dat'), 0o604);
  });
  const store = h1.cache.store;
  const fp = (await store.readRun('build'))!.lastSuccess!.fingerprint;
  const read = await store.readEntry(fp);
  assert.equal(read.state, 'ok');
  if (read.state !== 'ok') return;
  const enc = Object.fromEntries(read.entry.outputs.map((o) => [o.path, o.inline?.encoding ?? 'blob']));
  assert.deepEqual(enc, { 'out/big.txt': 'blob', 'out/bin.dat': 'base64', 'out/empty': 'utf8', 'out/run.sh': 'utf8' });
  const bigSha = read.entry.outputs.find((o) => o.path === 'out/big.txt')!.sha256;
  const blobFiles = (await readdir(rig.path('.fabric', 'cache', 'blobs'), { recursive: true })).filter((n) => n.length > 2);
  assert.deepEqual(blobFiles, [join(bigSha.slice(0, 2), bigSha)], 'the only blob is the large output');
  assert.equal(rig.exists('.fabric/cache/keys'), false, 'the key is in the entry: no key file');
  await rm(rig.path('out'), { recursive: true });
  const h = cacheFor(rig);
  const r = await simulate(h, g, async () => assert.fail('must not run'));
  assert.equal(r.result('build'), 'hit');
  assert.equal(await rig.read('out/run.sh'), '#!/bin/sh\necho hé\n');
  assert.equal((await stat(rig.path('out/run.sh'))).mode & 0o777, 0o755);
  assert.deepEqual(await readFile(rig.path('out/bin.dat')), bin);
  assert.equal((await stat(rig.path('out/bin.dat'))).mode & 0o777, 0o604);
  assert.equal(await rig.read('out/empty'), '');
  assert.equal((await stat(rig.path('out/empty'))).mode & 0o777, 0o600);
  assert.equal(await rig.read('out/big.txt'), big);
  assert.equal((await stat(rig.path('out/big.txt'))).mode & 0o777, 0o640);
  assert.deepEqual(h.warnings, []);
});

rigTest('a tampered inline output is a corrupt entry: one warning, removed, the node runs; the next run is a hit', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [build()], ['build']);
  const first = await simulate(cacheFor(rig), g, () => produceOutputs(rig, { 'out/o.txt': ['inline output', 0o644] }));
  const fp = first.fp('build')!;
  const entry = rig.path('.fabric', 'cache', 'entries', fp.slice(0, 2), `${fp}.json`);
  const text = await readFile(entry, 'utf8');
  assert.ok(text.includes('"inline output"'));
  await writeFile(entry, text.replace('"inline output"', '"inline outpuX"'));
  await rm(rig.path('out/o.txt'));
  const h = cacheFor(rig);
  let ran = 0;
  const second = await simulate(h, g, async () => {
    ran++;
    await produceOutputs(rig, { 'out/o.txt': ['inline output', 0o644] });
  });
  assert.equal(second.result('build'), 'corrupt');
  assert.equal(ran, 1);
  assert.equal(h.warnings.length, 1);
  assert.match(h.warnings[0]!, /stored content of output out\/o.txt \(entry [0-9a-f]{12}\) does not match its hash.*removed it/);
  assert.equal(await rig.read('out/o.txt'), 'inline output');
  const h3 = cacheFor(rig);
  assert.equal((await simulate(h3, g, async () => assert.fail('a hit'))).result('build'), 'hit');
  assert.deepEqual(h3.warnings, []);
});

rigTest('the key is in the entry: a miss and explain diff with it; an entry of the previous format is a plain miss', async (rig) => {
  await rig.write({ 'src/a.txt': 'one' });
  const g = graphOf(rig, [build()], ['build']);
  const first = await simulate(cacheFor(rig), g, () => produceOutputs(rig, { 'out/o.txt': ['o', 0o644] }));
  const fp1 = first.fp('build')!;
  assert.equal(rig.exists('.fabric/cache/keys'), false, 'no key file for a stored node');
  const store = cacheFor(rig).cache.store;
  assert.ok(await store.readKey(fp1), 'read from the entry');
  await rig.write({ 'src/a.txt': 'two' });
  const { explainGraph } = await import('../../lib/cache/explain.js');
  const [ex] = await explainGraph(g, { dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: ['TOKEN', 'SECRET', 'PASSWORD'] });
  assert.equal(ex!.status, 'stale');
  assert.equal(ex!.comparedWith?.fingerprint, fp1);
  assert.deepEqual(ex!.changes, [{ kind: 'input-changed', path: 'src/a.txt' }]);
  assert.deepEqual(ex!.notes, []);
  const h = cacheFor(rig);
  const second = await simulate(h, g, () => produceOutputs(rig, { 'out/o.txt': ['o2', 0o644] }));
  const l = second.lookup('build');
  assert.equal(l.result, 'miss');
  assert.match(l.result === 'miss' ? (l.detail ?? '') : '', /src\/a\.txt/);
  assert.deepEqual(h.warnings, []);
  // A format-1 entry (the layout before keys and small outputs moved in) is absent: a miss, no warning.
  const fp2 = second.fp('build')!;
  const path = store.entryPath(fp2);
  const e2 = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  await writeFile(path, JSON.stringify({ ...e2, v: 1 }));
  const h3 = cacheFor(rig);
  const third = await simulate(h3, g, () => produceOutputs(rig, { 'out/o.txt': ['o2', 0o644] }));
  assert.equal(third.result('build'), 'miss');
  assert.deepEqual(h3.warnings, []);
  assert.equal((await store.readEntry(fp2)).state, 'ok', 'replaced by the new run');
});

rigTest('missingOutputs: a literal path that does not exist, a glob with no match; a directory counts as present', async (rig) => {
  await rig.write({ 'src/a.txt': 'x', 'present.txt': 'p', 'dir/f': 'f', 'emptyglob/.keep': '' });
  const g = graphOf(rig, [build({ outputs: ['present.txt', 'absent.txt', 'dir', 'gen/*.js', 'emptyglob/*.js'] })], ['build']);
  const { cache } = cacheFor(rig);
  assert.deepEqual(await cache.missingOutputs(g.nodes.get('build')!), ['absent.txt', 'gen/*.js', 'emptyglob/*.js']);
  // After a lookup the outputs' stats are taken first (to be kept for the store) and say which exist: same answer.
  const l = await cache.lookup(g.nodes.get('build')!, new Map(), { force: false });
  assert.equal(l.result, 'miss');
  assert.deepEqual(await cache.missingOutputs(g.nodes.get('build')!), ['absent.txt', 'gen/*.js', 'emptyglob/*.js']);
  await rig.write({ 'absent.txt': 'now', 'gen/x.js': 'x', 'emptyglob/y.js': 'y' });
  assert.deepEqual(await cache.missingOutputs(g.nodes.get('build')!), []);
  await cache.save(g.nodes.get('build')!, l.fingerprint!, []);
  assert.equal((await cache.lookup(g.nodes.get('build')!, new Map(), { force: false })).result, 'hit');
});

rigTest('not cacheable: a mutating task is disabled (with a fingerprint, recorded), --force is a miss, --no-cache touches nothing', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const h = cacheFor(rig);
  const g = graphOf(rig, [def('deploy', { effect: 'mutating', run: 'deploy', inputs: ['src/**'] }), lint()], ['deploy', 'lint']);
  const r = await simulate(h, g);
  const d = r.lookup('deploy');
  assert.equal(d.result, 'disabled');
  assert.match(d.fingerprint ?? '', /^[0-9a-f]{64}$/);
  assert.equal(d.result === 'disabled' && d.detail, 'not cacheable: a mutating task (set cache: true to cache it)');
  assert.equal((await simulate(cacheFor(rig), g)).result('lint'), 'hit');
  assert.equal((await simulate(cacheFor(rig), g, undefined, true)).result('lint'), 'miss');
  const run = await cacheFor(rig).cache.store.readRun('deploy');
  assert.equal(run?.lastSuccess?.fingerprint, d.fingerprint);
  await rm(rig.path('.fabric'), { recursive: true });
  const off = await simulate(cacheFor(rig, { enabled: false }), g);
  assert.deepEqual([...off.lookups.values()].map((l) => l.result), ['disabled', 'disabled']);
  assert.equal(rig.exists('.fabric'), false);
});

rigTest('a node that depends on a mutating task that runs is not served from the cache; after a cached one it is', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const tasks = [
    def('deploy', { effect: 'mutating', run: 'deploy' }),
    def('smoke', { effect: 'read-only', run: 'smoke', inputs: ['src/**'], deps: ['deploy'] }),
    def('provision', { effect: 'mutating', cache: true, run: 'provision', inputs: ['src/**'] }),
    def('verify', { effect: 'read-only', run: 'verify', inputs: ['src/**'], deps: ['provision'] }),
  ];
  const g = graphOf(rig, tasks, ['smoke', 'verify']);
  const results = async () => {
    const r = await simulate(cacheFor(rig), g);
    return ['deploy', 'smoke', 'provision', 'verify'].map((t) => `${t} ${r.result(t)}`);
  };
  const first = await simulate(cacheFor(rig), g);
  const smoke = first.lookup('smoke');
  assert.equal(smoke.result === 'disabled' && smoke.detail, 'not served from the cache: it depends on deploy, a mutating task that runs in this run');
  assert.deepEqual(['deploy', 'smoke', 'provision', 'verify'].map((t) => `${t} ${first.result(t)}`), ['deploy disabled', 'smoke disabled', 'provision miss', 'verify disabled']);
  // provision is now a hit (it does not run), so verify may be cached from here on.
  assert.deepEqual(await results(), ['deploy disabled', 'smoke disabled', 'provision hit', 'verify miss']);
  assert.deepEqual(await results(), ['deploy disabled', 'smoke disabled', 'provision hit', 'verify hit']);
});

rigTest('a cacheable task without inputs warns once per task; a node without a dependency fingerprint is not cached', async (rig) => {
  const h = cacheFor(rig);
  const g = graphOf(rig, [def('gen', { effect: 'mutating', cache: true, run: 'gen', params: { N: { default: '1' } } })], ['gen']);
  await simulate(h, g);
  const node = g.nodes.get('gen')!;
  await h.cache.lookup(node, new Map(), { force: false });
  assert.equal(h.warnings.length, 1);
  assert.match(h.warnings[0]!, /task "gen" is cacheable but declares no inputs/);
  const g2 = graphOf(rig, [def('a', { effect: 'mutating', run: 'a' }), lint({ deps: ['a'] })], ['lint']);
  const l = await h.cache.lookup(g2.nodes.get('lint')!, new Map(), { force: false });
  assert.deepEqual(l, { result: 'disabled', detail: 'dependency a has no fingerprint' });
});

rigTest('inputs: directories expand, dotfiles count, .git and the cache dir never do, negations exclude', async (rig) => {
  await rig.write({ 'src/a.txt': 'a', 'src/.hidden': 'h', 'src/skip.log': 'l', '.git/HEAD': 'ref', 'other.txt': 'o' });
  const h = cacheFor(rig);
  const g = graphOf(rig, [lint({ inputs: ['src', '**/*.txt', '!src/*.log', '**/HEAD'] })], ['lint']);
  await simulate(h, g); // creates .fabric/cache/*
  const r = await computeKey(g.nodes.get('lint')!, new Map(), { repoRoot: rig.dir, secretPatterns: [], statCache: new StatCache(undefined), digester: new SecretDigester(async () => Buffer.alloc(32)), ignoreDirs: [rig.path('.fabric', 'cache')] });
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(Object.keys(r.key.inputs), ['other.txt', 'src/.hidden', 'src/a.txt']);
  assert.equal(r.fingerprint, fingerprintOf(r.key));
  assert.equal(r.keyJson, canonicalJsonGeneral(r.key), 'the text the store keeps is the canonical one');
});

rigTest('inputs: literal paths (fast path, no directory walk) give the same files as the equivalent globs', async (rig) => {
  await rig.write({ 'src/a.txt': 'a', 'src/b.txt': 'b', '.git/config': 'c', '.fabric/cache/x': 'x' });
  const { expandGlobs } = await import('../../lib/cache/files.js');
  const ignore = [rig.path('.fabric', 'cache')];
  const CASES: [string[], string[]][] = [
    [['./src/b.txt', 'src//a.txt', 'src/a.txt', 'missing.txt'], ['src/a.txt', 'src/b.txt']],
    [['src/{a,b}.txt'], ['src/a.txt', 'src/b.txt']],
    [['src'], ['src/a.txt', 'src/b.txt']],
    [['.git/config', '.fabric/cache/x'], []],
    [['.git/*', '.fabric/cache/*'], []],
  ];
  for (const [patterns, want] of CASES) assert.deepEqual(await expandGlobs(patterns, rig.dir, ignore), want, patterns.join(' '));
});

// ---- run records, inline logs, file digests ----

rigTest('run records stay in memory until close: nothing is written per node; close writes the keys, then runs.json', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [def('deploy', { effect: 'mutating', run: 'deploy', inputs: ['src/**'] })], ['deploy']);
  const node = g.nodes.get('deploy')!;
  const h = cacheFor(rig);
  const l = await h.cache.lookup(node, new Map(), { force: false });
  assert.equal(l.result, 'disabled');
  await h.cache.save(node, l.fingerprint!, []);
  assert.equal(rig.exists('.fabric'), false, 'a not-cacheable node writes nothing during the run');
  assert.equal((await h.cache.store.readRun('deploy'))?.last.outcome, 'succeeded');
  await h.cache.close();
  const fresh = cacheFor(rig).cache.store;
  const rec = await fresh.readRun('deploy');
  assert.deepEqual([rec?.last.outcome, rec?.lastSuccess?.fingerprint], ['succeeded', l.fingerprint]);
  assert.ok(await fresh.readKey(l.fingerprint!), 'the key of a recorded fingerprint is stored');
  // A lookup that is not followed by a save (the node failed) is recorded as started; its last success is kept.
  await rig.write({ 'src/a.txt': 'y' });
  const h2 = cacheFor(rig);
  const l2 = await h2.cache.lookup(node, new Map(), { force: false });
  await h2.cache.close();
  const rec2 = await cacheFor(rig).cache.store.readRun('deploy');
  assert.deepEqual([rec2?.last.outcome, rec2?.last.fingerprint, rec2?.lastSuccess?.fingerprint], ['started', l2.fingerprint, l.fingerprint]);
  // Records another process wrote after this one loaded them are kept when this one saves.
  const mine = cacheFor(rig);
  const l3 = await mine.cache.lookup(node, new Map(), { force: false });
  await simulate(cacheFor(rig), graphOf(rig, [lint()], ['lint']));
  await mine.cache.save(node, l3.fingerprint!, []);
  await mine.cache.close();
  const end = cacheFor(rig).cache.store;
  assert.deepEqual([(await end.readRun('lint'))?.last.outcome, (await end.readRun('deploy'))?.last.outcome], ['succeeded', 'succeeded']);
});

rigTest('a run in which only times would change leaves runs.json alone; a hit on a record over an hour old refreshes its time', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  // `all`: read-only without inputs, so not cacheable: it runs (and is recorded) every time.
  const g = graphOf(rig, [lint(), def('all', { deps: ['lint'] })], ['all']);
  await simulate(cacheFor(rig), g);
  const runs = rig.path('.fabric', 'cache', 'runs.json');
  const before = await stat(runs);
  const text = await readFile(runs, 'utf8');
  await new Promise((r) => setTimeout(r, 20));
  const second = await simulate(cacheFor(rig), g);
  assert.deepEqual(second.ran, ['all'], 'lint hits, all runs again');
  assert.equal((await stat(runs)).ino, before.ino, 'runs.json was not rewritten');
  assert.equal(await readFile(runs, 'utf8'), text);
  // Records more than an hour old: the hit and the rerun both write their time.
  const old = new Date(Date.now() - 2 * 3_600_000).toISOString();
  const doc = JSON.parse(text) as { runs: { last: { at: string }; lastSuccess?: { at: string } }[] };
  for (const r of doc.runs) {
    r.last.at = old;
    if (r.lastSuccess) r.lastSuccess.at = old;
  }
  await writeFile(runs, JSON.stringify(doc));
  const third = await simulate(cacheFor(rig), g);
  assert.equal(third.result('lint'), 'hit');
  const store = cacheFor(rig).cache.store;
  for (const n of ['lint', 'all']) assert.ok(Date.parse((await store.readRun(n))!.last.at) > Date.now() - 60_000, `${n}'s record has this run's time`);
});

rigTest('logs: small ones are inline in the entry (verified by hash), large ones are a blob; both replay', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const big = 'y'.repeat(40_000);
  const g = graphOf(rig, [lint(), def('noisy', { effect: 'read-only', run: 'noisy', inputs: ['src/**'] })], ['lint', 'noisy']);
  const h = cacheFor(rig);
  for (const [task, chunk] of [['lint', 'small\n'], ['noisy', big]] as const) {
    const node = g.nodes.get(task)!;
    const l = await h.cache.lookup(node, new Map(), { force: false });
    await h.cache.save(node, l.fingerprint!, [{ stream: 'stderr', chunk }]);
  }
  await h.cache.close();
  const store = cacheFor(rig).cache.store;
  const entryOf = async (task: string) => {
    const r = await store.readEntry((await store.readRun(task))!.last.fingerprint);
    assert.equal(r.state, 'ok');
    return r.state === 'ok' ? r.entry : assert.fail();
  };
  const small = await entryOf('lint');
  assert.deepEqual(small.logs?.inline, [{ stream: 'stderr', chunk: 'small\n' }]);
  assert.equal(await store.readBlob(small.logs!.sha256), 'missing', 'no blob for inline logs');
  const large = await entryOf('noisy');
  assert.equal(large.logs?.inline, undefined);
  assert.ok(Buffer.isBuffer(await store.readBlob(large.logs!.sha256)));
  const h2 = cacheFor(rig);
  for (const [task, chunk] of [['lint', 'small\n'], ['noisy', big]] as const) {
    const l = await h2.cache.lookup(g.nodes.get(task)!, new Map(), { force: false });
    assert.deepEqual(l.result === 'hit' && l.logs, [{ stream: 'stderr', chunk }], task);
  }
  // Inline logs that do not match their hash make the entry corrupt (never replayed).
  const fp = (await store.readRun('lint'))!.last.fingerprint;
  const text = await readFile(store.entryPath(fp), 'utf8');
  await writeFile(store.entryPath(fp), text.replace('small', 'SMALL'));
  const h3 = cacheFor(rig);
  const l3 = await h3.cache.lookup(g.nodes.get('lint')!, new Map(), { force: false });
  assert.equal(l3.result, 'corrupt');
  assert.match(h3.warnings.join('\n'), /stored logs of entry [0-9a-f]{12} do not match their hash/);
});

const sha256 = async (p: string) => (await import('node:crypto')).createHash('sha256').update(await readFile(p)).digest('hex');

rigTest('fileDigests: inputs as hashed for the fingerprint, outputs as stored or verified on a hit, each list only when complete', async (rig) => {
  await rig.write({ 'src/a.txt': 'alpha', 'src/sub/b.bin': '\u0000\u0001bee', 'gen.in': 'g' });
  const tasks = [
    def('build', { effect: 'read-only', run: 'make', inputs: ['src/**'], outputs: ['out/o.txt', 'out/p.txt'] }),
    def('gen', { effect: 'read-only', run: 'gen', inputs: ['gen.in'], outputs: ['gen/**'] }),
    def('deploy', { effect: 'mutating', run: 'deploy', inputs: ['src/a.txt'], outputs: ['out/d.txt'] }),
  ];
  const g = graphOf(rig, tasks, ['build', 'gen', 'deploy']);
  const produce = async (n: Node) => {
    if (n.task.name === 'build') await produceOutputs(rig, { 'out/o.txt': ['o content', 0o644], 'out/p.txt': ['pp', 0o600] });
    if (n.task.name === 'gen') await produceOutputs(rig, { 'gen/x.txt': ['x', 0o644] });
    if (n.task.name === 'deploy') await produceOutputs(rig, { 'out/d.txt': ['d', 0o644] });
  };
  const digestsOf = async (files: readonly { path: string; sha256: string; size: number }[] | undefined) => files && Promise.all(files.map(async (f) => ({ ...f, real: await sha256(f.path), realSize: (await stat(f.path)).size })));
  const expectReal = async (files: readonly { path: string; sha256: string; size: number }[] | undefined, rels: string[]) => {
    const d = await digestsOf(files);
    assert.deepEqual(d?.map((f) => f.path), rels.map((r) => rig.path(r)));
    for (const f of d ?? []) assert.deepEqual([f.sha256, f.size], [f.real, f.realSize], f.path);
  };
  const h = cacheFor(rig);
  await simulate(h, g, produce);
  const id = (t: string) => g.order.find((i) => g.nodes.get(i)!.task.name === t)!;
  const node = (t: string) => g.nodes.get(id(t))!;
  await expectReal(h.cache.fileDigests!(node('build'))?.inputs, ['src/a.txt', 'src/sub/b.bin']);
  await expectReal(h.cache.fileDigests!(node('build'))?.outputs, ['out/o.txt', 'out/p.txt']);
  await expectReal(h.cache.fileDigests!(node('gen'))?.outputs, ['gen/x.txt']);
  // Not cacheable: inputs were hashed for its fingerprint, outputs never.
  await expectReal(h.cache.fileDigests!(node('deploy'))?.inputs, ['src/a.txt']);
  assert.equal(h.cache.fileDigests!(node('deploy'))?.outputs, undefined);

  // A hit: restored and already-present outputs both count; a glob output could match more files than the entry holds.
  await rm(rig.path('out/o.txt'));
  const h2 = cacheFor(rig);
  const r2 = await simulate(h2, g, async (n) => assert.equal(n.task.name, 'deploy', `${n.id} must be a hit`));
  assert.deepEqual([r2.result('build'), r2.result('gen')], ['hit', 'hit']);
  await expectReal(h2.cache.fileDigests!(node('build'))?.inputs, ['src/a.txt', 'src/sub/b.bin']);
  await expectReal(h2.cache.fileDigests!(node('build'))?.outputs, ['out/o.txt', 'out/p.txt']);
  await expectReal(h2.cache.fileDigests!(node('gen'))?.inputs, ['gen.in']);
  assert.equal(h2.cache.fileDigests!(node('gen'))?.outputs, undefined);
  // Nothing is known without the cache, or before a lookup.
  assert.equal(cacheFor(rig).cache.fileDigests!(node('build')), undefined);
  const off = cacheFor(rig, { enabled: false });
  await simulate(off, g, produce);
  assert.equal(off.cache.fileDigests!(node('build')), undefined);
});

rigTest('an output rewritten between the end of the task and the store is not stored: one warning, the run is recorded, the next lookup is a miss', async (rig) => {
  await rig.write({ 'src/a.txt': 'x' });
  const g = graphOf(rig, [build()], ['build']);
  const node = g.nodes.get(g.order[0]!)!;
  const h = cacheFor(rig);
  const l = await h.cache.lookup(node, new Map(), { force: false });
  assert.equal(l.result, 'miss');
  await produceOutputs(rig, { 'out/o.txt': ['mine\n', 0o644], 'out/keep.txt': ['kept\n', 0o644] });
  assert.deepEqual(await h.cache.missingOutputs(node), []);
  // A second run of the same task (another fabric process) rewrites an output before this one stored it.
  await writeFile(rig.path('out/o.txt'), 'theirs, half writ');
  await h.cache.save(node, l.fingerprint!, [{ stream: 'stdout', chunk: 'ran\n' }]);
  await h.cache.close();
  assert.deepEqual(h.warnings, ['cache: output out/o.txt of build changed after the task ended (is another process writing it?): not stored']);
  const next = cacheFor(rig);
  const again = await next.cache.lookup(node, new Map(), { force: false });
  assert.equal(again.result, 'miss');
  await next.cache.close();
  // Unchanged outputs are stored as always.
  const h2 = cacheFor(rig);
  const l2 = await h2.cache.lookup(node, new Map(), { force: false });
  assert.deepEqual(await h2.cache.missingOutputs(node), []);
  await h2.cache.save(node, l2.fingerprint!, []);
  await h2.cache.close();
  assert.deepEqual(h2.warnings, []);
  assert.equal((await cacheFor(rig).cache.lookup(node, new Map(), { force: false })).result, 'hit');
});

test.run();
