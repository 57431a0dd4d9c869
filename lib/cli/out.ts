/**
 * The CLI's stdout: what is written within HOLD_MS leaves in one write (a run of 1000 tasks prints
 * three lines per task; one write per line, or even per event-loop turn, was ~3400 writes to a pipe
 * in a W1 run, each one a trip through Node's stream code and a wake-up of the reader: ~30 ms of CPU,
 * bench/RESULTS.md). Nothing is held longer than HOLD_MS, more than HOLD_MAX characters are written at
 * once, the CLI flushes before it returns, and stderr, which shares the terminal, first flushes what
 * stdout holds, so the two stay in order.
 */
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
