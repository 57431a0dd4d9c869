/** File helpers of the evidence writer and verifier: atomic writes, streaming hashes, a sorted walk. */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** lib/util/sha256.ts has the one-shot form; lib/evidence keeps its own so that the verifier needs nothing outside it. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 and size of a file, read as a stream (inputs and outputs may be large). */
export function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let size = 0;
    createReadStream(path)
      .on('data', (d) => {
        const b = d as Buffer;
        size += b.length;
        h.update(b);
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: h.digest('hex'), size }));
  });
}

/**
 * Writes a file so that a reader (or a SIGKILL) sees either the old content or the new one, never a
 * torn file: write to a temp name (in `tmpDir`, which must be on the same file system; default: the
 * target's directory), fsync, rename over the target.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, tmpDir: string = dirname(path)): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await mkdir(tmpDir, { recursive: true });
  const tmp = await writeSyncedTemp(data, tmpDir);
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes `data` to a new temporary file in `tmpDir` (which must exist) and fsyncs it; returns its
 * path, for the caller to rename into place (the temp file is removed if writing fails).
 */
export async function writeSyncedTemp(data: string | Uint8Array, tmpDir: string): Promise<string> {
  const tmp = join(tmpDir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/** Every regular file under `dir`, as `/`-separated paths relative to it (symlinks are listed, not followed). */
export async function walkFiles(dir: string, skipTop: readonly string[] = []): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && skipTop.includes(e.name)) continue;
      if (e.isDirectory()) await visit(r);
      else out.push(r);
    }
  };
  await visit('');
  return out.sort(compareBytes);
}

/** A character outside ASCII (its UTF-8 bytes order differently from its UTF-16 code units). */
export const NON_ASCII = /[^\x00-\x7f]/;

/** Byte-wise (C locale) order of UTF-8 strings, as `LC_ALL=C sort` orders file names. */
export function compareBytes(a: string, b: string): number {
  // Two ASCII strings compare by code unit exactly as their UTF-8 bytes do: no buffers (a checkpoint
  // sorts every file of the packet, 6000 paths at 3000 nodes: ~30 ms with two buffers per comparison).
  if (!NON_ASCII.test(a) && !NON_ASCII.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A directory name for a node id: `tf.plan[ENV=samakia-dns]` → `tf.plan_ENV_samakia-dns_-1c0ffee1`.
 * Characters outside `[A-Za-z0-9._-]` become `_`; when anything was changed (or the name is long) a
 * short hash of the id keeps distinct ids distinct.
 */
export function safeNodeId(id: string): string {
  let s = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  if (s === id && s.length <= 100) return s;
  s = s.replace(/_+$/, '').slice(0, 100);
  return `${s}-${sha256Hex(id).slice(0, 8)}`;
}
