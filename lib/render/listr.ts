/**
 * The listr2 (v9) adapter for interactive terminals: a live list with one listr task per node. It is
 * only a view: each listr task waits for its own node's success or failure event; the engine owns the
 * failure policy and SIGINT (`concurrent`, `exitOnError: false`, `registerSignalListeners: false`).
 *
 * - A node appears when it starts (waiting nodes are hidden, so a large graph keeps the running nodes
 *   on screen); it collapses to one line when it ends; the last lines of its output are shown under it
 *   while it runs.
 * - Dry runs and denied runs are not live: they are printed as text by the plain renderer.
 * - Warnings and notes without a running node are printed after the tree, then the summary.
 *
 * This module is the only importer of listr2, and is itself imported only by lib/cli/pick-renderer.ts
 * through a dynamic import, so commands that never render a live run never load it.
 */
import { DefaultRenderer, Listr, ListrLogger, ProcessOutput, type ListrTaskWrapper } from 'listr2';
import type { Out } from '../cli/context.js';
import type { EventSink, FabricEvent, NodeId, PlannedNode } from '../engine/events.js';
import { unreachable } from '../util/unreachable.js';
import { describeFailure, successText } from './describe.js';
import { LineSplitter } from './lines.js';
import { PlainRenderer } from './plain.js';
import { formatMs, makeStyle, oneLine, stripAnsi, type Style, SYMBOL } from './style.js';
import { RunSummary } from './summary.js';

/**
 * listr2's default renderer, with two changes: our Out (not process.stdout) decides whether this is a
 * terminal, so listr2 must never fall back; and lines are fitted to our Out's width (listr2 reads
 * process.stdout.columns, which is 0 on some pseudo-terminals and would blank the whole view).
 */
function treeRenderer(columns: number) {
  return class FabricTreeRenderer extends DefaultRenderer {
    static override nonTTY = true;
    protected override format(message: string, icon: string, level: number): string[] {
      if (message.trim() === '') return [];
      const width = Math.max(20, columns - level * 2 - 2);
      return (icon ? `${icon} ${message}` : message)
        .split('\n')
        .map((l, i) => fit((i > 0 ? '  ' : '') + l.trimEnd(), width))
        .filter((l) => l.trim() !== '')
        .map((l) => ' '.repeat(level * 2) + l);
    }
  };
}
type TreeRenderer = ReturnType<typeof treeRenderer>;

/** Cuts a line to `width` visible characters (dropping its colours if it has to cut). */
function fit(line: string, width: number): string {
  const plain = stripAnsi(line);
  return plain.length <= width ? line : plain.slice(0, width - 1) + '…';
}

export interface ListrRendererOptions {
  readonly color?: boolean;
  /** Lines of output shown under a running node. */
  readonly outputLines?: number;
}

type Outcome = { readonly kind: 'ok'; readonly title: string } | { readonly kind: 'skip'; readonly message: string } | { readonly kind: 'fail'; readonly message: string };

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  settled: boolean;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve(v: T) {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
  };
  return d;
}

interface NodeView {
  readonly id: NodeId;
  /** Opens when the node starts or ends (listr then enables and runs its task). */
  readonly shown: Deferred<void>;
  readonly outcome: Deferred<Outcome>;
  checks: number;
  title: string;
  /** The last output lines, replayed into the task when listr starts it. */
  recent: string[];
  wrapper: ListrTaskWrapper<unknown, TreeRenderer, TreeRenderer> | undefined;
}

type TaskWrapper = NonNullable<NodeView['wrapper']>;

/** A stream-like object for listr2's ProcessOutput that writes to our Out. */
function streamOf(out: Out): NodeJS.WriteStream {
  const s = {
    isTTY: true,
    // 0 (some pseudo-terminals) means unknown.
    columns: out.columns || 80,
    rows: (out as { rows?: number }).rows || 24,
    write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
      out.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const cb = rest[rest.length - 1];
      if (typeof cb === 'function') (cb as () => void)();
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream;
}

export class ListrRenderer implements EventSink {
  private readonly style: Style;
  private readonly outputLines: number;
  private readonly summary = new RunSummary();
  private readonly splitter = new LineSplitter();
  private readonly views = new Map<NodeId, NodeView>();
  /** Events seen before we know whether the run is live (run-start, guard decisions). */
  private early: FabricEvent[] = [];
  private mode: 'undecided' | 'text' | 'live' = 'undecided';
  private text: PlainRenderer | undefined;
  private nodes: readonly PlannedNode[] = [];
  private run: Promise<void> | undefined;
  private notes: string[] = [];
  private ended = false;
  private finished: Promise<void> | undefined;

  constructor(
    private readonly out: Out,
    opts: ListrRendererOptions = {},
  ) {
    this.style = makeStyle(opts.color ?? false);
    this.outputLines = opts.outputLines ?? 3;
  }

  onEvent(e: FabricEvent): void {
    if (this.mode === 'text') {
      this.text!.onEvent(e);
      return;
    }
    this.summary.observe(e);
    switch (e.type) {
      case 'run-start':
        this.nodes = e.nodes;
        if (e.dryRun) this.toText([e]);
        else this.early.push(e);
        return;
      case 'guard-decision':
        this.early.push(e);
        return;
      case 'run-denied':
        this.toText([...this.early, e]);
        return;
      case 'task-start': {
        const v = this.live(e.node);
        this.setTitle(v, e.attempt > 1 ? `${e.node} ${this.style.yellow(`(attempt ${e.attempt})`)}` : e.node);
        v.shown.resolve();
        return;
      }
      case 'command-start':
        this.output(e.node, this.style.dim(`$ ${oneLine(e.command, 200)}`));
        return;
      case 'command-end':
        return;
      case 'task-output':
        for (const line of this.splitter.push(`${e.node}\0${e.stream}`, e.chunk)) this.output(e.node, e.replayed ? `${SYMBOL.cached} ${line}` : line);
        return;
      case 'task-retry': {
        const v = this.live(e.node);
        this.setTitle(v, `${e.node} ${this.style.yellow(`(attempt ${e.attempt} failed: ${describeFailure(e.failure).text}; retrying in ${formatMs(e.delayMs)})`)}`);
        v.shown.resolve();
        return;
      }
      case 'cache':
        if (e.result === 'hit') this.setTitle(this.live(e.node), `${e.node} ${this.style.dim('(cache hit)')}`);
        else if (e.result === 'corrupt') this.note(e.node, `cache entry is corrupt${e.detail ? ` (${e.detail})` : ''}; running the task`);
        return;
      case 'task-success': {
        const v = this.live(e.node);
        this.splitter.flushPrefix(`${e.node}\0`);
        const title = `${e.node} ${this.style.dim(`(${successText(e.reason, e.ms)})`)}`;
        v.outcome.resolve({ kind: 'ok', title });
        v.shown.resolve();
        return;
      }
      case 'task-failure': {
        const v = this.live(e.node);
        this.splitter.flushPrefix(`${e.node}\0`);
        const d = describeFailure(e.failure);
        if (d.status === 'failed') v.outcome.resolve({ kind: 'fail', message: `${e.node}: ${d.text} (${formatMs(e.ms)})` });
        else v.outcome.resolve({ kind: 'skip', message: `${e.node}: ${d.status === 'cancelled' ? 'cancelled' : d.text}` });
        v.shown.resolve();
        return;
      }
      case 'gate': {
        const text = `gate ${e.state}, ${e.open ? 'open' : 'closed'}${e.detail ? `: ${e.detail}` : ''}`;
        this.output(e.node, `${SYMBOL.gate} ${text}`);
        if (e.state !== 'pass') this.note(e.node, text);
        return;
      }
      case 'warning':
        this.note(e.node, e.message);
        return;
      case 'run-interrupted':
        this.notes.push(this.style.yellow(`${SYMBOL.warning} interrupted by ${e.signal}: running tasks were stopped (SIGTERM, then SIGKILL after a grace period)`));
        return;
      case 'run-end':
        this.end();
        return;
      default:
        unreachable(e);
    }
  }

  /** Switches to text output (dry run, denial): the plain renderer prints everything from here on. */
  private toText(events: readonly FabricEvent[]): void {
    this.mode = 'text';
    this.text = new PlainRenderer(this.out, { color: this.style.color });
    this.early = [];
    for (const ev of events) this.text.onEvent(ev);
  }

  /** The node's view, starting the listr run on the first task-level event. */
  private live(id: NodeId): NodeView {
    if (this.mode === 'undecided') this.start();
    let v = this.views.get(id);
    if (!v) {
      // A node outside the announced plan: it cannot be added to a running listr, so it is only summarized.
      v = { id, shown: deferred(), outcome: deferred(), checks: 0, title: id, recent: [], wrapper: undefined };
      this.views.set(id, v);
    }
    return v;
  }

  private setTitle(v: NodeView, title: string): void {
    v.title = title;
    if (v.wrapper) v.wrapper.title = title;
  }

  private output(id: NodeId, line: string): void {
    const v = this.live(id);
    if (v.outcome.settled) return;
    if (v.wrapper) v.wrapper.output = line;
    else {
      v.recent.push(line);
      if (v.recent.length > this.outputLines) v.recent.shift();
    }
  }

  private note(node: NodeId | undefined, message: string): void {
    this.notes.push(this.style.yellow(`${SYMBOL.warning} ${node ? `${node}: ` : ''}${message}`));
    if (node && this.views.get(node)?.wrapper) this.output(node, this.style.yellow(`${SYMBOL.warning} ${message}`));
  }

  private start(): void {
    this.mode = 'live';
    this.early = [];
    const views = this.nodes.map((n) => {
      const v: NodeView = { id: n.id, shown: deferred(), outcome: deferred(), checks: 0, title: n.id, recent: [], wrapper: undefined };
      this.views.set(n.id, v);
      return v;
    });
    const Renderer = treeRenderer(this.out.columns || 80);
    const stdout = streamOf(this.out);
    const stderr = streamOf(this.out);
    const identity = (s: string) => s;
    const colors = this.style.color
      ? {}
      : { color: Object.fromEntries(['SKIPPED_WITH_COLLAPSE', 'SKIPPED_WITHOUT_COLLAPSE', 'PENDING', 'COMPLETED', 'COMPLETED_WITH_FAILED_SUBTASKS', 'COMPLETED_WITH_FAILED_SISTER_TASKS', 'RETRY', 'ROLLING_BACK', 'ROLLED_BACK', 'FAILED', 'FAILED_WITH_FAILED_SUBTASKS', 'WAITING', 'PAUSED'].map((k) => [k, identity])) };
    const listr = new Listr<unknown, TreeRenderer, TreeRenderer>(
      views.map((v) => ({
        title: v.id,
        // Hidden until the node starts: listr2 checks `enabled` once before the run (we answer false, so
        // the waiting node is not drawn) and again when it schedules the task (we answer when it starts).
        enabled: () => {
          v.checks++;
          if (v.shown.settled) return true;
          if (v.checks === 1) return false;
          return v.shown.promise.then(() => true);
        },
        task: async (_ctx: unknown, t: TaskWrapper) => {
          v.wrapper = t;
          if (t.title !== v.title) t.title = v.title;
          for (const line of v.recent.splice(0)) t.output = line;
          const o = await v.outcome.promise;
          switch (o.kind) {
            case 'ok':
              t.title = o.title;
              return;
            case 'skip':
              t.skip(o.message);
              return;
            case 'fail':
              throw new Error(o.message);
            default:
              unreachable(o);
          }
        },
        rendererOptions: { outputBar: this.outputLines, persistentOutput: false },
      })),
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        collectErrors: false,
        renderer: Renderer,
        fallbackRenderer: Renderer,
        fallbackRendererCondition: false,
        silentRendererCondition: false,
        rendererOptions: {
          collapseSubtasks: true,
          collapseErrors: true,
          showErrorMessage: true,
          collapseSkips: true,
          showSkipMessage: true,
          formatOutput: 'truncate',
          removeEmptyLines: true,
          ...colors,
          logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(stdout, stderr, { leaveEmptyLine: false }) }),
        },
      },
    );
    this.run = listr.run().then(
      () => undefined,
      (e: unknown) => {
        this.notes.push(this.style.red(`${SYMBOL.failed} the live view failed: ${e instanceof Error ? e.message : String(e)}`));
      },
    );
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    // Nodes that never reported an end (interrupted, or never reached) close as not started.
    for (const v of this.views.values()) {
      v.outcome.resolve({ kind: 'skip', message: `${v.id}: ${this.summary.status(v.id)}` });
      v.shown.resolve();
    }
    const run = this.run ?? Promise.resolve();
    this.finished = run.then(() => {
      const lines = [...this.notes];
      if (lines.length) lines.unshift('');
      lines.push('', ...this.summary.format(this.style));
      this.out.write(lines.join('\n') + '\n');
    });
  }

  /** Waits for the live view to finish drawing and the summary to be printed. */
  async close(): Promise<void> {
    if (this.mode === 'text') {
      this.text!.close();
      return;
    }
    if (!this.ended) {
      if (this.mode === 'undecided' && this.early.length === 0) return;
      this.end();
    }
    await this.finished;
  }
}
