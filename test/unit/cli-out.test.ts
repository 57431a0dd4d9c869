import * as assert from 'node:assert/strict';
import { rigTest, timedTest, test } from '../helpers/rig.js';
import { after, turnBuffered } from '../../lib/cli/out.js';

const turn = () => new Promise((r) => setImmediate(r));

function recorder(log: string[], name: string, extra: { isTTY?: boolean; columns?: number } = {}) {
  return { ...extra, write: (t: string) => void log.push(`${name}:${t}`) };
}

timedTest('what one turn writes leaves in one write, at the end of the turn', async () => {
  const log: string[] = [];
  const out = turnBuffered(recorder(log, 'out'));
  out.write('a\n');
  out.write('');
  out.write('b\n');
  assert.deepEqual(log, [], 'nothing is written before the turn ends');
  await turn();
  assert.deepEqual(log, ['out:a\nb\n']);
  out.write('c\n');
  await turn();
  assert.deepEqual(log, ['out:a\nb\n', 'out:c\n']);
  await turn();
  assert.equal(log.length, 2, 'an empty turn writes nothing');
});

timedTest('flush writes at once; stderr through after() flushes stdout first, so the two stay in order', async () => {
  const log: string[] = [];
  const out = turnBuffered(recorder(log, 'out'));
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
  await turn();
  assert.equal(log.length, 3, 'the flushed text is not written again');
});

timedTest('a large burst is written without waiting for the end of the turn; isTTY and columns are the stream’s', () => {
  const log: string[] = [];
  const out = turnBuffered(recorder(log, 'out', { isTTY: true, columns: 132 }));
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
