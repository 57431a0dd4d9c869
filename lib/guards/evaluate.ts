/**
 * Evaluation up front: every guard of every node in the selection, plus the CI-mode effect check,
 * before anything starts. Fails closed: a guard that throws or returns something malformed denies.
 * Guards are evaluated one at a time (dependencies first) so that prompts never overlap.
 */
import type { NodeId } from '../engine/events.js';
import type { Graph, Node } from '../engine/graph.js';
import { ciEffectDecision, CI_EFFECT_GUARD } from './ci.js';
import { normalizeVerdict } from './compose.js';
import type { GuardDecision, GuardFacts } from './types.js';
import { decision, errorMessage } from './util.js';

export interface GuardReport {
  /** Every decision, in evaluation order. */
  readonly decisions: { readonly node: NodeId; readonly decision: GuardDecision }[];
  /** The denials, each with the dependency path from a selected target down to the node. */
  readonly denials: { readonly node: NodeId; readonly decision: GuardDecision; readonly path: NodeId[] }[];
}

export interface EvaluateOptions {
  readonly ci: boolean;
  /** Called with each decision as soon as it is made (e.g. to emit `guard-decision` events live). */
  readonly onDecision?: (node: NodeId, decision: GuardDecision) => void;
}

/**
 * Shortest dependency path from one of the graph's targets down to `id` (`[target, ..., id]`);
 * `[id]` when the node is a target itself.
 */
export function dependencyPath(graph: Graph, id: NodeId): NodeId[] {
  const parent = new Map<NodeId, NodeId | null>();
  const queue: NodeId[] = [];
  for (const t of graph.targets) {
    if (!parent.has(t)) {
      parent.set(t, null);
      queue.push(t);
    }
  }
  for (let i = 0; i < queue.length; i++) {
    const cur = queue[i]!;
    if (cur === id) break;
    for (const d of graph.nodes.get(cur)?.deps ?? []) {
      if (!parent.has(d)) {
        parent.set(d, cur);
        queue.push(d);
      }
    }
  }
  if (!parent.has(id)) return [id];
  const path: NodeId[] = [];
  for (let cur: NodeId | null | undefined = id; cur != null; cur = parent.get(cur)) path.unshift(cur);
  return path;
}

/**
 * `facts` is called only for the nodes that have something to evaluate: nodes with guards and, in CI
 * mode, mutating nodes (the effect check). A provider that throws denies those nodes.
 */
export async function evaluateGuards(graph: Graph, facts: (node: Node) => GuardFacts, opts: EvaluateOptions): Promise<GuardReport> {
  const decisions: GuardReport['decisions'] = [];
  const denials: GuardReport['denials'] = [];
  const record = (node: Node, d: GuardDecision) => {
    decisions.push({ node: node.id, decision: d });
    if (d.outcome === 'deny') denials.push({ node: node.id, decision: d, path: dependencyPath(graph, node.id) });
    opts.onDecision?.(node.id, d);
  };
  for (const id of graph.order) {
    const node = graph.nodes.get(id);
    if (!node) continue;
    // Facts are collected only for a node that has something to evaluate: most nodes have no guards
    // and, outside CI mode or when read-only, get no decision at all.
    const ciCheck = opts.ci && node.effect === 'mutating';
    if (!ciCheck && node.guards.length === 0) continue;
    let f: GuardFacts;
    try {
      f = facts(node);
    } catch (e) {
      record(node, decision({ name: 'facts', kind: 'internal' }, 'deny', `could not collect the facts for guards: ${errorMessage(e)}`, {}));
      continue;
    }
    if (ciCheck) {
      let d: GuardDecision;
      try {
        d = ciEffectDecision(node, { ...f, ci: true });
      } catch (e) {
        d = decision(CI_EFFECT_GUARD, 'deny', `CI-mode effect check failed: ${errorMessage(e)}`, {});
      }
      record(node, d);
    }
    for (const guard of node.guards) {
      const name = typeof guard?.name === 'string' ? guard.name : '<unnamed guard>';
      const kind = typeof guard?.kind === 'string' ? guard.kind : 'unknown';
      let d: GuardDecision;
      try {
        if (typeof guard?.evaluate !== 'function') throw new Error('not a guard (no evaluate function)');
        d = normalizeVerdict({ name, kind }, await guard.evaluate(f));
      } catch (e) {
        d = decision({ name, kind }, 'deny', `guard threw: ${errorMessage(e)}`, {}, 'fix the guard (a guard that throws denies)');
      }
      record(node, d);
    }
  }
  return { decisions, denials };
}
