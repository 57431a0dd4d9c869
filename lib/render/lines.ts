/**
 * Splits streamed output chunks into lines, per key (a node and a stream), holding back the partial
 * last line until its newline arrives or the key is flushed (task end, retry, run end).
 */

export class LineSplitter {
  private readonly partial = new Map<string, string>();

  /** Returns the complete lines in `chunk` (without their newline); keeps the rest for later. */
  push(key: string, chunk: string): string[] {
    const text = (this.partial.get(key) ?? '') + chunk;
    const parts = text.split('\n');
    const rest = parts.pop()!;
    if (rest === '') this.partial.delete(key);
    else this.partial.set(key, rest);
    return parts.map(cleanLine);
  }

  /** Returns the held-back partial line of `key`, if any, as a line. */
  flush(key: string): string[] {
    const rest = this.partial.get(key);
    this.partial.delete(key);
    return rest === undefined ? [] : [cleanLine(rest)];
  }

  /** Flushes every key whose name starts with `prefix` (e.g. all streams of one node). */
  flushPrefix(prefix: string): { key: string; line: string }[] {
    const out: { key: string; line: string }[] = [];
    for (const key of [...this.partial.keys()]) {
      if (key.startsWith(prefix)) for (const line of this.flush(key)) out.push({ key, line });
    }
    return out;
  }

  keys(): string[] {
    return [...this.partial.keys()];
  }
}

/**
 * A line as a terminal would finally show it: a trailing CR (CRLF) is dropped and, for progress
 * output that rewrites itself with CR, only the text after the last CR is kept.
 */
export function cleanLine(line: string): string {
  let l = line.endsWith('\r') ? line.slice(0, -1) : line;
  const cr = l.lastIndexOf('\r');
  if (cr !== -1) l = l.slice(cr + 1);
  return l;
}
