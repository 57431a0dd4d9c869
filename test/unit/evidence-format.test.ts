// The small formats of a packet: run ids, node directory names, the sha256sum manifest (checked
// against the real `sha256sum`), and atomic writes.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSchemas } from '../../lib/evidence/schemas.js';
import { newRunId, RUN_ID_PATTERN } from '../../lib/evidence/run-id.js';
import { compareBytes, safeNodeId, sha256Hex, writeFileAtomic, walkFiles } from '../../lib/evidence/fsutil.js';
import { formatManifest, ManifestLines, parseManifest } from '../../lib/evidence/manifest.js';
import { rigTest, test } from '../helpers/rig.js';

test('run ids: UTC timestamp plus a random suffix, file-name safe, sortable', () => {
  const id = newRunId(new Date('2026-11-26T14:05:51.987Z'));
  assert.match(id, /^20261126T140551Z-[0-9a-f]{6}$/);
  assert.match(id, RUN_ID_PATTERN);
  assert.notEqual(newRunId(new Date(0)), newRunId(new Date(0)));
  assert.ok(newRunId(new Date('2026-01-02T00:00:00Z')) < newRunId(new Date('2026-01-10T00:00:00Z')));
});

const SAFE: [string, RegExp][] = [
  ['lint', /^lint$/],
  ['tf.plan', /^tf\.plan$/],
  ['tf.plan[ENV=samakia-dns]', /^tf\.plan_ENV_samakia-dns-[0-9a-f]{8}$/],
  ['../../etc/passwd', /^__\.\._etc_passwd-[0-9a-f]{8}$/],
  ['a/b', /^a_b-[0-9a-f]{8}$/],
  ['x'.repeat(300), /^x{100}-[0-9a-f]{8}$/],
];
for (const [id, re] of SAFE) test(`safeNodeId(${JSON.stringify(id.slice(0, 30))})`, () => assert.match(safeNodeId(id), re));

test('safeNodeId keeps ids that sanitize alike apart', () => {
  assert.notEqual(safeNodeId('a[X=1]'), safeNodeId('a[X_1]'));
  assert.notEqual(safeNodeId('a/b'), safeNodeId('a_b'));
});

test('manifest lines are sorted in byte order (C locale) and round-trip', () => {
  const h = (s: string) => sha256Hex(s);
  const text = formatManifest([
    { path: 'nodes/b/x', sha256: h('1') },
    { path: 'Z.json', sha256: h('2') },
    { path: 'nodes/a/x', sha256: h('3') },
    { path: 'run.json', sha256: h('4') },
  ]);
  assert.deepEqual(
    text.split('\n').filter(Boolean).map((l) => l.slice(66)),
    ['./Z.json', './nodes/a/x', './nodes/b/x', './run.json'],
  );
  // Names outside ASCII sort by their UTF-8 bytes, where UTF-16 code units order differently: U+FF21
  // (EF BC A1) before U+1F600 (F0 9F 98 80), whose first code unit (D83D) is the smaller one.
  const wide = formatManifest([
    { path: 'nodes/\u{1F600}', sha256: h('5') },
    { path: 'nodes/\uFF21', sha256: h('6') },
    { path: 'nodes/z', sha256: h('7') },
  ]);
  assert.deepEqual(
    wide.split('\n').filter(Boolean).map((l) => l.slice(66)),
    ['./nodes/z', './nodes/\uFF21', './nodes/\u{1F600}'],
  );
  const back = parseManifest(text);
  assert.deepEqual(back.malformed, []);
  assert.deepEqual(back.entries.map((e) => e.path), ['Z.json', 'nodes/a/x', 'nodes/b/x', 'run.json']);
  const bad = parseManifest(`${h('1')}  ./ok\nnot a line\n${'a'.repeat(63)}  ./short\n\\${h('2')}  ./escaped\\nname\n`);
  assert.deepEqual(bad.malformed.map((m) => m.line), [2, 3, 4]);
});

test('ManifestLines: kept between checkpoints, always the text formatManifest gives for the same entries', () => {
  // Paths arrive in no order (as nodes complete), some again with a new hash (run.json at every
  // checkpoint), some outside ASCII (sorted by their UTF-8 bytes); the text is asked for in between.
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const names = ['run.json', 'nodes/a/manifest.json', 'nodes/\uFF21/x', 'nodes/\u{1F600}/x', 'nodes/Z', 'nodes/a b/c', 'attestations.jsonl'];
  for (let i = 0; i < 200; i++) names.push(`nodes/n${rnd(1000)}/${rnd(2) ? 'manifest.json' : 'statements.jsonl'}`);
  const lines = new ManifestLines();
  const now = new Map<string, string>();
  for (let step = 0; step < 400; step++) {
    const path = names[rnd(names.length)]!;
    const sha = sha256Hex(String(step));
    lines.set(path, sha);
    now.set(path, sha);
    if (rnd(10) === 0) assert.equal(lines.text(), formatManifest([...now].map(([p, h]) => ({ path: p, sha256: h }))), `after step ${step}`);
  }
  assert.equal(lines.text(), formatManifest([...now].map(([p, h]) => ({ path: p, sha256: h }))));
  assert.equal(lines.text(), lines.text(), 'asking twice changes nothing');
  assert.equal(new ManifestLines().text(), '');
});

rigTest('the manifest is what sha256sum writes and accepts', async (rig) => {
  await rig.write({ 'p/run.json': '{}\n', 'p/nodes/a b/out.log': 'hello\n', 'p/nodes/B/x': '' });
  const dir = rig.path('p');
  const files = await walkFiles(dir);
  const entries = await Promise.all(files.map(async (f) => ({ path: f, sha256: sha256Hex(await readFile(join(dir, f))) })));
  const ours = formatManifest(entries);
  // What Samakia's scripts do: find . -type f | LC_ALL=C sort | xargs sha256sum
  const theirs = spawnSync('bash', ['-c', 'find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum'], { cwd: dir, encoding: 'utf8' }).stdout;
  assert.equal(ours, theirs);
  await writeFile(join(dir, 'manifest.sha256'), ours);
  const r = spawnSync('sha256sum', ['-c', '--strict', 'manifest.sha256'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

rigTest('writeFileAtomic replaces the file whole and leaves no temp file behind', async (rig) => {
  const target = rig.path('d', 'f.json');
  await writeFileAtomic(target, 'one');
  await writeFileAtomic(target, 'two');
  assert.equal(await readFile(target, 'utf8'), 'two');
  assert.deepEqual(await readdir(rig.path('d')), ['f.json']);
  await mkdir(rig.path('tmp'));
  await writeFileAtomic(target, 'three', rig.path('tmp'));
  assert.equal(await readFile(target, 'utf8'), 'three');
  assert.deepEqual(await readdir(rig.path('tmp')), []);
});

const SCHEMA_CASES: [string, 'run' | 'manifest' | 'statement' | 'dsse' | 'fabricPredicate' | 'slsa', unknown, RegExp][] = [
  ['run.json needs its fields', 'run', { kind: 'fabric.run' }, /must have required property 'runId'/],
  ['statement _type is fixed', 'statement', { _type: 'https://in-toto.io/Statement/v0.1', subject: [{ name: 'a', digest: { sha256: 'a'.repeat(64) } }], predicateType: 'x', predicate: {} }, /\/_type must be equal to constant/],
  ['a statement needs a subject', 'statement', { _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'x', predicate: {} }, /\/subject must NOT have fewer than 1 items/],
  ['subject digests are hex', 'statement', { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'a', digest: { sha256: 'xyz' } }], predicateType: 'x', predicate: {} }, /digest\/sha256 must match pattern/],
  ['an envelope needs a signature', 'dsse', { payloadType: 't', payload: '', signatures: [] }, /\/signatures must NOT have fewer than 1 items/],
  ['SLSA needs a builder id', 'slsa', { buildDefinition: { buildType: 'b', externalParameters: { task: 't', params: {} } }, runDetails: { builder: {}, metadata: { invocationId: 'i', finishedOn: '2026-01-01T00:00:00Z' } } }, /builder must have required property 'id'/],
  ['the fabric predicate is closed', 'fabricPredicate', { extra: 1 }, /must NOT have additional properties \(extra\)/],
  ['dates are RFC 3339', 'slsa', { buildDefinition: { buildType: 'b', externalParameters: { task: 't', params: {} } }, runDetails: { builder: { id: 'x' }, metadata: { invocationId: 'i', finishedOn: 'yesterday' } } }, /finishedOn must match format "date-time"/],
];
for (const [title, name, value, re] of SCHEMA_CASES) {
  test(`schema: ${title}`, async () => {
    const errs = (await loadSchemas()).validate(name, value);
    assert.match(errs.map((e) => `${e.path} ${e.message}`).join('\n'), re);
  });
}

test('the verifier needs nothing of fabric beyond lib/evidence (and ajv, node built-ins)', async () => {
  // Follow static and dynamic imports from the compiled verify.js and the evidence command's verify path.
  const root = fileURLToPath(new URL('../../lib/evidence/', import.meta.url));
  const seen = new Set<string>();
  const outside: string[] = [];
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('node:') || spec.startsWith('ajv')) continue;
      if (!spec.startsWith('.')) {
        outside.push(`${file}: ${spec}`);
        continue;
      }
      const target = join(dirname(file), spec);
      if (!target.startsWith(root)) outside.push(`${file}: ${spec}`);
      else await visit(target);
    }
  };
  await visit(join(root, 'verify.js'));
  assert.deepEqual(outside, []);
  assert.ok(seen.size >= 7, [...seen].join(' '));
});

test('compareBytes orders as the UTF-8 bytes do (LC_ALL=C), on the ASCII fast path and off it', () => {
  const words = ['a', 'B', 'a/b', 'a-b', 'a.b', 'a0', 'ab', '', 'é', 'e', 'z', '€', '\uE000', '\uFFFD', '😀', 'a😀', 'a\uFFFF', '\uD800', 'x\uDC00y', 'nodes/t1/manifest.json', 'nodes/t10/manifest.json', 'nodes/t1_/x'];
  const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  for (const a of words) for (const b of words) assert.equal(Math.sign(compareBytes(a, b)), Math.sign(byBytes(a, b)), JSON.stringify([a, b]));
  assert.deepEqual([...words].sort(compareBytes), [...words].sort(byBytes));
});

test.run();
