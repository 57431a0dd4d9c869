// absolutePath and relativeTo (lib/util/paths.ts) must answer exactly what path.resolve and
// path.relative do: the cache's paths, evidence records and the outside-the-repository check use them.
// Tables of the edge cases, then random paths.
import * as assert from 'node:assert/strict';
import { relative, resolve } from 'node:path';
import { absolutePath, relativePosix, relativeTo } from '../../lib/util/paths.js';
import { timedTest, test } from '../helpers/rig.js';

const CASES: [string, string][] = [
  ['/repo', '/repo/a/b.txt'],
  ['/repo', '/repo'],
  ['/repo', '/repo/'],
  ['/repo', '/repo//a'],
  ['/repo', '/repo/./a'],
  ['/repo', '/repo/a/../b'],
  ['/repo', '/repo/a/..'],
  ['/repo', '/repo/a/.'],
  ['/repo', '/repo/..'],
  ['/repo', '/repo/.hidden/x'],
  ['/repo', '/repo/..a/x'],
  ['/repo', '/repo/a./x'],
  ['/repo', '/repo/...'],
  ['/repo', '/repo/a/'],
  ['/repo', '/repox/a'],
  ['/repo', '/rep'],
  ['/repo', '/other/a'],
  ['/repo', 'relative/a'],
  ['/', '/a/b'],
  ['/', '/'],
  ['/repo/', '/repo/a'],
  ['/repo/./x', '/repo/x/a'],
  ['/repo/../r', '/r/a'],
  ['repo', 'repo/a'],
  ['', '/a'],
  ['/repo', ''],
];

for (const [root, p] of CASES) timedTest(`relativeTo(${JSON.stringify(root)}, ${JSON.stringify(p)}) is path.relative's answer`, () => assert.equal(relativeTo(root, p), relative(root, p)));

timedTest('relativeTo agrees with path.relative on 20,000 random paths', () => {
  // A small alphabet of segments, so that '.', '..', empty segments and shared prefixes come up often.
  const SEGMENTS = ['a', 'b', 'ab', '.', '..', '', '.a', 'a.', '...', 'x y', 'é'];
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const path = (): string => {
    const n = rnd(5);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(SEGMENTS[rnd(SEGMENTS.length)]!);
    return (rnd(8) === 0 ? '' : '/') + parts.join('/') + (rnd(6) === 0 ? '/' : '');
  };
  for (let i = 0; i < 20_000; i++) {
    const root = path();
    const p = rnd(2) === 0 ? path() : `${root}/${path().replace(/^\//, '')}`;
    assert.equal(relativeTo(root, p), relative(root, p), `relativeTo(${JSON.stringify(root)}, ${JSON.stringify(p)})`);
  }
}, { ms: 30_000 });

timedTest('absolutePath is path.resolve, also for the paths it hands over to resolve', () => {
  const cwds = ['/', '/repo', '/repo/sub', '/repo/', '/repo//sub', '/repo/./sub', '/repo/../other', '/repo/sub/..', '/repo/.', 'relative/dir', ''];
  const rels = ['a', 'a/b.txt', '.env', 'dir/.hidden/x', 'a..b', '..', '../x', 'a/../b', './a', 'a//b', 'a/./b', 'a/', 'a/.', '.', '', '/abs', 'é€/x y'];
  for (const cwd of cwds) for (const rel of rels) assert.equal(absolutePath(cwd, rel), resolve(cwd, rel), JSON.stringify([cwd, rel]));
});

timedTest('relativePosix: the root itself is ".", anything else is relativeTo', () => {
  assert.equal(relativePosix('/repo', '/repo'), '.');
  assert.equal(relativePosix('/repo', '/repo/a/b.txt'), 'a/b.txt');
  assert.equal(relativePosix('/repo', '/elsewhere/x'), '../elsewhere/x');
  assert.equal(relativePosix('/', '/a'), 'a');
});

test.run();
