// runs.json (the records `fabric explain` compares with): processes that end together take turns.
import * as assert from 'node:assert/strict';
import { readFile, utimes, writeFile, mkdir } from 'node:fs/promises';
import { RunRecords, RUN_FORMAT, readRunsFile, type RunRecord } from '../../lib/cache/runs.js';
import { rigTest, test } from '../helpers/rig.js';

const rec = (node: string, i: number): RunRecord => ({
  v: RUN_FORMAT,
  node,
  task: node,
  last: { fingerprint: String(i).padStart(64, '0'), at: new Date(Date.UTC(2026, 10, 27, 0, 0, i)).toISOString(), outcome: 'succeeded' },
});

rigTest('runs that save at the same moment keep every record (the read-merge-write is locked)', async (rig) => {
  await mkdir(rig.path('store'), { recursive: true });
  const file = rig.path('store', 'runs.json');
  // Eight "processes", each with its own view loaded before any of them saved.
  const procs = Array.from({ length: 8 }, () => new RunRecords(file));
  for (const [i, p] of procs.entries()) await p.set(rec(`node${i}`, i));
  await Promise.all(procs.map((p) => p.save()));
  const { records } = await readRunsFile(file);
  assert.deepEqual(records.map((r) => r.node).sort(), procs.map((_, i) => `node${i}`));
  assert.equal(await readFile(`${file}.lock`, 'utf8').catch(() => 'gone'), 'gone', 'the lock is removed');
});

rigTest('a lock left by a killed process is taken over once stale; a fresh one is waited for', async (rig) => {
  await mkdir(rig.path('store'), { recursive: true });
  const file = rig.path('store', 'runs.json');
  await writeFile(`${file}.lock`, '999999\n');
  const old = new Date(Date.now() - 60_000);
  await utimes(`${file}.lock`, old, old);
  const p = new RunRecords(file);
  await p.set(rec('a', 1));
  const t0 = Date.now();
  await p.save();
  assert.ok(Date.now() - t0 < 1_000, 'a stale lock is not waited for');
  assert.deepEqual((await readRunsFile(file)).records.map((r) => r.node), ['a']);
  // A fresh lock held by someone else: save waits for it (here: until it is released).
  await writeFile(`${file}.lock`, '1\n');
  const q = new RunRecords(file);
  await q.set(rec('b', 2));
  let done = false;
  const saving = q.save().then(() => (done = true));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(done, false, 'save waits while the lock is held');
  await import('node:fs/promises').then((fs) => fs.rm(`${file}.lock`));
  await saving;
  assert.deepEqual((await readRunsFile(file)).records.map((r) => r.node).sort(), ['a', 'b']);
});

test.run();
