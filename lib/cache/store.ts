/**
 * The local content-addressed store (`.fabric/cache` by default):
 *
 *   blobs/ab/<sha256>          file contents (large outputs, large replayed logs), addressed by their sha256
 *   entries/ab/<fp>.json       one successful run of a node: its outputs (path, mode, sha256, size; the
 *                              bytes themselves inline when small, else a blob), its logs (inline when
 *                              small, else a blob) and the canonical JSON text of the key object (it
 *                              hashes to <fp>; kept as a string, so a hit's JSON.parse only scans it).
 *                              The file's mtime is the entry's last-used time (to within
 *                              TOUCH_AFTER_MS). Storing a cacheable node with small outputs creates this
 *                              one file and nothing else.
 *   keys/ab/<fp>.json          the key object of a recorded fingerprint that has no entry: a node that
 *                              is not stored (not cacheable, failed), or whose entry prune removed while
 *                              a run record still names it (prune moves the key out first)
 *   runs.json                  the last recorded run of every node (task + params), cacheable or
 *                              not, written once per run (see runs.ts)
 *   stat-cache.bin             see stat-cache.ts (format 2 of it was stat-cache.json)
 *   hmac.key                   the random key for digests of secrets (mode 0600)
 *
 * Format 2 (this one) moved small outputs and the key into the entry; an entry of another format is
 * absent (a miss, replaced by the next successful run; prune removes it), never served.
 *
 * Every write is a temp file plus a rename, so two fabric processes on the same repo can only ever
 * replace a complete file with another complete file. Anything that does not verify (bad JSON, a key
 * whose hash is not its name, a blob or inline output whose content does not match its sha256) is
 * treated as absent; a damaged entry is reported as corrupt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, createWriteStream, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import { chmod, link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { NodeId } from '../engine/events.js';
import { canonicalJson } from '../util/canonical-json.js';
import type { CacheKey } from './fingerprint.js';
import type { CachedLog } from './types.js';
import { errorMessage, isCode, readIfExists, readIfSmall, tempNameFor, writeAtomic } from './fsutil.js';
import { RACY_WINDOW_MS } from '../util/racy.js';
import { readRunsFile, RECORD_TIME_GRAIN_MS, RunRecords, type EntryFileStat, type RunRecord } from './runs.js';

export type { EntryFileStat, EntrySummary, RunMark, RunOutcome, RunRecord } from './runs.js';

export const STORE_FORMAT = 2;
const SHA = /^[0-9a-f]{64}$/;

export interface StoredOutput {
  /** Relative to the node's cwd, `/`-separated. */
  readonly path: string;
  readonly mode: number;
  readonly sha256: string;
  readonly size: number;
  /**
   * The file's bytes, when small (`INLINE_OUTPUT_MAX`): as text when they are valid UTF-8, else base64.
   * No blob is stored for it; the bytes are checked against `sha256` and `size` before a restore.
   */
  readonly inline?: { readonly encoding: 'utf8' | 'base64'; readonly data: string };
}

export interface CacheEntry {
  readonly v: number;
  readonly fingerprint: string;
  readonly node: NodeId;
  readonly task: string;
  /** ISO-8601 time the entry was written. */
  readonly created: string;
  readonly outputs: readonly StoredOutput[];
  /**
   * The logs to replay, or null when there were none: the sha256 and size of their JSON text (an
   * array of `{stream, chunk}`), which is the blob with that name, or, for small logs, is `inline` in
   * the entry (one read on a hit; the blob is then not stored).
   */
  readonly logs: { readonly sha256: string; readonly size: number; readonly inline?: readonly CachedLog[] } | null;
  /**
   * The canonical JSON text of the key object (it hashes to the fingerprint; what `fabric explain`
   * diffs with). A string rather than an object: parsing an entry on a hit then only scans it.
   */
  readonly keyJson?: string;
}

/**
 * Files up to this size are copied into and restored from the store by one synchronous read and a
 * synchronous atomic write (no streams, no thread-pool round trips); larger ones are streamed.
 */
const SMALL_FILE = 1024 * 1024;

/** Logs up to this size (JSON text) are kept in the entry itself. */
export const INLINE_LOGS_MAX = 16 * 1024;
/** Output files up to this size are kept in the entry itself (no blob)… */
export const INLINE_OUTPUT_MAX = 16 * 1024;
/** …as long as an entry's inline outputs stay within this many bytes in all (the rest are blobs). */
export const INLINE_OUTPUTS_TOTAL = 64 * 1024;
/**
 * An entry's last-used time (its mtime) is advanced on a hit only when it is older than this: the
 * grain of the run records' times (an hour). `prune --older-than` takes hours and days (12h, 7d), and
 * the size limit's least-recently-used order needs no finer grain. Each advance is a utimes, a second
 * stat, and a changed run record (runs.json rewritten): with a minute, every no-op run more than a
 * minute after the last paid that for every node (W5: 1000 of each; bench/RESULTS.md, ninth pass).
 */
export const TOUCH_AFTER_MS = RECORD_TIME_GRAIN_MS;

export type EntryRead =
  | { readonly state: 'absent' }
  /** `file`: the entry file's identity as read; its mtime is the entry's last-used time. */
  | { readonly state: 'ok'; readonly entry: CacheEntry; readonly file: EntryFileStat }
  | { readonly state: 'corrupt'; readonly detail: string };
export type BlobResult = 'ok' | 'missing' | 'corrupt';

export interface StoreStats {
  readonly dir: string;
  readonly entries: number;
  readonly blobs: number;
  readonly blobBytes: number;
  readonly keys: number;
  readonly runs: number;
  readonly totalBytes: number;
  readonly oldestUse: string | undefined;
  readonly newestUse: string | undefined;
  /** Entries per task, most first. */
  readonly byTask: readonly { readonly task: string; readonly entries: number }[];
}

export interface PruneResult {
  readonly removedEntries: number;
  readonly removedBlobs: number;
  readonly removedKeys: number;
  /** Run records of nodes last run before `--older-than` (their keys go with them unless still used). */
  readonly removedRuns: number;
  readonly freedBytes: number;
  readonly remainingBytes: number;
  readonly corrupt: number;
}

/**
 * A file's text and identity, or undefined if it does not exist (what readFileSync does, keeping the
 * fstat). `probe`: the file is likely absent (a lookup that may miss), so a stat says so first
 * without the exception a failed open throws (~10–20 µs apiece here, against ~3 µs for the stat).
 */
function readWithStat(file: string, probe: boolean): { text: string; stat: EntryFileStat } | undefined {
  let fd: number;
  try {
    if (probe && !statSync(file, { throwIfNoEntry: false })) return undefined;
    fd = openSync(file, 'r');
  } catch (e) {
    if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return undefined;
    throw e;
  }
  try {
    const st = fstatSync(fd);
    // Read the size fstat gave (the file may have been replaced by a rename, never changed in place).
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return { text: buf.toString('utf8', 0, n), stat: fileStatOf(st) };
  } finally {
    closeSync(fd);
  }
}

function fileStatOf(st: Stats): EntryFileStat {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function shard(dir: string, name: string, ext = ''): string {
  return join(dir, name.slice(0, 2), name + ext);
}

export function validLogs(x: unknown): x is CachedLog[] {
  return Array.isArray(x) && x.every((l) => !!l && typeof l === 'object' && (l.stream === 'stdout' || l.stream === 'stderr') && typeof l.chunk === 'string');
}

/**
 * The bytes an inline output holds, if they are what the entry says they are (size and sha256);
 * undefined when they are not (a corrupt entry).
 */
export function inlineBytes(o: StoredOutput): Buffer | undefined {
  if (!o.inline) return undefined;
  const buf = Buffer.from(o.inline.data, o.inline.encoding);
  if (buf.length !== o.size || createHash('sha256').update(buf).digest('hex') !== o.sha256) return undefined;
  return buf;
}

/** How `bytes` are kept in an entry: as text when they round-trip through UTF-8 exactly, else base64. */
export function inlineOf(bytes: Buffer): NonNullable<StoredOutput['inline']> {
  const text = bytes.toString('utf8');
  return Buffer.byteLength(text) === bytes.length && Buffer.from(text).equals(bytes) ? { encoding: 'utf8', data: text } : { encoding: 'base64', data: bytes.toString('base64') };
}

/** An entry of another format version (well-formed JSON, not one this fabric reads): absent, not corrupt. */
function otherFormat(x: unknown): boolean {
  return !!x && typeof x === 'object' && typeof (x as { v?: unknown }).v === 'number' && (x as { v: number }).v !== STORE_FORMAT;
}

function validEntry(x: unknown, fp: string): x is CacheEntry {
  if (!x || typeof x !== 'object') return false;
  const e = x as Record<string, unknown>;
  if (e.v !== STORE_FORMAT || e.fingerprint !== fp || typeof e.node !== 'string' || typeof e.task !== 'string' || typeof e.created !== 'string') return false;
  if (!Array.isArray(e.outputs)) return false;
  for (const o of e.outputs as unknown[]) {
    if (!o || typeof o !== 'object') return false;
    const r = o as Record<string, unknown>;
    if (typeof r.path !== 'string' || r.path === '' || typeof r.mode !== 'number' || typeof r.size !== 'number' || typeof r.sha256 !== 'string' || !SHA.test(r.sha256)) return false;
    if (r.inline !== undefined) {
      const i = r.inline as Record<string, unknown> | null;
      if (!i || typeof i !== 'object' || (i.encoding !== 'utf8' && i.encoding !== 'base64') || typeof i.data !== 'string') return false;
    }
  }
  if (e.keyJson !== undefined && typeof e.keyJson !== 'string') return false;
  if (e.logs !== null) {
    const l = e.logs as Record<string, unknown> | undefined;
    if (!l || typeof l !== 'object' || typeof l.sha256 !== 'string' || !SHA.test(l.sha256) || typeof l.size !== 'number') return false;
    if (l.inline !== undefined && !validLogs(l.inline)) return false;
  }
  return true;
}

/** A stream that hashes what passes through. */
function hasher(): Transform & { digest(): string; bytes: number } {
  const h = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      (t as unknown as { bytes: number }).bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { digest(): string; bytes: number };
  t.bytes = 0;
  t.digest = () => h.digest('hex');
  return t;
}

export class Store {
  readonly blobsDir: string;
  readonly entriesDir: string;
  readonly keysDir: string;
  /** The run records (`runs.ts`), loaded once per Store. */
  readonly runs: RunRecords;
  /** Where fabric before `runs.json` kept one record file per node; prune removes it. */
  readonly legacyRunsDir: string;
  readonly statCacheFile: string;
  readonly hmacKeyFile: string;
  private laidOut: Promise<void> | undefined;

  constructor(readonly dir: string) {
    this.blobsDir = join(dir, 'blobs');
    this.entriesDir = join(dir, 'entries');
    this.keysDir = join(dir, 'keys');
    this.runs = new RunRecords(join(dir, 'runs.json'));
    this.legacyRunsDir = join(dir, 'runs');
    this.statCacheFile = join(dir, 'stat-cache.bin');
    this.hmacKeyFile = join(dir, 'hmac.key');
  }

  blobPath(sha: string): string {
    return shard(this.blobsDir, sha);
  }
  entryPath(fp: string): string {
    return shard(this.entriesDir, fp, '.json');
  }
  keyPath(fp: string): string {
    return shard(this.keysDir, fp, '.json');
  }
  /** Creates the directory (once per process) with a `.gitignore` that ignores everything in it. */
  ensureLayout(): Promise<void> {
    this.laidOut ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const gi = join(this.dir, '.gitignore');
      if ((await readIfExists(gi)) === undefined) await writeAtomic(gi, '# fabric cache: never commit\n*\n');
    })();
    return this.laidOut;
  }

  /**
   * The store's secret-digest key (32 random bytes, mode 0600). With `create`, a missing or damaged
   * key is created; two processes racing here agree on one key (hard link: the first one wins).
   * Without `create`, a missing key gives undefined.
   */
  async hmacKey(create: boolean): Promise<Buffer | undefined> {
    const read = async () => {
      try {
        const b = await readFile(this.hmacKeyFile);
        return b.length === 32 ? b : undefined;
      } catch (e) {
        if (isCode(e, 'ENOENT')) return undefined;
        throw e;
      }
    };
    const existing = await read();
    if (existing || !create) return existing;
    await this.ensureLayout();
    const tmp = tempNameFor(this.hmacKeyFile);
    await writeFile(tmp, randomBytes(32), { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, this.hmacKeyFile);
    } catch (e) {
      if (!isCode(e, 'EEXIST')) throw e;
      const now = await read();
      if (now) return now;
      await rename(tmp, this.hmacKeyFile); // damaged key (wrong length): replace it
    } finally {
      await rm(tmp, { force: true });
    }
    const made = await read();
    if (!made) throw new Error(`could not create ${this.hmacKeyFile}`);
    return made;
  }

  async hasBlob(sha: string): Promise<boolean> {
    try {
      return statSync(this.blobPath(sha), { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  /** Copies a file into the store (hashing while copying); returns what was actually stored. */
  async putFile(src: string): Promise<{ sha256: string; size: number }> {
    const small = readIfSmall(src, SMALL_FILE);
    if (small) {
      const sha256 = createHash('sha256').update(small).digest('hex');
      await writeAtomic(this.blobPath(sha256), small);
      return { sha256, size: small.length };
    }
    await mkdir(this.blobsDir, { recursive: true });
    const tmp = tempNameFor(join(this.blobsDir, 'blob'));
    const h = hasher();
    try {
      await pipeline(createReadStream(src), h, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
      const sha256 = h.digest();
      await this.commitBlob(tmp, sha256);
      return { sha256, size: h.bytes };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putData(data: string | Buffer): Promise<{ sha256: string; size: number }> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const sha256 = createHash('sha256').update(buf).digest('hex');
    if (!(await this.hasBlob(sha256))) await writeAtomic(this.blobPath(sha256), buf);
    return { sha256, size: buf.length };
  }

  private async commitBlob(tmp: string, sha256: string): Promise<void> {
    const dest = this.blobPath(sha256);
    try {
      await rename(tmp, dest);
    } catch (e) {
      if (!isCode(e, 'ENOENT')) throw e;
      await mkdir(dirname(dest), { recursive: true });
      await rename(tmp, dest);
    }
  }

  /** A blob's bytes, verified against its name. */
  async readBlob(sha: string): Promise<Buffer | 'missing' | 'corrupt'> {
    let buf: Buffer;
    try {
      buf = await readFile(this.blobPath(sha));
    } catch (e) {
      if (isCode(e, 'ENOENT')) return 'missing';
      throw e;
    }
    return createHash('sha256').update(buf).digest('hex') === sha ? buf : 'corrupt';
  }

  /**
   * Writes blob `sha` to `target` with `mode`: through a temp file next to the target, verified, then
   * renamed, so the target is either untouched or complete. A blob that does not hash to its name
   * is removed from the store.
   */
  async restoreBlob(sha: string, target: string, mode: number): Promise<BlobResult> {
    // A small blob is read, verified and written synchronously (thread-pool round trips cost more
    // than the I/O here; see fsutil.writeAtomic).
    let small: Buffer | undefined;
    try {
      small = readIfSmall(this.blobPath(sha), SMALL_FILE);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return 'missing';
      throw e;
    }
    if (small) {
      if (createHash('sha256').update(small).digest('hex') !== sha) {
        rmSync(this.blobPath(sha), { force: true });
        return 'corrupt';
      }
      restoreBytesSync(small, target, mode);
      return 'ok';
    }
    const tmp = tempNameFor(target);
    const h = hasher();
    try {
      const src = createReadStream(this.blobPath(sha));
      const opened = new Promise<void>((resolve, reject) => {
        src.once('open', () => resolve());
        src.once('error', reject);
      });
      try {
        await opened;
      } catch (e) {
        src.destroy();
        if (isCode(e, 'ENOENT')) return 'missing';
        throw e;
      }
      await mkdir(dirname(target), { recursive: true });
      await pipeline(src, h, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      if (h.digest() !== sha) {
        await rm(this.blobPath(sha), { force: true });
        return 'corrupt';
      }
      await chmod(tmp, mode & 0o7777);
      await rename(tmp, target);
      return 'ok';
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Writes `bytes` to `target` with `mode`, like `restoreBlob`: a temp file next to it, then a rename. */
  async restoreBytes(bytes: Uint8Array, target: string, mode: number): Promise<void> {
    restoreBytesSync(bytes, target, mode);
  }

  /**
   * The entry under `fp`, with its last-used time: one synchronous read (open, fstat, read, close).
   * `expected`: the caller knows the entry should be there (no stat is spent first on finding out).
   */
  async readEntry(fp: string, { expected = false }: { readonly expected?: boolean } = {}): Promise<EntryRead> {
    let file: { text: string; stat: EntryFileStat } | undefined;
    try {
      file = readWithStat(this.entryPath(fp), !expected);
    } catch (e) {
      return { state: 'corrupt', detail: `unreadable cache entry: ${errorMessage(e)}` };
    }
    if (file === undefined) return { state: 'absent' };
    const { text } = file;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return { state: 'corrupt', detail: `cache entry ${fp.slice(0, 12)} is not valid JSON (${errorMessage(e)})` };
    }
    if (otherFormat(parsed)) return { state: 'absent' };
    if (!validEntry(parsed, fp)) return { state: 'corrupt', detail: `cache entry ${fp.slice(0, 12)} has an unexpected shape` };
    return { state: 'ok', entry: parsed, file: file.stat };
  }

  /** The identity of the entry file of `fp` (one stat), or undefined if there is none or it cannot be stat'ed. */
  entryStat(fp: string): EntryFileStat | undefined {
    try {
      const st = statSync(this.entryPath(fp), { throwIfNoEntry: false });
      return st?.isFile() ? fileStatOf(st) : undefined;
    } catch {
      return undefined;
    }
  }

  async writeEntry(entry: CacheEntry): Promise<void> {
    await writeAtomic(this.entryPath(entry.fingerprint), JSON.stringify(entry));
  }

  async removeEntry(fp: string): Promise<void> {
    await rm(this.entryPath(fp), { force: true });
  }

  /**
   * Marks an entry as used now (its mtime is the last-used time that `prune --older-than` reads),
   * unless it was marked less than `TOUCH_AFTER_MS` ago: the last-used time is exact to that. Whether
   * it marked it (the entry file's times then changed).
   *
   * The time set is RACY_WINDOW_MS before now, so that a run record may summarize the entry file by
   * its stat at once (runs.ts, `EntrySummary`): a later write in place would set a later mtime.
   */
  async touchEntry(fp: string, usedAtMs?: number): Promise<boolean> {
    const nowMs = Date.now();
    // A last-used time ahead of the clock (skew) is marked again; a fraction of the current millisecond
    // (a float mtime against Date.now()) is not ahead.
    if (usedAtMs !== undefined && Math.floor(usedAtMs) <= nowMs && nowMs - usedAtMs < TOUCH_AFTER_MS) return false;
    // One more millisecond: the time set comes back from stat as a float that may be a hair later.
    const at = new Date(nowMs - RACY_WINDOW_MS - 1);
    try {
      utimesSync(this.entryPath(fp), at, at); // one syscall on the hit path; async would cost more than it does
    } catch {
      /* removed meanwhile: nothing to mark */
    }
    return true;
  }

  /** Writes a key's canonical JSON text (`KeyResult.keyJson`) under its fingerprint unless it is already there. */
  async writeKey(fp: string, keyJson: string): Promise<void> {
    const p = this.keyPath(fp);
    try {
      if (statSync(p, { throwIfNoEntry: false })) return;
    } catch {
      /* unreadable: write it */
    }
    await writeAtomic(p, keyJson);
  }

  /**
   * The key object of `fp`, if stored and intact (its canonical JSON must hash to `fp`): from its key
   * file, else from the entry of `fp`.
   */
  async readKey(fp: string): Promise<CacheKey | undefined> {
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const parsed = (json: string): CacheKey | undefined => {
      try {
        const key = JSON.parse(json) as unknown;
        return key && typeof key === 'object' ? (key as CacheKey) : undefined;
      } catch {
        return undefined;
      }
    };
    // A miss reads the previous key of its node (to say what changed). Most keys are kept in their
    // entry (a run that succeeded); a key file is for a fingerprint without one (a run that failed,
    // an entry that prune removed), looked for without an exception when it is absent.
    const entry = await this.readEntry(fp, { expected: true }).catch(() => undefined);
    const json = entry?.state === 'ok' ? entry.entry.keyJson : undefined;
    if (json !== undefined && sha(json) === fp) return parsed(json);
    const file = this.keyPath(fp);
    let text: string | undefined;
    try {
      text = statSync(file, { throwIfNoEntry: false }) ? readFileSync(file, 'utf8') : undefined;
    } catch {
      text = undefined;
    }
    if (text === undefined) return undefined;
    // writeKey stores the canonical text that was hashed: its own hash is the fingerprint. A key file
    // written any other way (parsed JSON is plain data) must serialize canonically to it.
    const key = parsed(text);
    return key && (sha(text) === fp || sha(canonicalJson(key)) === fp) ? key : undefined;
  }

  /** The node's last recorded run (from `runs.json`, as loaded by this Store plus what it recorded since). */
  readRun(node: NodeId): Promise<RunRecord | undefined> {
    return this.runs.get(node);
  }

  /** The most recently recorded run of any node of `task` (whatever its params): what a new param set is compared with. */
  readTaskRun(task: string): Promise<RunRecord | undefined> {
    return this.runs.latestOf(task);
  }

  // ---- maintenance: stats, prune, clean ----

  private async listShards(dir: string, ext: string): Promise<{ name: string; path: string; size: number; mtimeMs: number }[]> {
    const out: { name: string; path: string; size: number; mtimeMs: number }[] = [];
    let shards: string[];
    try {
      shards = await readdir(dir);
    } catch {
      return out;
    }
    for (const s of shards) {
      let names: string[];
      try {
        names = await readdir(join(dir, s));
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.endsWith(ext) || n.startsWith('.')) continue;
        const p = join(dir, s, n);
        try {
          const st = await stat(p);
          out.push({ name: ext ? n.slice(0, -ext.length) : n, path: p, size: st.size, mtimeMs: st.mtimeMs });
        } catch {
          /* removed meanwhile */
        }
      }
    }
    return out;
  }

  /** The run records as they are on disk now, and the size of their file. */
  private async listRuns(): Promise<{ records: RunRecord[]; bytes: number }> {
    return readRunsFile(this.runs.file);
  }

  private async loadEntries(): Promise<{ fp: string; entry: CacheEntry | undefined; size: number; mtimeMs: number; path: string }[]> {
    const files = await this.listShards(this.entriesDir, '.json');
    const out: { fp: string; entry: CacheEntry | undefined; size: number; mtimeMs: number; path: string }[] = [];
    for (const f of files) {
      const r = await this.readEntry(f.name, { expected: true });
      out.push({ fp: f.name, entry: r.state === 'ok' ? r.entry : undefined, size: f.size, mtimeMs: f.mtimeMs, path: f.path });
    }
    return out;
  }

  private async fileSize(p: string): Promise<number> {
    try {
      return (await stat(p)).size;
    } catch {
      return 0;
    }
  }

  async stats(): Promise<StoreStats> {
    const [entries, blobs, keys, runs] = await Promise.all([this.loadEntries(), this.listShards(this.blobsDir, ''), this.listShards(this.keysDir, '.json'), this.listRuns()]);
    const blobBytes = blobs.reduce((n, b) => n + b.size, 0);
    const other = (await this.fileSize(this.statCacheFile)) + (await this.fileSize(this.hmacKeyFile));
    const totalBytes = blobBytes + entries.reduce((n, e) => n + e.size, 0) + keys.reduce((n, k) => n + k.size, 0) + runs.bytes + other;
    const uses = entries.map((e) => e.mtimeMs).sort((a, b) => a - b);
    const byTask = new Map<string, number>();
    for (const e of entries) if (e.entry) byTask.set(e.entry.task, (byTask.get(e.entry.task) ?? 0) + 1);
    return {
      dir: this.dir,
      entries: entries.length,
      blobs: blobs.length,
      blobBytes,
      keys: keys.length,
      runs: runs.records.length,
      totalBytes,
      oldestUse: uses.length ? new Date(uses[0]!).toISOString() : undefined,
      newestUse: uses.length ? new Date(uses[uses.length - 1]!).toISOString() : undefined,
      byTask: [...byTask].map(([task, n]) => ({ task, entries: n })).sort((a, b) => b.entries - a.entries || (a.task < b.task ? -1 : 1)),
    };
  }

  /**
   * Removes entries last used before `now - olderThanMs` (and the run records of nodes last run before
   * then), then least-recently-used entries until the store is at most `maxBytes`, then every blob
   * and key no remaining entry or run record refers to,
   * corrupt entries, temp files left by killed processes, and the per-node run record files of fabric
   * before `runs.json` (`runs/`). The key of a removed entry that a run record names is written to
   * `keys/` first, so `explain` can still diff with it. A run racing with prune can lose a blob
   * it just wrote: its entry then fails to restore and is a miss, never a wrong hit.
   */
  async prune(opts: { readonly maxBytes?: number | undefined; readonly olderThanMs?: number | undefined; readonly now?: number }): Promise<PruneResult> {
    const now = opts.now ?? Date.now();
    const cutoff = opts.olderThanMs !== undefined ? new Date(now - opts.olderThanMs).toISOString() : undefined;
    const [entries, blobs, keys, runs] = await Promise.all([
      this.loadEntries(),
      this.listShards(this.blobsDir, ''),
      this.listShards(this.keysDir, '.json'),
      cutoff !== undefined ? this.runs.dropOlderThan(cutoff) : this.listRuns().then((r) => ({ ...r, removed: 0 })),
    ]);
    const blobSize = new Map(blobs.map((b) => [b.name, b.size]));
    const keySize = new Map(keys.map((k) => [k.name, k.size]));
    const blobRefs = new Map<string, number>();
    const keyRefs = new Map<string, number>();
    const inc = (m: Map<string, number>, k: string, d: number) => m.set(k, (m.get(k) ?? 0) + d);
    const blobsOf = (e: CacheEntry) => [...new Set([...e.outputs.filter((o) => !o.inline).map((o) => o.sha256), ...(e.logs && !e.logs.inline ? [e.logs.sha256] : [])])];
    /** Fingerprints a run record names: their keys must outlive their entries (explain diffs with them). */
    const recorded = new Set<string>();
    for (const r of runs.records) {
      inc(keyRefs, r.last.fingerprint, 1);
      recorded.add(r.last.fingerprint);
      if (r.lastSuccess) {
        inc(keyRefs, r.lastSuccess.fingerprint, 1);
        recorded.add(r.lastSuccess.fingerprint);
      }
    }
    /** Keys held only by an entry that goes, which a run record names: written to `keys/` before it goes. */
    const keepKeys = new Map<string, string>();
    let corrupt = 0;
    const live: typeof entries = [];
    const remove: typeof entries = [];
    for (const e of entries) {
      if (!e.entry) {
        corrupt++;
        remove.push(e);
        continue;
      }
      live.push(e);
      for (const b of blobsOf(e.entry)) inc(blobRefs, b, 1);
      inc(keyRefs, e.fp, 1);
    }
    const fixed = runs.bytes + (await this.fileSize(this.statCacheFile)) + (await this.fileSize(this.hmacKeyFile));
    let total = fixed + live.reduce((n, e) => n + e.size, 0);
    for (const [b] of blobRefs) total += blobSize.get(b) ?? 0;
    for (const [k] of keyRefs) total += keySize.get(k) ?? 0;
    const drop = (e: (typeof entries)[number]) => {
      remove.push(e);
      total -= e.size;
      for (const b of blobsOf(e.entry!)) {
        inc(blobRefs, b, -1);
        if (blobRefs.get(b) === 0) total -= blobSize.get(b) ?? 0;
      }
      inc(keyRefs, e.fp, -1);
      if (keyRefs.get(e.fp) === 0) total -= keySize.get(e.fp) ?? 0;
      const text = e.entry!.keyJson;
      if (text !== undefined && recorded.has(e.fp) && !keySize.has(e.fp)) {
        keepKeys.set(e.fp, text);
        total += Buffer.byteLength(text);
      }
    };
    live.sort((a, b) => a.mtimeMs - b.mtimeMs);
    const kept: typeof entries = [];
    for (const e of live) {
      if (opts.olderThanMs !== undefined && e.mtimeMs < now - opts.olderThanMs) drop(e);
      else kept.push(e);
    }
    if (opts.maxBytes !== undefined) {
      while (total > opts.maxBytes && kept.length > 0) drop(kept.shift()!);
    }
    for (const [fp, text] of keepKeys) {
      if (createHash('sha256').update(text).digest('hex') === fp) await writeAtomic(this.keyPath(fp), text);
    }
    let freed = 0;
    for (const e of remove) {
      await rm(e.path, { force: true });
      freed += e.size;
    }
    let removedBlobs = 0;
    for (const b of blobs) {
      if ((blobRefs.get(b.name) ?? 0) > 0) continue;
      await rm(b.path, { force: true });
      removedBlobs++;
      freed += b.size;
    }
    let removedKeys = 0;
    for (const k of keys) {
      if ((keyRefs.get(k.name) ?? 0) > 0) continue;
      await rm(k.path, { force: true });
      removedKeys++;
      freed += k.size;
    }
    await this.removeStaleTemps(now);
    await rm(this.legacyRunsDir, { recursive: true, force: true });
    return { removedEntries: remove.length, removedBlobs, removedKeys, removedRuns: runs.removed, freedBytes: freed, remainingBytes: Math.max(0, total), corrupt };
  }

  /** Temp files older than an hour were left by a killed process. */
  private async removeStaleTemps(now: number): Promise<void> {
    const dirs = [this.dir, this.blobsDir];
    for (const base of [this.blobsDir, this.entriesDir, this.keysDir]) {
      try {
        for (const s of await readdir(base)) dirs.push(join(base, s));
      } catch {
        /* absent */
      }
    }
    for (const d of dirs) {
      let names: string[];
      try {
        names = await readdir(d);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.startsWith('.') || !n.endsWith('.tmp')) continue;
        const p = join(d, n);
        try {
          if ((await stat(p)).mtimeMs < now - 3_600_000) await unlink(p);
        } catch {
          /* gone */
        }
      }
    }
  }

  /** Removes the whole store (renamed away first, so a concurrent run sees it all or nothing). */
  async clean(): Promise<void> {
    const trash = `${this.dir}.trash-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(this.dir, trash);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return;
      throw e;
    }
    await rm(trash, { recursive: true, force: true });
    this.laidOut = undefined;
    this.runs.reset();
  }
}

/** `restoreBytes`, synchronously: a temp file next to `target` (mode 0600 until complete), then a rename. */
function restoreBytesSync(bytes: Uint8Array, target: string, mode: number): void {
  const tmp = tempNameFor(target);
  try {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(tmp, bytes, { flag: 'wx', mode: 0o600 });
    chmodSync(tmp, mode & 0o7777);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { force: true });
  }
}
