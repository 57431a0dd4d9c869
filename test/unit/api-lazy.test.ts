// Every fabricfile imports the public API (dist/api.js), and `fabric list` runs on every shell completion:
// neither may load what only a run needs. The guard modules load node:child_process, node:crypto and
// node:os (approvals, gpg) and ajv/yaml (policy files) when a guard that needs them is evaluated.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, FABRIC_BIN, rigTest, test } from '../helpers/rig.js';
import { samakiaRepo } from '../integration/samakia-catalogue-fixture.js';

const API = pathToFileURL(join(ROOT, 'dist', 'api.js')).href;
const LAZY_BUILTINS = ['child_process', 'crypto', 'os'];
const HEAVY_PACKAGES = /\/node_modules\/(zx|listr2|ajv|yaml|cosmiconfig|esbuild)\//;

/** Built-in modules a fresh process loads while importing `specifier` (beyond what Node itself loaded). */
function builtinsLoadedBy(specifier: string, cwd: string): string[] {
  const script = `
    const before = new Set(process.moduleLoadList);
    await import(${JSON.stringify(specifier)});
    const added = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
    console.log(JSON.stringify(added));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

/** Sets the mtime of every file and directory under `dir` to `seconds` (since the epoch). */
function ageTree(dir: string, seconds: number): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) ageTree(p, seconds);
    if (!e.isSymbolicLink()) utimesSync(p, seconds, seconds);
  }
}

rigTest('importing the public API loads no node:child_process, node:crypto or node:os', async (rig) => {
  const api = builtinsLoadedBy(API, rig.dir);
  assert.deepEqual(api.filter((m) => LAZY_BUILTINS.includes(m)), []);
  // The probe sees a built-in that is imported: the check above can fail.
  assert.ok(builtinsLoadedBy('node:child_process', rig.dir).includes('child_process'));
});

rigTest('fabric list over guarded tasks (warm) loads neither those built-ins nor zx, listr2, ajv, yaml, cosmiconfig or esbuild', async (rig) => {
  await rig.write({
    'fabricfile.ts': `import { task, approval, envAllowlist, requireTools, paramEquals, confirm } from 'fabric';
task('check', { effect: 'read-only', description: 'checks', run: 'echo ok', guards: [requireTools(['echo']), paramEquals('X', '1')] });
task('apply', { description: 'applies', deps: ['check'], run: 'echo hi', guards: [approval(), envAllowlist('ENV', { policyFile: 'policy.yaml', key: 'envs' }), confirm('CONFIRM_APPLY', 'yes')] });
`,
  });
  const cold = await rig.fabric(['list']);
  assert.equal(cold.code, 0, cold.stderr);
  // A preload that logs every resolved module URL and, at exit, the built-ins the process loaded.
  writeFileSync(rig.path('hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.LOAD_LOG, r.url + '\\n');
  return r;
}
`);
  writeFileSync(
    rig.path('preload.mjs'),
    `import { register } from 'node:module';
import { appendFileSync } from 'node:fs';
register(${JSON.stringify(pathToFileURL(rig.path('hooks.mjs')).href)});
process.on('exit', () => appendFileSync(process.env.LOAD_LOG, process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => 'builtin:' + m.slice(13)).join('\\n') + '\\n'));
`,
  );
  const r = spawnSync(process.execPath, ['--import', rig.path('preload.mjs'), FABRIC_BIN, 'list'], {
    cwd: rig.dir,
    env: { ...process.env, LOAD_LOG: rig.path('load.log') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2 tasks/);
  const lines = readFileSync(rig.path('load.log'), 'utf8').trim().split('\n');
  assert.ok(lines.some((u) => u.startsWith(pathToFileURL(join(ROOT, 'dist')).href)), 'the logger sees the CLI modules');
  assert.ok(lines.includes('builtin:fs'), 'the logger sees built-ins');
  assert.deepEqual(lines.filter((u) => HEAVY_PACKAGES.test(u)), []);
  // (node:crypto is the loader's: a warm start checks the bundle's inputs by their sha256.)
  assert.deepEqual(lines.filter((u) => u === 'builtin:child_process' || u === 'builtin:os'), []);
});

rigTest('fabric list over the Samakia catalogue (warm) loads no child_process, os, https, tls or streams', async (rig) => {
  // The catalogue's glue talks to Proxmox (https, tls) and runs tools (child_process): only when a task runs.
  await samakiaRepo(rig.dir);
  // Files written a moment ago are checked by content at a warm start (their mtimes are too recent to
  // trust), which loads node:crypto, and crypto loads streams. An hour old, as in a checkout in use.
  ageTree(rig.dir, Date.now() / 1000 - 3600);
  const cold = await rig.fabric(['list']);
  assert.equal(cold.code, 0, cold.stderr);
  const script = `process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)))));`;
  writeFileSync(rig.path('probe.cjs'), script);
  const r = spawnSync(process.execPath, ['-r', rig.path('probe.cjs'), FABRIC_BIN, 'list'], { cwd: rig.dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /dns\.up/);
  const loaded = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as string[];
  assert.ok(loaded.includes('fs') && loaded.includes('module'), 'the probe sees built-ins');
  assert.deepEqual(loaded.filter((m) => ['child_process', 'os', 'https', 'tls', 'http', 'worker_threads'].includes(m)), []);
  // Nor Node's streams stack: list writes its answer to the descriptor (a socket here, as under any
  // Node parent), and node:fs is imported without its ES module facade, whose getters load streams.
  assert.deepEqual(loaded.filter((m) => ['crypto', 'stream', 'net', 'internal/streams/readable', 'internal/fs/streams'].includes(m)), []);
}, { ms: 60_000 });

test.run();
