/**
 * The analyzed graph: what the analyzer produces and the scheduler, guards, cache and evidence consume.
 * Everything here is resolved: templates expanded, params validated, paths absolute.
 */
import type { Command, Effect, TaskDef, TaskFunction } from '../api/types.js';
import type { Guard, CiMutationAllowance } from '../guards/types.js';
import type { NodeId, PlannedNode } from './events.js';
import { REDACTED, redactText } from '../util/redact.js';

export type ResolvedStep =
  | {
      readonly kind: 'command';
      /** Expanded command: a string runs under `bash -euo pipefail -c`, an argv array runs directly. */
      readonly cmd: Command;
      /** The command as shown in plans/evidence (secret values replaced by [REDACTED]). */
      readonly display: string;
      /** Extra env for this step, expanded. */
      readonly env: Readonly<Record<string, string>>;
      readonly okCodes: readonly number[];
      readonly ignoreFailure: boolean;
      /** Env files the command loads itself (expanded, relative to the node's cwd): their secrets are learned before it runs. */
      readonly secretEnvFiles: readonly string[];
    }
  | {
      readonly kind: 'function';
      readonly fn: TaskFunction;
      /** `<function name>`. */
      readonly display: string;
      /** The function's source text (part of the cache fingerprint). */
      readonly source: string;
    };

export interface Node {
  readonly id: NodeId;
  readonly task: TaskDef;
  /** Declared params of the task, resolved and validated. */
  readonly params: Readonly<Record<string, string>>;
  /** Variables given on the CLI or along dependency edges, as inherited by this node (Make's command-line vars). */
  readonly vars: Readonly<Record<string, string>>;
  readonly effect: Effect;
  /** Direct dependencies (deduplicated, declaration order). */
  readonly deps: readonly NodeId[];
  readonly skippedDeps: readonly { readonly task: string; readonly condition: string }[];
  readonly steps: readonly ResolvedStep[];
  /** Absolute working directory. */
  readonly cwd: string;
  /**
   * The environment the node's commands get: the base set (PATH, HOME, ...), declared passthrough
   * variables, the node's params, FABRIC_* variables. Nothing else from fabric's environment.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Names of env vars declared as passthrough by the task. */
  readonly envNames: readonly string[];
  /** Values that must never appear in clear (secret params, secret-pattern env vars). */
  readonly secrets: readonly string[];
  /** The name patterns of secret env vars the node was analyzed with (for the env files its steps load). */
  readonly secretPatterns: readonly string[];
  readonly timeoutMs: number | undefined;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly mutex: readonly string[];
  readonly tags: readonly string[];
  /** Input and output globs, expanded, relative to `cwd`. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Whether the cache may be used for this node (read-only with inputs, or `cache: true`). */
  readonly cacheable: boolean;
  readonly guards: readonly Guard[];
  readonly ci: CiMutationAllowance | undefined;
  readonly variant: string | undefined;
  readonly gate: { readonly description: string; readonly warnCode: number; readonly allowWarnVar: string | undefined } | undefined;
}

export interface Graph {
  readonly repoRoot: string;
  /** The fabricfile that declared the tasks. */
  readonly fabricfile: string;
  readonly nodes: ReadonlyMap<NodeId, Node>;
  /** The selected nodes (CLI targets), in CLI order. */
  readonly targets: readonly NodeId[];
  /** A topological order of every node (dependencies first). */
  readonly order: readonly NodeId[];
}

/**
 * The node as planned: what plans and `run-start` events show, with secret param values redacted.
 * `{ redact: false }` keeps them, for the plan digest only (an approval for one secret value must not
 * approve another); that form is never printed or written.
 */
export function toPlanned(node: Node, opts: { readonly redact?: boolean } = {}): PlannedNode {
  const params =
    opts.redact === false || node.secrets.length === 0
      ? node.params
      : Object.fromEntries(Object.entries(node.params).map(([k, v]) => [k, node.secrets.includes(v) ? REDACTED : redactText(v, node.secrets)]));
  return {
    id: node.id,
    task: node.task.name,
    params,
    effect: node.effect,
    deps: node.deps,
    commands: node.steps.map((s) => s.display),
    cwd: node.cwd,
    variant: node.variant,
    gate: node.gate?.description,
    mutex: node.mutex,
    tags: node.tags,
    skippedDeps: node.skippedDeps,
  };
}
