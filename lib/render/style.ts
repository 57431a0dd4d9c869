/**
 * Small presentation helpers shared by the renderers: colour (off unless a TTY without NO_COLOR),
 * status symbols, durations. No dependency: plain and json must load nothing heavy.
 */

export interface Style {
  readonly color: boolean;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const wrap = (on: boolean, open: number, close: number) => (s: string) => (on && s !== '' ? `\x1b[${open}m${s}\x1b[${close}m` : s);

export function makeStyle(color: boolean): Style {
  return {
    color,
    green: wrap(color, 32, 39),
    red: wrap(color, 31, 39),
    yellow: wrap(color, 33, 39),
    cyan: wrap(color, 36, 39),
    dim: wrap(color, 2, 22),
    bold: wrap(color, 1, 22),
  };
}

/** Removes ANSI escape sequences (CSI and OSC), e.g. for output tails and width computations. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g, '');
}

/** `120 ms`, `1.25 s`, `2 m 03 s`, `1 h 02 m`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`;
}

/** First line of a (possibly multi-line) command, shortened to `max` characters. */
export function oneLine(text: string, max = 100): string {
  const lines = text.split('\n');
  let first = lines[0] ?? '';
  const more = lines.length > 1;
  if (first.length > max) first = first.slice(0, max - 1) + '…';
  else if (more) first += ' …';
  return first;
}

export const SYMBOL = {
  ok: '✓',
  cached: '↺',
  failed: '✗',
  skipped: '⊘',
  start: '▶',
  retry: '↻',
  warning: '⚠',
  gate: '◆',
} as const;
