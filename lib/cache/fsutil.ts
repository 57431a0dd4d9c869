/**
 * Small file-system helpers for the cache: atomic writes (temp file in the same directory, then
 * rename, so a reader sees the old content or the new one, never a torn file) and tolerant reads.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

/** Unique per process (pid and a random tag), then per call (a counter): no random bytes per name. */
const TEMP_TAG = `${process.pid}.${randomBytes(6).toString('hex')}`;
let tempCount = 0;

/** A temp name next to `file` (same directory, so same file system: rename stays atomic). */
export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${TEMP_TAG}.${(tempCount++).toString(36)}.tmp`);
}

/** The bytes of `file` if it is at most `max` bytes long (open, fstat, read, close), else undefined. */
export function readIfSmall(file: string, max: number): Buffer | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > max) return undefined;
    const buf = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const r = readSync(fd, buf, n, size - n, null);
      if (r === 0) break;
      n += r;
    }
    return n === size ? buf : buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to `file` atomically: temp file, optional fsync-free flush, rename over the target.
 * Creates the parent directory if needed. Concurrent writers each rename their own complete file.
 *
 * Synchronous on purpose (the data is already in memory, and the files are entries, keys and
 * records of the cache): each fs/promises call is a round trip through libuv's thread pool, several
 * times the cost of the system call itself on a small machine (bench/RESULTS.md). The promise is kept
 * so that callers need not change if a large write ever wants the thread pool again.
 */
export async function writeAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  writeAtomicSync(file, data, mode);
}

export function writeAtomicSync(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = tempNameFor(file);
  try {
    writeNew(tmp, data, mode);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw e;
    mkdirSync(dirname(file), { recursive: true });
    writeNew(tmp, data, mode);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeNew(file: string, data: string | Uint8Array, mode: number): void {
  const fd = openSync(file, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  } finally {
    closeSync(fd);
  }
}

/**
 * The text of `file`, or undefined if it does not exist. Synchronous on purpose: it reads small
 * metadata files (run records, entries, keys, the stat cache) on the no-op hot path, where one
 * readFileSync costs a fraction of the four thread-pool round trips of an async read.
 */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if (isCode(e, 'ENOENT') || isCode(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

export function isCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
