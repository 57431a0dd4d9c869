/**
 * Shared building blocks of the Samakia task catalogue (tasks/<group>.ts): the params every recipe
 * reads (FABRIC_REPO_ROOT, ENV, RUNNER_ENV_FILE, date-derived ids), how a recipe line becomes a bash
 * string command (as the Makefile's `SHELL := /usr/bin/env` + `.SHELLFLAGS := bash -euo pipefail -c`
 * ran it), and the guards that check the checkout itself (scripts, paths) before anything starts.
 *
 * Nothing here runs at import time except cheap constant construction; defaults that need the
 * environment (git top level, HOME, the clock) are functions, computed once per run by the analyzer.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { childProcess, os } from './lib/builtins.js';
import { custom, executeFlag, override, type CommandStep, type Guard, type GuardFacts, type ParamSpec, type Variants } from 'fabric';

// ---------------------------------------------------------------------------------------------------
// Params

/**
 * FABRIC_REPO_ROOT's default, as the Makefile resolves it: the git top level of the working directory,
 * else the working directory. Computed once per run (the analyzer memoises a default by its function).
 */
export function repoRootDefault(): string {
  const cwd = process.cwd();
  try {
    const top = childProcess().execFileSync('git', ['-C', cwd, 'rev-parse', '--show-toplevel'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (top) return top;
  } catch {
    /* not a git work tree, or git missing: fall back to the working directory */
  }
  return cwd;
}

/** The user's home as the recipes see it (`${HOME}`). */
const home = (): string => process.env['HOME'] || os().homedir();

/** `${HOME}/.config/samakia-fabric/env.sh`, the runner env file most infra recipes source. */
export function runnerEnvFileDefault(): string {
  return join(home(), '.config', 'samakia-fabric', 'env.sh');
}

/** `${HOME}/.cache/samakia-fabric/tf-bootstrap/samakia-minio`, the local-state workspace for samakia-minio. */
export function minioBootstrapDirDefault(): string {
  return join(home(), '.cache', 'samakia-fabric', 'tf-bootstrap', 'samakia-minio');
}

/** `date -u +%Y%m%d-%H%M%S`. */
export function utcStamp(d: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

// One function per id, so each is computed once per run and shared by every task that reads it
// (the Makefile re-ran `date` at every expansion, so a sub-make got its own id).
export const incidentIdDefault = (): string => `incident-${utcStamp()}`;
export const correlationIdDefault = (): string => `corr-${utcStamp()}`;
export const packNameDefault = (): string => `compliance-pack-${utcStamp()}`;
export const auditExportIdDefault = (): string => `audit-export-${utcStamp()}`;

/** Params shared by many tasks; a task spreads the ones its recipe reads. */
export const P = {
  FABRIC_REPO_ROOT: {
    description: 'the Samakia Fabric checkout the recipes run in (default: git top level of the working directory)',
    default: repoRootDefault,
  },
  ENV: { description: 'Samakia environment (envs/<ENV>.yml)', default: 'samakia-prod' },
  RUNNER_ENV_FILE: { description: 'runner env file, sourced when present', default: runnerEnvFileDefault },
  MINIO_BOOTSTRAP_DIR: { description: 'runner-local terraform workspace for samakia-minio', default: minioBootstrapDirDefault },
  INCIDENT_ID: { description: 'incident id (default incident-<UTC stamp>, computed once per run)', default: incidentIdDefault },
  CORRELATION_ID: { description: 'correlation id (default corr-<UTC stamp>, computed once per run)', default: correlationIdDefault },
  PACK_NAME: { description: 'compliance pack name (default compliance-pack-<UTC stamp>)', default: packNameDefault },
  AUDIT_EXPORT_ID: { description: 'audit export id (default audit-export-<UTC stamp>)', default: auditExportIdDefault },
} as const satisfies Record<string, ParamSpec>;

/** A Make variable the recipe reads that is never assigned (an unset Make variable expands to empty). */
export const opt = (description?: string): ParamSpec => (description ? { description, default: '' } : { default: '' });
/** A `?=` Make variable with a literal default. */
export const dflt = (value: string, description?: string): ParamSpec => (description ? { description, default: value } : { default: value });
/** A secret input: redacted in logs, plans, evidence and cache keys. */
export const secret = (description?: string): ParamSpec => (description ? { description, default: '', secret: true } : { default: '', secret: true });

/** Variables the scripts read from the environment in every recipe (RUNNER_MODE is exported by the Makefile). */
export const BASE_PASSTHROUGH = ['RUNNER_MODE', 'CI', 'GITHUB_ACTIONS', 'TF_IN_AUTOMATION'] as const;

// ---------------------------------------------------------------------------------------------------
// Commands

/** Quotes a literal for bash (same rule as the engine's template quoting). */
export function q(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Sources the runner env file when it exists (`set -a` so its assignments reach the scripts), as the
 * recipes' `[ -f "${RUNNER_ENV_FILE}" ] && source ...` line did. Reads $RUNNER_ENV_FILE, which the task
 * must declare as a param (params are exported to the command's environment).
 */
export const SOURCE_RUNNER_ENV = 'if [ -f "$RUNNER_ENV_FILE" ]; then set -a; . "$RUNNER_ENV_FILE"; set +a; fi; ';

/**
 * Make's unquoted splice of `${TF_PLAN_FLAGS}`: the value is split on blanks into separate arguments
 * (an empty value gives none). Done by bash on the exported variable with globbing off (`set -f`), so
 * a value can never run a command or expand a pattern; the variable must be a declared param.
 */
export function words(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`words(): invalid variable name ${JSON.stringify(name)}`);
  return `\${${name}:+$${name}}`;
}

/**
 * One signing model (Makefile defect 6: three key variables, and exposure signing read EXPOSURE_SIGN while
 * the Makefile passed EXPOSE_SIGN): the operator sets EVIDENCE_SIGN=1 and EVIDENCE_SIGN_KEY, and each script
 * family gets the name it reads, unless that name is given explicitly.
 */
export const SIGNING_ALIASES = {
  EVIDENCE_GPG_KEY: '${EVIDENCE_GPG_KEY:-${EVIDENCE_SIGN_KEY:-}}',
  COMPLIANCE_GPG_KEY: '${COMPLIANCE_GPG_KEY:-${EVIDENCE_SIGN_KEY:-}}',
  READINESS_SIGN: '${READINESS_SIGN:-${EVIDENCE_SIGN:-}}',
  MILESTONE_SIGN: '${MILESTONE_SIGN:-${EVIDENCE_SIGN:-}}',
  EXPOSURE_SIGN: '${EXPOSURE_SIGN:-${EXPOSE_SIGN:-${EVIDENCE_SIGN:-}}}',
} as const;
export type SigningAlias = keyof typeof SIGNING_ALIASES;

/** The params of the signing model (a task whose scripts sign declares them). */
export const SIGNING_PARAMS = {
  EVIDENCE_SIGN: { description: '1 signs the evidence manifest (required for prod mutations)', default: '' },
  EVIDENCE_SIGN_KEY: { description: 'the signing key (GPG key id); also passed as EVIDENCE_GPG_KEY / COMPLIANCE_GPG_KEY', default: '' },
} as const satisfies Record<string, ParamSpec>;

export interface StepOptions {
  /** Signing variables this step's scripts read, derived from EVIDENCE_SIGN / EVIDENCE_SIGN_KEY. */
  readonly sign?: readonly SigningAlias[];
  /** Env assignments in front of the command (`VAR=value script.sh`); values are templates. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Source ${RUNNER_ENV_FILE} first (the recipe did). fabric reads the file too, just before the step
   * runs, so that the secrets it assigns are redacted (`secretEnvFiles`); the task must declare the
   * RUNNER_ENV_FILE param.
   */
  readonly runnerEnv?: boolean;
  /** Exit codes that also count as success. */
  readonly okCodes?: readonly number[];
  /** Make's `-` prefix: a failure does not fail the task. */
  readonly ignoreFailure?: boolean;
}

/** A bash command string (one recipe line) with its options. */
export function sh(command: string, opts: StepOptions = {}): CommandStep {
  const needsNoGlob = command.includes(':+$');
  const signing = opts.sign?.length ? `export ${opts.sign.map((n) => `${n}="${SIGNING_ALIASES[n]}"`).join(' ')}; ` : '';
  const text = `${needsNoGlob ? 'set -f; ' : ''}${opts.runnerEnv ? SOURCE_RUNNER_ENV : ''}${signing}${command}`;
  return {
    cmd: text,
    ...(opts.env && Object.keys(opts.env).length ? { env: opts.env } : {}),
    ...(opts.okCodes ? { okCodes: opts.okCodes } : {}),
    ...(opts.ignoreFailure ? { ignoreFailure: true } : {}),
    ...(opts.runnerEnv ? { secretEnvFiles: ['{{RUNNER_ENV_FILE}}'] } : {}),
  };
}

/**
 * `bash <script> <args...>` relative to FABRIC_REPO_ROOT (the task's cwd), as the Makefile ran its
 * scripts. `args` are bash words: literals already quoted with q(), `{{PARAM}}` templates (the engine
 * quotes their values), or `words('FLAGS')` for Make's unquoted splices.
 */
export function script(path: string, args: readonly string[] = [], opts: StepOptions = {}): CommandStep {
  return sh(['bash', q(path), ...args].join(' '), opts);
}

// ---------------------------------------------------------------------------------------------------
// Guards about the checkout

/** FABRIC_REPO_ROOT as the guard sees it (params > CLI vars > env), else the fabric project root. */
export function repoRootOf(facts: GuardFacts): string {
  const v = facts.vars['FABRIC_REPO_ROOT'] ?? facts.params['FABRIC_REPO_ROOT'];
  return v && v.trim() !== '' ? resolve(facts.repoRoot, v) : facts.repoRoot;
}

/** Expands `{{NAME}}` in a guard's path from the node's variables (unknown names stay empty). */
function expandVars(text: string, facts: GuardFacts): string {
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, n: string) => facts.vars[n] ?? facts.params[n] ?? '');
}

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};
const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The repo scripts a task runs must exist under FABRIC_REPO_ROOT. Checked before anything starts, so a
 * run from the wrong directory fails at once with the path and the root it looked in.
 */
export function scriptsPresent(paths: readonly string[]): Guard {
  const list = paths.join(', ');
  return custom(`repo-scripts(${list})`, `the repo scripts ${list} must exist under FABRIC_REPO_ROOT`, (facts) => {
    const root = repoRootOf(facts);
    const missing = paths.filter((p) => !isFile(isAbsolute(p) ? p : join(root, p)));
    const seen = { FABRIC_REPO_ROOT: root, missing };
    if (missing.length === 0) return { outcome: 'allow', reason: `${paths.length === 1 ? 'script' : 'scripts'} present under ${root}`, facts: seen };
    return {
      outcome: 'deny',
      reason: `missing script${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (FABRIC_REPO_ROOT=${root})`,
      remedy: 'run fabric inside a Samakia Fabric checkout, or set FABRIC_REPO_ROOT=<checkout>',
      facts: seen,
    };
  });
}

export type PathTest = 'dir' | 'file' | 'executable' | 'exists' | 'absent' | 'absent-or-empty';

/**
 * A path (relative to FABRIC_REPO_ROOT unless absolute; `{{VAR}}` templates allowed) must pass `test`.
 * `message` is the Makefile's refusal text (templates allowed), used as the deny reason.
 */
export function repoPath(path: string, test: PathTest, message: string): Guard {
  return custom(`repo-path(${path} ${test})`, `${path} must be ${test === 'dir' ? 'a directory' : test === 'file' ? 'a file' : test}`, (facts) => {
    const rel = expandVars(path, facts);
    const abs = isAbsolute(rel) ? rel : join(repoRootOf(facts), rel);
    let ok: boolean;
    switch (test) {
      case 'dir':
        ok = isDir(abs);
        break;
      case 'file':
        ok = isFile(abs);
        break;
      case 'exists':
        ok = isFile(abs) || isDir(abs);
        break;
      case 'executable':
        try {
          accessSync(abs, constants.X_OK);
          ok = isFile(abs);
        } catch {
          ok = false;
        }
        break;
      case 'absent':
        ok = !isFile(abs) && !isDir(abs);
        break;
      case 'absent-or-empty':
        ok = !isDir(abs) ? !isFile(abs) : readdirSync(abs).length === 0;
        break;
    }
    const seen = { path: abs, test };
    const text = expandVars(message, facts).replace(/^ERROR: /, '');
    return ok ? { outcome: 'allow', reason: `${abs} passes ${test}`, facts: seen } : { outcome: 'deny', reason: text, remedy: `check ${abs} (FABRIC_REPO_ROOT=${repoRootOf(facts)})`, facts: seen };
  });
}

/**
 * HA_OVERRIDE with a reason (Samakia's ha-override-with-reason): the placement/HA enforcement itself runs
 * in the repo's scripts, which turn failures into FAIL-OVERRIDDEN when HA_OVERRIDE=1 and
 * HA_OVERRIDE_REASON is set. Up front, fabric refuses an override without a reason (the scripts' own
 * message) and records who overrode, when and why (an `overridden` decision in the plan and evidence).
 */
export function haOverride(): Guard {
  const requested = custom('ha-enforcement', 'HA placement and Proxmox HA enforcement (fails on violations unless overridden)', (facts) => {
    const v = (facts.vars['HA_OVERRIDE'] ?? '').trim();
    if (v !== '1') return { outcome: 'allow', reason: 'HA enforcement is on (no HA_OVERRIDE)', facts: { HA_OVERRIDE: v || null } };
    return { outcome: 'deny', reason: 'HA_OVERRIDE=1: HA placement enforcement failures will be reported as FAIL-OVERRIDDEN', remedy: 'unset HA_OVERRIDE, or give HA_OVERRIDE_REASON', facts: { HA_OVERRIDE: v } };
  });
  return override(requested, { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON' });
}

/** The params every HA-enforcing task declares so `HA_OVERRIDE=1 HA_OVERRIDE_REASON=...` reach its scripts. */
export const HA_PARAMS = {
  HA_OVERRIDE: opt('1 turns HA enforcement failures into FAIL-OVERRIDDEN (needs HA_OVERRIDE_REASON)'),
  HA_OVERRIDE_REASON: opt('why HA enforcement is overridden (recorded in evidence)'),
} as const satisfies Record<string, ParamSpec>;

/** `phase3-part2-<YYYYMMDDTHHMMSSZ>`: the GameDay id phase3.part2.accept computed once in its shell. */
export const gamedayIdDefault = (): string => `phase3-part2-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;

/**
 * A recipe step that runs only when a condition on the task's own params holds (the Makefile's
 * `if [ "$(X)" = "1" ]; then ...; fi` around one command). The condition is tested by bash on the
 * exported param, so the plan shows the step together with its condition.
 */
export function onlyIf(c: { readonly param: string; readonly equals?: string; readonly notEquals?: string }, step: CommandStep): CommandStep {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.param)) throw new Error(`onlyIf(): invalid param ${JSON.stringify(c.param)}`);
  const test = c.equals !== undefined ? `[ "\${${c.param}:-}" = ${q(c.equals)} ]` : `[ "\${${c.param}:-}" != ${q(c.notEquals ?? '')} ]`;
  const cmd = typeof step.cmd === 'string' ? step.cmd : step.cmd.map(q).join(' ');
  return { ...step, cmd: `if ${test}; then ${cmd}; fi` };
}

/**
 * The Ansible targets' preamble: `${ANSIBLE_INVENTORY_PATH}` (ANSIBLE_INVENTORY when it starts with /, ./
 * or ../, else under fabric-core/ansible) into $inv, and for samakia-minio the bootstrap workspace's
 * terraform-output.json as TF_OUTPUT_PATH for the inventory plugin (when it exists).
 */
export const ANSIBLE_PRELUDE =
  'case "$ANSIBLE_INVENTORY" in /*|./*|../*) inv="$ANSIBLE_INVENTORY" ;; *) inv="fabric-core/ansible/$ANSIBLE_INVENTORY" ;; esac; ' +
  'if [ "$ENV" = samakia-minio ] && [ -f "$MINIO_BOOTSTRAP_DIR/terraform-output.json" ]; then export TF_OUTPUT_PATH="$MINIO_BOOTSTRAP_DIR/terraform-output.json"; fi; ';

/** Env of every ansible command (as the Makefile's recipes passed it). */
export const ANSIBLE_ENV = { FABRIC_TERRAFORM_ENV: '{{ENV}}', ANSIBLE_CONFIG: 'fabric-core/ansible/ansible.cfg' } as const;

/** The Ansible variables a playbook target reads (params, so `ANSIBLE_FLAGS=...` on the command line reaches it). */
export const ANSIBLE_PARAMS = {
  ANSIBLE_INVENTORY: { description: 'inventory (relative paths resolve under fabric-core/ansible)', default: 'inventory/terraform.py' },
  ANSIBLE_USER: { description: 'remote user', default: 'samakia' },
  ANSIBLE_FLAGS: { description: 'extra ansible-playbook flags (word-split), e.g. --limit host', default: '' },
  MINIO_BOOTSTRAP_DIR: P.MINIO_BOOTSTRAP_DIR,
} as const satisfies Record<string, ParamSpec>;

/**
 * An execute flag whose repo script reads the flag itself (dry-run unless `variable=1`): both variants run
 * the same recipe, and the plan shows which one was chosen. Guards on the execute form use
 * `when({ param: variable, equals: '1' }, ...)`.
 */
export function flagged(variable: string, run: CommandStep | readonly CommandStep[]): Variants {
  return executeFlag(variable, { execute: run, dryRun: run });
}
