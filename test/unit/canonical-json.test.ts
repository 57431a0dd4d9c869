// canonicalJson (the fast writer) must return exactly canonicalJsonGeneral's text, the definition:
// fingerprints, plan digests and signed approvals depend on it. A table of values, including the key
// orders Object.fromEntries imposes (array-index keys first, numerically).
import * as assert from 'node:assert/strict';
import { canonicalJson, canonicalJsonGeneral } from '../../lib/util/canonical-json.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { TaskDef, TaskSpec } from '../../lib/api/types.js';
import { analyze } from '../../lib/engine/analyze.js';
import { computeKey, SecretDigester } from '../../lib/cache/fingerprint.js';
import { StatCache } from '../../lib/cache/stat-cache.js';
import { rigTest, timedTest, test } from '../helpers/rig.js';

const key = {
  version: 1, platform: 'linux', arch: 'x64', task: 'lint', effect: 'read-only', variant: null,
  steps: [{ kind: 'command', cmd: ['sort', '-o', 'out/a.txt', 'in/a.txt'], env: { Z: '1', A: 'ü "q" \\ \n\t\u0001' }, okCodes: [0, 2], ignoreFailure: false }],
  params: { LEVEL: 'high', TOKEN: { secret: 'hmac-sha256:ab' } }, env: { REGION: null, HOME: '/root' }, cwd: '.',
  inputGlobs: ['src/**', '!src/*.log'], inputs: { 'src/b.txt': 'bb', 'src/a.txt': 'aa', '10': 'x', '9': 'y', '01': 'z', 'B': 'w' },
  outputs: [], deps: { 't10': 'f1', 't9': 'f2' },
};

const CASES: [string, unknown][] = [
  ['a cache key', key],
  ['scalars', [1, -0, 1.5e300, NaN, Infinity, true, false, null, '', 'x\u2028y', '\ud800']],
  ['array-index keys come first, numerically', { b: 1, '2': 2, '10': 3, a: 4, '007': 5, '-1': 6, '1.5': 7 }],
  ['the largest array index and the first non-index', { '4294967295': 'not an index', '4294967294': 'index', '0': 'zero', z: 'z' }],
  ['undefined: left out of objects, null in arrays', { a: undefined, b: [undefined, 1], c: { d: undefined } }],
  ['nested and empty', { z: { y: { x: [] } }, a: {}, m: [[{ b: 1, a: 2 }]] }],
  ['a null-prototype object', Object.assign(Object.create(null) as object, { b: 1, a: 2 })],
  ['falls back for a Date and a toJSON', { d: new Date(0), t: { toJSON: () => ({ b: 1, a: 2 }) } }],
  ['falls back for a Map (an empty object to JSON)', { m: new Map([['a', 1]]) }],
  ['a function is left out, as JSON.stringify does', { f: () => 1, a: 1 }],
  ['keys that need escaping, repeated across objects (the writer keeps their quoted form)', [{ 'k"1': 1, 'ü\n': { 'k"1': 2, '\u2028': 3 } }, { 'k"1': 4, '\ud800': 5, '9x': 6, '1e3': 7 }]],
];

for (const [title, value] of CASES) timedTest(`canonicalJson: ${title}`, () => assert.equal(canonicalJson(value), canonicalJsonGeneral(value)));

// computeKey builds its key in canonical order and hashes JSON.stringify(key): that must be the canonical JSON of the key.
const def = (name: string, spec: TaskSpec): TaskDef => ({ name, spec, site: () => undefined, __fabricTask: true });
rigTest('computeKey: JSON.stringify of the key is its canonical JSON, and the fingerprint hashes it', async (rig) => {
  await rig.write({ 'src/b.txt': 'b', 'src/a.txt': 'a', 'src/10': 'ten', 'src/9': 'nine', 'src/Z.txt': 'z' });
  const tasks = [
    def('zdep', { effect: 'read-only', run: 'true', inputs: ['src/**'] }),
    def('adep', { effect: 'read-only', run: async () => {} }),
    def('t', {
      effect: 'read-only', deps: ['zdep', 'adep'], inputs: ['src/**'], outputs: ['out/*'], env: ['ZED', 'API_TOKEN', 'ALPHA', 'UNSET'],
      params: { 'Z_P': { default: 'z' }, '10': { default: 'ten' }, '2': { default: 'two' }, 'A_P': { default: 'a' }, 'PASS': { default: 's3cret', secret: true } },
      run: [{ cmd: 'echo {{Z_P}} s3cret', env: { ZZ: '1', AA: '2', '5': 'five' } }, ['printf', '%s', '{{A_P}}'], async () => {}],
    }),
  ];
  const r = analyze({ tasks, targets: ['t'], vars: {}, env: { PATH: '/bin', ZED: 'z', API_TOKEN: 'tok', ALPHA: 'a' }, repoRoot: rig.dir, fabricfile: join(rig.dir, 'fabricfile.ts'), secretPatterns: ['TOKEN'] });
  if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
  const g = r.value;
  const ctx = { repoRoot: rig.dir, secretPatterns: ['TOKEN'], statCache: new StatCache(undefined), digester: new SecretDigester(async () => Buffer.alloc(32, 7)), ignoreDirs: [] };
  const fps = new Map<string, string>();
  for (const id of g.order) {
    const k = await computeKey(g.nodes.get(id)!, fps as never, ctx);
    assert.ok(k.ok, id);
    if (!k.ok) return;
    fps.set(id, k.fingerprint);
    assert.equal(JSON.stringify(k.key), canonicalJsonGeneral(k.key), id);
    assert.equal(k.fingerprint, createHash('sha256').update(canonicalJsonGeneral(k.key)).digest('hex'), id);
  }
  const t = await computeKey(g.nodes.get(g.order.at(-1)!)!, fps as never, ctx);
  assert.ok(t.ok && Object.keys(t.key.params).length === 5 && Object.keys(t.key.inputs).includes('src/10'), 'the fixture exercises index-like keys');
});

test.run();
