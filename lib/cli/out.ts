/**
 * The CLI's stdout: what is written within HOLD_MS leaves in one write (a run of 1000 tasks prints
 * three lines per task; one write per line, or even per event-loop turn, was ~3400 writes to a pipe
 * in a W1 run, each one a trip through Node's stream code and a wake-up of the reader: ~30 ms of CPU,
 * bench/RESULTS.md). Nothing is held longer than HOLD_MS, more than HOLD_MAX characters are written at
 * once, the CLI flushes before it returns, and stderr, which shares the terminal, first flushes what
 * stdout holds, so the two stay in order.
 */
import { fstatSync, writeSync } from 'node:fs';
import type { Out } from './context.js';

export interface BatchedOut extends Out {
  /** Writes what is held now (before exiting, or before writing elsewhere). */
  flush(): void;
}

/** The longest any text is held: far below what a reader can notice, long enough to batch a busy run. */
export const HOLD_MS = 10;
/** Holds at most this many characters before writing without waiting. */
const HOLD_MAX = 64 * 1024;

export function batched(stream: Out, holdMs: number = HOLD_MS): BatchedOut {
  let held: string[] = [];
  let size = 0;
  let scheduled: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (scheduled) clearTimeout(scheduled);
    scheduled = undefined;
    if (held.length === 0) return;
    const text = held.length === 1 ? held[0]! : held.join('');
    held = [];
    size = 0;
    stream.write(text);
  };
  return {
    write(text: string): boolean {
      if (text.length === 0) return true;
      held.push(text);
      size += text.length;
      if (size >= HOLD_MAX) flush();
      // Not unref'd: text written after the CLI's last flush still leaves before the process ends.
      else scheduled ??= setTimeout(flush, holdMs);
      return true;
    },
    flush,
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
  };
}

/** A stream written only after `first` was flushed (stderr after stdout), obtained on first use. */
export function after(first: BatchedOut, open: () => Out): Out {
  let stream: Out | undefined;
  const get = (): Out => (stream ??= open());
  return {
    write(text: string): unknown {
      first.flush();
      return get().write(text);
    },
    get isTTY() {
      return get().isTTY;
    },
    get columns() {
      return get().columns;
    },
  };
}

/** What `fdOut` falls back to: process.stdout, which also takes bytes. */
export interface ByteOut extends Out {
  write(data: string | Uint8Array): unknown;
}

/**
 * Standard output written with write(2) on its file descriptor when that is a pipe, a socket or a
 * file, and through `open()` (process.stdout) otherwise: a terminal, /dev/null, anything fstat cannot
 * tell. Node builds process.stdout from its streams stack (net, stream and ~25 internal modules, ~5 ms
 * on a pipe), which a command that prints its answer and exits does not need; `run` keeps the stream,
 * whose writes never block the event loop.
 *
 * A pipe or socket can be in non-blocking mode (a parent that shares it may have set that): when a
 * write would block, the rest of the bytes and everything after them go through the stream, which
 * waits for the reader, so nothing is lost and the order holds. A reader that went away (EPIPE) ends
 * the output quietly, as the stream's EPIPE handler does (`fabric list | head`).
 */
export function fdOut(fd: number, open: () => ByteOut): Out {
  let stream: ByteOut | undefined;
  const get = (): ByteOut => (stream ??= open());
  let direct: boolean;
  try {
    const st = fstatSync(fd);
    direct = st.isFIFO() || st.isSocket() || st.isFile();
  } catch {
    direct = false;
  }
  if (!direct) {
    return {
      write: (text: string) => get().write(text),
      get isTTY() {
        return get().isTTY;
      },
      get columns() {
        return get().columns;
      },
    };
  }
  let closed = false;
  const write = (text: string): unknown => {
    if (stream) return stream.write(text);
    if (closed || text.length === 0) return true;
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(fd, buf, off, buf.length - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EINTR') continue;
        if (code === 'EAGAIN') return get().write(buf.subarray(off));
        if (code === 'EPIPE') {
          closed = true;
          return true;
        }
        throw e;
      }
    }
    return true;
  };
  return { write, isTTY: false, columns: undefined };
}
