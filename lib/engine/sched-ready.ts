/**
 * Incremental readiness for the scheduler: per node the number of dependencies that have not let it
 * through yet, per node its dependents, and the ready nodes in a heap by topological rank. Settling a
 * node costs O(its dependents). Scanning every pending node after every completion (what run.ts's
 * `pump` and `sweep` do) costs O(nodes) each time, quadratic over a run: a quarter of the CPU of a
 * no-op over 1000 cached nodes (bench/RESULTS.md).
 *
 * The tracker knows nothing of statuses, gates or mutexes: the scheduler says, when a node settles,
 * which dependents it lets through (`passes`), and decides what to do with the ready and the blocked.
 */
import type { NodeId } from './events.js';

/** A binary min-heap of node ids by rank (their position in the topological order). */
export class RankHeap {
  private readonly items: NodeId[] = [];

  constructor(private readonly rank: ReadonlyMap<NodeId, number>) {}

  get size(): number {
    return this.items.length;
  }

  private r(i: number): number {
    return this.rank.get(this.items[i]!) ?? Number.MAX_SAFE_INTEGER;
  }

  push(id: NodeId): void {
    const a = this.items;
    a.push(id);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (this.r(p) <= this.r(i)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): NodeId | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const rt = l + 1;
        let m = i;
        if (l < a.length && this.r(l) < this.r(m)) m = l;
        if (rt < a.length && this.r(rt) < this.r(m)) m = rt;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class ReadyTracker {
  private readonly unmet = new Map<NodeId, number>();
  private readonly dependents = new Map<NodeId, NodeId[]>();
  private readonly ready: RankHeap;

  /**
   * `order`: every node, dependencies first; `depsOf`: a node's direct dependencies (a dependency
   * that is not in `order` never settles, so its dependents never become ready).
   */
  constructor(order: readonly NodeId[], depsOf: (id: NodeId) => readonly NodeId[], rank: ReadonlyMap<NodeId, number>) {
    this.ready = new RankHeap(rank);
    for (const id of order) {
      const deps = new Set(depsOf(id));
      this.unmet.set(id, deps.size);
      for (const d of deps) {
        let list = this.dependents.get(d);
        if (!list) this.dependents.set(d, (list = []));
        list.push(id);
      }
      if (deps.size === 0) this.ready.push(id);
    }
  }

  /** How many nodes are ready (and not taken). */
  get readyCount(): number {
    return this.ready.size;
  }

  /** The ready node with the lowest rank, taken out of the ready set (undefined when none is ready). */
  take(): NodeId | undefined {
    return this.ready.pop();
  }

  /** Every ready node, lowest rank first, taken out of the ready set. */
  takeAll(): NodeId[] {
    const out: NodeId[] = [];
    for (let id = this.ready.pop(); id !== undefined; id = this.ready.pop()) out.push(id);
    return out;
  }

  /** Puts back a taken node that could not start yet (e.g. its mutex is held). */
  putBack(id: NodeId): void {
    this.ready.push(id);
  }

  /**
   * `dep` settled (call once per node). Each dependent it lets through has one dependency less to
   * wait for and becomes ready at zero; the dependents it does not let through are returned: they can
   * never run.
   */
  settle(dep: NodeId, passes: (dependent: NodeId) => boolean): NodeId[] {
    const blocked: NodeId[] = [];
    for (const d of this.dependents.get(dep) ?? []) {
      if (!passes(d)) {
        blocked.push(d);
        continue;
      }
      const left = (this.unmet.get(d) ?? 0) - 1;
      this.unmet.set(d, left);
      if (left === 0) this.ready.push(d);
    }
    return blocked;
  }
}
