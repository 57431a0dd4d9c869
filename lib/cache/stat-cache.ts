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
 *
 * The file (format 3, `stat-cache.bin`) is binary and sorted by path, so that loading it builds no
 * object per row: "FSC3", the row count (uint32), then per row five doubles (size, mtimeMs, ctimeMs,
 * inode, recording time), then per row the sha256 (32 bytes), then the paths (UTF-8, each ending in NUL),
 * numbers in the machine's byte order (the cache is the machine's own; another order fails the length
 * check and the file is ignored). A lookup finds its row by binary search, after first trying the row
 * after the previous one: the paths of a node's inputs come sorted, so a no-op over a tree of 10,000
 * files is one comparison per file. Format 2 was JSON (`stat-cache.json`, one flat array): for 10,000
 * files 1.9 MB to parse into 70,000 values and a Map to index them, ~45 ms of every no-op over them
 * (bench/RESULTS.md, ninth pass). A file that does not load is ignored: every input is hashed again.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { regularFileStat, type FileStat, type SeenStat } from './files.js';
import { sha256Hex } from '../util/sha256.js';
import { errorMessage, writeAtomic } from './fsutil.js';
import { RACY_WINDOW_MS } from '../util/racy.js';

export type { FileStat };

/** The racy-timestamp window (util/racy.ts), re-exported for the stat cache's users. */
export { RACY_WINDOW_MS };

const MAGIC = 'FSC3';
const HEADER = 8;
/** Doubles per row: size, mtimeMs, ctimeMs, ino, recordedAt. */
const NUMS = 5;
const SHA_BYTES = 32;
/** Where format 2 was kept: removed when format 3 is saved. */
const LEGACY_STAT_CACHE = 'stat-cache.json';
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

/** The buffer small files are read into for hashing, reused from one file to the next (grows to SYNC_UP_TO + 1 at most). */
let scratch = Buffer.allocUnsafe(0);

/**
 * The file's bytes, in `scratch` (valid until the next call). `size` is the size a stat just gave:
 * the buffer has room for one byte more, so that one read returning less than it asked for ends the
 * file, without the fstat and the extra read of readFileSync. A file that grew meanwhile is read on
 * to its end; one that shrank is read until a read returns nothing.
 */
function readSmall(path: string, size: number): Buffer {
  if (scratch.length < size + 1) scratch = Buffer.allocUnsafe(Math.max(size + 1, Math.min(2 * scratch.length, SYNC_UP_TO + 1), 64 * 1024));
  let buf = scratch;
  const fd = openSync(path, 'r');
  try {
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafe(2 * buf.length);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      // A short read past the stat's size is the end of a regular file.
      if (n >= size && n < buf.length) break;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export async function sha256File(path: string, size?: number): Promise<string> {
  if (size !== undefined && takeSyncBudget(size)) return sha256Hex(readSmall(path, size));
  if (size !== undefined && size <= STREAM_ABOVE) return sha256Hex(await readFile(path));
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** One row of the stat cache file, as `readStatCacheFile` gives it (tests; inspecting a cache by hand). */
export interface StatCacheRow {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly sha256: string;
  readonly recordedAt: number;
}

/** The rows of a format-3 file as loaded: paths sorted by code unit, numbers and hashes by row. */
interface Loaded {
  readonly paths: string[];
  readonly nums: Float64Array;
  readonly shas: Buffer;
}

/** Parses a format-3 file; undefined if it is not one (or is damaged). */
function parseStatCache(buf: Buffer): Loaded | undefined {
  if (buf.length < HEADER || buf.toString('latin1', 0, 4) !== MAGIC) return undefined;
  const n = new Uint32Array(buf.buffer.slice(buf.byteOffset + 4, buf.byteOffset + 8))[0]!; // the machine's byte order
  const shaAt = HEADER + n * NUMS * 8;
  const pathAt = shaAt + n * SHA_BYTES;
  if (buf.length < pathAt || (n === 0 && buf.length !== pathAt)) return undefined;
  // The doubles in place when the buffer allows it, else copied to an aligned one.
  const start = buf.byteOffset + HEADER;
  const nums = start % 8 === 0 ? new Float64Array(buf.buffer, start, n * NUMS) : new Float64Array(buf.buffer.slice(start, start + n * NUMS * 8));
  // Each path ends in a NUL: a file cut short ends elsewhere.
  if (n > 0 && buf[buf.length - 1] !== 0) return undefined;
  const paths = n === 0 ? [] : buf.toString('utf8', pathAt, buf.length - 1).split('\0');
  if (paths.length !== n) return undefined;
  return { paths, nums, shas: buf.subarray(shaAt, pathAt) };
}

/** Every row of a stat cache file (undefined if there is none, or it is not format 3). */
export function readStatCacheFile(file: string): StatCacheRow[] | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return undefined;
  }
  const l = parseStatCache(buf);
  if (!l) return undefined;
  return l.paths.map((_, i) => rowAt(l, i));
}

/** The hash of loaded row `i`, as hex. */
function shaAt(l: Loaded, i: number): string {
  return l.shas.toString('hex', i * SHA_BYTES, (i + 1) * SHA_BYTES);
}

/** Loaded row `i` as a row object. */
function rowAt(l: Loaded, i: number): StatCacheRow {
  const o = i * NUMS;
  const n = l.nums;
  return { path: l.paths[i]!, size: n[o]!, mtimeMs: n[o + 1]!, ctimeMs: n[o + 2]!, ino: n[o + 3]!, recordedAt: n[o + 4]!, sha256: shaAt(l, i) };
}

/** The bytes of a format-3 file holding `rows` (sorted here by path; a path given twice keeps its last row). */
export function formatStatCache(rows: readonly StatCacheRow[]): Buffer {
  const byPath = new Map<string, StatCacheRow>();
  for (const r of rows) byPath.set(r.path, r);
  const paths = [...byPath.keys()].sort();
  const n = paths.length;
  const nums = new Float64Array(n * NUMS);
  const shas = Buffer.alloc(n * SHA_BYTES);
  paths.forEach((p, i) => {
    const r = byPath.get(p)!;
    nums.set([r.size, r.mtimeMs, r.ctimeMs, r.ino, r.recordedAt], i * NUMS);
    shas.write(r.sha256, i * SHA_BYTES, SHA_BYTES, 'hex');
  });
  const head = Buffer.alloc(HEADER);
  head.write(MAGIC, 0, 'latin1');
  new Uint32Array(head.buffer, head.byteOffset + 4, 1)[0] = n; // the machine's byte order, as the doubles
  const names = n === 0 ? Buffer.alloc(0) : Buffer.from(paths.join('\0') + '\0', 'utf8');
  return Buffer.concat([head, Buffer.from(nums.buffer, nums.byteOffset, nums.byteLength), shas, names]);
}

const SHA_HEX = /^[0-9a-f]{64}$/;

export class StatCache {
  /** Rows as loaded (sorted by path); rows recorded in this process live in `fresh` and win over them. */
  private loaded: Loaded = { paths: [], nums: new Float64Array(0), shas: Buffer.alloc(0) };
  /** The row after the last one found: where the next lookup of a sorted series is. */
  private next = 0;
  private fresh = new Map<string, StatRow>();
  /**
   * The stats this run has taken while nothing had run yet (null: no regular file there), so that a
   * file is stat'ed once however many nodes read it: a no-op over a graph stats each output once as
   * its producer's output, not again as every dependent's input. `endMemo` ends it for the rest of
   * the run when anything may write files: a node about to run, a hit about to restore an output.
   */
  private memo: Map<string, SeenStat | null> | undefined = new Map();
  private loading: Promise<void> | undefined;
  private dirty = false;
  /** The load found no file: the first save also removes format 2's file. */
  private firstSave = false;
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
   * Starts loading the rows now: a caller that is about to wait for something else, such as the
   * native walker, lets the load use the wait.
   */
  preload(): void {
    void this.load();
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      if (!this.file) return;
      let buf: Buffer | undefined;
      try {
        buf = readFileSync(this.file);
      } catch (e) {
        // None yet (or unreadable): written at the end of the run.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.dirty = true;
        else this.firstSave = true;
        return;
      }
      const l = parseStatCache(buf);
      // A damaged stat cache only costs re-hashing; start empty and overwrite it on save.
      if (l) this.loaded = l;
      else this.dirty = true;
    })();
    return this.loading;
  }

  /** The loaded row of `p`, or -1: the row after the previous hit first, else a binary search. */
  private find(p: string): number {
    const paths = this.loaded.paths;
    const n = paths.length;
    if (this.next < n && paths[this.next] === p) return this.next++;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const q = paths[mid]!;
      if (q === p) {
        this.next = mid + 1;
        return mid;
      }
      if (q < p) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Ends the memo of stats for the rest of the run (see `memo`): from now on every stat is taken when
   * it is asked for. Call it before anything in the run may write a file.
   */
  endMemo(): void {
    this.memo = undefined;
  }

  /** The stat of the regular file `abs` this run took already, if the memo holds one (expandGlobs asks). */
  readonly known = (abs: string): SeenStat | undefined => this.memo?.get(abs) ?? undefined;

  /** `abs`'s stat: from `seen`, else from the memo, else taken now (and remembered while the memo lasts). */
  private statOf(abs: string, seen: ReadonlyMap<string, SeenStat> | undefined): SeenStat | undefined {
    const memo = this.memo;
    const pre = seen?.get(abs);
    if (pre) {
      memo?.set(abs, pre);
      return pre;
    }
    if (memo) {
      const m = memo.get(abs);
      if (m !== undefined) return m ?? undefined;
    }
    const got = regularFileStat(abs, undefined, this.now);
    memo?.set(abs, got ?? null);
    return got;
  }

  /** The recorded hash of `p` if it may be reused for stat `s` (read in place: no row is built). */
  private reusable(p: string, s: FileStat): string | undefined {
    const f = this.fresh.get(p);
    if (f) return rowIsUsable(f, s) ? f[4] : undefined;
    const i = this.find(p);
    if (i < 0) return undefined;
    const nums = this.loaded.nums;
    const o = i * NUMS;
    return usable(nums[o], nums[o + 1], nums[o + 2], nums[o + 3], nums[o + 4], s) ? shaAt(this.loaded, i) : undefined;
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
        const got = this.statOf(p, seen);
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
    for (const p of this.loaded.paths) if (!this.fresh.has(p)) n++;
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
    // Rows remembered before anything was loaded (a restored output of a node without inputs) must
    // not replace the file's other rows.
    await this.load();
    const rows: StatCacheRow[] = [];
    const paths = this.loaded.paths;
    for (let i = 0; i < paths.length; i++) if (!this.fresh.has(paths[i]!)) rows.push(rowAt(this.loaded, i));
    for (const [path, [size, mtimeMs, ctimeMs, ino, sha256, recordedAt]] of this.fresh) {
      if (SHA_HEX.test(sha256)) rows.push({ path, size, mtimeMs, ctimeMs, ino, sha256, recordedAt });
    }
    try {
      await writeAtomic(this.file, formatStatCache(rows));
      this.dirty = false;
    } catch (e) {
      return `could not save the stat cache ${this.file}: ${errorMessage(e)}`;
    }
    // Format 2's file, left by an earlier fabric, when this is the first format-3 file: nothing reads it any more.
    if (this.firstSave) {
      this.firstSave = false;
      try {
        rmSync(join(dirname(this.file), LEGACY_STAT_CACHE), { force: true });
      } catch {
        /* best effort */
      }
    }
    return undefined;
  }
}
