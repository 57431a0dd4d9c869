import * as assert from 'node:assert/strict';
import { rigTest, timedTest, test } from '../helpers/rig.js';
import { after, batched, HOLD_MS } from '../../lib/cli/out.js';

const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(log: string[], name: string, extra: { isTTY?: boolean; columns?: number } = {}) {
  return { ...extra, write: (t: string) => void log.push(`${name}:${t}`) };
}

timedTest('what is written within the hold time leaves in one write, across turns, once the hold time is over', async () => {
  const log: string[] = [];
  const out = batched(recorder(log, 'out'), 40);
  out.write('a\n');
  out.write('');
  await turn();
  out.write('b\n');
  await turn();
  assert.deepEqual(log, [], 'nothing is written before the hold time is over, even after several turns');
  await sleep(80);
  assert.deepEqual(log, ['out:a\nb\n']);
  out.write('c\n');
  await sleep(80);
  assert.deepEqual(log, ['out:a\nb\n', 'out:c\n']);
  await sleep(80);
  assert.equal(log.length, 2, 'nothing held: nothing written');
  assert.ok(HOLD_MS > 0 && HOLD_MS <= 20, 'the default hold is short');
});

timedTest('a pending write keeps the process alive until it leaves', async () => {
  // The CLI flushes before it returns; text written later must not be lost when the loop empties.
  const script = `import { batched } from ${JSON.stringify(new URL('../../lib/cli/out.js', import.meta.url).href)};
const out = batched({ write: (t) => process.stdout.write(t) }, 200);
out.write('late line\\n');`;
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'late line\n');
});

timedTest('flush writes at once; stderr through after() flushes stdout first, so the two stay in order', async () => {
  const log: string[] = [];
  const out = batched(recorder(log, 'out'));
  let opened = 0;
  const err = after(out, () => (opened++, recorder(log, 'err')));
  assert.equal(opened, 0, 'stderr is not obtained before it is used (Node builds it on first access)');
  out.write('status\n');
  err.write('warning\n');
  out.write('more\n');
  assert.deepEqual(log, ['out:status\n', 'err:warning\n']);
  assert.equal(opened, 1);
  out.flush();
  assert.deepEqual(log, ['out:status\n', 'err:warning\n', 'out:more\n']);
  await sleep(HOLD_MS * 3);
  assert.equal(log.length, 3, 'the flushed text is not written again');
});

timedTest('a large burst is written without waiting for the end of the turn; isTTY and columns are the stream’s', () => {
  const log: string[] = [];
  const out = batched(recorder(log, 'out', { isTTY: true, columns: 132 }));
  const line = 'x'.repeat(1023) + '\n';
  for (let i = 0; i < 64; i++) out.write(line);
  assert.equal(log.length, 1, 'written once 64 KiB are held');
  assert.equal(log[0]!.length, 'out:'.length + 64 * 1024);
  out.flush();
  assert.equal(out.isTTY, true);
  assert.equal(out.columns, 132);
  assert.equal(after(out, () => recorder(log, 'err', { isTTY: false })).isTTY, false);
});

rigTest('the CLI: every line of a run that prints a line per task reaches a pipe, status lines after output, the summary last', async (rig) => {
  const n = 200;
  const tasks = Array.from({ length: n }, (_, i) => `task('t${i}', { run: '/bin/echo out-${i}' });`).join('\n');
  await rig.write({ 'fabricfile.ts': `import { task } from 'fabric';\n${tasks}\ntask('all', { deps: [${Array.from({ length: n }, (_, i) => `'t${i}'`).join(', ')}] });\n` });
  const r = await rig.fabric(['run', 'all', '-j', '2', '--no-evidence', '-o', 'plain']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  for (let i = 0; i < n; i++) {
    const out = lines.indexOf(`[t${i}] out-${i}`);
    const done = lines.findIndex((l) => l.startsWith(`✓ t${i} `));
    assert.ok(out !== -1 && done > out, `t${i}: output, then its status line`);
  }
  assert.match(lines.filter((l) => l !== '').at(-1)!, /^201 ok, 0 cached, 0 failed, 0 not run in /, 'the summary is the last thing written');
});

test.run();
