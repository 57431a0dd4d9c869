/**
 * Terraform glue: the samakia-minio bootstrap-local workspace (minio.tf.plan / minio.tf.apply), the
 * `-auto-approve` rule, and `terraform output -json` capture into terraform-output.json.
 */
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadEnv } from './envs.js';
import { runnerEnv } from './runner.js';
import { capture, fabricRepoRoot, getVar, GlueError, type GlueContext, isCiValue, minioBootstrapDir, splitWords, varOr } from './vars.js';

export const TF_STATE_FILES = ['terraform.tfstate', 'terraform.tfstate.backup'] as const;
export const TF_OUTPUT_FILE = 'terraform-output.json';
/** A state that manages containers contains this (the Makefile's marker for a "real" state). */
export const STATE_MARKER = '"type": "proxmox_lxc"';

export interface WorkspaceReport {
  readonly workDir: string;
  readonly srcDir: string;
  /** *.tf files copied (backend.tf is never copied). */
  readonly tfFiles: readonly string[];
  /** `.terraform.lock.hcl` copied, or absent in the env dir (git-ignored: absent on a fresh clone). */
  readonly lockFile: 'copied' | 'absent';
  /** State files copied into the workspace (non-empty ones only). */
  readonly stateCopied: readonly string[];
  /** The workspace state was replaced by the backup (empty state, or no containers while the backup has some). */
  readonly restoredFromBackup: boolean;
}

const nonEmpty = (p: string): boolean => existsSync(p) && statSync(p).isFile() && statSync(p).size > 0;
const readOr = async (p: string): Promise<string> => (existsSync(p) ? readFile(p, 'utf8') : '');

/**
 * Prepares the runner-local workspace for samakia-minio: clears its `.terraform`, `*.tf` and lock file,
 * copies every `*.tf` of the env dir except `backend.tf` (so init runs without the S3 backend, which
 * MinIO itself provides), the lock file when it exists (the Makefile copied it unconditionally and failed
 * on a fresh clone), and the non-empty state files. If the workspace state is empty or manages no
 * container while the backup does, the backup becomes the state.
 */
export async function prepareBootstrapWorkspace(srcDir: string, workDir: string): Promise<WorkspaceReport> {
  if (!existsSync(srcDir) || !statSync(srcDir).isDirectory()) throw new GlueError(`ERROR: Terraform env dir not found: ${srcDir}`, 1);
  await mkdir(workDir, { recursive: true });
  await rm(join(workDir, '.terraform'), { recursive: true, force: true });
  await rm(join(workDir, '.terraform.lock.hcl'), { force: true });
  for (const f of await readdir(workDir)) if (f.endsWith('.tf')) await rm(join(workDir, f), { force: true });
  const tfFiles = (await readdir(srcDir)).filter((f) => f.endsWith('.tf') && f !== 'backend.tf' && statSync(join(srcDir, f)).isFile()).sort();
  for (const f of tfFiles) await copyFile(join(srcDir, f), join(workDir, f));
  let lockFile: WorkspaceReport['lockFile'] = 'absent';
  if (existsSync(join(srcDir, '.terraform.lock.hcl'))) {
    await copyFile(join(srcDir, '.terraform.lock.hcl'), join(workDir, '.terraform.lock.hcl'));
    lockFile = 'copied';
  }
  const stateCopied: string[] = [];
  for (const f of TF_STATE_FILES) {
    if (nonEmpty(join(srcDir, f))) {
      await copyFile(join(srcDir, f), join(workDir, f));
      stateCopied.push(f);
    }
  }
  const state = join(workDir, 'terraform.tfstate');
  const backup = join(workDir, 'terraform.tfstate.backup');
  let restoredFromBackup = false;
  if (nonEmpty(backup)) {
    const stateText = await readOr(state);
    const backupText = await readFile(backup, 'utf8');
    if (stateText.trim() === '' || (!stateText.includes(STATE_MARKER) && backupText.includes(STATE_MARKER))) {
      await copyFile(backup, state);
      restoredFromBackup = true;
    }
  }
  return { workDir, srcDir, tfFiles, lockFile, stateCopied, restoredFromBackup };
}

/** Copies the workspace's state files back into the env dir (those that exist); returns their names. */
export async function copyStateBack(workDir: string, srcDir: string): Promise<string[]> {
  const copied: string[] = [];
  for (const f of TF_STATE_FILES) {
    if (existsSync(join(workDir, f))) {
      await copyFile(join(workDir, f), join(srcDir, f));
      copied.push(f);
    }
  }
  return copied;
}

/**
 * `-auto-approve` only when the run is non-interactive, i.e. in CI mode (`CI` set to anything but empty,
 * `0`, `false`; the *.up targets and dns.tf.apply pass CI=1). Otherwise terraform asks for `yes` itself.
 */
export function autoApproveArgs(vars: Readonly<Record<string, string | undefined>>): string[] {
  return isCiValue(vars['CI']) ? ['-auto-approve'] : [];
}

/** Writes a file atomically (temp file in the same directory, then rename). */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/**
 * Runs `terraform -chdir=<dir> output -json` and writes its stdout to each of `outFiles` (only when it
 * succeeds and is JSON, so a failed run never leaves a truncated terraform-output.json). Returns the parsed outputs.
 */
export async function terraformOutputJson(ctx: GlueContext, chdir: string, outFiles: readonly string[], env: Record<string, string> = {}): Promise<unknown> {
  const r = await capture(ctx, ['terraform', `-chdir=${chdir}`, 'output', '-json'], { env });
  if (r.code !== 0) throw new GlueError(`ERROR: terraform output -json failed (exit ${r.code}): ${r.stderr.trim()}`, r.code);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new GlueError(`ERROR: terraform output -json did not print JSON (${chdir})`, 1);
  }
  for (const f of outFiles) await writeAtomic(f, r.stdout);
  return parsed;
}

/** Runs one terraform command through ctx.exec (streamed, redacted); a non-zero exit throws with that code. */
export async function terraform(ctx: GlueContext, args: readonly string[], env: Record<string, string> = {}): Promise<void> {
  const code = await ctx.exec(['terraform', ...args], { env });
  if (code !== 0) throw new GlueError(`ERROR: terraform ${args.filter((a) => !a.startsWith('-chdir=')).slice(0, 1).join(' ')} failed (exit ${code})`, code);
}

/** `${FABRIC_REPO_ROOT}/fabric-core/terraform/envs/${ENV}`, from the env file's terraform.dir. */
export async function terraformEnvDir(ctx: GlueContext, envName: string): Promise<string> {
  const env = await loadEnv(ctx.repoRoot, envName);
  return join(await fabricRepoRoot(ctx), env.terraform.dir);
}

export interface MinioTfOptions {
  /** `plan` (minio.tf.plan) or `apply` (minio.tf.apply; DRY_RUN=1 turns it into a plan). */
  readonly mode: 'plan' | 'apply';
}

/**
 * minio.tf.plan / minio.tf.apply after their deps (runner.env.check, ha.enforce.check): source the runner env
 * file, prepare the bootstrap workspace (MINIO_BOOTSTRAP_DIR), `init -backend=false`, validate, then plan
 * (`-lock=false ${TF_PLAN_FLAGS}`) or apply (`-lock=false [-auto-approve] ${TF_APPLY_FLAGS}`), copy the state
 * back (also after a failure: the workspace state is never older than the env dir's), and after an apply
 * capture `output -json` into the workspace and the env dir.
 * Reads: ENV (must be samakia-minio), MINIO_BOOTSTRAP_DIR, RUNNER_ENV_FILE, HOME, DRY_RUN, CI, TF_PLAN_FLAGS, TF_APPLY_FLAGS, FABRIC_REPO_ROOT.
 */
export async function minioTerraform(ctx: GlueContext, opts: MinioTfOptions): Promise<number> {
  const envName = varOr(ctx, 'ENV', 'samakia-prod');
  if (envName !== 'samakia-minio') throw new GlueError('ERROR: set ENV=samakia-minio', 2);
  const srcDir = await terraformEnvDir(ctx, envName);
  const workDir = minioBootstrapDir(ctx);
  const { sourced, vars } = await runnerEnv(ctx);
  const ws = await prepareBootstrapWorkspace(srcDir, workDir);
  ctx.log(`bootstrap workspace ${workDir}: ${ws.tfFiles.length} .tf file(s), lock file ${ws.lockFile}, state ${ws.stateCopied.join(', ') || 'none'}${ws.restoredFromBackup ? ' (restored from backup)' : ''}`);
  const chdir = `-chdir=${workDir}`;
  const dryRun = (getVar(ctx, 'DRY_RUN') ?? '') === '1';
  const apply = opts.mode === 'apply' && !dryRun;
  try {
    await terraform(ctx, [chdir, 'init', '-input=false', '-backend=false', '-reconfigure'], sourced);
    await terraform(ctx, [chdir, 'validate'], sourced);
    if (apply) {
      await terraform(ctx, [chdir, 'apply', '-input=false', '-lock=false', ...autoApproveArgs(vars), ...splitWords(getVar(ctx, 'TF_APPLY_FLAGS'))], sourced);
    } else {
      await terraform(ctx, [chdir, 'plan', '-input=false', '-lock=false', ...splitWords(getVar(ctx, 'TF_PLAN_FLAGS'))], sourced);
    }
  } finally {
    const back = await copyStateBack(workDir, srcDir);
    if (back.length) ctx.log(`copied ${back.join(', ')} back to ${srcDir}`);
  }
  if (apply) {
    await terraformOutputJson(ctx, workDir, [join(workDir, TF_OUTPUT_FILE), join(srcDir, TF_OUTPUT_FILE)], sourced);
    ctx.log(`wrote ${join(srcDir, TF_OUTPUT_FILE)}`);
  }
  return 0;
}

/** The minio.tf.plan task function. */
export const minioTfPlan = (ctx: GlueContext): Promise<number> => minioTerraform(ctx, { mode: 'plan' });
/** The minio.tf.apply task function (DRY_RUN=1 plans instead). */
export const minioTfApply = (ctx: GlueContext): Promise<number> => minioTerraform(ctx, { mode: 'apply' });

/**
 * tf.apply's terraform part for an S3-backed env (after tf.backend.init, ha.enforce.check, minio.backend.smoke):
 * validate, `apply -input=false -lock-timeout=${TF_LOCK_TIMEOUT} [-auto-approve] ${TF_APPLY_FLAGS}`, then
 * `output -json` → ${TERRAFORM_ENV_DIR}/terraform-output.json.
 */
export async function tfApply(ctx: GlueContext): Promise<number> {
  const envName = varOr(ctx, 'ENV', 'samakia-prod');
  if (envName === 'samakia-minio') throw new GlueError('ERROR: tf.apply is forbidden for ENV=samakia-minio (use minio.tf.apply)', 2);
  const dir = await terraformEnvDir(ctx, envName);
  if (!existsSync(dir)) throw new GlueError(`ERROR: Terraform env dir not found: ${dir}`, 1);
  const { sourced, vars } = await runnerEnv(ctx);
  const chdir = `-chdir=${dir}`;
  await terraform(ctx, [chdir, 'validate'], sourced);
  const lock = `-lock-timeout=${varOr(ctx, 'TF_LOCK_TIMEOUT', '60s')}`;
  await terraform(ctx, [chdir, 'apply', '-input=false', lock, ...autoApproveArgs(vars), ...splitWords(getVar(ctx, 'TF_APPLY_FLAGS'))], sourced);
  await terraformOutputJson(ctx, dir, [join(dir, TF_OUTPUT_FILE)], sourced);
  return 0;
}
