/**
 * The records an evidence packet holds. Plain JSON shapes, mirrored by the JSON Schemas in contracts/
 * (run.schema.json, manifest.schema.json, fabric-predicate.schema.json); the schemas are the contract,
 * these types are their TypeScript view. No imports from the rest of fabric: a verifier needs only this.
 */
import type { NODE_STATUSES, RUN_STATUSES } from './constants.js';

export type NodeStatus = (typeof NODE_STATUSES)[number];
export type RunStatus = (typeof RUN_STATUSES)[number];

/** A file that a node read or wrote, relative to the repository root, hashed after the node ended. */
export interface FileDigest {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

/** A file of the packet itself (a log), relative to the node's directory; `path` null: no output, no file. */
export interface LogDigest {
  readonly path: string | null;
  readonly sha256: string;
  readonly size: number;
}

export interface CommandRecord {
  readonly command: string;
  readonly pid: number | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly ms: number | null;
  readonly attempt: number;
}

/** A guard decision as recorded (the GuardDecision of lib/guards/types.ts, secrets redacted). */
export interface GuardRecord {
  readonly guard: string;
  readonly kind: string;
  readonly outcome: 'allow' | 'deny' | 'overridden' | 'skip';
  readonly reason: string;
  readonly remedy?: string;
  readonly facts: Record<string, unknown>;
  readonly override?: {
    readonly variable: string;
    readonly reasonVariable: string;
    readonly reason: string;
    readonly operator: string;
    readonly at: string;
    readonly overrode: string;
    readonly overrodeReason: string;
  };
}

export interface NodeManifest {
  readonly kind: 'fabric.node';
  readonly formatVersion: 1;
  readonly runId: string;
  readonly node: string;
  /** The node's directory name under nodes/. */
  readonly safeId: string;
  readonly task: string;
  readonly description: string | null;
  readonly params: Record<string, string>;
  readonly effect: 'read-only' | 'mutating';
  readonly variant: string | null;
  readonly deps: string[];
  /** Working directory relative to the repository root (`.` for the root). */
  readonly cwd: string;
  /** Commands as planned (templates expanded, secrets redacted). */
  readonly plannedCommands: string[];
  /** Commands that actually ran, in order, across attempts. */
  readonly commands: CommandRecord[];
  /** Declared passthrough environment; values of secret-pattern names are `[REDACTED]`. */
  readonly env: Record<string, string>;
  readonly guards: GuardRecord[];
  readonly cache: { readonly result: 'hit' | 'miss' | 'disabled' | 'corrupt'; readonly detail: string | null } | null;
  readonly fingerprint: string | null;
  readonly status: NodeStatus;
  /** For ok/cached: how the engine reported success (`ran`, `cached`, `fresh`). */
  readonly successReason: 'ran' | 'cached' | 'fresh' | null;
  /** For failed/cancelled/skipped/denied: the engine's failure, or the denial. */
  readonly failure: ({ readonly reason: string } & Record<string, unknown>) | null;
  readonly gate: { readonly description: string; readonly state: 'pass' | 'warn' | 'fail' | null; readonly open: boolean | null; readonly detail: string | null } | null;
  readonly attempts: number;
  readonly retries: { readonly attempt: number; readonly delayMs: number; readonly failure: Record<string, unknown> }[];
  readonly startedOn: string | null;
  readonly finishedOn: string;
  readonly durationMs: number | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly inputs: FileDigest[];
  readonly outputs: FileDigest[];
  readonly logs: { readonly stdout: LogDigest; readonly stderr: LogDigest };
  readonly warnings: string[];
  /** Attestation files of this node, relative to its directory. */
  readonly attestations: string[];
}

export interface RunNodeEntry {
  readonly id: string;
  readonly safeId: string;
  readonly task: string;
  readonly deps: string[];
  /** `null` until the node has finished (a killed run leaves the rest `null`). */
  readonly status: NodeStatus | null;
}

export interface SignerRecord {
  readonly type: 'ed25519' | 'gpg';
  readonly keyId: string;
  /** sha256 of the SPKI DER (ed25519) or the primary key fingerprint (gpg). */
  readonly fingerprint: string;
}

export interface RunRecord {
  readonly kind: 'fabric.run';
  readonly formatVersion: 1;
  readonly runId: string;
  readonly fabricVersion: string;
  /** The command line, with secret values redacted. */
  readonly argv: string[];
  readonly targets: string[];
  /** Variables given on the command line (`VAR=value`), secret ones redacted. */
  readonly vars: Record<string, string>;
  readonly repoRoot: string;
  /** The fabricfile, relative to the repository root. */
  readonly fabricfile: string;
  readonly git: { readonly commit: string | null; readonly dirty: boolean | null };
  readonly operator: string;
  readonly ci: boolean;
  readonly dryRun: boolean;
  readonly startedOn: string;
  readonly finishedOn: string | null;
  readonly durationMs: number | null;
  /** `interrupted` while running; rewritten with the real status at the end. */
  readonly status: RunStatus;
  readonly interruptSignal: string | null;
  readonly planDigest: string | null;
  readonly graph: { readonly edges: [string, string][] };
  readonly nodes: RunNodeEntry[];
  /** Node ids with a written manifest, in completion order. */
  readonly completed: string[];
  readonly counts: Record<NodeStatus, number>;
  readonly denials: { readonly node: string; readonly guard: string; readonly reason: string; readonly path: string[] }[];
  readonly signing: { readonly required: number; readonly signers: SignerRecord[] };
  /** Problems the writer hit (e.g. an output that could not be hashed); the packet is still consistent. */
  readonly warnings: string[];
}

/** in-toto ResourceDescriptor (subset). */
export interface ResourceDescriptor {
  readonly name?: string;
  readonly uri?: string;
  readonly digest: Record<string, string>;
  readonly annotations?: Record<string, unknown>;
}

export interface Statement<P = unknown> {
  readonly _type: 'https://in-toto.io/Statement/v1';
  readonly subject: ResourceDescriptor[];
  readonly predicateType: string;
  readonly predicate: P;
}

export interface DsseSignature {
  readonly keyid?: string;
  readonly sig: string;
}

export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: string;
  readonly signatures: DsseSignature[];
}
