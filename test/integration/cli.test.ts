// The CLI's own behaviour on bad and good input: located definition errors, suggestions, list, graph,
// config, fabricfile discovery and the warm-start bundle cache.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, chmodSync, cpSync, symlinkSync, utimesSync, readFileSync, statSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FABRIC_BIN, ROOT, fixture, rigTest, test } from '../helpers/rig.js';

const FF = (body: string) => `import { task } from 'fabric';\n${body}\n`;

rigTest('definition errors are all reported with file:line:col and exit 2', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`import './tasks/more.js';
task('build', { description: 'b', deps: ['gen', 'lint'], run: 'true' });
task('lint', { description: 'l', run: 'true' });`),
    'tasks/more.ts': FF(`task('codegen', { description: 'c', run: 'true' });
task('lint', { description: 'dup' });`),
  });
  const r = await rig.fabric(['list'], { plainNode: true });
  assert.equal(r.code, 2);
  // The import is hoisted: tasks/more.ts registers first, so the fabricfile's "lint" is the duplicate.
  assert.match(r.stderr, /fabricfile\.ts:3:42 Task "build" depends on "gen", which is not defined\./);
  assert.match(r.stderr, /\n {4}\| {42}~~~~~\n/);
  assert.match(r.stderr, /fabricfile\.ts:4:1 Task "lint" is defined twice\./);
  assert.match(r.stderr, /tasks\/more\.ts:3:1 "lint" is first defined here\./);
  assert.match(r.stderr, /2 errors/);
  assert.doesNotMatch(r.stderr, /at .*\(.*:\d+:\d+\)/, 'no stack trace');
  // In reading order, although the duplicate was found first.
  assert.ok(r.stderr.indexOf('fabricfile.ts:3:42') < r.stderr.indexOf('fabricfile.ts:4:1'), r.stderr);
  // list maps the call sites it reports through the bundle's source map itself (Node's source maps
  // stay off); run turns Node's on before loading: both print the same locations.
  const e = await rig.fabric(['run', 'build'], { plainNode: true });
  assert.equal(e.code, 2);
  const located = (text: string) => text.split('\n').filter((l) => /\.ts:\d+:\d+ /.test(l)).sort();
  assert.deepEqual(located(e.stderr), located(r.stderr));
  assert.equal(located(r.stderr).length, 3);
});

rigTest('a cycle prints its path and the declaration sites', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', { deps: ['b'] });\ntask('b', { deps: ['c'] });\ntask('c', { deps: ['a'] });`) });
  const r = await rig.fabric(['graph', 'a']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Dependency cycle: a -> b -> c -> a/);
  assert.match(r.stderr, /fabricfile\.ts:2:1 "a" is declared here/);
});

rigTest('a syntax error and a throw at load time are located with a code frame', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', { run: 'true' );`) });
  const r = await rig.fabric(['list'], { plainNode: true });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /fabricfile\.ts:2:\d+ /);
  assert.match(r.stderr, /2 \| task\('a', \{ run: 'true' \);/);
  await rig.write({ 'fabricfile.ts': FF(`const cfg: any = undefined;\ntask('a', { run: cfg.command });`) });
  const t = await rig.fabric(['list'], { plainNode: true });
  assert.equal(t.code, 2);
  assert.match(t.stderr, /fabricfile\.ts:3:22 loading the fabricfile failed: Cannot read properties of undefined/);
  // The same throw from an imported module, through list (call site mapped by fabric) and run (by Node).
  await rig.write({ 'fabricfile.ts': FF(`import './tasks/x.js';`), 'tasks/x.ts': FF(`\n\nconst n: any = null;\ntask('a', { run: n.cmd });`) });
  for (const args of [['list'], ['run', 'a']]) {
    const x = await rig.fabric(args, { plainNode: true });
    assert.equal(x.code, 2);
    assert.match(x.stderr, /tasks\/x\.ts:5:20 loading the fabricfile failed: Cannot read properties of null/, `${args.join(' ')}: ${x.stderr}`);
  }
});

rigTest('a stack printed by task code at run time points at the TypeScript source', async (rig) => {
  // run maps every stack's frames in the bundle through its source map (read when a stack first needs it).
  const later = `async function later(): Promise<string> {\n  await new Promise((r) => setTimeout(r, 1));\n  return new TypeError().stack ?? '';\n}`;
  await rig.write({
    'fabricfile.ts': FF(`import './tasks/x.js';`),
    'tasks/x.ts': FF(`\n\nfunction where(): string {\n  return new Error('here').stack ?? '';\n}\n${later}\ntask('a', { run: async (ctx) => { ctx.log(where()); ctx.log(await later()); } });`),
  });
  const r = await rig.fabric(['run', 'a', '--no-evidence', '--no-cache'], { plainNode: true });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\[a\] Error: here\n\[a\]     at where \(.*tasks\/x\.ts:5:10\)\n/, r.stdout);
  // Lines and columns of the source: the call in the task function, an async frame, a header without a message.
  assert.match(r.stdout, /\n\[a\]     at (?:Object\.)?run (?:\[as fn\] )?\(.*tasks\/x\.ts:11:\d+\)\n/, r.stdout);
  assert.match(r.stdout, /\[a\] TypeError\n\[a\]     at later \(.*tasks\/x\.ts:9:10\)\n\[a\]     at async (?:Object\.)?run (?:\[as fn\] )?\(.*tasks\/x\.ts:11:\d+\)\n/, r.stdout);
  assert.doesNotMatch(r.stdout, /fabricfile\.mjs:\d+/, 'no frame in the bundle');
  // fabric's own frames after them, mapped through dist's maps to lib/ (the second mapper).
  assert.match(r.stdout, /\n\[a\]     at async runAttempt \(\S+\/lib\/engine\/sched-exec\.ts:\d+:\d+\)\n/, r.stdout);
});

rigTest('a reader that closes the pipe early (fabric list | head) ends the listing quietly', async (rig) => {
  // Far more than a pipe holds, so that fabric is still writing when the reader has gone.
  const tasks = Array.from({ length: 3000 }, (_, i) => `task('group${i % 7}.task${i}', { description: '${'d'.repeat(60)} ${i}', run: 'true' });`).join('\n');
  await rig.write({ 'fabricfile.ts': FF(tasks) });
  const child = spawn(process.execPath, [FABRIC_BIN, 'list'], { cwd: rig.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let first = '';
  child.stdout.once('data', (b: Buffer) => {
    first = b.toString('utf8');
    child.stdout.destroy();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.match(first, /group0/);
  assert.equal(stderr, '', 'no error and no stack trace');
  assert.equal(code, 0);
});

rigTest('unknown task, command and flag get suggestions; bad params name their source', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('dns.up', { description: 'up', params: { ENV: { enum: ['samakia-dns'], default: 'samakia-dns' } }, run: 'true' });`) });
  const t = await rig.fabric(['run', 'dns.upp']);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /No task named "dns\.upp"\.\n\s+did you mean "dns\.up"\?/);
  const c = await rig.fabric(['lsit']);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /unknown command "lsit"\n\s+did you mean 'fabric list'\?/);
  const f = await rig.fabric(['list', '--jsn']);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /unknown flag --jsn\n\s+did you mean --json\?/);
  const p = await rig.fabric(['graph', 'dns.up', 'ENV=prod']);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /Task "dns\.up": ENV="prod" \(on the command line\) is not one of "samakia-dns"\./);
  const e = await rig.fabric(['graph', 'dns.up'], { env: { ENV: 'nope' } });
  assert.match(e.stderr, /ENV="nope" \(from the environment\)/);
});

rigTest('missing fabricfile and unusable directories are clear errors (exit 2)', async (rig) => {
  const r = await rig.fabric(['list']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no fabricfile\.ts found in .* or any parent directory/);
  const d = await rig.fabric(['-C', rig.path('nope'), 'list']);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /cannot change to directory .*nope: ENOENT/);
  const f = await rig.fabric(['-f', 'missing.ts', 'list']);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /no such fabricfile/);
});

rigTest('the fabricfile is found walking up; -C and -f work like make', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('top', { description: 'the top' });`), 'sub/dir/.keep': '', 'other/alt.ts': FF(`task('alt', { description: 'alternative' });`) });
  const up = await rig.fabric(['list', '--json'], { cwd: rig.path('sub', 'dir') });
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual((JSON.parse(up.stdout) as { name: string }[]).map((t) => t.name), ['top']);
  const c = await rig.fabric(['-C', 'other', '-f', 'alt.ts', 'list', '--json']);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual((JSON.parse(c.stdout) as { name: string }[]).map((t) => t.name), ['alt']);
});

rigTest('list groups by section with aligned descriptions; --json carries typed data', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('minio.up', { description: 'bring up MinIO', params: { ENV: { default: 'samakia-prod' } } });
task('minio.tf.plan', { description: 'plan', effect: 'read-only', deps: ['runner.env.check'] });
task('runner.env.check', { description: 'check the runner', effect: 'read-only', section: 'Runner' });`),
  });
  const r = await rig.fabric(['list']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').slice(0, 7).join('\n'), ['minio', '  minio.up         ! bring up MinIO', '  minio.tf.plan      plan', '', 'Runner', '  runner.env.check   check the runner', ''].join('\n'));
  const j = JSON.parse((await rig.fabric(['list', '--json', 'minio'])).stdout) as { name: string; effect: string; params: { name: string; default?: string }[]; deps: string[] }[];
  assert.deepEqual(j.map((t) => [t.name, t.effect]), [['minio.up', 'mutating'], ['minio.tf.plan', 'read-only']]);
  assert.deepEqual(j[0]!.params, [{ name: 'ENV', default: 'samakia-prod' }]);
  assert.deepEqual(j[1]!.deps, ['runner.env.check']);
});

rigTest('graph renders ascii (shared node once), dot (parses with Graphviz), mermaid and json', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('check', { effect: 'read-only' });
task('plan', { deps: ['check'], effect: 'read-only' });
task('apply', { deps: ['check', 'plan'] });
task('up', { deps: ['check', 'plan', 'apply'], params: { X: { default: '0' } } });
task('boot', {});
task('up2', { deps: [{ task: 'boot', when: { param: 'X', equals: '1' } }], params: { X: { default: '0' } } });`),
  });
  const a = await rig.fabric(['graph', 'up']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, ['up !', '├── check', '├── plan', '│   └── check', '└── apply !', '    ├── check', '    └── plan (see above)', ''].join('\n'));
  const s = await rig.fabric(['graph', 'up2']);
  assert.match(s.stdout, /boot \(when X == "1"\) \[skipped\]/);
  const d = await rig.fabric(['graph', 'up', '--format', 'dot']);
  assert.match(d.stdout, /^digraph fabric \{/);
  assert.match(d.stdout, /"apply" -> "plan";/);
  const hasDot = spawnSync('dot', ['-V']).status === 0;
  if (hasDot) {
    const parsed = spawnSync('dot', ['-Tplain'], { input: d.stdout, encoding: 'utf8' });
    assert.equal(parsed.status, 0, parsed.stderr);
    assert.match(parsed.stdout, /^graph /);
  }
  const m = await rig.fabric(['graph', 'up', '--format=mermaid']);
  assert.match(m.stdout, /^graph TD\n/);
  assert.match(m.stdout, /n\d+ --> n\d+/);
  const j = JSON.parse((await rig.fabric(['graph', 'up', '--format', 'json'])).stdout) as { roots: string[]; edges: [string, string][] };
  assert.deepEqual(j.roots, ['up']);
  assert.deepEqual(j.edges.filter(([from]) => from === 'up'), [['up', 'check'], ['up', 'plan'], ['up', 'apply']]);
  const bad = await rig.fabric(['graph', 'up', '--format', 'svg']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown graph format "svg"/);
});

rigTest('a warm start reuses the bundle; a change in an imported module rebuilds it; dynamic imports stay lazy', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`import { DESC } from './tasks/desc.js';\ntask('a', { description: DESC, run: async (ctx) => { const { heavy } = await import('./tasks/heavy.js'); ctx.log(heavy()); } });`),
    'tasks/desc.ts': `export const DESC = 'one';\n`,
    'tasks/heavy.ts': `import { writeFileSync } from 'node:fs';\nwriteFileSync('heavy-loaded', '');\nexport const heavy = () => 'heavy ran';\n`,
  });
  const first = await rig.fabric(['list', '--json']);
  assert.equal(first.code, 0, first.stderr);
  const bundles = () => readdirSync(rig.path('.fabric', 'build'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const before = bundles();
  assert.equal(before.length, 1);
  // Without write permission on the build dir a cold build would fail to write: the warm path must not write.
  chmodSync(rig.path('.fabric', 'build'), 0o500);
  const warm = await rig.fabric(['list', '--json']);
  chmodSync(rig.path('.fabric', 'build'), 0o700);
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual(bundles(), before);
  await rig.write({ 'tasks/desc.ts': `export const DESC = 'two';\n` });
  const changed = await rig.fabric(['list', '--json']);
  assert.equal((JSON.parse(changed.stdout) as { description: string }[])[0]!.description, 'two');
  assert.equal(bundles().length, 2);
  // A bundle no manifest names, older than a day, is pruned at the next cold build.
  const stale = rig.path('.fabric', 'build', before[0]!);
  utimesSync(stale, new Date(Date.now() - 2 * 86_400_000), new Date(Date.now() - 2 * 86_400_000));
  await rig.write({ 'tasks/desc.ts': `export const DESC = 'three';\n` });
  assert.equal((await rig.fabric(['list', '--json'])).code, 0);
  assert.ok(!bundles().includes(before[0]!), 'the stale bundle was kept');
  assert.ok(!rig.exists('heavy-loaded'), 'a dynamically imported task module was loaded by list');
  const run = await rig.fabric(['run', 'a', '--output=json', '--no-evidence']);
  assert.equal(run.code, 0, run.stderr);
  assert.ok(rig.exists('heavy-loaded'));
});

rigTest('two fabric installations used on one repository keep a warm build each', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', { description: 'one' });`) });
  // A second installation: this one's package.json, bin/ and dist/ elsewhere, sharing node_modules.
  const other = rig.path('other-install');
  cpSync(join(ROOT, 'package.json'), join(other, 'package.json'));
  cpSync(join(ROOT, 'bin'), join(other, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(other, 'dist'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(other, 'node_modules'));
  const viaOther = () => spawnSync(process.execPath, [join(other, 'bin', 'fabric.js'), 'list', '--json'], { cwd: rig.dir, encoding: 'utf8', timeout: 60_000 });
  // Settled inputs (outside the racy window), so that a warm start has nothing to refresh.
  const old = new Date(Date.now() - 60_000);
  utimesSync(rig.path('fabricfile.ts'), old, old);
  assert.equal((await rig.fabric(['list', '--json'])).code, 0);
  const second = viaOther();
  assert.equal(second.status, 0, second.stderr);
  // Warm for both, in turn: nothing in the build directory is written again (a rebuild rewrites the manifest).
  const build = rig.path('.fabric', 'build');
  const snapshot = () => Object.fromEntries(readdirSync(build).map((n) => [n, statSync(join(build, n)).mtimeMs]));
  const before = snapshot();
  assert.equal(Object.keys(before).filter((n) => n.endsWith('.json')).length, 2, 'one manifest per installation');
  for (let i = 0; i < 2; i++) {
    const mine = await rig.fabric(['list', '--json']);
    assert.equal(mine.code, 0, mine.stderr);
    const theirs = viaOther();
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal((JSON.parse(theirs.stdout) as { name: string }[])[0]!.name, 'a');
  }
  assert.deepEqual(snapshot(), before);
});

rigTest('a warm start trusts unchanged stats of settled inputs, and a content change behind a restored mtime still rebuilds', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`import { DESC } from './tasks/desc.js';\ntask('a', { description: DESC });`),
    'tasks/desc.ts': `export const DESC = 'one';\n`,
  });
  // Settled inputs: modified well before the bundle's stats are recorded (outside the racy window).
  const old = new Date(Date.now() - 60_000);
  for (const f of ['fabricfile.ts', 'tasks/desc.ts']) utimesSync(rig.path(f), old, old);
  assert.equal((await rig.fabric(['list', '--json'])).code, 0);
  const manifest = readdirSync(rig.path('.fabric', 'build')).find((n) => n.endsWith('.json'))!;
  const m = JSON.parse(readFileSync(rig.path('.fabric', 'build', manifest), 'utf8')) as { version: number; stats: Record<string, number[]>; statsAt: number };
  assert.equal(m.version, 6);
  assert.deepEqual(Object.keys(m.stats).map((p) => relative(rig.dir, p)).sort(), ['fabricfile.ts', 'tasks/desc.ts']);
  const written = statSync(rig.path('.fabric', 'build', manifest)).mtimeMs;
  // Warm, with nothing to re-hash: the manifest is not rewritten.
  const warm = await rig.fabric(['list', '--json']);
  assert.equal((JSON.parse(warm.stdout) as { description: string }[])[0]!.description, 'one');
  assert.equal(statSync(rig.path('.fabric', 'build', manifest)).mtimeMs, written);
  // Same size, mtime put back: the ctime still differs, so the file is hashed and the change is seen.
  await rig.write({ 'tasks/desc.ts': `export const DESC = 'two';\n` });
  utimesSync(rig.path('tasks/desc.ts'), old, old);
  const changed = await rig.fabric(['list', '--json']);
  assert.equal((JSON.parse(changed.stdout) as { description: string }[])[0]!.description, 'two');
});

/** The bundle manifest of the rig's fabricfile (.fabric/build/<tag>.json). */
function buildManifest(rig: { path(...p: string[]): string }): { compiled: string | null; bundle: string } {
  const name = readdirSync(rig.path('.fabric', 'build')).find((n) => n.endsWith('.json'))!;
  return JSON.parse(readFileSync(rig.path('.fabric', 'build', name), 'utf8')) as { compiled: string | null; bundle: string };
}

rigTest('declarations load from the compiled build with a V8 code cache; run loads the ES module bundle', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(
      [
        `import { DESC } from './tasks/desc.js';`,
        `import { basename } from 'node:path';`,
        `const here = basename(new URL(import.meta.url).pathname);`,
        `void import('node:fs').then((fs) => fs.writeFileSync('dyn-imported', here));`,
        `task('a', { description: \`\${DESC} from \${here}\`, run: (ctx) => ctx.log('ran in ' + basename(new URL(import.meta.url).pathname)) });`,
        `task('b', { deps: ['a'], run: async (ctx) => { const { heavy } = await import('./tasks/heavy.js'); ctx.log(heavy()); } });`,
      ].join('\n'),
    ),
    'tasks/desc.ts': `export const DESC = 'declared';\n`,
    'tasks/heavy.ts': `import { writeFileSync } from 'node:fs';\nwriteFileSync('heavy-loaded', '');\nexport const heavy = () => 'heavy ran';\n`,
  });
  const first = await rig.fabric(['list', '--json']);
  assert.equal(first.code, 0, first.stderr);
  const m = buildManifest(rig);
  assert.ok(m.compiled?.endsWith('fabricfile.cjs'), `compiled: ${m.compiled}`);
  assert.ok(existsSync(`${m.compiled}.v8cache`), 'no code cache after the first load');
  const described = (r: { stdout: string }) => (JSON.parse(r.stdout) as { name: string; description: string }[]).find((t) => t.name === 'a')!.description;
  // import.meta is the ES module bundle's, as under run.
  assert.equal(described(first), 'declared from fabricfile.mjs');
  // import() in declarations works in the compiled build, and prints nothing (no experimental warning).
  assert.equal(readFileSync(rig.path('dyn-imported'), 'utf8'), 'fabricfile.mjs');
  assert.equal(first.stderr, '');
  // A damaged cache is rejected by V8, the sources are compiled again and the cache rewritten.
  writeFileSync(`${m.compiled}.v8cache`, 'garbage');
  const again = await rig.fabric(['list', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(described(again), 'declared from fabricfile.mjs');
  rmSync(rig.path('dyn-imported'));
  const cached = await rig.fabric(['list', '--json']);
  assert.equal(cached.code, 0, cached.stderr);
  assert.equal(cached.stderr, '');
  assert.equal(readFileSync(rig.path('dyn-imported'), 'utf8'), 'fabricfile.mjs', 'import() from a script loaded from the code cache');
  assert.notEqual(readFileSync(`${m.compiled}.v8cache`, 'utf8'), 'garbage');
  assert.ok(!rig.exists('heavy-loaded'), 'list ran a dynamically imported task module');
  // run executes task code from the ES module bundle.
  const run = await rig.fabric(['run', 'b', '--output=json', '--no-evidence']);
  assert.equal(run.code, 0, run.stderr);
  const logs = run.events.filter((e) => e.type === 'task-output').map((e) => (e as { chunk: string }).chunk).join('');
  assert.match(logs, /ran in fabricfile\.mjs/);
  assert.match(logs, /heavy ran/);
});

rigTest('wide characters in comments are narrowed in the bundles (strings and stack frames as before); one in a raw string keeps the text', async (rig) => {
  // One character above U+00FF makes V8 keep a whole module as two bytes per character.
  const wide = (file: string) => [...readFileSync(file, 'utf8')].filter((c) => c.codePointAt(0)! > 0xff).join('');
  await rig.write({
    'fabricfile.ts': FF(`import './tasks/x.js';`),
    'tasks/x.ts': FF(
      [
        `function where(): string {`,
        `  return new Error('here').stack ?? '';`,
        `}`,
        // esbuild keeps comments that stand among an object literal's properties.
        `task('a', {`,
        `  // build → test — deploy 🚀`,
        `  description: 'arrow → in a string',`,
        `  run: (ctx) => { ctx.log('café → ok 🚀'); ctx.log(where()); },`,
        `  /* ← the end */`,
        `});`,
      ].join('\n'),
    ),
  });
  const listed = await rig.fabric(['list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal((JSON.parse(listed.stdout) as { name: string; description: string }[])[0]!.description, 'arrow → in a string');
  const m = buildManifest(rig);
  assert.equal(wide(m.bundle), '', 'the ES module bundle');
  assert.equal(wide(m.compiled!), '', 'the compiled build');
  const r = await rig.fabric(['run', 'a', '--no-evidence', '--no-cache'], { plainNode: true });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\[a\] café → ok 🚀\n/);
  // Frames still map to their source.
  assert.match(r.stdout, /\[a\]     at where \(.*tasks\/x\.ts:3:10\)\n/, r.stdout);
  // A raw template string cannot be escaped: the bundle keeps its text, and the task its value.
  await rig.write({ 'tasks/x.ts': FF(`task('a', {\n  // → a comment esbuild keeps\n  run: (ctx) => ctx.log(String.raw\`raw → kept\`),\n});`) });
  const raw = await rig.fabric(['run', 'a', '--no-evidence', '--no-cache']);
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stdout, /\[a\] raw → kept\n/);
  assert.equal(wide(buildManifest(rig).bundle), '→→');
});

rigTest('sources that need ES module semantics get no compiled build, and still load', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`const n = await Promise.resolve(2);\ntask('tla', { description: 'n=' + n });`),
  });
  const tla = await rig.fabric(['list', '--json']);
  assert.equal(tla.code, 0, tla.stderr);
  assert.equal(buildManifest(rig).compiled, null);
  assert.equal((JSON.parse(tla.stdout) as { description: string }[])[0]!.description, 'n=2');
  // A package only import can load (Node 20 cannot require an ES module).
  await rig.write({
    'node_modules/esm-only/package.json': JSON.stringify({ name: 'esm-only', type: 'module', exports: './index.js' }),
    'node_modules/esm-only/index.js': `export const word = 'esm';\n`,
    'node_modules/dual/package.json': JSON.stringify({ name: 'dual', main: './index.js' }),
    'node_modules/dual/index.js': `exports.word = 'cjs';\n`,
    'fabricfile.ts': FF(`import { word } from 'esm-only';\ntask('e', { description: word });`),
  });
  const esm = await rig.fabric(['list', '--json']);
  assert.equal(esm.code, 0, esm.stderr);
  assert.equal(buildManifest(rig).compiled, null);
  assert.equal((JSON.parse(esm.stdout) as { description: string }[])[0]!.description, 'esm');
  // A CommonJS package is fine.
  await rig.write({ 'fabricfile.ts': FF(`import { word } from 'dual';\ntask('d', { description: word });`) });
  const cjs = await rig.fabric(['list', '--json']);
  assert.equal(cjs.code, 0, cjs.stderr);
  assert.ok(buildManifest(rig).compiled);
  assert.equal((JSON.parse(cjs.stdout) as { description: string }[])[0]!.description, 'cjs');
  // A hashbang line (esbuild keeps it) does not break the compiled build.
  await rig.write({ 'fabricfile.ts': `#!/usr/bin/env fabric\n${FF(`task('h', { description: 'hashbang' });`)}` });
  const hb = await rig.fabric(['list', '--json']);
  assert.equal(hb.code, 0, hb.stderr);
  assert.ok(buildManifest(rig).compiled);
  assert.equal((JSON.parse(hb.stdout) as { description: string }[])[0]!.description, 'hashbang');
});

rigTest('config: values and their sources; a bad config file is a located error', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', {});`), '.fabricrc.yaml': 'jobs: 3\ncacheDir: .cache/fab\n' });
  const r = await rig.fabric(['config', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout) as { values: { jobs: number; cacheDir: string; output: unknown }; sources: Record<string, string> };
  assert.equal(c.values.jobs, 3);
  assert.equal(c.values.cacheDir, rig.path('.cache', 'fab'));
  assert.equal(c.sources['jobs'], rig.path('.fabricrc.yaml'));
  assert.equal(c.sources['evidenceDir'], 'default');
  await rig.write({ '.fabricrc.yaml': 'jobs: 3\nouptut: plain\njobs2: x\n' });
  const bad = await rig.fabric(['config']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\.fabricrc\.yaml:2:1 unknown property "ouptut"/);
  assert.match(bad.stderr, /\.fabricrc\.yaml:3:1 unknown property "jobs2"/);
  await rig.write({ '.fabricrc.yaml': 'jobs: many\n' });
  const typed = await rig.fabric(['config']);
  assert.match(typed.stderr, /\.fabricrc\.yaml:1:7 config at \/jobs must be integer/);
});

rigTest('config from fabric.config.ts (compiled without the typescript package) and from package.json', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('a', {});`), 'fabric.config.ts': 'const jobs: number = 5;\nexport default { jobs, output: "plain" as const };\n' });
  const ts = JSON.parse((await rig.fabric(['config', '--json'])).stdout) as { values: { jobs: number; output: string }; file: string };
  assert.deepEqual([ts.values.jobs, ts.values.output, ts.file], [5, 'plain', rig.path('fabric.config.ts')]);
  await rig.remove();
  await rig.write({ 'fabricfile.ts': FF(`task('a', {});`), 'package.json': JSON.stringify({ name: 'x', fabric: { jobs: 7, cacheDir: 3 } }, null, 2) });
  const bad = await rig.fabric(['config']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /package\.json:5:17 config at \/fabric\/cacheDir must be string/);
});

rigTest('--version, --help and help <command>', async (rig) => {
  const v = await rig.fabric(['--version']);
  assert.match(v.stdout, /^fabric \d+\.\d+\.\d+/);
  const h = await rig.fabric(['--help']);
  assert.match(h.stdout, /Usage: fabric/);
  assert.match(h.stdout, /Exit codes: 0 ok, 1 a task failed, 2 usage or definition error, 130 interrupted/);
  const hl = await rig.fabric(['help', 'graph']);
  assert.match(hl.stdout, /--format ascii\|dot\|mermaid\|json/);
  const hx = await rig.fabric(['help', 'grph']);
  assert.equal(hx.code, 2);
  assert.match(hx.stderr, /did you mean 'fabric help graph'\?/);
});

rigTest("list hides tasks tagged 'internal' unless --all", async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('up', { description: 'up' });\ntask('up:step', { description: 'a step of up', tags: ['internal'] });`) });
  const names = async (args: string[]) => (JSON.parse((await rig.fabric(['list', '--json', ...args])).stdout) as { name: string }[]).map((t) => t.name);
  assert.deepEqual(await names([]), ['up']);
  assert.deepEqual(await names(['--all']), ['up', 'up:step']);
});

rigTest('a task’s output reaches a pipe while the task still runs (stdout holds text only briefly)', async (rig) => {
  // The task prints a line, then waits until the test has seen that line: output held until the task
  // (or the run) ends would never arrive, and the run would time out.
  const wait = `${JSON.stringify(process.execPath)} ${JSON.stringify(fixture('wait-for.mjs'))} .release-t`;
  await rig.write({ 'fabricfile.ts': FF(`task('t', { run: ${JSON.stringify(`echo first-line && ${wait} && echo second-line`)} });`) });
  let seen = '';
  let r;
  try {
    r = await rig.fabric(['run', 't', '-o', 'plain', '--no-evidence'], {
      timeoutMs: 30_000,
      onSpawn: (child) => {
        child.stdout!.on('data', (d: Buffer | string) => {
          if (!seen.includes('[t] first-line') && (seen += String(d)).includes('[t] first-line')) void rig.release('t');
        });
      },
    });
  } finally {
    await rig.release('t'); // a wait-for left behind by a failed run exits too
  }
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.indexOf('[t] first-line') < r.stdout.indexOf('[t] second-line'), r.stdout);
});

test.run();
