// The native tree walker (lib/cache/walker.c, used by lib/cache/files.ts for large trees): the walk in
// JavaScript and fast-glob are the oracles. Every comparison runs the same patterns three ways: with
// the native walker, with the JavaScript walk only, and through fast-glob.
import * as assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { expandGlobs, nativeWalks, setNativeWalker, type SeenStat } from '../../lib/cache/files.js';
import { StatCache } from '../../lib/cache/stat-cache.js';
import { nativeHelper } from '../../lib/util/native.js';
import { rigTest, test, type Rig } from '../helpers/rig.js';

const WALKER = nativeHelper('fabric-walk');

test('the walker is built wherever the fork server is (one compiler builds both)', () => {
  assert.equal(Boolean(WALKER), Boolean(nativeHelper('fabric-forkserver')));
});

/** A tree large enough for the native walker (over 1000 entries), with the cases the walks must agree on. */
async function bigTree(rig: Rig, { odd = true } = {}): Promise<void> {
  const files: Record<string, string> = {};
  for (let d = 0; d < 30; d++) for (let f = 0; f < 40; f++) files[`tree/d${d}/f${f}.txt`] = `${d}/${f}`;
  Object.assign(files, {
    'tree/.hidden': 'h', 'tree/.dotdir/x.txt': 'x', 'tree/sub/deep/z.bin': 'z', 'tree/sub/.git/HEAD': 'ref', 'tree/sub/gitfile/.git': 'gitdir: x',
    'tree/cache/entry.txt': 'e', 'tree/odd name (1).txt': 'o', 'tree/é€ 𝄞.txt': 'u', 'tree/sp ace/a.json': 'j',
    'tree/a.json': 'j', 'tree/d3/b.json': 'j', 'other/b.txt': 'b', 'file.txt': 'f',
  });
  await rig.write(files);
  // Names a name pattern hands to fast-glob (a walk of the whole tree lists them; line ends: below).
  if (odd) await rig.write({ 'tree/back\\slash.txt': 'b', 'tree/tab\there.txt': 't' });
  mkdirSync(rig.path('tree', 'empty'));
  mkdirSync(rig.path('tree', 'locked'));
  writeFileSync(rig.path('tree', 'locked', 'secret.txt'), 's');
  chmodSync(rig.path('tree', 'locked'), 0o000);
  spawnSync('mkfifo', [rig.path('tree', 'fifo.txt')]);
  // A modification time with a fraction of a millisecond: the walker's stats must give Node's milliseconds exactly.
  utimesSync(rig.path('tree', 'd1', 'f1.txt'), 1_700_000_000.123456, 1_700_000_000.987654);
}

const fastGlobOptions = (ignore: string[]) => ({ dot: true, onlyFiles: true, followSymbolicLinks: true, unique: true, suppressErrors: true, ignore: ['**/.git/**', ...ignore] });

/** The same patterns with the native walker (above `above` entries) and with the JavaScript walk only. */
async function bothWalks(rig: Rig, patterns: string[], ignoreDirs: string[], above?: number) {
  setNativeWalker(undefined, above);
  const seen = new Map<string, SeenStat>();
  const native = await expandGlobs(patterns, rig.dir, ignoreDirs, seen);
  const walks = nativeWalks.count;
  setNativeWalker(null);
  const js = await expandGlobs(patterns, rig.dir, ignoreDirs);
  setNativeWalker(undefined);
  return { native, js, seen, walks };
}

async function threeWays(rig: Rig, patterns: string[], ignoreDirs: string[], ignoreGlobs: string[]) {
  const { default: fg } = await import('fast-glob');
  const both = await bothWalks(rig, patterns, ignoreDirs);
  // A directory literal means dir/** (expandGlobs says so to fast-glob too).
  const viaFg = (await fg(patterns.map((p) => (p === 'tree' ? 'tree/**' : p)), { cwd: rig.dir, ...fastGlobOptions(ignoreGlobs) })).sort();
  return { ...both, viaFg };
}

rigTest('the native walker lists what the JavaScript walk and fast-glob list, and its stats are Node’s', async (rig) => {
  if (!WALKER) return; // no C compiler at install time: nothing to compare (the test above says whether that is so)
  await bigTree(rig);
  const ignoreDirs = [rig.path('tree', 'cache'), rig.path('tree', 'sub', 'deep')];
  const ignoreGlobs = ['tree/cache/**', 'tree/sub/deep/**'];
  try {
    for (const patterns of [['tree/**'], ['tree'], ['tree/**', 'other/**', 'file.txt'], ['tree/**/*.json'], ['tree/**/*.txt'], ['tree/sub/**', 'tree/**']]) {
      const r = await threeWays(rig, patterns, ignoreDirs, ignoreGlobs);
      assert.deepEqual(r.native, r.js, `native and JavaScript walks: ${JSON.stringify(patterns)}`);
      assert.deepEqual(r.native, r.viaFg, `native walk and fast-glob: ${JSON.stringify(patterns)}`);
      if (!patterns[0]!.startsWith('tree/**/*.')) assert.ok(r.native.includes('tree/tab\there.txt') && r.native.includes('tree/back\\slash.txt'));
      assert.ok(r.native.length > (patterns[0] === 'tree/**/*.json' ? 2 : 1000));
      // A name pattern meeting a name with a line end or a backslash goes to fast-glob (compared above).
      if (patterns[0]!.startsWith('tree/**/*.')) continue;
      assert.ok(r.walks > 0, `the native walker was used: ${JSON.stringify(patterns)}`);
      // Every listed file has the stat Node gives (the fields the stat cache compares, exactly).
      let compared = 0;
      for (const [abs, s] of r.seen) {
        const st = statSync(abs);
        assert.deepEqual(s.stat, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode }, abs);
        assert.ok(s.at <= Date.now());
        compared++;
      }
      assert.ok(compared >= 1200, `stats given for the walked files (${compared})`);
      assert.ok(r.seen.has(rig.path('tree', 'd1', 'f1.txt')));
    }
  } finally {
    chmodSync(rig.path('tree', 'locked'), 0o755);
  }
});

rigTest('a symbolic link in a large tree, or a walker that fails, gives the same files as fast-glob', async (rig) => {
  if (!WALKER) return;
  await bigTree(rig, { odd: false });
  chmodSync(rig.path('tree', 'locked'), 0o755);
  symlinkSync(rig.path('other'), rig.path('tree', 'd29', 'link'));
  const r = await threeWays(rig, ['tree/**'], [], []);
  assert.deepEqual(r.native, r.viaFg);
  assert.deepEqual(r.js, r.viaFg);
  assert.ok(r.native.includes('tree/d29/link/b.txt'));
  // The walker itself stops at the link (the JavaScript walk may meet it first, within its budget).
  assert.equal(spawnSync(WALKER, [rig.path('tree')]).status, 3);
  assert.equal(spawnSync(WALKER, [rig.path('tree'), rig.path('tree', 'd29')]).status, 0, 'not when the link lies in a skipped directory');
  // A name pattern over a large tree without odd names: walked natively, with the same results.
  for (const patterns of [['tree/**/*.json'], ['tree/**/f1*.txt', 'other/**']]) {
    const n = await threeWays(rig, patterns, [rig.path('tree', 'd29')], ['tree/d29/**']);
    assert.ok(n.walks > 0, JSON.stringify(patterns));
    assert.deepEqual(n.native, n.js, JSON.stringify(patterns));
    assert.deepEqual(n.native, n.viaFg, JSON.stringify(patterns));
    assert.deepEqual([...n.seen.keys()].sort(), n.native.filter((p) => p.startsWith('tree/')).map((p) => rig.path(...p.split('/'))).sort(), 'stats for the matched files only');
  }
  // Walkers that fail or answer nonsense: the JavaScript walk takes over.
  for (const broken of ['/bin/false', '/bin/echo', rig.path('missing-walker')]) {
    setNativeWalker(broken);
    const got = await expandGlobs(['tree/**'], rig.dir, [rig.path('tree', 'd29')]);
    assert.equal(nativeWalks.count, 1, broken);
    assert.deepEqual(got, (await (await import('fast-glob')).default(['tree/**'], { cwd: rig.dir, ...fastGlobOptions(['tree/d29/**']) })).sort(), broken);
  }
  setNativeWalker(undefined);
});

rigTest('a name with a line end sends the tree to fast-glob from either walk: the same files whichever way', async (rig) => {
  if (!WALKER) return;
  await bigTree(rig, { odd: false });
  chmodSync(rig.path('tree', 'locked'), 0o755);
  const odd = ['tree/d7/line\nend.txt', 'tree/d12/car\rriage.txt', 'tree/sub/sep\u2028arator.txt', 'tree/d3/new\nline-dir/inner.txt'];
  await rig.write(Object.fromEntries(odd.map((p) => [p, 'x'])));
  for (const patterns of [['tree'], ['tree/**'], ['tree/**', 'file.txt'], ['tree/**/*.txt']]) {
    // The native walk: the JavaScript walk's budget (10 entries) is spent in the tree's first directory.
    const r = await threeWays(rig, patterns, [], []);
    const small = await bothWalks(rig, patterns, [], 10);
    assert.ok(small.walks > 0, `the walker was asked: ${JSON.stringify(patterns)}`);
    for (const [how, got] of [['native', small.native], ['JavaScript', r.js], ['default', r.native]] as const) {
      assert.deepEqual(got, r.viaFg, `${how} walk and fast-glob: ${JSON.stringify(patterns)}`);
      if (!patterns.includes('tree/**/*.txt')) for (const p of odd) assert.ok(!got.includes(p), `${how}: ${JSON.stringify(p)} is not listed by **`);
    }
    assert.ok(r.viaFg.length > 1000);
    if (patterns.includes('tree/**/*.txt')) assert.ok(r.viaFg.includes(odd[0]!), 'fast-glob lists it for a name pattern');
  }
  // fast-glob's own rule, which the walks follow: dir/* and dir/**/*.txt list such a name, dir/** does not.
  const { default: fg } = await import('fast-glob');
  assert.deepEqual(await expandGlobs(['tree/d7/*'], rig.dir), (await fg('tree/d7/*', { cwd: rig.dir, ...fastGlobOptions([]) })).sort());
  assert.ok((await expandGlobs(['tree/d7/*'], rig.dir)).includes(odd[0]!));
});

rigTest('the stat cache takes the walker’s stats: the same digests, and unchanged files are not read again', async (rig) => {
  if (!WALKER) return;
  await bigTree(rig);
  chmodSync(rig.path('tree', 'locked'), 0o755);
  // Every file settled: modified longer ago than the racy window, so a recorded hash may be reused.
  setNativeWalker(null);
  const old = Date.now() / 1000 - 60;
  for (const rel of await expandGlobs(['tree/**'], rig.dir)) utimesSync(rig.path(...rel.split('/')), old, old);
  const digests = async (native: boolean, cache: StatCache) => {
    setNativeWalker(native ? undefined : null);
    const seen = new Map<string, SeenStat>();
    const rels = await expandGlobs(['tree/**'], rig.dir, [], seen);
    const abs = rels.map((r) => rig.path(...r.split('/')));
    const h = await cache.hashFiles(abs, seen);
    setNativeWalker(undefined);
    return { seen: seen.size, digests: abs.map((p) => h.get(p)?.sha256 ?? null) };
  };
  const later = () => Date.now() + 10_000; // every file settled (outside the racy window)
  const a = await digests(true, new StatCache(undefined, later));
  const b = await digests(false, new StatCache(undefined, later));
  assert.ok(a.seen > 1200 && b.seen === 0, `${a.seen} ${b.seen}`);
  assert.deepEqual(a.digests, b.digests);
  const sample = a.digests[0];
  assert.match(String(sample), /^[0-9a-f]{64}$/);
  // Hashed once, then reused from the walker's stats.
  const c = new StatCache(rig.path('stat-cache.bin'), later);
  await digests(true, c);
  const hashed = c.counters.hashed;
  await digests(true, c);
  assert.equal(c.counters.hashed, hashed, 'nothing read again');
  assert.ok(c.counters.reused >= hashed);
  // A file rewritten with the same size: its new stat is seen, and it is read again.
  writeFileSync(rig.path('tree', 'd0', 'f0.txt'), 'X/Y');
  const after = await digests(true, c);
  assert.equal(c.counters.hashed, hashed + 1);
  assert.ok(after.digests.includes(createHash('sha256').update('X/Y').digest('hex')));
});

rigTest('random trees: the native walker (used for every walk here) and the JavaScript walk list the same files', async (rig) => {
  if (!WALKER) return;
  // A fixed seed: the same trees every run.
  let seed = 20261127;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const NAMES = ['a', 'b.txt', '.hidden', 'sp ace', 'é€', '𝄞', 'x.json', '.git', 'cache', 'dir.d', '-dash', '#hash', 'UPPER', 'a..b', 'z'];
  for (let t = 0; t < 8; t++) {
    const root = `t${t}`;
    const files: Record<string, string> = {};
    const dirs: string[] = [root];
    for (let i = 0; i < 60; i++) {
      const parent = dirs[rand(dirs.length)]!;
      const name = `${NAMES[rand(NAMES.length)]}${rand(3) === 0 ? String(i) : ''}`;
      const path = `${parent}/${name}`;
      if (rand(3) === 0 && !Object.keys(files).some((f) => f === path || f.startsWith(`${path}/`))) dirs.push(path);
      else if (!dirs.includes(path)) files[path] = `${t}:${i}`;
    }
    // A file whose path a later directory would need is dropped (write() cannot make both).
    const filePaths = Object.keys(files).filter((f) => !dirs.some((d) => d.startsWith(`${f}/`)));
    await rig.write(Object.fromEntries(filePaths.map((f) => [f, files[f]!])));
    for (const d of dirs) mkdirSync(rig.path(...d.split('/')), { recursive: true });
    const ignoreDirs = dirs.filter((d) => d.endsWith('/cache')).map((d) => rig.path(...d.split('/')));
    for (const patterns of [[`${root}/**`], [root], [`${root}/**/*.txt`], [`${root}/**/x.json`, `${root}/**/b.txt`]]) {
      const { native, js, seen, walks } = await bothWalks(rig, patterns, ignoreDirs, 0);
      assert.deepEqual(native, js, `tree ${t}, ${JSON.stringify(patterns)}`);
      assert.ok(walks > 0, `tree ${t}: the walker was used`);
      for (const [abs, s] of seen) assert.equal(s.stat.size, statSync(abs).size, abs);
    }
  }
});

test('the walker refuses a relative root and reports a missing one (the caller walks in JavaScript)', () => {
  if (!WALKER) return;
  assert.equal(spawnSync(WALKER, ['relative/dir']).status, 2);
  assert.equal(spawnSync(WALKER, ['/nonexistent/fabric-walk-test']).status, 2);
  assert.equal(spawnSync(WALKER, []).status, 2);
});

test.run();
