// runs.json (the records `fabric explain` compares with): processes that end together take turns.
import * as assert from 'node:assert/strict';
import { readFile, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { RunRecords, RUN_FORMAT, RECORD_TIME_GRAIN_MS, onlyRetimed, readRunsFile, type RunRecord } from '../../lib/cache/runs.js';
import { rigTest, timedTest, test } from '../helpers/rig.js';

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

const later = (r: RunRecord, ms: number): RunRecord => {
  const at = new Date(Date.parse(r.last.at) + ms).toISOString();
  return { ...r, last: { ...r.last, at }, ...(r.lastSuccess ? { lastSuccess: { ...r.lastSuccess, at } } : {}) };
};

timedTest('a record given again with only later times (under RECORD_TIME_GRAIN_MS) is only retimed; anything else changed it', () => {
  const a: RunRecord = { ...rec('n', 1), lastSuccess: rec('n', 1).last };
  assert.equal(onlyRetimed(a, later(a, 1000)), true);
  assert.equal(onlyRetimed(a, later(a, RECORD_TIME_GRAIN_MS - 1)), true);
  assert.equal(onlyRetimed(a, later(a, RECORD_TIME_GRAIN_MS)), false, 'an hour later the time is written');
  assert.equal(onlyRetimed(a, later(a, -1000)), false, 'an earlier time is a change');
  assert.equal(onlyRetimed(undefined, a), false, 'a new record');
  assert.equal(onlyRetimed(a, { ...later(a, 1000), last: { ...later(a, 1000).last, outcome: 'started' } }), false);
  assert.equal(onlyRetimed(a, { ...later(a, 1000), last: { ...later(a, 1000).last, fingerprint: 'f'.repeat(64) } }), false);
  const { lastSuccess: _gone, ...withoutSuccess } = later(a, 1000);
  assert.equal(onlyRetimed(a, withoutSuccess), false);
  const summary = { fingerprint: a.last.fingerprint, format: 2, ino: 1, size: 2, mtimeMs: 3, ctimeMs: 4, outputs: [], hasKey: true };
  assert.equal(onlyRetimed({ ...a, entry: summary }, { ...later(a, 1000), entry: summary }), true);
  assert.equal(onlyRetimed({ ...a, entry: summary }, { ...later(a, 1000), entry: { ...summary, mtimeMs: 5 } }), false);
});

rigTest('save leaves runs.json alone when only times changed, and rewrites every touched record otherwise', async (rig) => {
  await mkdir(rig.path('store'), { recursive: true });
  const file = rig.path('store', 'runs.json');
  const first = new RunRecords(file);
  for (const n of ['a', 'b']) await first.set(rec(n, 1));
  await first.save();
  const text = await readFile(file, 'utf8');
  const ino = (await stat(file)).ino;

  // The same records a second later (a task that is not cacheable ran again): nothing is written.
  const again = new RunRecords(file);
  for (const n of ['a', 'b']) await again.set(later(rec(n, 1), 1000));
  assert.equal(again.dirty, false);
  await again.save();
  assert.equal((await stat(file)).ino, ino, 'the file was not replaced');
  assert.equal(await readFile(file, 'utf8'), text);

  // More than the grain later: written.
  const hourLater = new RunRecords(file);
  await hourLater.set(later(rec('a', 1), RECORD_TIME_GRAIN_MS + 1000));
  assert.equal(hourLater.dirty, true);
  await hourLater.save();
  const afterHour = new Map((await readRunsFile(file)).records.map((r) => [r.node, r]));
  assert.equal(afterHour.get('a')!.last.at, later(rec('a', 1), RECORD_TIME_GRAIN_MS + 1000).last.at);
  assert.equal(afterHour.get('b')!.last.at, rec('b', 1).last.at);

  // One record really changed: the file is rewritten, the retimed record with it (its time exact).
  const mixed = new RunRecords(file);
  await mixed.set(later(rec('b', 1), 2000));
  assert.equal(mixed.dirty, false, 'only retimed so far');
  await mixed.set({ ...rec('a', 2), last: { ...rec('a', 2).last, at: new Date(Date.parse(rec('a', 1).last.at) + RECORD_TIME_GRAIN_MS + 5000).toISOString() } });
  assert.equal(mixed.dirty, true, 'a record set after dirty was asked counts');
  await mixed.save();
  const end = new Map((await readRunsFile(file)).records.map((r) => [r.node, r]));
  assert.equal(end.get('a')!.last.fingerprint, rec('a', 2).last.fingerprint);
  assert.equal(end.get('b')!.last.at, later(rec('b', 1), 2000).last.at);
});

test.run();
