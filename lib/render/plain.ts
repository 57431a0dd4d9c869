/**
 * The plain renderer, for pipes, log files and CI. Every output line of a task is prefixed with
 * `[node-id] ` (partial lines are held per node and stream until their newline or the task's end);
 * status lines mark what happened (`✓ a (ran, 120 ms)`, `↺ b (cached)`, `✗ c: exit 2`).
 *
 * Grouped mode (`--output=grouped`) prints each task's output as one block when the task ends; with
 * GitHub Actions the block is wrapped in `::group::<node>` / `::endgroup::` and failures are also
 * reported as `::error title=<node>::...`. Output lines keep their prefix inside groups, so a task
 * printing `::set-env` or similar can never be taken for a workflow command.
 */
import type { Out } from '../cli/context.js';
import type { EventSink, FabricEvent, NodeId, PlannedNode } from '../engine/events.js';
import type { GuardDecision } from '../guards/types.js';
import { unreachable } from '../util/unreachable.js';
import { describeFailure, successText } from './describe.js';
import { LineSplitter } from './lines.js';
import { formatDecision, formatDenials, formatGuardDecisions, formatPlan } from './plan.js';
import { makeStyle, oneLine, formatMs, type Style, SYMBOL } from './style.js';
import { RunSummary } from './summary.js';

export interface PlainOptions {
  /** Print each task's output as one block when the task ends. */
  readonly grouped?: boolean;
  /** Emit GitHub Actions workflow commands (`::group::`, `::error`). */
  readonly gha?: boolean;
  readonly color?: boolean;
}

/** Escaping for workflow-command data and property values (GitHub Actions toolkit rules). */
export function ghaData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
export function ghaProperty(s: string): string {
  return ghaData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export class PlainRenderer implements EventSink {
  private readonly style: Style;
  private readonly grouped: boolean;
  private readonly gha: boolean;
  private readonly summary = new RunSummary();
  private readonly splitter = new LineSplitter();
  /** Grouped mode: the lines of each task's block, printed when the task ends. */
  private readonly blocks = new Map<NodeId, string[]>();
  private readonly decisions = new Map<NodeId, GuardDecision[]>();
  private nodes: readonly PlannedNode[] = [];
  private dryRun = false;
  private ended = false;

  constructor(
    private readonly out: Out,
    opts: PlainOptions = {},
  ) {
    this.style = makeStyle(opts.color ?? false);
    this.grouped = opts.grouped ?? false;
    this.gha = opts.gha ?? false;
  }

  private write(lines: readonly string[]): void {
    if (lines.length) this.out.write(lines.join('\n') + '\n');
  }

  private prefix(node: NodeId): string {
    return this.style.dim(`[${node}]`) + ' ';
  }

  /** A line that belongs to a task: printed now (stream mode) or kept for its block (grouped). */
  private nodeLine(node: NodeId, text: string): void {
    const line = this.prefix(node) + text;
    if (this.grouped) {
      let b = this.blocks.get(node);
      if (!b) this.blocks.set(node, (b = []));
      b.push(line);
    } else this.write([line]);
  }

  private flushPartial(node: NodeId): void {
    for (const { key, line } of this.splitter.flushPrefix(`${node}\0`)) {
      this.nodeLine(node, key.endsWith('\0replay') ? `${SYMBOL.cached} ${line}` : line);
    }
  }

  /** Grouped mode: prints the task's block (if it has one). */
  private flushBlock(node: NodeId): void {
    const b = this.blocks.get(node);
    this.blocks.delete(node);
    if (!b || b.length === 0) return;
    if (this.gha) this.write([`::group::${ghaData(node)}`, ...b, '::endgroup::']);
    else this.write(b);
  }

  /** Ends a task: remaining partial lines, its block, then its status lines. */
  private finish(node: NodeId, status: readonly string[], ghaError?: string): void {
    this.flushPartial(node);
    if (this.grouped) this.flushBlock(node);
    this.write(status);
    if (this.gha && ghaError !== undefined) this.write([`::error title=${ghaProperty(node)}::${ghaData(ghaError)}`]);
  }

  onEvent(e: FabricEvent): void {
    this.summary.observe(e);
    const s = this.style;
    switch (e.type) {
      case 'run-start':
        this.nodes = e.nodes;
        this.dryRun = e.dryRun;
        if (e.dryRun) this.write(formatPlan(e.nodes, e.targets, s));
        else this.write([s.dim(`${SYMBOL.start} fabric run ${e.runId}: ${e.nodes.length} node${e.nodes.length === 1 ? '' : 's'} for ${e.targets.join(', ') || '(nothing)'}${e.ci ? ' (CI mode)' : ''}`)]);
        return;
      case 'guard-decision': {
        let list = this.decisions.get(e.node);
        if (!list) this.decisions.set(e.node, (list = []));
        list.push(e.decision);
        // Denials are printed together by run-denied; an override is worth seeing in the log as it happens.
        if (!this.dryRun && e.decision.outcome === 'overridden') {
          this.write([s.yellow(`${SYMBOL.warning} ${e.node}: guard overridden`), ...formatDecision(e.decision, '    ', s)]);
          if (this.gha) this.write([`::warning title=${ghaProperty(e.node)}::${ghaData(`guard ${e.decision.guard} overridden: ${e.decision.override?.reason ?? e.decision.reason}`)}`]);
        }
        return;
      }
      case 'run-denied':
        this.write(formatDenials(e.denials, s));
        if (this.gha) {
          for (const d of e.denials) {
            this.write([`::error title=${ghaProperty(`denied: ${d.node}`)}::${ghaData(`${d.decision.guard}: ${d.decision.reason}${d.decision.remedy ? `\nremedy: ${d.decision.remedy}` : ''}`)}`]);
          }
        }
        return;
      case 'task-start':
        if (this.grouped) {
          if (e.attempt > 1) this.nodeLine(e.node, s.yellow(`${SYMBOL.retry} attempt ${e.attempt}`));
        } else this.write([s.cyan(`${SYMBOL.start} ${e.node}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`)]);
        return;
      case 'command-start':
        this.nodeLine(e.node, s.dim(`$ ${oneLine(e.command, 200)}`));
        return;
      case 'command-end':
        if (e.exitCode !== 0) {
          this.flushPartial(e.node);
          this.nodeLine(e.node, s.dim(`↳ ${e.signal ? `killed by ${e.signal}` : `exit ${e.exitCode}`} after ${formatMs(e.ms)}`));
        }
        return;
      case 'task-output': {
        const replay = e.replayed === true;
        for (const line of this.splitter.push(`${e.node}\0${e.stream}${replay ? '\0replay' : ''}`, e.chunk)) {
          this.nodeLine(e.node, replay ? `${SYMBOL.cached} ${line}` : line);
        }
        return;
      }
      case 'task-retry': {
        this.flushPartial(e.node);
        const line = s.yellow(`${SYMBOL.retry} ${e.node}: attempt ${e.attempt} failed (${describeFailure(e.failure).text}); retrying in ${formatMs(e.delayMs)}`);
        if (this.grouped) this.nodeLine(e.node, line);
        else this.write([line]);
        return;
      }
      case 'cache':
        if (e.result === 'corrupt') this.write([s.yellow(`${SYMBOL.warning} ${e.node}: cache entry is corrupt${e.detail ? ` (${e.detail})` : ''}; running the task`)]);
        return;
      case 'task-success': {
        const mark = e.reason === 'cached' ? s.cyan(SYMBOL.cached) : s.green(SYMBOL.ok);
        this.finish(e.node, [`${mark} ${e.node} (${successText(e.reason, e.ms)})`]);
        return;
      }
      case 'task-failure': {
        const d = describeFailure(e.failure);
        if (d.status === 'failed') {
          this.finish(
            e.node,
            [s.red(`${SYMBOL.failed} ${e.node}: ${d.text} (${formatMs(e.ms)})`), ...d.detail.map((l) => `    ${l}`)],
            [d.text, ...d.detail].join('\n'),
          );
        } else this.finish(e.node, [s.dim(`${SYMBOL.skipped} ${e.node}: ${d.text}`)]);
        return;
      }
      case 'gate': {
        const text = `${SYMBOL.gate} ${e.node}: gate ${e.state}, ${e.open ? 'open' : 'closed'}${e.detail ? `: ${e.detail}` : ''}`;
        this.write([e.state === 'pass' ? s.green(text) : e.state === 'warn' ? s.yellow(text) : s.red(text)]);
        if (this.gha && e.state !== 'pass') this.write([`::${e.open ? 'warning' : 'error'} title=${ghaProperty(`gate ${e.node}`)}::${ghaData(`${e.state}: ${e.detail}`)}`]);
        return;
      }
      case 'warning':
        this.write([s.yellow(`${SYMBOL.warning} ${e.node ? `${e.node}: ` : ''}${e.message}`)]);
        if (this.gha) this.write([`::warning${e.node ? ` title=${ghaProperty(e.node)}` : ''}::${ghaData(e.message)}`]);
        return;
      case 'run-interrupted':
        this.write([s.yellow(`${SYMBOL.warning} interrupted by ${e.signal}: stopping running tasks (SIGTERM, then SIGKILL after a grace period)`)]);
        return;
      case 'run-end':
        this.end();
        return;
      default:
        unreachable(e);
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    // Whatever is still held: partial lines and blocks of tasks that never reported an end.
    const pending = new Set<NodeId>([...this.splitter.keys().map((k) => k.slice(0, k.indexOf('\0'))), ...this.blocks.keys()]);
    for (const node of pending) {
      this.flushPartial(node);
      if (this.grouped) this.flushBlock(node);
    }
    if (this.dryRun) {
      this.write(['', ...formatGuardDecisions(this.nodes.map((n) => n.id), this.decisions, this.style), '', this.style.bold('Dry run: nothing was run.')]);
      return;
    }
    this.write(['', ...this.summary.format(this.style)]);
  }

  /** Prints what is still held if the stream ended without `run-end` (an engine crash). */
  close(): void {
    if (!this.ended && (this.nodes.length > 0 || this.blocks.size > 0 || this.splitter.keys().length > 0)) this.end();
  }
}
