/**
 * `fabric explain`: for each node of a selection, whether a run would skip it (fresh, or cached:
 * restored from the store) or run it (stale, never ran), and exactly what changed since the node's
 * last recorded run: the diff of the two key objects. Reads the store; never runs or writes anything.
 */
import type { Graph } from '../engine/graph.js';
import type { NodeId } from '../engine/events.js';
import { computeKey, SecretDigester, type KeyContext } from './fingerprint.js';
import { diffKeys, describeChange, type KeyChange } from './diff.js';
import { defaultIgnoreDirs, mutatingDependencyThatRuns, notCacheableReason } from './local.js';
import { StatCache } from './stat-cache.js';
import { Store, type RunMark, type RunRecord } from './store.js';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

/**
 * - `fresh`: nothing changed since the last successful run (and its outputs are in place).
 * - `cached`: this exact state is in the cache; a run restores it instead of running.
 * - `stale`: something changed (or the cache no longer has it); a run runs it.
 * - `never-ran`: no run of this node (task + params) was ever recorded.
 */
export type ExplainStatus = 'fresh' | 'cached' | 'stale' | 'never-ran';

export interface NodeExplanation {
  readonly node: NodeId;
  readonly task: string;
  readonly target: boolean;
  readonly cacheable: boolean;
  readonly status: ExplainStatus;
  /** Whether `fabric run` would execute the node's commands (non-cacheable nodes always run). */
  readonly willRun: boolean;
  readonly summary: string;
  readonly fingerprint: string | undefined;
  readonly lastRun: RunMark | undefined;
  readonly lastSuccess: RunMark | undefined;
  /** The run the changes are relative to (the node's last success, or its task's last run for new params). */
  readonly comparedWith: { readonly node: NodeId; readonly fingerprint: string; readonly at: string } | undefined;
  readonly changes: readonly KeyChange[];
  /** Declared outputs a cache hit would write back (missing or different on disk). */
  readonly wouldRestore: readonly string[];
  readonly notes: readonly string[];
}

export interface ExplainOptions {
  readonly dir: string;
  readonly repoRoot: string;
  readonly secretPatterns: readonly string[];
  readonly ignoreDirs?: readonly string[];
}

export async function explainGraph(graph: Graph, opts: ExplainOptions): Promise<NodeExplanation[]> {
  const store = new Store(opts.dir);
  // Reads the persisted stat cache for speed, never saves it: explain writes nothing.
  const statCache = new StatCache(store.statCacheFile);
  const digester = new SecretDigester(async () => (await store.hmacKey(false)) ?? randomBytes(32));
  const ctx: KeyContext = { repoRoot: opts.repoRoot, secretPatterns: opts.secretPatterns, statCache, digester, ignoreDirs: defaultIgnoreDirs(opts.repoRoot, opts.dir, opts.ignoreDirs) };
  const fps = new Map<NodeId, string>();
  const out: NodeExplanation[] = [];
  const targets = new Set(graph.targets);
  const mutatingRuns = new Set<NodeId>();

  for (const id of graph.order) {
    const node = graph.nodes.get(id)!;
    const notes: string[] = [];
    const blocker = mutatingDependencyThatRuns(node, mutatingRuns);
    const base = { node: id, task: node.task.name, target: targets.has(id), cacheable: node.cacheable && !node.gate && blocker === undefined };
    const record = await store.readRun(id);
    const lastRun = record?.last;
    const lastSuccess = record?.lastSuccess;

    let fingerprint: string | undefined;
    let key;
    if (node.gate) {
      notes.push('a gate: always runs, and its dependents are never cached');
    } else {
      const kr = await computeKey(node, fps, ctx);
      if (kr.ok) {
        fingerprint = kr.fingerprint;
        key = kr.key;
        fps.set(id, fingerprint);
      } else {
        notes.push(`no fingerprint: dependency ${kr.missingDependency} has none`);
      }
    }
    if (!fingerprint || !key) {
      if (node.effect === 'mutating') mutatingRuns.add(id);
      out.push({ ...base, status: record ? 'stale' : 'never-ran', willRun: true, summary: 'always runs', fingerprint, lastRun, lastSuccess, comparedWith: undefined, changes: [], wouldRestore: [], notes });
      continue;
    }

    // What to compare with: this node's last success (or last attempt), else the task's last run.
    let against: RunRecord | undefined = record;
    if (!against) {
      against = await store.readTaskRun(node.task.name);
      if (against) notes.push(`never ran with these params; compared with the last run of ${against.node}`);
    }
    const mark = against?.lastSuccess ?? against?.last;
    let changes: KeyChange[] = [];
    let comparedWith: NodeExplanation['comparedWith'];
    if (mark && mark.fingerprint !== fingerprint) {
      comparedWith = { node: against!.node, fingerprint: mark.fingerprint, at: mark.at };
      const before = await store.readKey(mark.fingerprint);
      if (before) changes = diffKeys(before, key);
      else notes.push('the key of that run is no longer stored (cache cleaned?): cannot say what changed');
    }
    if (lastRun && lastRun.fingerprint === fingerprint && lastRun.outcome === 'started' && lastSuccess?.fingerprint !== fingerprint) {
      notes.push(`the last run with this fingerprint (${lastRun.at}) did not succeed (it failed or was interrupted)`);
    }
    if (blocker !== undefined && node.cacheable) notes.push(`not served from the cache: it depends on ${blocker}, a mutating task that would run`);
    else if (!base.cacheable) notes.push(node.gate ? 'not cacheable: a gate' : notCacheableReason(node));
    else if (node.inputs.length === 0) notes.push('cacheable without declared inputs: only its definition, params, env and dependencies count');

    let status: ExplainStatus;
    let willRun: boolean;
    let summary: string;
    let wouldRestore: string[] = [];
    const entry = base.cacheable ? await store.readEntry(fingerprint) : ({ state: 'absent' } as const);
    if (entry.state === 'corrupt') notes.push(`the cache entry is corrupt (${entry.detail}); a run removes it`);
    if (entry.state === 'ok') {
      const targetsAbs = entry.entry.outputs.map((o) => resolve(node.cwd, o.path));
      const current = await statCache.hashFiles(targetsAbs);
      wouldRestore = entry.entry.outputs.filter((o, i) => current.get(targetsAbs[i]!)?.sha256 !== o.sha256).map((o) => o.path);
      willRun = false;
      if (lastSuccess?.fingerprint === fingerprint && wouldRestore.length === 0) {
        status = 'fresh';
        summary = `nothing changed since the last successful run (${lastSuccess.at})`;
      } else {
        status = 'cached';
        summary = wouldRestore.length
          ? `in the cache: a run restores ${wouldRestore.length} output${wouldRestore.length === 1 ? '' : 's'} instead of running`
          : `in the cache (built ${entry.entry.created}): a run replays it instead of running`;
      }
    } else if (lastSuccess?.fingerprint === fingerprint) {
      willRun = true;
      if (base.cacheable) {
        status = 'stale';
        summary = 'nothing changed since the last successful run, but the cache no longer has it (pruned or cleaned)';
      } else {
        status = 'fresh';
        summary = `nothing changed since the last successful run (${lastSuccess.at}); not cacheable, so a run runs it again`;
      }
    } else if (!record) {
      status = 'never-ran';
      willRun = true;
      summary = against ? `never ran with these params (${changes.length} difference${changes.length === 1 ? '' : 's'} from ${against.node})` : 'never ran';
    } else {
      status = 'stale';
      willRun = true;
      summary = changes.length ? `${changes.length} change${changes.length === 1 ? '' : 's'} since the last ${lastSuccess ? 'successful ' : ''}run (${mark!.at})` : 'changed since the last run';
    }
    if (willRun && node.effect === 'mutating') mutatingRuns.add(id);
    out.push({ ...base, status, willRun, summary, fingerprint, lastRun, lastSuccess, comparedWith, changes, wouldRestore, notes });
  }
  return out;
}

/** Text for the terminal: targets always, dependencies when they are not fresh (or with `all`). */
export function formatExplanations(list: readonly NodeExplanation[], opts: { readonly all?: boolean } = {}): string {
  const lines: string[] = [];
  const shown = list.filter((e) => e.target || opts.all || e.status !== 'fresh');
  const hidden = list.length - shown.length;
  for (const e of shown) {
    lines.push(`${e.node}: ${e.status.replace('-', ' ')}${e.willRun ? '' : ' (will not run)'}: ${e.summary}`);
    for (const c of e.changes) lines.push(`  ${describeChange(c)}`);
    for (const p of e.wouldRestore) lines.push(`  would restore: ${p}`);
    for (const n of e.notes) lines.push(`  note: ${n}`);
  }
  if (hidden > 0) lines.push(`(${hidden} fresh dependenc${hidden === 1 ? 'y' : 'ies'} not shown; --all shows them)`);
  return lines.join('\n') + '\n';
}
