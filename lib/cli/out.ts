/**
 * The CLI's stdout: what is written in one turn of the event loop leaves in one write, at the end of
 * that turn (a run of 1000 cached tasks prints 1000+ status lines; one write each cost ~25 ms of a
 * 330 ms no-op run, bench/RESULTS.md). Nothing waits longer than the current turn, and stderr, which
 * shares the terminal, first flushes what stdout holds, so the two stay in order.
 */
import type { Out } from './context.js';

export interface TurnBufferedOut extends Out {
  /** Writes what is held now (before exiting, or before writing elsewhere). */
  flush(): void;
}

/** Holds at most this many characters before writing without waiting for the end of the turn. */
const HOLD_MAX = 64 * 1024;

export function turnBuffered(stream: Out): TurnBufferedOut {
  let held: string[] = [];
  let size = 0;
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
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
      else scheduled ??= setImmediate(flush);
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
export function after(first: TurnBufferedOut, open: () => Out): Out {
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
