/**
 * The run records that `fabric explain` (and a miss's detail) compare with: the last recorded run of
 * every node (task + params), cacheable or not, all in one file of the store, `runs.json`.
 *
 * A run reads the file once (lazily, at its first lookup), keeps the records in memory, and writes the
 * file once, when it ends (`save`, from the provider's `close`), re-reading it first so that records
 * another process wrote meanwhile are kept (per node, the more recent `last.at` wins). A run that is
 * killed before it ends records nothing: `explain` then compares with the last run that ended (its
 * cache entries, written as each node succeeded, are still used). A run that fails or is interrupted
 * does end, and its nodes that did not succeed are recorded as `started`.
 *
 * Two runs that end at the same moment take turns: the read, merge and rename happen under a lock file
 * (`runs.json.lock`, created exclusively). A lock older than LOCK_STALE_MS is left over from a killed
 * process and is taken over; a run that cannot get the lock within LOCK_WAIT_MS writes anyway (a
 * record only ever explains, it never decides a hit, so losing one is better than losing the run's).
 */
import { open, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeId } from '../engine/events.js';
import { readIfExists, writeAtomic } from './fsutil.js';

/** The format of `runs.json` and its records (independent of the entries' format, `STORE_FORMAT`). */
export const RUN_FORMAT = 1;

/**
 * A record's times are exact to this (an hour; an entry's last-used time too: TOUCH_AFTER_MS in
 * store.ts). A node recorded again with nothing but its times changed (the same fingerprint, outcomes
 * and entry summary: a task that is not cacheable runs again, or a hit after an hour) keeps the record
 * it had while that is younger than this. So a run in which nothing changed leaves `runs.json` alone:
 * rewriting it means reading, merging and writing every node's record (~40 ms at 1000 nodes), even
 * when a single aggregate task without inputs (`all`) is all that ran.
 */
export const RECORD_TIME_GRAIN_MS = 3_600_000;

const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 2_000;

/**
 * Runs `fn` holding `<file>.lock`. The lock is a file created exclusively and removed afterwards; one
 * older than LOCK_STALE_MS is taken over. Without the lock after LOCK_WAIT_MS, `fn` runs anyway.
 */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let held = false;
  while (!held) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(`${process.pid}\n`).finally(() => fh.close());
      held = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') break; // no lock possible here (e.g. read-only store): go on
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) break;
      await sleep(5 + Math.floor(Math.random() * 15));
    }
  }
  try {
    return await fn();
  } finally {
    if (held) await rm(lock, { force: true });
  }
}

export type RunOutcome = 'started' | 'succeeded' | 'cached';

export interface RunMark {
  readonly fingerprint: string;
  readonly at: string;
  /** `started`: looked up and run, with no success recorded (failed or interrupted). */
  readonly outcome: RunOutcome;
}

export interface RunRecord {
  readonly v: number;
  readonly node: NodeId;
  readonly task: string;
  readonly last: RunMark;
  readonly lastSuccess?: RunMark | undefined;
  /** What a hit on `entry.fingerprint` needs of its entry, as last read (see {@link EntrySummary}). */
  readonly entry?: EntrySummary | undefined;
}

/** The identity of a cache entry's file: inode, size, modification and change times. */
export interface EntryFileStat {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/**
 * What a hit needs of a cache entry that has no logs to replay: its outputs' paths, modes and digests
 * (not their bytes) and whether it keeps its key, with the entry file's identity when it was read.
 * While the file is unchanged (the store replaces entries by rename and never writes one in place), a
 * hit whose outputs are already in place is decided by one stat of the entry instead of reading and
 * parsing it. Anything else (an output to restore, a changed or missing entry) reads the entry.
 */
export interface EntrySummary extends EntryFileStat {
  readonly fingerprint: string;
  /** The entry's store format (`STORE_FORMAT`): an entry of another format is not this fabric's hit. */
  readonly format: number;
  readonly outputs: readonly { readonly path: string; readonly mode: number; readonly sha256: string; readonly size: number }[];
  readonly hasKey: boolean;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Whether `x` is a well-formed {@link EntrySummary}. */
function validSummary(x: unknown): x is EntrySummary {
  if (!x || typeof x !== 'object') return false;
  const e = x as Record<string, unknown>;
  return (
    typeof e.fingerprint === 'string' && isNum(e.format) && isNum(e.ino) && isNum(e.size) && isNum(e.mtimeMs) && isNum(e.ctimeMs) && typeof e.hasKey === 'boolean' &&
    Array.isArray(e.outputs) &&
    e.outputs.every((o: unknown) => {
      const r = o as Record<string, unknown> | null;
      return !!r && typeof r.path === 'string' && isNum(r.mode) && typeof r.sha256 === 'string' && isNum(r.size);
    })
  );
}

/** `runs.json`. */
interface RunsDoc {
  readonly v: number;
  readonly runs: readonly unknown[];
}

function validMark(m: unknown): m is RunMark {
  return !!m && typeof m === 'object' && typeof (m as RunMark).fingerprint === 'string' && typeof (m as RunMark).at === 'string' && typeof (m as RunMark).outcome === 'string';
}

export function validRun(x: unknown): x is RunRecord {
  if (!x || typeof x !== 'object') return false;
  const r = x as Record<string, unknown>;
  return r.v === RUN_FORMAT && typeof r.node === 'string' && typeof r.task === 'string' && validMark(r.last) && (r.lastSuccess === undefined || validMark(r.lastSuccess));
}

/** A record whose entry summary is damaged keeps the rest: its node's next hit reads the entry. */
function withValidSummary(r: RunRecord): RunRecord {
  if (r.entry === undefined || validSummary(r.entry)) return r;
  const { entry: _damaged, ...rest } = r;
  return rest;
}

/** The records in `file`; a missing or damaged file has none (a damaged record is skipped). */
export async function readRunsFile(file: string): Promise<{ readonly records: RunRecord[]; readonly bytes: number }> {
  let text: string | undefined;
  try {
    text = await readIfExists(file);
  } catch {
    return { records: [], bytes: 0 };
  }
  if (text === undefined) return { records: [], bytes: 0 };
  try {
    const doc = JSON.parse(text) as Partial<RunsDoc>;
    if (doc.v !== RUN_FORMAT || !Array.isArray(doc.runs)) return { records: [], bytes: Buffer.byteLength(text) };
    return { records: doc.runs.filter(validRun).map(withValidSummary), bytes: Buffer.byteLength(text) };
  } catch {
    return { records: [], bytes: Buffer.byteLength(text) };
  }
}

/** The newer of two records of one node (by the time of their last run). */
function newer(a: RunRecord | undefined, b: RunRecord): RunRecord {
  return a && a.last.at > b.last.at ? a : b;
}

/** Whether `b` is mark `a` given again, less than RECORD_TIME_GRAIN_MS later. */
function sameMarkRetimed(a: RunMark | undefined, b: RunMark | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.fingerprint !== b.fingerprint || a.outcome !== b.outcome) return false;
  const later = Date.parse(b.at) - Date.parse(a.at);
  return later >= 0 && later < RECORD_TIME_GRAIN_MS;
}

/** Whether record `b` says what `a` says but for times less than RECORD_TIME_GRAIN_MS later (see there). */
export function onlyRetimed(a: RunRecord | undefined, b: RunRecord): boolean {
  return (
    a !== undefined &&
    a.v === b.v &&
    a.node === b.node &&
    a.task === b.task &&
    sameMarkRetimed(a.last, b.last) &&
    sameMarkRetimed(a.lastSuccess, b.lastSuccess) &&
    JSON.stringify(a.entry) === JSON.stringify(b.entry)
  );
}

/** The run records of one process: loaded once, changed in memory, saved once. */
export class RunRecords {
  private byNode: Map<NodeId, RunRecord> | undefined;
  /** The most recently recorded node of each task (what a new param set is compared with). */
  private latestOfTask: Map<string, RunRecord> | undefined;
  /** Nodes whose record this process changed. */
  private readonly touched = new Set<NodeId>();
  /** The record each touched node had when this process first changed it (undefined: none). */
  private readonly before = new Map<NodeId, RunRecord | undefined>();
  /** What `changed()` answered since the last `set` (close asks `dirty`, then `save`). */
  private changedMemo: boolean | undefined;

  constructor(readonly file: string) {}

  /** Loads the file on first use (synchronous read: it is on the path of the first lookup). */
  private async records(): Promise<Map<NodeId, RunRecord>> {
    if (this.byNode) return this.byNode;
    const { records } = await readRunsFile(this.file);
    // Another call may have loaded it while this one read.
    if (this.byNode) return this.byNode;
    this.byNode = new Map(records.map((r) => [r.node, r]));
    return this.byNode;
  }

  async get(node: NodeId): Promise<RunRecord | undefined> {
    return (await this.records()).get(node);
  }

  async latestOf(task: string): Promise<RunRecord | undefined> {
    if (!this.latestOfTask) {
      const m = new Map<string, RunRecord>();
      for (const r of (await this.records()).values()) m.set(r.task, newer(m.get(r.task), r));
      this.latestOfTask ??= m;
    }
    return this.latestOfTask.get(task);
  }

  /** Replaces the node's record in memory (written by `save`). */
  async set(record: RunRecord): Promise<void> {
    const records = await this.records();
    if (!this.touched.has(record.node)) this.before.set(record.node, records.get(record.node));
    records.set(record.node, record);
    this.latestOfTask?.set(record.task, record);
    this.touched.add(record.node);
    this.changedMemo = undefined;
  }

  /** Whether some touched node's record changed by more than its times (see RECORD_TIME_GRAIN_MS). */
  private changed(): boolean {
    if (this.changedMemo !== undefined) return this.changedMemo;
    const mine = this.byNode;
    let changed = false;
    if (mine) {
      for (const node of this.touched) {
        if (!onlyRetimed(this.before.get(node), mine.get(node)!)) {
          changed = true;
          break;
        }
      }
    }
    return (this.changedMemo = changed);
  }

  /** Whether `save` has anything to write. */
  get dirty(): boolean {
    return this.changed();
  }

  /**
   * Writes this process's records into the file, over what is on disk now (records of other nodes,
   * and newer records of the same nodes, that another process wrote since this one loaded, are kept).
   */
  async save(): Promise<void> {
    const mine = this.byNode;
    // Nothing but times changed: the file stays. Otherwise it is rewritten anyway, with every
    // touched record (the retimed ones too: their times are then exact).
    if (mine && this.changed()) {
      await withLock(this.file, async () => {
        const { records } = await readRunsFile(this.file);
        const merged = new Map(records.map((r) => [r.node, r]));
        for (const node of this.touched) merged.set(node, newer(merged.get(node), mine.get(node)!));
        await writeAtomic(this.file, JSON.stringify({ v: RUN_FORMAT, runs: [...merged.values()] } satisfies RunsDoc));
      });
    }
    this.touched.clear();
    this.before.clear();
    this.changedMemo = undefined;
  }

  /**
   * Removes from the file the records of nodes last run before `cutoff` (an ISO time), under the
   * lock, and forgets what was loaded. Returns the records that remain and how many went.
   */
  async dropOlderThan(cutoff: string): Promise<{ readonly records: RunRecord[]; readonly bytes: number; readonly removed: number }> {
    const result = await withLock(this.file, async () => {
      const { records, bytes } = await readRunsFile(this.file);
      const kept = records.filter((r) => r.last.at >= cutoff);
      if (kept.length === records.length) return { records, bytes, removed: 0 };
      const text = JSON.stringify({ v: RUN_FORMAT, runs: kept } satisfies RunsDoc);
      await writeAtomic(this.file, text);
      return { records: kept, bytes: Buffer.byteLength(text), removed: records.length - kept.length };
    });
    this.reset();
    return result;
  }

  /** Forgets what was loaded (after the store was cleaned). */
  reset(): void {
    this.byNode = undefined;
    this.latestOfTask = undefined;
    this.touched.clear();
    this.before.clear();
    this.changedMemo = undefined;
  }
}
