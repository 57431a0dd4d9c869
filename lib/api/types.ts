import type { Guard, CiMutationAllowance } from '../guards/types.js';

export type Effect = 'read-only' | 'mutating';

/** A typed parameter. Values come (highest first) from a dependency edge, the CLI (`VAR=value`), the environment, the default. */
export interface ParamSpec {
  readonly description?: string;
  /** A literal default, or a function computed once per run (e.g. a date-derived INCIDENT_ID). */
  readonly default?: string | (() => string);
  /** Allowed values. */
  readonly enum?: readonly string[];
  /** A pattern the whole value must match (anchored). */
  readonly pattern?: string;
  /** The value must be set and non-empty (no default). */
  readonly required?: boolean;
  /** Redacted in logs, evidence and cache keys. */
  readonly secret?: boolean;
  /** Read the value from the process environment when not given on the CLI (Make semantics; default true). */
  readonly fromEnv?: boolean;
}

/**
 * A command: a string runs under `bash -euo pipefail -c` (as the Samakia Makefile's SHELL does);
 * an argv array is executed directly without a shell. `{{NAME}}` is replaced by the param's value:
 * shell-quoted inside strings, verbatim as one argument inside argv arrays.
 */
export type Command = string | readonly string[];

/** A command with its own env additions, as recipes prefix `VAR=value script.sh`. */
export interface CommandStep {
  readonly cmd: Command;
  /** Extra env for this step only; values are templates (`{{ENV}}`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Non-zero exit codes that count as success for this step (e.g. `[2]` for "warn"). */
  readonly okCodes?: readonly number[];
  /** Ignore failure of this step entirely (Make's `-` prefix). */
  readonly ignoreFailure?: boolean;
  /**
   * Env files this step's command loads itself, such as a runner env file it sources with
   * `set -a; . "$RUNNER_ENV_FILE"`. fabric reads each one just before the step runs: the values its
   * `NAME=value` lines give to variables whose names match the secret patterns are redacted from the
   * node's output, logs and failure messages from then on. Paths are templates, relative to the task's
   * cwd; a missing or unreadable file is skipped, and a value fabric cannot know without running the
   * file (an expansion, a command substitution) is not learned.
   */
  readonly secretEnvFiles?: readonly string[];
}

export interface TaskContext {
  /** zx `$` bound to the task's cwd, env and abort signal (zx is loaded only when a function task runs). */
  readonly $: import('zx').Shell & { [k: string]: unknown };
  readonly params: Readonly<Record<string, string>>;
  /** The scrubbed environment the task's commands see. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly repoRoot: string;
  readonly signal: AbortSignal;
  /** Writes a line to the task's log (goes through redaction like any output). */
  log(message: string): void;
  /**
   * Registers a value found at run time (e.g. read from a sourced env file) as secret: it is redacted
   * from this node's later output, logs, commands and failure messages.
   */
  secret(value: string): void;
  /** Runs a command the same way `run` entries do (process group, redaction, cancellation). Resolves to its exit code. */
  exec(cmd: Command, opts?: { env?: Record<string, string>; cwd?: string; okCodes?: readonly number[] }): Promise<number>;
}

export type TaskFunction = (ctx: TaskContext) => Promise<void | number> | void | number;

/**
 * A step: a string is a shell command, an argv array runs without a shell, a `CommandStep` adds env and
 * accepted exit codes, a function runs in-process. In a list, each element is one step (like a Makefile
 * recipe's lines), so a lone argv is written `{ cmd: ['terraform', 'plan'] }` or `[['terraform', 'plan']]`.
 */
export type RunStep = Command | CommandStep | TaskFunction;
export type RunSpec = string | CommandStep | TaskFunction | readonly RunStep[];

/** A condition on the node's resolved params, visible in plans. */
export interface ParamCondition {
  readonly param: string;
  readonly equals?: string;
  readonly notEquals?: string;
  readonly oneOf?: readonly string[];
  /** Shown in plans; defaults to a rendering of the condition. */
  readonly description?: string;
}

/** A dependency: a task name, or a task with params (values are templates: `{{ENV}}`) and an optional condition. */
export type DepRef =
  | string
  | {
      readonly task: string;
      readonly params?: Readonly<Record<string, string>>;
      readonly when?: ParamCondition;
    };

/**
 * A variant selector: one param chooses what the node runs (e.g. `X_EXECUTE` unset → the dry-run form).
 * The chosen variant is part of the plan.
 */
export interface Variants {
  readonly param: string;
  readonly cases: Readonly<Record<string, { readonly description?: string; readonly run?: RunSpec; readonly effect?: Effect }>>;
  /** Case used when the param's value matches no key (usually the dry-run form). */
  readonly fallback: string;
}

export interface TaskSpec {
  readonly description?: string;
  readonly deps?: readonly DepRef[];
  readonly run?: RunSpec;
  readonly params?: Readonly<Record<string, ParamSpec>>;
  /** Environment variables passed through from fabric's environment (everything else is scrubbed to the base set). */
  readonly env?: readonly string[];
  /** Working directory, relative to the repo root (the fabricfile's directory). Templates allowed. */
  readonly cwd?: string;
  /** Milliseconds, or a string such as `90s`, `5m`. */
  readonly timeout?: number | string;
  /** Retries after a failure, with exponential backoff starting at `retryDelay` ms (default 250). */
  readonly retries?: number;
  readonly retryDelay?: number;
  /** Default `mutating` (fail closed). */
  readonly effect?: Effect;
  readonly tags?: readonly string[];
  /** A named resource: nodes holding the same mutex never overlap. */
  readonly mutex?: string | readonly string[];
  /** Globs relative to the task cwd. Templates allowed. */
  readonly inputs?: readonly string[];
  readonly outputs?: readonly string[];
  /** Opt in (mutating tasks) or out (read-only tasks) of the content cache. */
  readonly cache?: boolean;
  readonly guards?: readonly Guard[];
  /** The one way a mutating task runs in CI mode. */
  readonly ci?: CiMutationAllowance;
  readonly variants?: Variants;
  /** A gate task: its outcome decides whether dependents run (e.g. a quorum guard); shown as such in plans. */
  readonly gate?: { readonly description: string; readonly warnCode?: number; readonly allowWarnVar?: string };
  /** Output groups / sections for `fabric list` (defaults to the name's first segment). */
  readonly section?: string;
}

/** Where a task was declared; parsed from a captured stack only when a diagnostic needs it. */
export interface CallSite {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface TaskDef {
  readonly name: string;
  readonly spec: TaskSpec;
  /** Lazily parsed declaration site. */
  site(): CallSite | undefined;
  readonly __fabricTask: true;
}
