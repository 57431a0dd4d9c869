/**
 * Small file-system helpers for the cache: atomic writes (temp file in the same directory, then
 * rename, so a reader sees the old content or the new one, never a torn file) and tolerant reads.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
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
 */
export async function writeAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    await writeNew(tmp, data, mode);
  } catch (e) {
    if (!isCode(e, 'ENOENT')) throw e;
    await mkdir(dirname(file), { recursive: true });
    await writeNew(tmp, data, mode);
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function writeNew(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(file, 'wx', mode);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
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
