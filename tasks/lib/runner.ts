/**
 * runner.env.check's logic: the runner's env file (RUNNER_ENV_FILE, sourced if present) must provide
 * the Proxmox API token (https only, token id containing `!`) and the ssh public keys as a non-empty
 * JSON list; a configured S3 backend must be https. The repo's own ops/scripts/runner-env-check.sh
 * then runs as the Makefile runs it (it also checks that the backend CA is in the host trust store).
 */
import { existsSync } from 'node:fs';
import { GlueError, type GlueContext, getVar, runnerEnvFile, runRepoScript, sourceEnvFile } from './vars.js';

export interface RunnerEnvProblem {
  readonly variable: string;
  /** The operator-facing line, in the Makefile's words where it has them. */
  readonly message: string;
}

export const RUNNER_ENV_REQUIRED = ['TF_VAR_pm_api_url', 'TF_VAR_pm_api_token_id', 'TF_VAR_pm_api_token_secret', 'TF_VAR_ssh_public_keys'] as const;

/** Pure check of the runner variables (values never appear in the messages). */
export function checkRunnerEnv(vars: Readonly<Record<string, string | undefined>>): RunnerEnvProblem[] {
  const problems: RunnerEnvProblem[] = [];
  const missing = (name: string): void => void problems.push({ variable: name, message: `ERROR: missing required env var: ${name}` });
  for (const name of RUNNER_ENV_REQUIRED) {
    const v = vars[name];
    if (v === undefined || v.trim() === '') missing(name);
  }
  const url = vars['TF_VAR_pm_api_url'];
  if (url && !/^https:\/\//i.test(url.trim())) {
    problems.push({ variable: 'TF_VAR_pm_api_url', message: 'ERROR: TF_VAR_pm_api_url must be https:// (strict TLS)' });
  }
  const tokenId = vars['TF_VAR_pm_api_token_id'];
  if (tokenId && !tokenId.includes('!')) {
    problems.push({ variable: 'TF_VAR_pm_api_token_id', message: "ERROR: TF_VAR_pm_api_token_id must be an API token id (user@realm!token): it must contain '!'" });
  }
  const keys = vars['TF_VAR_ssh_public_keys'];
  if (keys && keys.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(keys);
    } catch {
      problems.push({ variable: 'TF_VAR_ssh_public_keys', message: 'ERROR: TF_VAR_ssh_public_keys must be valid JSON' });
      parsed = undefined;
    }
    if (parsed !== undefined && !(Array.isArray(parsed) && parsed.length > 0 && parsed.every((k) => typeof k === 'string' && k.trim() !== ''))) {
      problems.push({ variable: 'TF_VAR_ssh_public_keys', message: 'ERROR: TF_VAR_ssh_public_keys must be a non-empty JSON list of keys' });
    }
  }
  const endpoint = vars['TF_BACKEND_S3_ENDPOINT'];
  if (endpoint && endpoint.trim() !== '' && !/^https:\/\//i.test(endpoint.trim())) {
    problems.push({ variable: 'TF_BACKEND_S3_ENDPOINT', message: 'ERROR: TF_BACKEND_S3_ENDPOINT must be https://' });
  }
  if (vars['PM_TLS_INSECURE'] !== undefined && !['', '0', 'false'].includes(vars['PM_TLS_INSECURE'].trim().toLowerCase())) {
    problems.push({ variable: 'PM_TLS_INSECURE', message: 'ERROR: PM_TLS_INSECURE is not allowed (strict TLS only)' });
  }
  return problems;
}

/**
 * The variables a recipe sees after `source ${RUNNER_ENV_FILE}` (if present): the node's env plus what the
 * file sets. Commands run afterwards should get `sourced` as their extra env.
 */
export async function runnerEnv(ctx: GlueContext): Promise<{ file: string; present: boolean; sourced: Record<string, string>; vars: Record<string, string | undefined> }> {
  const file = runnerEnvFile(ctx);
  const present = existsSync(file);
  const sourced = present ? await sourceEnvFile(ctx, file) : {};
  const vars: Record<string, string | undefined> = { ...ctx.env, ...ctx.params, ...sourced };
  return { file, present, sourced, vars };
}

/**
 * The runner.env.check task: sources the env file, checks the variables (every problem is logged; exit 1
 * if any), then runs `ops/scripts/runner-env-check.sh --file ${RUNNER_ENV_FILE}` as the Makefile does.
 * Options: `script: false` skips the repo script (for repos that do not have it).
 */
export async function runnerEnvCheck(ctx: GlueContext, opts: { script?: boolean } = {}): Promise<number> {
  const { file, present, sourced, vars } = await runnerEnv(ctx);
  ctx.log(present ? `runner env file: ${file}` : `runner env file not found (not sourced): ${file}`);
  const problems = checkRunnerEnv(vars);
  if (problems.length > 0) throw new GlueError(problems.map((p) => p.message).join('\n'), 1);
  if (opts.script === false) return 0;
  return runRepoScript(ctx, 'ops/scripts/runner-env-check.sh', ['--file', file], { env: sourced });
}

/** True when the variable `name` is set to `1` (as the Makefile's `= "1"` tests). */
export function isOne(ctx: GlueContext, name: string): boolean {
  return (getVar(ctx, name) ?? '').trim() === '1';
}
