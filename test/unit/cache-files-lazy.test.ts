// lib/cache/files.ts loads fast-glob only when a pattern needs it: literal paths (the common case, e.g.
// a no-op over 1000 single-file tasks) are stat'ed directly, without loading the package at all.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { isPlainPattern } from '../../lib/cache/files.js';
import { rigTest, test } from '../helpers/rig.js';

/** Runs expandGlobs/unmatchedPatterns in a fresh process and reports whether fast-glob got loaded. */
function probe(dir: string, call: string): { loaded: boolean; result: unknown } {
  const files = new URL('../../lib/cache/files.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const m = await import(${JSON.stringify(files)});
    const result = await ${call};
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/fast-glob/'));
    console.log(JSON.stringify({ loaded, result }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { loaded: boolean; result: unknown };
}

rigTest('literal input and output paths never load fast-glob; globs do, with the same results as before', async (rig) => {
  await rig.write({ 'in/a.txt': 'a', 'in/b.txt': 'b', 'in/sub/c.txt': 'c', 'out/x.txt': 'x', 'odd (1).txt': 'o' });
  const d = JSON.stringify(rig.dir);
  const lit = probe(rig.dir, `m.expandGlobs(['in/b.txt', 'in/a.txt', './in/a.txt', 'missing.txt'], ${d})`);
  assert.deepEqual(lit, { loaded: false, result: ['in/a.txt', 'in/b.txt'] });
  const out = probe(rig.dir, `m.unmatchedPatterns(['out/x.txt', 'out/none.txt'], ${d})`);
  assert.deepEqual(out, { loaded: false, result: ['out/none.txt'] });
  // A directory and `dir/**` are walked without fast-glob.
  assert.deepEqual(probe(rig.dir, `m.expandGlobs(['in'], ${d})`), { loaded: false, result: ['in/a.txt', 'in/b.txt', 'in/sub/c.txt'] });
  assert.deepEqual(probe(rig.dir, `m.expandGlobs(['in/**', 'out/x.txt'], ${d})`), { loaded: false, result: ['in/a.txt', 'in/b.txt', 'in/sub/c.txt', 'out/x.txt'] });
  // A glob, a negation, parentheses: fast-glob decides.
  assert.deepEqual(probe(rig.dir, `m.expandGlobs(['in/*.txt', '!in/b.txt'], ${d})`), { loaded: true, result: ['in/a.txt'] });
  assert.deepEqual(probe(rig.dir, `m.expandGlobs(['odd (1).txt'], ${d})`), { loaded: true, result: ['odd (1).txt'] });
  assert.deepEqual(probe(rig.dir, `m.unmatchedPatterns(['out/*.md'], ${d})`), { loaded: true, result: ['out/*.md'] });
});

rigTest('walking dir/** without fast-glob finds exactly what fast-glob finds', async (rig) => {
  const { default: fg } = await import('fast-glob');
  const { expandGlobs } = await import('../../lib/cache/files.js');
  const { symlinkSync, chmodSync, mkdirSync } = await import('node:fs');
  await rig.write({
    'tree/a.txt': 'a', 'tree/.hidden': 'h', 'tree/.dotdir/x': 'x', 'tree/sub/deep/z.bin': 'z', 'tree/sub/.git/HEAD': 'ref',
    'tree/sub/gitfile/.git': 'gitdir: elsewhere', 'tree/cache/entry': 'e', 'tree/odd name (1).txt': 'o', 'tree/é€.txt': 'u',
    'other/b.txt': 'b', 'file.txt': 'f',
  });
  mkdirSync(rig.path('tree', 'empty'));
  mkdirSync(rig.path('tree', 'locked'));
  await rig.write({ 'tree/locked/secret': 's' });
  chmodSync(rig.path('tree', 'locked'), 0o000);
  const ignoreDirs = [rig.path('tree', 'cache'), rig.path('tree', 'sub', 'deep')];
  // What expandGlobs asks fast-glob for (lib/cache/files.ts).
  const viaFastGlob = async (patterns: string[]) =>
    (await fg(patterns, { cwd: rig.dir, dot: true, onlyFiles: true, followSymbolicLinks: true, unique: true, suppressErrors: true, ignore: ['**/.git/**', 'tree/cache/**', 'tree/sub/deep/**'] })).sort();
  try {
    for (const patterns of [['tree/**'], ['tree/**', 'other/**'], ['tree/**', 'file.txt'], ['tree/sub/**', 'tree/**'], ['missing/**'], ['file.txt/**']]) {
      assert.deepEqual(await expandGlobs(patterns, rig.dir, ignoreDirs), await viaFastGlob(patterns), JSON.stringify(patterns));
    }
    // A directory literal means dir/**.
    assert.deepEqual(await expandGlobs(['tree'], rig.dir, ignoreDirs), await viaFastGlob(['tree/**']));
    // A symbolic link inside the tree: fast-glob (which follows it) decides, with the same result.
    symlinkSync(rig.path('other'), rig.path('tree', 'link'));
    assert.deepEqual(await expandGlobs(['tree/**'], rig.dir, ignoreDirs), await viaFastGlob(['tree/**']));
    assert.ok((await expandGlobs(['tree/**'], rig.dir, ignoreDirs)).includes('tree/link/b.txt'));
  } finally {
    chmodSync(rig.path('tree', 'locked'), 0o755);
  }
});

rigTest('name patterns under a static directory are walked without fast-glob and find exactly what fast-glob finds', async (rig) => {
  const { default: fg } = await import('fast-glob');
  const { expandGlobs } = await import('../../lib/cache/files.js');
  const { symlinkSync, mkdirSync, writeFileSync } = await import('node:fs');
  const names = [
    'a/x.json', 'a/.x.json', 'a/.json', 'a/x.JSON', 'a/x.json.bak', 'a/xjson', 'a/json', 'a/sp ace.json', 'a/x*y.json', 'a/é€.json',
    'a/x+y.json', 'a/x$.json', 'a/x^y.json', 'a/x|y.json', 'a/x.tar.gz', 'a/.tar.gz', 'a/tar.gz', 'a/b/y.json', 'a/b/c/w.json',
    'a/.d/z.json', 'a/.git/q.json', 'a/dir.json/inner.json', 'a/cache/c.json', 'a/b/decision.json', 'a/decision.json',
    'env s/one.yml', 'env s/two.yaml', 'root.json', 'ubuntu-24.04/img.tar.gz',
  ];
  await rig.write(Object.fromEntries(names.map((n) => [n, n])));
  mkdirSync(rig.path('a', 'empty.json'));
  const ignoreDirs = [rig.path('a', 'cache')];
  const viaFastGlob = async (patterns: string[]) =>
    (await fg(patterns, { cwd: rig.dir, dot: true, onlyFiles: true, followSymbolicLinks: true, unique: true, suppressErrors: true, ignore: ['**/.git/**', 'a/cache/**'] })).sort();
  const fast = (patterns: string[]) => probe(rig.dir, `m.expandGlobs(${JSON.stringify(patterns)}, ${JSON.stringify(rig.dir)}, ${JSON.stringify(ignoreDirs)})`);
  const PATTERNS = [
    ['a/*.json'], ['a/**/*.json'], ['a/*'], ['a/**/*'], ['a/**/y.json'], ['a/**/decision.json'], ['a/*.tar.gz'], ['a/x*'], ['a/**/.x.json'],
    ['a/*.*'], ['a/*json'], ['a/*+y.json', 'a/x*'], ['a/b/*.json'], ['a/*.json', 'a/**/*.json', 'root.json'],
    ['env s/*.yml'], ['ubuntu-24.04/*.tar.gz'], ['missing/**/*.json'], ['root.json/*.json'], ['a/**/*.json', 'a/**'], ['a/**/*x*'],
  ];
  for (const patterns of PATTERNS) {
    assert.deepEqual(fast(patterns), { loaded: false, result: await viaFastGlob(patterns) }, JSON.stringify(patterns));
  }
  // Not simple: `?`, a class, braces, `**` inside the path, a leading ./, a negation: fast-glob decides, with the same results.
  // Characters fast-glob gives a meaning to outside those (`|`, quotes), or that this path does not take on (`$`, `^`): fast-glob too.
  const others = [['a/?.json'], ['a/[xy].json'], ['a/*.{json,gz}'], ['a/**/c/*.json'], ['./a/*.json'], ['a/*.json', '!a/x.json'], ['*.json'], ['**/*.json']];
  for (const patterns of [...others, ['a/x|*'], ['a/**/*"*'], ['a/x$*'], ['a/*^y.json']]) {
    const r = fast(patterns);
    assert.deepEqual(r, { loaded: true, result: await viaFastGlob(patterns) }, JSON.stringify(patterns));
  }
  // In-process, the same answers.
  assert.deepEqual(await expandGlobs(['a/**/decision.json'], rig.dir, ignoreDirs), ['a/b/decision.json', 'a/decision.json']);
  // A symbolic link or a file name with a line end in a walked directory: fast-glob decides.
  writeFileSync(rig.path('a', 'b', 'odd\nname.json'), 'o');
  assert.deepEqual(fast(['a/**/*.json']), { loaded: true, result: await viaFastGlob(['a/**/*.json']) });
  symlinkSync(rig.path('a', 'b'), rig.path('a', 'link'));
  const linked = fast(['a/*.json', 'a/**/y.json']);
  assert.deepEqual(linked, { loaded: true, result: await viaFastGlob(['a/*.json', 'a/**/y.json']) });
  assert.ok((linked.result as string[]).includes('a/link/y.json'));
});

test('a pattern without glob characters is never dynamic for fast-glob (the test files.ts relies on)', async () => {
  const { default: fg } = await import('fast-glob');
  const samples = [
    'a.txt', 'dir/sub/file.tar.gz', './a', 'a//b', '../x', '/abs/path', 'a b c', '@scope/pkg', 'a+b', 'a@b', 'x,y', 'a..b', 'a.{b', 'a}b',
    '-dash', '#hash', '%pct', '~tilde', 'é€', 'a|b', "it's", 'a$b', 'a^b', 'a=b', 'a;b', 'a&b', '.', '..',
  ];
  for (const p of samples) if (isPlainPattern(p)) assert.equal(fg.isDynamicPattern(p), false, p);
  // And the characters it rejects are the ones fast-glob can read as syntax.
  for (const p of ['*.txt', 'a?', '[ab]', '{a,b}', '!a', '@(a|b)', '+(a)', 'a\\*']) {
    assert.equal(isPlainPattern(p), false, p);
    assert.equal(fg.isDynamicPattern(p), true, p);
  }
});

test.run();
