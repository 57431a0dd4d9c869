/** The plan of a selection and its digest (approvals bind to it; `fabric plan --json` prints both). */
import { createHash } from 'node:crypto';
import type { PlannedNode } from './events.js';
import type { Graph } from './graph.js';
import { toPlanned } from './graph.js';

import { canonicalJson } from '../util/canonical-json.js';

/** Re-exported for the digests' users (approvals): the one canonical form lives in util/canonical-json.ts. */
export { canonicalJson };

export function plannedNodes(graph: Graph): PlannedNode[] {
  return graph.order.map((id) => toPlanned(graph.nodes.get(id)!));
}

const digests = new WeakMap<Graph, string>();

/** The digest of a graph's plan, computed over the unredacted plan (secret values do count). */
export function graphDigest(graph: Graph): string {
  // A run may ask twice (guard facts, evidence record); a graph does not change once built.
  let digest = digests.get(graph);
  if (digest === undefined) {
    digest = planDigest(graph.order.map((id) => toPlanned(graph.nodes.get(id)!, { redact: false })), graph.repoRoot);
    digests.set(graph, digest);
  }
  return digest;
}

/**
 * sha256 over the canonical JSON of the planned nodes in topological order, with `cwd` made relative
 * to the repo root so that the same plan in another checkout has the same digest.
 */
export function planDigest(nodes: readonly PlannedNode[], repoRoot: string): string {
  const rel = nodes.map((n) => ({ ...n, cwd: n.cwd === repoRoot ? '.' : n.cwd.startsWith(repoRoot + '/') ? n.cwd.slice(repoRoot.length + 1) : n.cwd }));
  return 'sha256:' + createHash('sha256').update(canonicalJson(rel)).digest('hex');
}
