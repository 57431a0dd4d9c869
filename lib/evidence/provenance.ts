/**
 * Per-node attestations, as in-toto Statements v1:
 *  - provenance: predicate SLSA provenance v1 (buildDefinition + runDetails);
 *  - fabric:     predicate `urn:fabric:predicate:node:v1` (guard decisions, status, cache, gate), shaped
 *                by contracts/fabric-predicate.schema.json.
 * Guard decisions get their own statement rather than an extension field of the SLSA predicate, so a
 * policy engine can ask for "the fabric predicate" by type and a SLSA verifier sees a plain provenance.
 * Both statements have the same subjects: the node's outputs with sha256 digests or, for a node with
 * no declared outputs, its stdout/stderr logs that have output, or, when there are none either, the
 * node's own manifest.json (a statement needs at least one subject).
 * The sink writes both, one per line, into the node's statements.jsonl (or, signed, as DSSE envelopes
 * into attestations.intoto.jsonl).
 */
import {
  FABRIC_BUILD_TYPE,
  FABRIC_BUILDER_ID,
  FABRIC_PREDICATE_TYPE,
  INTOTO_STATEMENT_TYPE,
  NODE_MANIFEST_FILE,
  NODES_DIR,
  SLSA_PROVENANCE_TYPE,
} from './constants.js';
import type { NodeManifest, ResourceDescriptor, Statement } from './types.js';

export interface ProvenanceContext {
  readonly runId: string;
  readonly fabricVersion: string;
  readonly gitCommit: string | null;
  readonly fabricfile: string;
}

/** The node's log files that exist (a stream with no output has none), as packet paths with digests. */
export function logFilesOf(m: NodeManifest): { name: string; sha256: string }[] {
  const dir = `${NODES_DIR}/${m.safeId}`;
  return [m.logs.stdout, m.logs.stderr].flatMap((l) => (l.path === null ? [] : [{ name: `${dir}/${l.path}`, sha256: l.sha256 }]));
}

/** The statements' subjects; `manifestSha256` is the digest of the node's manifest.json (the last resort). */
export function subjectsOf(m: NodeManifest, manifestSha256: string): ResourceDescriptor[] {
  if (m.outputs.length > 0) return m.outputs.map((o) => ({ name: o.path, digest: { sha256: o.sha256 } }));
  const logs = logFilesOf(m);
  if (logs.length > 0) return logs.map((l) => ({ name: l.name, digest: { sha256: l.sha256 }, annotations: { kind: 'log' } }));
  return [{ name: `${NODES_DIR}/${m.safeId}/${NODE_MANIFEST_FILE}`, digest: { sha256: manifestSha256 }, annotations: { kind: 'node-manifest' } }];
}

export interface SlsaProvenance {
  readonly buildDefinition: {
    readonly buildType: string;
    readonly externalParameters: Record<string, unknown>;
    readonly internalParameters: Record<string, unknown>;
    readonly resolvedDependencies: ResourceDescriptor[];
  };
  readonly runDetails: {
    readonly builder: { readonly id: string; readonly version: Record<string, string> };
    readonly metadata: { readonly invocationId: string; readonly startedOn?: string; readonly finishedOn: string };
    readonly byproducts: ResourceDescriptor[];
  };
}

export function provenanceStatement(m: NodeManifest, ctx: ProvenanceContext, manifestSha256: string): Statement<SlsaProvenance> {
  const deps: ResourceDescriptor[] = [];
  if (ctx.gitCommit) deps.push({ uri: 'git+file:.', digest: { gitCommit: ctx.gitCommit }, annotations: { role: 'source' } });
  for (const i of m.inputs) deps.push({ name: i.path, digest: { sha256: i.sha256 } });
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: subjectsOf(m, manifestSha256),
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: FABRIC_BUILD_TYPE,
        externalParameters: { task: m.task, params: m.params, fabricfile: ctx.fabricfile },
        internalParameters: {
          node: m.node,
          effect: m.effect,
          cwd: m.cwd,
          commands: m.plannedCommands,
          ...(m.variant !== null ? { variant: m.variant } : {}),
          ...(m.fingerprint !== null ? { fingerprint: m.fingerprint } : {}),
          env: m.env,
        },
        resolvedDependencies: deps,
      },
      runDetails: {
        builder: { id: FABRIC_BUILDER_ID, version: { fabric: ctx.fabricVersion } },
        metadata: {
          invocationId: `${ctx.runId}/${m.node}`,
          ...(m.startedOn !== null ? { startedOn: m.startedOn } : {}),
          finishedOn: m.finishedOn,
        },
        byproducts: logFilesOf(m).map((l) => ({ name: l.name, digest: { sha256: l.sha256 } })),
      },
    },
  };
}

export interface FabricPredicate {
  readonly runId: string;
  readonly node: string;
  readonly task: string;
  readonly status: NodeManifest['status'];
  readonly effect: NodeManifest['effect'];
  readonly guards: NodeManifest['guards'];
  readonly gate: NodeManifest['gate'];
  readonly cache: NodeManifest['cache'];
  readonly failure: NodeManifest['failure'];
  readonly attempts: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly startedOn: string | null;
  readonly finishedOn: string;
}

export function fabricStatement(m: NodeManifest, manifestSha256: string): Statement<FabricPredicate> {
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject: subjectsOf(m, manifestSha256),
    predicateType: FABRIC_PREDICATE_TYPE,
    predicate: {
      runId: m.runId,
      node: m.node,
      task: m.task,
      status: m.status,
      effect: m.effect,
      guards: m.guards,
      gate: m.gate,
      cache: m.cache,
      failure: m.failure,
      attempts: m.attempts,
      exitCode: m.exitCode,
      signal: m.signal,
      startedOn: m.startedOn,
      finishedOn: m.finishedOn,
    },
  };
}
