import { readFileSync } from 'node:fs';
import type { Location } from './types.js';

const cache = new Map<string, string | null>();

/** Reads a file's text once (for code frames and line/column conversions); null when unreadable. */
export function fileText(file: string): string | null {
  let t = cache.get(file);
  if (t === undefined) {
    try {
      t = readFileSync(file, 'utf8');
    } catch {
      t = null;
    }
    cache.set(file, t);
  }
  return t;
}

/** 1-based line and column → offset. */
export function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl === -1) return text.length;
    offset = nl + 1;
  }
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

/** Offset → 1-based line and column. */
export function lineColOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i + 1;
    }
  }
  return { line, column: offset - last + 1 };
}

export function locationAt(file: string, line: number, column: number, length = 1): Location {
  const text = fileText(file);
  return { file, offset: text === null ? 0 : offsetOf(text, line, column), length };
}

/**
 * Narrows a location at a call site to a string literal inside that call (e.g. a misspelled dependency),
 * if the literal appears exactly once between the call site and the next `task(` call.
 */
export function narrowToLiteral(loc: Location, literal: string): Location {
  const text = fileText(loc.file);
  if (text === null) return loc;
  const next = text.indexOf('task(', loc.offset + 5);
  const end = next === -1 ? text.length : next;
  const region = text.slice(loc.offset, end);
  const found: number[] = [];
  for (const q of ["'", '"', '`']) {
    const needle = q + literal + q;
    let i = region.indexOf(needle);
    while (i !== -1) {
      found.push(i);
      i = region.indexOf(needle, i + 1);
    }
  }
  if (found.length !== 1) return loc;
  return { file: loc.file, offset: loc.offset + found[0]!, length: literal.length + 2 };
}
