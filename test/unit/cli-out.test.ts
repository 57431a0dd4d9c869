import * as assert from 'node:assert/strict';
import { rigTest, timedTest, test } from '../helpers/rig.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/**
 * A child process that writes `total` bytes of numbered lines to stdout through fdOut, in 8 KiB
 * pieces, and reports on stderr whether fdOut fell back to the stream (`open` called) and that it
 * finished. `prep` runs first (e.g. touching process.stdout, which makes a pipe non-blocking).
 */
function fdOutChild(total: number, prep = '') {
  const script = `import { fdOut } from ${JSON.stringify(new URL('../../lib/cli/out.js', import.meta.url).href)};
${prep}
let opened = false;
const out = fdOut(1, () => { opened = true; return process.stdout; });
let n = 0, size = 0, piece = '';
while (size < ${total}) {
  const line = 'line ' + String(n++).padStart(8, '0') + ' ' + 'é'.repeat(20) + '\\n';
  piece += line;
  size += Buffer.byteLength(line);
  if (piece.length >= 8192) { out.write(piece); piece = ''; }
}
out.write(piece);
process.stderr.write(JSON.stringify({ opened, isTTY: out.isTTY, lines: n }) + '\\n');`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function expectedLines(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += 'line ' + String(i).padStart(8, '0') + ' ' + 'é'.repeat(20) + '\n';
  return s;
}

function collect(child: ReturnType<typeof spawn>): Promise<{ code: number | null; out: Buffer; err: string }> {
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err })));
}

timedTest('fdOut: on a blocking pipe every byte is written to the descriptor, without building process.stdout', async () => {
  const r = await collect(fdOutChild(1 << 20));
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.err.trim()) as { opened: boolean; isTTY: boolean; lines: number };
  assert.equal(report.opened, false, 'the stream is never built');
  assert.equal(report.isTTY, false);
  assert.ok(r.out.equals(Buffer.from(expectedLines(report.lines))), 'all the lines, in order, multi-byte characters whole');
});

timedTest('fdOut: a non-blocking pipe whose reader is slow gets the rest through the stream, nothing lost, order kept', async () => {
  // Touching process.stdout makes a pipe non-blocking (libuv), as a parent sharing it could have.
  const child = fdOutChild(4 << 20, 'process.stdout;');
  // Read nothing for a while, so that the pipe fills and a write would block.
  child.stdout!.pause();
  await sleep(500);
  const collecting = collect(child);
  child.stdout!.resume(); // after an explicit pause(), a 'data' listener alone does not resume
  const done = await collecting;
  assert.equal(done.code, 0, done.err);
  const report = JSON.parse(done.err.trim()) as { opened: boolean; lines: number };
  assert.equal(report.opened, true, 'the write that would block went to the stream (the case is exercised)');
  assert.ok(done.out.equals(Buffer.from(expectedLines(report.lines))), 'every line, in order, a character split across the switch intact');
}, { ms: 60_000 });

timedTest('fdOut: a reader that went away ends the output quietly (EPIPE), and later writes are dropped', async () => {
  const child = fdOutChild(16 << 20);
  const r = collect(child);
  child.stdout!.once('data', () => child.stdout!.destroy());
  const done = await r;
  assert.equal(done.code, 0, done.err);
  const report = JSON.parse(done.err.trim()) as { opened: boolean };
  assert.equal(report.opened, false, 'no stream is built to write into a closed pipe');
});

timedTest('fdOut: a file is written directly; a character device (/dev/null, like a terminal) goes through the stream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-fdout-'));
  try {
    const file = join(dir, 'out.txt');
    const script = (target: string) => `import { fdOut } from ${JSON.stringify(new URL('../../lib/cli/out.js', import.meta.url).href)};
import { openSync } from 'node:fs';
const fd = openSync(${JSON.stringify(target)}, 'w');
let opened = false;
const out = fdOut(fd, () => { opened = true; return { write: () => true, isTTY: true, columns: 80 }; });
out.write('héllo\\n');
process.stdout.write(JSON.stringify({ opened, isTTY: out.isTTY }));`;
    const run = (target: string) =>
      collect(spawn(process.execPath, ['--input-type=module', '-e', script(target)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const f = await run(file);
    assert.equal(f.code, 0, f.err);
    assert.deepEqual(JSON.parse(f.out.toString()), { opened: false, isTTY: false });
    assert.equal(readFileSync(file, 'utf8'), 'héllo\n');
    const d = await run('/dev/null');
    assert.equal(d.code, 0, d.err);
    assert.deepEqual(JSON.parse(d.out.toString()), { opened: true, isTTY: true }, "the stream's, as a terminal's would be");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
