/** How a node's outcome is named and described in every text renderer (status lines, summary, listr). */
import type { Failure, SuccessReason } from '../engine/events.js';
import type { Location } from '../diagnostics/types.js';
import { fileText, lineColOf } from '../diagnostics/location.js';
import { unreachable } from '../util/unreachable.js';
import { formatMs, oneLine } from './style.js';

/** `file:line:col` of a diagnostic's location (just the file when it cannot be read). */
function placeOf(loc: Location): string {
  const text = fileText(loc.file);
  if (text === null) return loc.file;
  const { line, column } = lineColOf(text, loc.offset);
  return `${loc.file}:${line}:${column}`;
}

/** The statuses the summary knows. `failed` is the only one that makes the run fail by itself. */
export type NodeStatus = 'ok' | 'cached' | 'failed' | 'cancelled' | 'not started' | 'denied';

export interface FailureText {
  readonly status: Extract<NodeStatus, 'failed' | 'cancelled' | 'not started'>;
  /** One line: `exit 2`, `dependency a failed`, `timed out after 5.00 s`. */
  readonly text: string;
  /** Further lines (the failing command, diagnostics). */
  readonly detail: readonly string[];
}

export function describeFailure(f: Failure): FailureText {
  switch (f.reason) {
    case 'exit-non-zero':
      return { status: 'failed', text: `exit ${f.status}`, detail: [`command: ${oneLine(f.command, 200)}`] };
    case 'signal':
      return { status: 'failed', text: `killed by ${f.signal}`, detail: [`command: ${oneLine(f.command, 200)}`] };
    case 'timeout':
      return { status: 'failed', text: `timed out after ${formatMs(f.ms)}`, detail: [] };
    case 'dependency-failed':
      return { status: 'not started', text: `dependency ${f.dependency} failed`, detail: [] };
    case 'not-started':
      return { status: 'not started', text: 'not started: the run stopped after a failure (use --keep-going to run independent tasks)', detail: [] };
    case 'aborted':
      return { status: 'cancelled', text: 'cancelled', detail: [] };
    case 'gate-closed':
      return { status: 'not started', text: `gate ${f.gate} closed: ${f.detail}`, detail: [] };
    case 'missing-output':
      return { status: 'failed', text: `declared output${f.paths.length === 1 ? '' : 's'} not produced: ${f.paths.join(', ')}`, detail: [] };
    case 'function-threw':
      return { status: 'failed', text: `function threw: ${oneLine(f.message, 200)}`, detail: f.message.includes('\n') ? f.message.split('\n').slice(1) : [] };
    case 'invalid-definition':
      return {
        status: 'failed',
        text: `invalid definition (${f.diagnostics.length} problem${f.diagnostics.length === 1 ? '' : 's'})`,
        detail: f.diagnostics.map((d) => `${d.severity}${d.location ? ` at ${placeOf(d.location)}` : ''}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`),
      };
    case 'internal-error':
      return { status: 'failed', text: `internal error: ${oneLine(f.message, 200)}`, detail: [] };
    default:
      return unreachable(f);
  }
}

export function successStatus(reason: SuccessReason): Extract<NodeStatus, 'ok' | 'cached'> {
  switch (reason) {
    case 'ran':
      return 'ok';
    case 'cached':
    case 'fresh':
      return 'cached';
    default:
      return unreachable(reason);
  }
}

/** `ran, 120 ms` / `cached` / `fresh: up to date`. */
export function successText(reason: SuccessReason, ms: number): string {
  switch (reason) {
    case 'ran':
      return `ran, ${formatMs(ms)}`;
    case 'cached':
      return 'cached';
    case 'fresh':
      return 'fresh: up to date';
    default:
      return unreachable(reason);
  }
}
