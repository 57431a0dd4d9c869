/** The one printer for diagnostics: `✖ file:line:col message`, a code frame with a squiggle, related locations. */
import { relative } from 'node:path';
import type { Diagnostic, Location } from './types.js';
import { fileText, lineColOf } from './location.js';

export interface PrintOptions {
  /** Paths are shown relative to this directory. */
  readonly cwd?: string;
  readonly color?: boolean;
}

function where(loc: Location, cwd: string | undefined): { label: string; frame: string } {
  const text = fileText(loc.file);
  const shown = cwd ? relative(cwd, loc.file) || loc.file : loc.file;
  if (text === null) return { label: shown, frame: '' };
  const { line, column } = lineColOf(text, loc.offset);
  const lines = text.split('\n');
  const src = (lines[line - 1] ?? '').replace(/\t/g, ' ');
  const width = Math.max(1, Math.min(loc.length, src.length - (column - 1)));
  const gutter = String(line);
  const frame = `  ${gutter} | ${src}\n  ${' '.repeat(gutter.length)} | ${' '.repeat(column - 1)}${'~'.repeat(width)}\n`;
  return { label: `${shown}:${line}:${column}`, frame };
}

export function formatDiagnostic(d: Diagnostic, opts: PrintOptions = {}): string {
  const mark = d.severity === 'error' ? '✖' : '⚠';
  let out = '';
  if (d.location) {
    const { label, frame } = where(d.location, opts.cwd);
    out += `${mark} ${label} ${d.message}\n${frame}`;
  } else out += `${mark} ${d.message}\n`;
  if (d.hint) out += `    ${d.hint}\n`;
  for (const r of d.related ?? []) {
    const { label, frame } = where(r.location, opts.cwd);
    out += `    ${label} ${r.message}\n${frame.replace(/^(?=.)/gm, '  ')}`;
  }
  return out;
}

/**
 * Diagnostics in reading order: by file, then position in it (files in the order their first
 * diagnostic was reported); those without a location last, in the order they were reported.
 */
export function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  const fileRank = new Map<string, number>();
  for (const d of diags) if (d.location && !fileRank.has(d.location.file)) fileRank.set(d.location.file, fileRank.size);
  const rank = (d: Diagnostic): [number, number] => (d.location ? [fileRank.get(d.location.file)!, d.location.offset] : [Infinity, 0]);
  return diags
    .map((d, i) => ({ d, i, r: rank(d) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map((x) => x.d);
}

export function formatDiagnostics(diags: readonly Diagnostic[], opts: PrintOptions = {}): string {
  const errors = diags.filter((d) => d.severity === 'error').length;
  const body = sortDiagnostics(diags)
    .map((d) => formatDiagnostic(d, opts))
    .join('\n');
  return errors > 1 ? `${body}\n${errors} errors\n` : body;
}
