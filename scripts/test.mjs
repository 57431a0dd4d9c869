// The test command: build, type-check and compile, check for import cycles, then run every
// compiled test file in its own process (two at a time) and end with `N passed, N failed`.
// Usage: npm test [-- substring...]   (only test files whose path contains a substring)
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
const step = (label, cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`${label} failed`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
};
step('build', process.execPath, ['scripts/build.mjs']);
// tsc emits even with type errors; a filtered (developer) run goes on after reporting them, the full run fails.
// build/ is emptied first: a test file deleted or renamed in the sources must not keep running from it.
rmSync(join(root, 'build'), { recursive: true, force: true });
{
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 && filters.length === 0) { console.error('tsc failed'); console.log('0 passed, 1 failed'); process.exit(1); }
  if (r.status !== 0) console.error('tsc reported errors (continuing: filtered run)');
}
step('madge --circular', process.execPath, ['node_modules/madge/bin/cli.js', '--circular', '--extensions', 'ts', '--ts-config', 'tsconfig.json', '--no-spinner', 'lib']);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const files = walk(join(root, 'build', 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let passed = 0, failed = 0, skipped = 0;
const failures = [];
async function runFile(file) {
  const rel = relative(root, file);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // A whole file may not take longer than 10 minutes; every test also has its own timeout (test/helpers/rig.ts).
    const killer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      const text = strip(out);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const ok = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const skip = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
      let p = 0, f = 0;
      if (Number.isFinite(total) && Number.isFinite(ok)) { p = ok; f = total - ok - skip; skipped += skip; }
      if (code !== 0 && f === 0) f = 1; // crashed or exited non-zero without a count
      passed += p; failed += f;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`${f ? '✗' : '✓'} ${rel}  ${p} passed, ${f} failed (${secs}s)`);
      if (f) { failures.push(rel); console.log(text.split('\n').map((l) => '    ' + l).join('\n')); }
      resolve();
    });
  });
}
const queue = [...files];
const jobs = Math.max(1, Math.min(2, availableParallelism()));
await Promise.all(Array.from({ length: jobs }, async () => { while (queue.length) await runFile(queue.shift()); }));
if (failures.length) console.log(`\nfailed files:\n  ${failures.join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed || files.length === 0 ? 1 : 0;
