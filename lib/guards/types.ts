/**
 * Guard model. A guard is pure: facts in, decision out. Evaluation happens for the whole selected
 * graph before any process starts (lib/guards/evaluate.ts); the engine fails closed: a guard that
 * throws, or returns something malformed, is a `deny`.
 */

import type { Diagnostic } from '../diagnostics/types.js';

export type GuardOutcome = 'allow' | 'deny' | 'overridden' | 'skip';

/** What an override recorded when it turned a failing check into `overridden`. */
export interface OverrideRecord {
  /** The override variable, e.g. `HA_OVERRIDE`. */
  readonly variable: string;
  /** The reason variable and the reason given, e.g. `HA_OVERRIDE_REASON`. */
  readonly reasonVariable: string;
  readonly reason: string;
  /** `user@host` of the operator. */
  readonly operator: string;
  /** ISO-8601 UTC time of the decision. */
  readonly at: string;
  /** Name of the check that was overridden, and what it said. */
  readonly overrode: string;
  readonly overrodeReason: string;
}

export interface GuardDecision {
  /** Guard name, e.g. `env-equals(ENV=samakia-minio)`. */
  readonly guard: string;
  readonly kind: string;
  readonly outcome: GuardOutcome;
  /** Why: always set, for allow as much as for deny ("ENV is samakia-minio"). */
  readonly reason: string;
  /** What the operator can do to pass (set for deny). */
  readonly remedy?: string | undefined;
  /** The facts the guard looked at (secret values are never put here in clear). */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly override?: OverrideRecord | undefined;
  /** Located problems in a file the guard read (policy, approval), for the diagnostics printer. */
  readonly diagnostics?: readonly Diagnostic[] | undefined;
}

/** Everything a guard may look at. Built once per run by the caller (CLI), never by guards. */
export interface GuardFacts {
  /** Node id, e.g. `tf.plan[ENV=samakia-dns]`, and its task name. */
  readonly node: string;
  readonly task: string;
  readonly effect: 'read-only' | 'mutating';
  /** The node's resolved params (declared params only). */
  readonly params: Readonly<Record<string, string>>;
  /**
   * Every variable as Make would see it for this node: the node's params, then variables given on the
   * CLI or by dependency edges (`VAR=value`), then the process environment. Guards read variables here.
   */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** The process environment fabric was started with (read-only view). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** CI mode (see lib/guards/ci.ts for the one rule). */
  readonly ci: boolean;
  /** Whether an interactive prompt is possible (stdin and stdout are TTYs and not CI). */
  readonly interactive: boolean;
  readonly now: Date;
  /** `user@host`. */
  readonly operator: string;
  readonly repoRoot: string;
  /** Git commit of the repo root, if it is a git work tree. */
  readonly gitCommit?: string | undefined;
  /** Digest of the dry-run plan of the whole selection (`fabric plan --json`). */
  readonly planDigest?: string | undefined;
  /** Ids and params of every node in the selection (approvals bind to these). */
  readonly selection: readonly {
    readonly id: string;
    readonly task: string;
    readonly params: Readonly<Record<string, string>>;
    /** Names of params whose values are secret (approvals bind to a hash of them, never the value). */
    readonly secretParams?: readonly string[] | undefined;
  }[];
  /** Configured keyrings (paths) for approvals and signatures. */
  readonly keyrings: { readonly ed25519?: string | undefined; readonly gpgHome?: string | undefined };
  /** Asks the operator a question (only when `interactive`); resolves to the typed answer. */
  readonly prompt?: ((question: string) => Promise<string>) | undefined;
  /** Variable names whose values are secret (secret params, secret-pattern names): shown as `[set]` in decisions. */
  readonly secretNames?: readonly string[] | undefined;
  /** Secret values of this node (never shown in clear in decisions). */
  readonly secrets?: readonly string[] | undefined;
}

export interface Guard {
  /** Stable kind, e.g. `param-equals`, `confirm`, `override`, `approval`, `window`. */
  readonly kind: string;
  /** Name shown in plans and evidence. */
  readonly name: string;
  readonly description: string;
  evaluate(facts: GuardFacts): GuardDecision | Promise<GuardDecision>;
}

/**
 * The one way a mutating task may run in CI mode: a task-level declaration for specific CI-run mutations.
 * Either an environment-bound allowance (e.g. non-prod apply: `ENV` in dev/staging, with a confirmation
 * phrase), or `scope: 'workspace'` for a task whose only writes are git-ignored files in the checkout
 * (evidence, rendered artifacts), which CI jobs produce and throw away.
 */
export type CiMutationAllowance =
  | {
      /** Param that selects the environment (usually `ENV`) and the values allowed in CI. */
      readonly param: string;
      readonly allow: readonly string[];
      /** A variable that must hold this exact phrase in CI. */
      readonly confirm?: { readonly variable: string; readonly phrase: string } | undefined;
      readonly reason: string;
    }
  | {
      readonly scope: 'workspace';
      readonly reason: string;
    };
