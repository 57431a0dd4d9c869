/**
 * The stat cache: (path, size, mtime, ctime, inode) → sha256, persisted in the cache directory so a
 * no-op run does not re-read unchanged files.
 *
 * Racy timestamps (git's "racy clean" problem): a file written in the same timestamp tick as the moment
 * its hash was recorded can change again without changing its stat. So a recorded hash is reused only
 * if the file's mtime is older than the recording time by more than the timestamp granularity
 * (`RACY_WINDOW_MS`); otherwise the file is re-hashed next time (and then usually recorded as settled).
 *
 * Hot path: the file is loaded lazily once and saved once per run (`save`); stats are taken in
 * batches of synchronous calls (much cheaper than one promise per file) with a yield between batches;
 * only files whose stat changed are read: synchronously up to SYNC_UP_TO, above that asynchronously, a
 * few at a time.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { regularFileStat, type FileStat, type SeenStat } from './files.js';
import { errorMessage, readIfExists, writeAtomic } from './fsutil.js';
import { RACY_WINDOW_MS } from '../util/racy.js';

export type { FileStat };

/** The racy-timestamp window (util/racy.ts), re-exported for the stat cache's users. */
export { RACY_WINDOW_MS };

const FORMAT = 2;
const WIDTH = 7;
const STAT_BATCH = 512;
const HASH_CONCURRENCY = 8;
const STREAM_ABOVE = 8 * 1024 * 1024;
/**
 * Files up to this size are read synchronously: one readFileSync costs microseconds, an fs/promises
 * readFile four round trips through libuv's thread pool (open, fstat, read, close), each a wake-up and
 * two context switches (0.1-0.3 ms apiece on a 2-CPU VM; bench/RESULTS.md). A 1 MiB read and hash
 * holds the event loop for about 2 ms.
 */
const SYNC_UP_TO = 1024 * 1024;
/**
 * At most this many bytes are read synchronously in one turn of the event loop; past it, files take
 * the asynchronous path until the next turn, so hashing a large tree never holds the loop (output of
 * running commands, signals) for long.
 */
const SYNC_BYTES_PER_TURN = 16 * 1024 * 1024;
let syncBytes = 0;
let syncReset: NodeJS.Immediate | undefined;

/** Whether `size` more bytes may be read synchronously in this turn (and counts them if so). */
function takeSyncBudget(size: number): boolean {
  if (size > SYNC_UP_TO || syncBytes + size > SYNC_BYTES_PER_TURN) return false;
  syncBytes += size;
  syncReset ??= setImmediate(() => {
    syncBytes = 0;
    syncReset = undefined;
  });
  return true;
}

/** `[size, mtimeMs, ctimeMs, ino, sha256, recordedAtMs]`: compact, since there may be 10^5 of them. */
export type StatRow = [number, number, number, number, string, number];

export interface HashedFile {
  readonly sha256: string;
  readonly stat: FileStat;
}

/** Whether a row recorded at `recordedAt` with these stat fields may be reused for a file with stat `s` (pure: the racy rule lives here). */
function usable(size: unknown, mtimeMs: unknown, ctimeMs: unknown, ino: unknown, recordedAt: unknown, s: FileStat): boolean {
  return size === s.size && mtimeMs === s.mtimeMs && ctimeMs === s.ctimeMs && ino === s.ino && s.mtimeMs + RACY_WINDOW_MS <= (recordedAt as number);
}

/** Whether a recorded row may be reused for a file with stat `s`. */
export function rowIsUsable(row: StatRow, s: FileStat): boolean {
  return usable(row[0], row[1], row[2], row[3], row[5], s);
}

export async function sha256File(path: string, size?: number): Promise<string> {
  if (size !== undefined && takeSyncBudget(size)) return createHash('sha256').update(readFileSync(path)).digest('hex');
  if (size !== undefined && size <= STREAM_ABOVE) return createHash('sha256').update(await readFile(path)).digest('hex');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class StatCache {
  /**
   * Rows as loaded: one flat array `[path, size, mtimeMs, ctimeMs, ino, sha256, recordedAtMs, path, ...]`
   * (parses several times faster than an object of arrays) indexed by path; rows recorded in this
   * process live in `fresh` and win over the loaded ones.
   */
  private loaded: unknown[] = [];
  private index = new Map<string, number>();
  private fresh = new Map<string, StatRow>();
  private loading: Promise<void> | undefined;
  private dirty = false;
  private readonly inflight = new Map<string, Promise<HashedFile | undefined>>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Counters for tests and `--debug` (files read vs reused). */
  readonly counters = { hashed: 0, reused: 0 };

  /** `file` undefined: in memory only. */
  constructor(
    private readonly file: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Starts loading the rows now (the file is read at once, parsed in the next microtask): a caller
   * that is about to wait for something else, such as the native walker, lets the load use the wait.
   */
  preload(): void {
    void this.load();
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      if (!this.file) return;
      let text: string | undefined;
      try {
        text = await readIfExists(this.file);
      } catch {
        return;
      }
      if (!text) return;
      try {
        const doc = JSON.parse(text) as { v?: unknown; rows?: unknown };
        if (doc.v !== FORMAT || !Array.isArray(doc.rows) || doc.rows.length % WIDTH !== 0) {
          this.dirty = true;
          return;
        }
        const rows = doc.rows as unknown[];
        for (let i = 0; i < rows.length; i += WIDTH) if (typeof rows[i] === 'string' && typeof rows[i + 5] === 'string') this.index.set(rows[i] as string, i);
        this.loaded = rows;
      } catch {
        // A damaged stat cache only costs re-hashing; start empty and overwrite it on save.
        this.dirty = true;
      }
    })();
    return this.loading;
  }

  /** The recorded hash of `p` if it may be reused for stat `s` (read in place: no row is built). */
  private reusable(p: string, s: FileStat): string | undefined {
    const f = this.fresh.get(p);
    if (f) return rowIsUsable(f, s) ? f[4] : undefined;
    const i = this.index.get(p);
    if (i === undefined) return undefined;
    const r = this.loaded;
    return usable(r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 6], s) ? (r[i + 5] as string) : undefined;
  }

  /**
   * Stats and hashes absolute `paths`. Files that vanished (or are not regular files) are absent from
   * the result. Unchanged files are not read. A path in `seen` (stat just taken by `expandGlobs`) is
   * not stat'ed again; its `at` (taken before that stat) is the recording time, as ours would be.
   */
  async hashFiles(paths: readonly string[], seen?: ReadonlyMap<string, SeenStat>): Promise<Map<string, HashedFile>> {
    await this.load();
    const out = new Map<string, HashedFile>();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < paths.length; i += STAT_BATCH) {
      if (i > 0) await yieldToLoop();
      const end = Math.min(paths.length, i + STAT_BATCH);
      for (let j = i; j < end; j++) {
        const p = paths[j]!;
        const got = regularFileStat(p, seen, this.now);
        if (!got) continue;
        // A seen stat's time comes from the real clock; this cache's may be another (tests).
        const at = Math.min(got.at, this.now());
        const s = got.stat;
        const sha256 = this.reusable(p, s);
        if (sha256 !== undefined) {
          this.counters.reused++;
          out.set(p, { sha256, stat: s });
          continue;
        }
        pending.push(
          this.hashChanged(p, s, at).then((h) => {
            if (h) out.set(p, h);
          }),
        );
      }
    }
    await Promise.all(pending);
    return out;
  }

  /** One file (e.g. an output being stored); undefined if it does not exist. */
  async hashFile(path: string): Promise<HashedFile | undefined> {
    return (await this.hashFiles([path])).get(path);
  }

  private hashChanged(p: string, s: FileStat, at: number): Promise<HashedFile | undefined> {
    const running = this.inflight.get(p);
    if (running) return running;
    const job = this.limited(async () => {
      let sha256: string;
      try {
        sha256 = await sha256File(p, s.size);
      } catch {
        return undefined; // vanished or unreadable between stat and read: treated as absent
      }
      this.counters.hashed++;
      this.fresh.set(p, [s.size, s.mtimeMs, s.ctimeMs, s.ino, sha256, at]);
      this.dirty = true;
      return { sha256, stat: s };
    }).finally(() => this.inflight.delete(p));
    this.inflight.set(p, job);
    return job;
  }

  /** Records a hash computed elsewhere (e.g. a restored output whose content is known). */
  remember(p: string, s: FileStat, sha256: string, at: number): void {
    this.fresh.set(p, [s.size, s.mtimeMs, s.ctimeMs, s.ino, sha256, at]);
    this.dirty = true;
  }

  get size(): number {
    let n = this.fresh.size;
    for (const p of this.index.keys()) if (!this.fresh.has(p)) n++;
    return n;
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= HASH_CONCURRENCY) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  /** Persists the rows if anything changed. Returns an error message instead of throwing. */
  async save(): Promise<string | undefined> {
    if (!this.file || !this.dirty) return undefined;
    const rows: unknown[] = [];
    const r = this.loaded;
    for (const [p, i] of this.index) if (!this.fresh.has(p)) rows.push(p, r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], r[i + 6]);
    for (const [p, row] of this.fresh) rows.push(p, ...row);
    try {
      await writeAtomic(this.file, JSON.stringify({ v: FORMAT, rows }));
      this.dirty = false;
      return undefined;
    } catch (e) {
      return `could not save the stat cache ${this.file}: ${errorMessage(e)}`;
    }
  }
}
