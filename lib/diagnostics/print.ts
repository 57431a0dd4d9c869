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

export function formatDiagnostics(diags: readonly Diagnostic[], opts: PrintOptions = {}): string {
  const errors = diags.filter((d) => d.severity === 'error').length;
  const body = diags.map((d) => formatDiagnostic(d, opts)).join('\n');
  return errors > 1 ? `${body}\n${errors} errors\n` : body;
}
