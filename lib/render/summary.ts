/**
 * The end-of-run summary shared by the plain and listr renderers: every node with its status and
 * duration, failed nodes last with their reason and the tail of their output, then a counts line.
 * It is itself an event consumer (`observe`), so it needs nothing but the event stream.
 */
import type { FabricEvent, Failure, NodeId, SuccessReason } from '../engine/events.js';
import { unreachable } from '../util/unreachable.js';
import { describeFailure, successStatus, type NodeStatus } from './describe.js';
import { LineSplitter } from './lines.js';
import { formatMs, makeStyle, type Style, SYMBOL } from './style.js';

/** Lines of output kept per node for the failure tail. */
export const TAIL_LINES = 20;

interface NodeRecord {
  readonly id: NodeId;
  status: NodeStatus | undefined;
  ms: number | undefined;
  reason: SuccessReason | undefined;
  failure: Failure | undefined;
  tail: string[];
  failedAt: number;
  /** Started (or retried) but no end reported yet: counted as cancelled if the run ends so. */
  started: boolean;
  /** Why it was denied (guard: reason). */
  denial: string | undefined;
}

export interface Counts {
  readonly ok: number;
  readonly cached: number;
  readonly failed: number;
  /** Cancelled, not started, denied, and nodes the run never reached. */
  readonly notRun: number;
}

export class RunSummary {
  private readonly nodes = new Map<NodeId, NodeRecord>();
  private readonly lines = new LineSplitter();
  private failures = 0;
  private totalMs: number | undefined;
  private interrupted: string | undefined;
  private denied = false;
  dryRun = false;

  private rec(id: NodeId): NodeRecord {
    let r = this.nodes.get(id);
    if (!r) {
      r = { id, status: undefined, ms: undefined, reason: undefined, failure: undefined, tail: [], failedAt: 0, denial: undefined, started: false };
      this.nodes.set(id, r);
    }
    return r;
  }

  private addTail(r: NodeRecord, lines: readonly string[]): void {
    if (lines.length === 0) return;
    r.tail.push(...lines);
    if (r.tail.length > TAIL_LINES) r.tail.splice(0, r.tail.length - TAIL_LINES);
  }

  private flush(r: NodeRecord): void {
    this.addTail(r, this.lines.flushPrefix(`${r.id}\0`).map((x) => x.line));
  }

  observe(e: FabricEvent): void {
    switch (e.type) {
      case 'run-start':
        this.dryRun = e.dryRun;
        for (const n of e.nodes) this.rec(n.id);
        return;
      case 'guard-decision':
        return;
      case 'run-denied':
        this.denied = true;
        for (const d of e.denials) {
          const r = this.rec(d.node);
          r.status = 'denied';
          r.denial = r.denial ? `${r.denial}; ${d.decision.guard}` : `${d.decision.guard}: ${d.decision.reason}`;
        }
        return;
      case 'task-start': {
        // The tail is of the last attempt.
        const r = this.rec(e.node);
        this.flush(r);
        r.tail = [];
        r.started = true;
        return;
      }
      case 'command-start':
      case 'command-end':
      case 'cache':
      case 'gate':
      case 'warning':
        return;
      case 'task-output':
        this.addTail(this.rec(e.node), this.lines.push(`${e.node}\0${e.stream}`, e.chunk));
        return;
      case 'task-retry':
        this.flush(this.rec(e.node));
        return;
      case 'task-success': {
        const r = this.rec(e.node);
        this.flush(r);
        r.status = successStatus(e.reason);
        r.reason = e.reason;
        r.ms = e.ms;
        return;
      }
      case 'task-failure': {
        const r = this.rec(e.node);
        this.flush(r);
        r.failure = e.failure;
        r.status = describeFailure(e.failure).status;
        r.ms = e.ms;
        r.failedAt = ++this.failures;
        return;
      }
      case 'run-interrupted':
        this.interrupted = e.signal;
        return;
      case 'run-end':
        for (const r of this.nodes.values()) this.flush(r);
        this.totalMs = e.ms;
        if (e.interrupted && this.interrupted === undefined) this.interrupted = 'signal';
        return;
      default:
        unreachable(e);
    }
  }

  status(id: NodeId): NodeStatus {
    const r = this.nodes.get(id);
    return r ? statusOf(r) : 'not started';
  }

  counts(): Counts {
    let ok = 0, cached = 0, failed = 0, notRun = 0;
    for (const r of this.nodes.values()) {
      const s = statusOf(r);
      if (s === 'ok') ok++;
      else if (s === 'cached') cached++;
      else if (s === 'failed') failed++;
      else notRun++;
    }
    return { ok, cached, failed, notRun };
  }

  /** `3 ok, 1 cached, 1 failed, 2 not run in 2.31 s`. */
  countsLine(): string {
    const c = this.counts();
    let s = `${c.ok} ok, ${c.cached} cached, ${c.failed} failed, ${c.notRun} not run`;
    if (this.totalMs !== undefined) s += ` in ${formatMs(this.totalMs)}`;
    if (this.interrupted) s += ` (interrupted by ${this.interrupted})`;
    else if (this.denied) s += ' (denied by guards)';
    return s;
  }

  /** The summary block. Non-failed nodes in plan order, then failed nodes in the order they failed. */
  format(style: Style = makeStyle(false)): string[] {
    const all = [...this.nodes.values()];
    const failed = all.filter((r) => r.status === 'failed').sort((a, b) => a.failedAt - b.failedAt);
    const rest = all.filter((r) => r.status !== 'failed');
    const width = Math.min(60, Math.max(4, ...all.map((r) => r.id.length)));
    const out: string[] = [style.bold('Summary:')];
    const row = (r: NodeRecord) => {
      const s = statusOf(r);
      const mark = statusMark(s, style);
      const dur = r.ms === undefined || s === 'not started' || s === 'denied' || (s === 'cancelled' && !r.started) ? '-' : formatMs(r.ms);
      let note = '';
      if (r.failure) note = describeFailure(r.failure).text;
      if (note === s) note = '';
      else if (r.reason === 'fresh') note = 'up to date';
      else if (r.denial) note = `denied by ${r.denial}`;
      const line = `  ${mark} ${r.id.padEnd(width)}  ${s.padEnd(11)} ${dur.padStart(9)}${note ? `  ${note}` : ''}`;
      out.push(s === 'failed' ? line : s === 'ok' || s === 'cached' ? line : style.dim(line));
    };
    // A denied run started nothing: list only what was denied.
    for (const r of rest) if (!this.denied || r.status === 'denied') row(r);
    for (const r of failed) {
      row(r);
      const d = describeFailure(r.failure!);
      for (const l of d.detail) out.push(`      ${l}`);
      if (r.tail.length) {
        out.push(style.dim(`      last ${r.tail.length} line${r.tail.length === 1 ? '' : 's'} of output:`));
        for (const l of r.tail) out.push(`      ${style.dim('│')} ${l}`);
      }
    }
    const c = this.counts();
    const line = this.countsLine();
    out.push(c.failed || this.interrupted || this.denied ? style.red(line) : style.green(line));
    return out;
  }
}

/** A node with no reported end was cancelled if it had started, else never started. */
function statusOf(r: NodeRecord): NodeStatus {
  return r.status ?? (r.started ? 'cancelled' : 'not started');
}

function statusMark(s: NodeStatus, style: Style): string {
  switch (s) {
    case 'ok':
      return style.green(SYMBOL.ok);
    case 'cached':
      return style.cyan(SYMBOL.cached);
    case 'failed':
      return style.red(SYMBOL.failed);
    case 'cancelled':
    case 'not started':
      return style.dim(SYMBOL.skipped);
    case 'denied':
      return style.red(SYMBOL.skipped);
    default:
      return unreachable(s);
  }
}
