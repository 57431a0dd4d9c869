// The stat cache (racy-timestamp rule, reuse without re-reading), store maintenance (stats, prune,
// clean), size/duration parsing, and two real processes writing one store at the same time.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TaskDef, TaskSpec } from '../../lib/api/types.js';
import { analyze } from '../../lib/engine/analyze.js';
import type { Graph } from '../../lib/engine/graph.js';
import type { NodeId } from '../../lib/engine/events.js';
import { createLocalCache } from '../../lib/cache/local.js';
import { readFileSync, statSync, type Stats } from 'node:fs';
import type { SeenStat } from '../../lib/cache/files.js';
import { StatCache, rowIsUsable, RACY_WINDOW_MS, formatStatCache, readStatCacheFile, type StatRow, type FileStat } from '../../lib/cache/stat-cache.js';
import { inlineBytes, Store, TOUCH_AFTER_MS } from '../../lib/cache/store.js';
import { parseDuration, parseSize, formatSize } from '../../lib/cache/units.js';
import { ROOT, rigTest, timedTest, test, withTimeout, type Rig } from '../helpers/rig.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

// ---- stat cache ----

const S: FileStat = { size: 10, mtimeMs: 1_000_000, ctimeMs: 1_000_000, ino: 7, mode: 0o100644 };
const row = (over: Partial<{ size: number; mtime: number; ctime: number; ino: number; at: number }> = {}): StatRow => [over.size ?? 10, over.mtime ?? 1_000_000, over.ctime ?? 1_000_000, over.ino ?? 7, 'h', over.at ?? 1_000_000 + RACY_WINDOW_MS + 1];
const USABLE: [string, StatRow, boolean][] = [
  ['same stat, recorded well after the last write', row(), true],
  ['recorded exactly one window after the write', row({ at: 1_000_000 + RACY_WINDOW_MS }), true],
  ['size differs', row({ size: 11 }), false],
  ['mtime differs', row({ mtime: 999_999 }), false],
  ['ctime differs', row({ ctime: 1_000_001 }), false],
  ['inode differs (file replaced)', row({ ino: 8 }), false],
  ['racy: recorded within the timestamp granularity of the write', row({ at: 1_000_000 + RACY_WINDOW_MS - 1 }), false],
  ['racy: recorded before the mtime (clock skew)', row({ at: 999_000 }), false],
];
for (const [title, r, usable] of USABLE) timedTest(`stat cache row: ${title} → ${usable ? 'reused' : 're-hashed'}`, () => assert.equal(rowIsUsable(r, S), usable));

rigTest('stat cache: settled files are not re-read (a recorded hash is trusted), racy ones are', async (rig) => {
  await rig.write({ 'a.txt': 'aaa', 'b.txt': 'bbb', 'c.txt': 'ccc' });
  const file = rig.path('stat-cache.bin');
  const paths = ['a.txt', 'b.txt', 'c.txt'].map((p) => rig.path(p));
  // Pretend the hashes were recorded 10 s after the files were written: settled.
  const first = new StatCache(file, () => Date.now() + 10_000);
  const h1 = await first.hashFiles(paths);
  assert.deepEqual(paths.map((p) => h1.get(p)!.sha256), [sha('aaa'), sha('bbb'), sha('ccc')]);
  assert.deepEqual(first.counters, { hashed: 3, reused: 0 });
  assert.equal(await first.save(), undefined);
  // Forge the recorded hash of a.txt: a cache that trusts it proves the file was not read again.
  const rows = readStatCacheFile(file)!;
  assert.deepEqual(rows.map((r) => r.path), [...paths].sort(), 'one row per file, sorted by path');
  await writeFile(file, formatStatCache(rows.map((r) => (r.path === paths[0] ? { ...r, sha256: sha('forged') } : r))));
  const second = new StatCache(file);
  const h2 = await second.hashFiles(paths);
  assert.equal(h2.get(paths[0]!)!.sha256, sha('forged'));
  assert.deepEqual(second.counters, { hashed: 0, reused: 3 });
  // Recorded right after the write (real clock): racy, so the next instance re-reads them all.
  await rig.write({ 'a.txt': 'AAA' });
  const third = new StatCache(file);
  assert.equal((await third.hashFiles(paths)).get(paths[0]!)!.sha256, sha('AAA'));
  await third.save();
  const fourth = new StatCache(file);
  const h4 = await fourth.hashFiles(paths);
  assert.equal(h4.get(paths[0]!)!.sha256, sha('AAA'));
  assert.equal(fourth.counters.hashed, 1, 'the just-written file is racy and re-hashed');
});

rigTest('stat cache: a hash remembered before anything was loaded keeps the saved rows of other files', async (rig) => {
  await rig.write({ 'a.txt': 'aaa', 'b.txt': 'bbb' });
  const file = rig.path('stat-cache.bin');
  const paths = ['a.txt', 'b.txt'].map((p) => rig.path(p));
  const first = new StatCache(file);
  await first.hashFiles(paths);
  assert.equal(await first.save(), undefined);
  // A restored output is remembered (a hit of a node without inputs): no hashFiles, so no load, before the save.
  await rig.write({ 'c.txt': 'ccc' });
  const c = statSync(rig.path('c.txt'));
  const second = new StatCache(file);
  second.remember(rig.path('c.txt'), { size: c.size, mtimeMs: c.mtimeMs, ctimeMs: c.ctimeMs, ino: c.ino, mode: c.mode }, sha('ccc'), Date.now());
  assert.equal(await second.save(), undefined);
  assert.deepEqual(readStatCacheFile(file)!.map((r) => r.path), [...paths, rig.path('c.txt')].sort());
});

rigTest('stat cache: hashing a large tree gives the event loop turns (synchronous reads are bounded per turn)', async (rig) => {
  const mib = Buffer.alloc(1024 * 1024, 'x');
  const paths: string[] = [];
  for (let i = 0; i < 48; i++) {
    await writeFile(rig.path(`f${i}.bin`), mib);
    paths.push(rig.path(`f${i}.bin`));
  }
  let turns = 0;
  let ticking = true;
  const tick = () => {
    if (!ticking) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const hashed = await new StatCache(undefined).hashFiles(paths);
  ticking = false;
  assert.equal(hashed.size, 48);
  assert.equal(hashed.get(paths[0]!)!.sha256, createHash('sha256').update(mib).digest('hex'));
  // 48 MiB at most 16 MiB per turn: the loop ran in between (all of it synchronous would give 0 turns).
  assert.ok(turns >= 2, `${turns} event-loop turns while hashing 48 MiB`);
});

rigTest('stat cache: vanished files are absent; a damaged cache file is ignored and rewritten', async (rig) => {
  await rig.write({ 'a.txt': 'a', 'b.txt': 'b' });
  const file = rig.path('stat-cache.bin');
  const settled = () => Date.now() + 10_000;
  const first = new StatCache(file, settled);
  await first.hashFiles([rig.path('a.txt'), rig.path('b.txt')]);
  await first.save();
  const good = readFileSync(file);
  // Cut short, a wrong magic, a count that does not match the paths, another byte order, empty.
  const damaged = [
    good.subarray(0, good.length - 40),
    Buffer.concat([Buffer.from('FSC2'), good.subarray(4)]),
    Buffer.concat([good, Buffer.from('/extra/path\0')]),
    Buffer.concat([good.subarray(0, 4), Buffer.from(good.subarray(4, 8)).reverse(), good.subarray(8)]),
    Buffer.alloc(0),
  ];
  for (const bytes of damaged) {
    await writeFile(file, bytes);
    assert.equal(readStatCacheFile(file), undefined, 'not a stat cache');
    const c = new StatCache(file, settled);
    const h = await c.hashFiles([rig.path('a.txt'), rig.path('gone.txt'), rig.dir, rig.path('b.txt')]);
    assert.deepEqual([...h.keys()], [rig.path('a.txt'), rig.path('b.txt')]);
    assert.deepEqual(c.counters, { hashed: 2, reused: 0 }, 'nothing is trusted from a damaged file');
    await c.save();
    assert.deepEqual(readStatCacheFile(file)!.map((r) => r.path), [rig.path('a.txt'), rig.path('b.txt')], 'rewritten whole');
  }
});

rigTest('stat cache: the rows of format 2 (stat-cache.json) are not read, and that file is removed when format 3 is saved', async (rig) => {
  await rig.write({ 'a.txt': 'a' });
  const st = statSync(rig.path('a.txt'));
  await rig.write({ 'stat-cache.json': JSON.stringify({ v: 2, rows: [rig.path('a.txt'), st.size, st.mtimeMs, st.ctimeMs, st.ino, sha('forged'), Date.now() + 10_000] }) });
  const c = new StatCache(rig.path('stat-cache.bin'));
  assert.equal((await c.hashFiles([rig.path('a.txt')])).get(rig.path('a.txt'))!.sha256, sha('a'));
  await c.save();
  assert.equal(rig.exists('stat-cache.json'), false);
  assert.equal(readStatCacheFile(rig.path('stat-cache.bin'))![0]!.sha256, sha('a'));
});

rigTest('stat cache: lookups out of order, and of paths between and around the recorded ones, find exactly their own rows', async (rig) => {
  const names = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}.txt`);
  for (const n of names) await rig.write({ [n]: n });
  const file = rig.path('stat-cache.bin');
  const all = names.map((n) => rig.path(n));
  const first = new StatCache(file, () => Date.now() + 10_000);
  await first.hashFiles(all.filter((_, i) => i % 2 === 0)); // every other file recorded
  await first.save();
  const c = new StatCache(file, () => Date.now() + 10_000);
  // Reversed, then shuffled by a fixed stride, then sorted: every order the hint and the search meet.
  const orders = [[...all].reverse(), all.map((_, i) => all[(i * 7) % all.length]!), all];
  for (const order of orders) {
    const h = await c.hashFiles(order);
    for (const p of all) assert.equal(h.get(p)!.sha256, sha(p.slice(p.lastIndexOf('/') + 1)), p);
  }
  assert.equal(c.counters.hashed, 20, 'each unrecorded file read once (then it is a fresh row)');
  assert.equal(c.counters.reused, 3 * 20 + 2 * 20, 'each recorded file reused in every order, each fresh one after its first');
});

rigTest('stat cache: a stat taken by expandGlobs is used as is, with the time taken before it as the recording time', async (rig) => {
  await rig.write({ 'a.txt': 'aaa' });
  const { expandGlobs } = await import('../../lib/cache/files.js');
  const seen = new Map<string, SeenStat>();
  assert.deepEqual(await expandGlobs(['a.txt'], rig.dir, [], seen), ['a.txt']);
  const abs = rig.path('a.txt');
  const taken = seen.get(abs)!;
  assert.ok(taken.stat.size === 3 && taken.at <= Date.now());
  // A stat that is not the file's (another size) shows that it was not taken again.
  const c = new StatCache(undefined, () => Date.now() + 10_000);
  const h = await c.hashFiles([abs], new Map([[abs, { stat: { ...taken.stat, size: 99 }, at: taken.at }]]));
  assert.deepEqual([h.get(abs)!.sha256, h.get(abs)!.stat.size], [sha('aaa'), 99]);
  // Recorded at `at`, not at the cache's clock (10 s later): the file was written just before, so it
  // is racy and the next lookup re-reads it.
  const c2 = new StatCache(undefined, () => Date.now() + 10_000);
  await c2.hashFiles([abs], seen);
  await c2.hashFiles([abs]);
  assert.deepEqual(c2.counters, { hashed: 2, reused: 0 });
});

// ---- units ----

timedTest('sizes and durations (table)', () => {
  const SIZES: [string, number | undefined][] = [['1234', 1234], ['10K', 10240], ['500MB', 500 * 1024 ** 2], ['1.5GiB', 1.5 * 1024 ** 3], ['2 g', 2 * 1024 ** 3], ['ten', undefined], ['5X', undefined], ['', undefined]];
  for (const [t, v] of SIZES) assert.equal(parseSize(t), v, t);
  const DURATIONS: [string, number | undefined][] = [['90s', 90_000], ['30m', 1_800_000], ['12h', 43_200_000], ['7d', 604_800_000], ['2w', 1_209_600_000], ['1d12h', 129_600_000], ['500ms', 500], ['7', undefined], ['d', undefined], ['1y', undefined]];
  for (const [t, v] of DURATIONS) assert.equal(parseDuration(t), v, t);
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(1536), '1.5 KiB');
  assert.equal(formatSize(300 * 1024 ** 2), '300 MiB');
});

// ---- store maintenance ----

const def = (name: string, spec: TaskSpec = {}): TaskDef => ({ name, spec, site: () => undefined, __fabricTask: true });
function graphOf(rig: Rig, tasks: TaskDef[], targets: string[]): Graph {
  const r = analyze({ tasks, targets, vars: {}, env: { PATH: '/usr/bin:/bin' }, repoRoot: rig.dir, fabricfile: join(rig.dir, 'fabricfile.ts'), secretPatterns: [] });
  if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
  return r.value;
}
async function runNode(rig: Rig, g: Graph, id: NodeId, produce: () => Promise<void>) {
  const cache = createLocalCache({ dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: [], warn: (m) => assert.fail(m) });
  const node = g.nodes.get(id)!;
  const l = await cache.lookup(node, new Map(), { force: false });
  if (l.result !== 'hit') {
    await produce();
    await cache.save(node, l.fingerprint!, [{ stream: 'stdout', chunk: 'log\n' }]);
  }
  await cache.close();
  return l;
}

rigTest('prune --older-than and --max-size remove least-recently-used entries and unreferenced blobs; stats; clean', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const big = (n: string) => n.repeat(100_000);
  const tasks = ['old', 'mid', 'new'].map((n) => def(n, { effect: 'read-only', run: n, inputs: ['src/**'], outputs: [`out/${n}.bin`] }));
  const g = graphOf(rig, tasks, ['old', 'mid', 'new']);
  for (const [i, n] of ['old', 'mid', 'new'].entries()) {
    await runNode(rig, g, n, () => rig.write({ [`out/${n}.bin`]: big(String(i)) }));
  }
  const store = new Store(rig.path('.fabric', 'cache'));
  const s1 = await store.stats();
  assert.equal(s1.entries, 3);
  // Small logs are kept inline in the entry (one read on a hit), so only the outputs are blobs.
  assert.equal(s1.blobs, 3, 'three outputs (the logs are inline in the entries)');
  assert.equal(s1.runs, 3);
  assert.ok(s1.totalBytes > 300_000);
  // Make "old" two days unused and "mid" one hour unused.
  const entryFile = async (task: string) => {
    const r = await store.readRun(task);
    return store.entryPath(r!.last.fingerprint);
  };
  const ago = (ms: number) => new Date(Date.now() - ms);
  await utimes(await entryFile('old'), ago(2 * 86_400_000), ago(2 * 86_400_000));
  await utimes(await entryFile('mid'), ago(3_600_000), ago(3_600_000));
  const p1 = await store.prune({ olderThanMs: parseDuration('1d') });
  assert.deepEqual([p1.removedEntries, p1.removedBlobs], [1, 1]);
  assert.equal((await store.stats()).entries, 2);
  // Only one of the remaining 100 kB outputs fits: "mid" (least recently used) goes.
  const p2 = await store.prune({ maxBytes: 150_000 });
  assert.equal(p2.removedEntries, 1);
  assert.ok(p2.remainingBytes <= 150_000, String(p2.remainingBytes));
  const s2 = await store.stats();
  assert.deepEqual(s2.byTask, [{ task: 'new', entries: 1 }]);
  assert.equal((await runNode(rig, g, 'new', async () => assert.fail('new must be a hit'))).result, 'hit');
  assert.equal((await runNode(rig, g, 'mid', () => rig.write({ 'out/mid.bin': big('1') }))).result, 'miss');
  await store.clean();
  assert.equal(rig.exists('.fabric/cache'), false);
  assert.equal((await store.stats()).entries, 0);
});

rigTest('prune keeps what is referenced: blobs of kept entries, and the key of a removed entry a run record names (moved to keys/)', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const tasks = ['gone', 'kept'].map((n) => def(n, { effect: 'read-only', run: n, inputs: ['src/**'], outputs: [`out/${n}.small`, `out/${n}.big`] }));
  const g = graphOf(rig, tasks, ['gone', 'kept']);
  for (const n of ['gone', 'kept']) await runNode(rig, g, n, () => rig.write({ [`out/${n}.small`]: `small ${n}`, [`out/${n}.big`]: n.repeat(10_000) }));
  const store = new Store(rig.path('.fabric', 'cache'));
  const s1 = await store.stats();
  assert.deepEqual([s1.entries, s1.blobs, s1.keys], [2, 2, 0], 'small outputs and keys are in the entries; the large outputs are blobs');
  const fpOf = async (task: string) => (await store.readRun(task))!.lastSuccess!.fingerprint;
  const [gone, kept] = [await fpOf('gone'), await fpOf('kept')];
  const keyBefore = await store.readKey(gone);
  assert.ok(keyBefore);
  const old = new Date(Date.now() - 2 * 86_400_000);
  await utimes(store.entryPath(gone), old, old);
  const p = await store.prune({ olderThanMs: parseDuration('1d') });
  assert.deepEqual([p.removedEntries, p.removedBlobs, p.removedKeys, p.corrupt], [1, 1, 0, 0]);
  assert.equal((await store.readEntry(gone)).state, 'absent');
  assert.deepEqual(await store.readKey(gone), keyBefore, 'explain can still diff with the removed run');
  assert.ok(rig.exists(`.fabric/cache/keys/${gone.slice(0, 2)}/${gone}.json`));
  const s2 = await store.stats();
  assert.deepEqual([s2.entries, s2.blobs, s2.keys], [1, 1, 1]);
  // A second prune removes nothing more: the key file is named by a run record, the blob by an entry.
  const p2 = await store.prune({});
  assert.deepEqual([p2.removedEntries, p2.removedBlobs, p2.removedKeys], [0, 0, 0]);
  assert.ok(await store.readKey(kept));
  assert.equal((await runNode(rig, g, 'kept', async () => assert.fail('kept must be a hit'))).result, 'hit');
});

rigTest('prune --older-than also drops the run records of nodes not run since, and then their keys', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const tasks = ['stale', 'fresh'].map((n) => def(n, { effect: 'read-only', run: n, inputs: ['src/**'], outputs: [`out/${n}.txt`] }));
  const g = graphOf(rig, tasks, ['stale', 'fresh']);
  for (const n of ['stale', 'fresh']) await runNode(rig, g, n, () => rig.write({ [`out/${n}.txt`]: n }));
  const store = new Store(rig.path('.fabric', 'cache'));
  const stale = (await store.readRun('stale'))!.last.fingerprint;
  // 'stale' last ran (and its entry was last used) three days ago.
  const runsFile = rig.path('.fabric', 'cache', 'runs.json');
  const doc = JSON.parse(await rig.read('.fabric/cache/runs.json')) as { runs: { node: string; last: { at: string }; lastSuccess?: { at: string } }[] };
  const longAgo = new Date(Date.now() - 3 * 86_400_000);
  for (const r of doc.runs) if (r.node === 'stale') r.last.at = r.lastSuccess!.at = longAgo.toISOString();
  await writeFile(runsFile, JSON.stringify(doc));
  await utimes(store.entryPath(stale), longAgo, longAgo);
  const p = await store.prune({ olderThanMs: parseDuration('1d') });
  assert.deepEqual([p.removedEntries, p.removedRuns], [1, 1]);
  const fresh = new Store(rig.path('.fabric', 'cache'));
  assert.equal(await fresh.readRun('stale'), undefined);
  assert.ok(await fresh.readRun('fresh'));
  assert.equal(await fresh.readKey(stale), undefined, 'no record names it any more: its key is not kept');
  assert.equal((await fresh.stats()).keys, 0);
  // Without --older-than, records stay.
  assert.equal((await fresh.prune({ maxBytes: 1 })).removedRuns, 0);
  assert.ok(await new Store(rig.path('.fabric', 'cache')).readRun('fresh'));
});

rigTest('a hit advances the entry last-used time only when it is older than TOUCH_AFTER_MS (an hour)', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const g = graphOf(rig, [def('t', { effect: 'read-only', run: 't', inputs: ['src/**'] })], ['t']);
  await runNode(rig, g, 't', async () => {});
  const store = new Store(rig.path('.fabric', 'cache'));
  const entry = store.entryPath((await store.readRun('t'))!.last.fingerprint);
  const usedAt = async () => (await stat(entry)).mtimeMs;
  // Ten minutes, then half of TOUCH_AFTER_MS: no-op runs minutes apart do not rewrite every entry's
  // time (and so every run record).
  for (const recent of [Date.now() - 10 * 60_000, Date.now() - TOUCH_AFTER_MS / 2]) {
    await utimes(entry, recent / 1000, recent / 1000);
    assert.equal((await runNode(rig, g, 't', async () => assert.fail('a hit'))).result, 'hit');
    assert.equal(Math.round(await usedAt()), Math.round(recent), 'used recently: not touched');
  }
  const old = Date.now() - 2 * TOUCH_AFTER_MS;
  await utimes(entry, old / 1000, old / 1000);
  const before = Date.now();
  assert.equal((await runNode(rig, g, 't', async () => assert.fail('a hit'))).result, 'hit');
  // Set to the moment of the hit less the racy window (so that a run record may summarize the entry at once).
  const touchedAt = await usedAt();
  assert.ok(touchedAt >= before - RACY_WINDOW_MS - 5 && touchedAt <= Date.now() - RACY_WINDOW_MS + 5, `used long ago: touched (${touchedAt - before} ms)`);
});

rigTest('a hit on an entry that the run record summarizes does not read it; a changed output, mode or entry file does', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const g = graphOf(rig, [def('t', { effect: 'read-only', run: 't', inputs: ['src/**'], outputs: ['out/t.txt'] })], ['t']);
  const node = g.nodes.get('t')!;
  const warnings: string[] = [];
  // One run of t that prints nothing; counts the entry reads.
  const go = async () => {
    const cache = createLocalCache({ dir: rig.path('.fabric', 'cache'), repoRoot: rig.dir, secretPatterns: [], warn: (m) => warnings.push(m) });
    let reads = 0;
    const readEntry = cache.store.readEntry.bind(cache.store);
    cache.store.readEntry = async (fp) => {
      reads++;
      return readEntry(fp);
    };
    const l = await cache.lookup(node, new Map(), { force: false });
    if (l.result !== 'hit') {
      await rig.write({ 'out/t.txt': 'T' });
      await cache.save(node, l.fingerprint!, []);
    }
    const outputs = cache.fileDigests?.(node)?.outputs?.map((o) => [o.path, o.sha256]);
    await cache.close();
    return { result: l.result, reads, restored: l.result === 'hit' ? l.restored : undefined, outputs };
  };
  const store = new Store(rig.path('.fabric', 'cache'));
  const summary = async () => (await new Store(rig.path('.fabric', 'cache')).readRun('t'))?.entry;
  const settle = async (file: string) => {
    const past = (Date.now() - 10_000) / 1000;
    await utimes(file, past, past);
  };
  const out = rig.path('out', 't.txt');
  const outDigest = [[out, sha('T')]];

  assert.equal((await go()).result, 'miss');
  const fp = (await store.readRun('t'))!.last.fingerprint;
  const entry = store.entryPath(fp);
  assert.equal(await summary(), undefined, 'a stored run has no summary');
  assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: [], outputs: outDigest });
  assert.equal(await summary(), undefined, 'an entry written within the racy window is not summarized');

  await settle(entry);
  assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: [], outputs: outDigest });
  const s = await summary();
  assert.equal(s?.fingerprint, fp);
  assert.deepEqual(s.outputs.map((o) => [o.path, o.sha256, o.mode]), [['out/t.txt', sha('T'), 0o644]]);
  const runsFile = rig.path('.fabric', 'cache', 'runs.json');
  const runsBefore = (await stat(runsFile)).mtimeMs;
  assert.deepEqual(await go(), { result: 'hit', reads: 0, restored: [], outputs: outDigest }, 'summarized: one stat, no read');
  assert.equal((await stat(runsFile)).mtimeMs, runsBefore, 'a summarized no-op writes no records');

  await rig.write({ 'out/t.txt': 'changed' });
  assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: ['out/t.txt'], outputs: outDigest }, 'an output to restore: the entry is read');
  assert.equal(await rig.read('out/t.txt'), 'T');
  assert.equal((await go()).reads, 0, 'the entry is unchanged: still summarized');

  await chmod(out, 0o755);
  assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: [], outputs: outDigest }, 'a mode to restore: the entry is read');
  assert.equal((await stat(out)).mode & 0o777, 0o644);

  // The entry file written in place with its own bytes: its stat changed, so it is read (and, being
  // just written, no longer summarized).
  await writeFile(entry, await readFile(entry));
  assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: [], outputs: outDigest });
  assert.equal(await summary(), undefined);

  // Summarized again, then tampered with in place (same size): read, found corrupt, run again.
  await settle(entry);
  await go();
  assert.equal((await go()).reads, 0);
  const text = await readFile(entry, 'utf8');
  await writeFile(entry, text.replace(sha('T'), sha('U')));
  assert.equal((await stat(entry)).size, Buffer.byteLength(text));
  const tampered = await go();
  assert.deepEqual([tampered.result, tampered.reads], ['corrupt', 1]);
  assert.ok(warnings.some((w) => w.includes('does not match its hash') || w.includes('unexpected shape')), warnings.join('\n'));

  // Marking a summarized entry used (older than TOUCH_AFTER_MS) keeps it summarized, by its new stat.
  assert.equal((await go()).result, 'hit');
  await settle(entry);
  await go();
  const longAgo = (Date.now() - 2 * TOUCH_AFTER_MS) / 1000;
  await utimes(entry, longAgo, longAgo);
  assert.deepEqual([(await go()).reads, (await stat(entry)).mtimeMs > longAgo * 1000 + TOUCH_AFTER_MS], [1, true], 'touched');
  assert.equal((await summary())?.mtimeMs, (await stat(entry)).mtimeMs);
  assert.equal((await go()).reads, 0, 'summarized by the stat after the touch');

  // A summary of another store format, or a damaged one, is not used: the entry is read (and the
  // summary recorded again).
  for (const damage of [{ format: 1 }, { outputs: 'out/t.txt' }, { ino: 'x' }]) {
    const doc = JSON.parse(await readFile(runsFile, 'utf8')) as { runs: { node: string; entry: Record<string, unknown> }[] };
    const rec = doc.runs.find((r) => r.node === 't')!;
    rec.entry = { ...rec.entry, ...damage };
    await writeFile(runsFile, JSON.stringify(doc));
    assert.deepEqual(await go(), { result: 'hit', reads: 1, restored: [], outputs: outDigest }, JSON.stringify(damage));
    assert.equal((await go()).reads, 0, `${JSON.stringify(damage)}: summarized again`);
  }
});

rigTest('an entry with logs to replay is never summarized: every hit reads it', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const g = graphOf(rig, [def('t', { effect: 'read-only', run: 't', inputs: ['src/**'], outputs: ['out/t.txt'] })], ['t']);
  await runNode(rig, g, 't', () => rig.write({ 'out/t.txt': 'T' }));
  const store = new Store(rig.path('.fabric', 'cache'));
  const entry = store.entryPath((await store.readRun('t'))!.last.fingerprint);
  const past = (Date.now() - 10_000) / 1000;
  await utimes(entry, past, past);
  for (let i = 0; i < 2; i++) {
    const l = await runNode(rig, g, 't', async () => assert.fail('a hit'));
    assert.deepEqual(l.result === 'hit' && l.logs, [{ stream: 'stdout', chunk: 'log\n' }]);
    assert.equal((await new Store(rig.path('.fabric', 'cache')).readRun('t'))?.entry, undefined);
  }
});

rigTest('putFile: a small file (one read) and a large one (streamed) are stored under their sha256, byte-exact', async (rig) => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'ab\n');
  await rig.write({ 'small.txt': 'small content' });
  await writeFile(rig.path('big.bin'), big);
  const store = new Store(rig.path('.fabric', 'cache'));
  for (const [name, content] of [['small.txt', Buffer.from('small content')], ['big.bin', big]] as const) {
    const put = await store.putFile(rig.path(name));
    const expected = createHash('sha256').update(content).digest('hex');
    assert.deepEqual(put, { sha256: expected, size: content.length }, name);
    assert.ok((await readFile(store.blobPath(expected))).equals(content), name);
  }
  assert.deepEqual((await readdir(rig.path('.fabric', 'cache', 'blobs'))).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
});

rigTest('prune removes corrupt entries', async (rig) => {
  await rig.write({ 'src/x': 'x' });
  const g = graphOf(rig, [def('t', { effect: 'read-only', run: 't', inputs: ['src/**'] })], ['t']);
  await runNode(rig, g, 't', async () => {});
  const store = new Store(rig.path('.fabric', 'cache'));
  const fp = (await store.readRun('t'))!.last.fingerprint;
  await writeFile(store.entryPath(fp), '{"v":1,"fingerp');
  const p = await store.prune({});
  assert.equal(p.corrupt, 1);
  assert.equal((await store.stats()).entries, 0);
});

// ---- concurrency: two real processes on one store ----

const WORKER = `
import { createLocalCache } from ${JSON.stringify(pathToFileURL(join(ROOT, 'build/lib/cache/local.js')).href)};
import { analyze } from ${JSON.stringify(pathToFileURL(join(ROOT, 'build/lib/engine/analyze.js')).href)};
import { writeFile, mkdir, rename } from 'node:fs/promises';
const [dir, who] = process.argv.slice(2);
const def = (name, spec) => ({ name, spec, site: () => undefined, __fabricTask: true });
const tasks = [];
for (let i = 0; i < 40; i++) tasks.push(def('t' + i, { effect: 'read-only', run: 'x', inputs: ['src/**'], outputs: ['out/t' + i + '/**'] }));
const r = analyze({ tasks, targets: tasks.map((t) => t.name), vars: {}, env: {}, repoRoot: dir, fabricfile: dir + '/fabricfile.ts', secretPatterns: [] });
const warnings = [];
for (let round = 0; round < 3; round++) {
  const cache = createLocalCache({ dir: dir + '/.fabric/cache', repoRoot: dir, secretPatterns: [], warn: (m) => warnings.push(m) });
  for (const id of r.value.order) {
    const node = r.value.nodes.get(id);
    const l = await cache.lookup(node, new Map(), { force: round === 2 });
    if (l.result !== 'hit') {
      await mkdir(dir + '/out/' + id, { recursive: true });
      // Same content from both processes (the same task produces the same bytes): two small outputs
      // (inline in the entry) and a large one (a blob). Each replaced by a rename, so that the other
      // process never reads one half-written: the store is under test here, not torn outputs. The
      // temp files are outside the output directory, which the other process's out/<id>/** matches.
      await mkdir(dir + '/tmp', { recursive: true });
      for (let k = 0; k < 3; k++) {
        const file = dir + '/out/' + id + '/f' + k;
        const tmp = dir + '/tmp/' + id + '-f' + k + '.' + who;
        await writeFile(tmp, (id + ':' + k + '\\n').repeat(k === 2 ? 20000 : 2000));
        await rename(tmp, file);
      }
      await cache.save(node, l.fingerprint, [{ stream: 'stdout', chunk: who + ' ran ' + id + '\\n' }]);
    }
  }
  await cache.close();
}
console.log(JSON.stringify({ warnings }));
`;

rigTest('two processes writing the same store at once leave every entry, key and blob valid', async (rig) => {
  await rig.write({ 'src/in.txt': 'in', 'worker.mjs': WORKER });
  const runWorker = (who: string) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [rig.path('worker.mjs'), rig.dir, who], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    });
  const [a, b] = await withTimeout(Promise.all([runWorker('A'), runWorker('B')]), 50_000, 'workers');
  assert.equal(a.code, 0, a.out);
  assert.equal(b.code, 0, b.out);
  assert.deepEqual(JSON.parse(a.out).warnings, []);
  assert.deepEqual(JSON.parse(b.out).warnings, []);
  const store = new Store(rig.path('.fabric', 'cache'));
  const stats = await store.stats();
  assert.equal(stats.entries, 40);
  // Every entry parses, and every blob it names hashes to its name.
  for (let i = 0; i < 40; i++) {
    const run = await store.readRun(`t${i}`);
    assert.ok(run?.lastSuccess, `t${i} has a recorded success`);
    const e = await store.readEntry(run.lastSuccess.fingerprint);
    assert.equal(e.state, 'ok', `t${i}`);
    if (e.state !== 'ok') continue;
    assert.equal(e.entry.outputs.length, 3);
    assert.deepEqual(e.entry.outputs.map((o) => !!o.inline), [true, true, false], `t${i}: small outputs inline, the large one a blob`);
    for (const o of e.entry.outputs) {
      if (o.inline) assert.ok(inlineBytes(o), `inline output ${o.path} of t${i}`);
      else assert.equal(sha((await readFile(store.blobPath(o.sha256))).toString('latin1')), o.sha256);
    }
    const logs = e.entry.logs!;
    if (logs.inline) assert.equal(sha(JSON.stringify(logs.inline)), logs.sha256, `inline logs of t${i}`);
    else assert.ok(Buffer.isBuffer(await store.readBlob(logs.sha256)));
    assert.ok(await store.readKey(run.lastSuccess.fingerprint), `key of t${i}`);
  }
  // No temp files were left behind.
  const leftovers: string[] = [];
  const walk = async (d: string) => {
    for (const ent of await readdir(d, { withFileTypes: true })) {
      if (ent.isDirectory()) await walk(join(d, ent.name));
      else if (ent.name.endsWith('.tmp')) leftovers.push(ent.name);
    }
  };
  await walk(rig.path('.fabric'));
  assert.deepEqual(leftovers, []);
}, { ms: 60_000 });

rigTest('readKey: a key file is taken when its text hashes to the fingerprint (or, written another way, its canonical form does); anything else is not', async (rig) => {
  const store = new Store(rig.path('cache'));
  const key = { arch: 'x64', cwd: '.', deps: {}, effect: 'read-only', env: {}, inputGlobs: ['a'], inputs: { a: sha('a') }, outputs: [], params: {}, platform: 'linux', steps: [], task: 't', variant: null, version: 1 };
  const text = JSON.stringify(key);
  const fp = sha(text);
  await store.writeKey(fp, text);
  assert.deepEqual(await store.readKey(fp), key, 'as writeKey stored it');
  // The same key, pretty-printed (a key file written another way): accepted through its canonical form.
  await writeFile(store.keyPath(fp), JSON.stringify(key, null, 2));
  assert.deepEqual(await store.readKey(fp), key, 'pretty-printed');
  // Another key under this fingerprint (tampered, or a damaged store): refused, and there is no entry to fall back to.
  await writeFile(store.keyPath(fp), JSON.stringify({ ...key, task: 'other' }));
  assert.equal(await store.readKey(fp), undefined, 'a key that does not hash to its name');
  await writeFile(store.keyPath(fp), '{"not json');
  assert.equal(await store.readKey(fp), undefined, 'not JSON');
  assert.equal(await store.readKey(sha('nothing stored')), undefined, 'absent');
});

test.run();
