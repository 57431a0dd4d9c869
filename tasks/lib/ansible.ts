/**
 * Ansible glue: the ansible.bootstrap recipe (and the other playbook runs) as the Makefile ran them:
 * `ansible-playbook -i ${ANSIBLE_INVENTORY_PATH} ${ANSIBLE_DIR}/playbooks/<book> -u <user> [...] ${ANSIBLE_FLAGS}`
 * with FABRIC_TERRAFORM_ENV and ANSIBLE_CONFIG, from FABRIC_REPO_ROOT.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { runnerEnv } from './runner.js';
import { fabricRepoRoot, getVar, GlueError, type GlueContext, minioBootstrapDir, splitWords, varOr } from './vars.js';

/** `${ANSIBLE_INVENTORY}`-style paths: kept when they start with /, ./ or ../, else under ANSIBLE_DIR. */
export function ansiblePath(ansibleDir: string, value: string): string {
  return isAbsolute(value) || value.startsWith('./') || value.startsWith('../') ? value : join(ansibleDir, value);
}

export interface PlaybookOptions {
  /** File under `${ANSIBLE_DIR}/playbooks/`, e.g. `bootstrap.yml`, `state-backend.yml`, `dns.yml`. */
  readonly playbook: string;
  /** `-u` user: `root` for bootstrap, `${ANSIBLE_USER}` (default samakia) otherwise. */
  readonly user?: string;
  /** Words appended after `${ANSIBLE_FLAGS}` (e.g. `['--limit', 'minio-edge-*']`, an env-prefix in the Makefile). */
  readonly extraFlags?: readonly string[];
  /** Pass `-e @${ANSIBLE_BOOTSTRAP_KEYS_PATH}` when that file exists (ansible.bootstrap only). */
  readonly bootstrapKeys?: boolean;
  /** ENV for FABRIC_TERRAFORM_ENV (default: the node's ENV). */
  readonly env?: string;
}

/** The argv and env of a playbook run (pure apart from existence checks; used by ansiblePlaybook and tests). */
export function playbookCommand(
  vars: Readonly<Record<string, string | undefined>>,
  root: string,
  home: string,
  opts: PlaybookOptions,
): { argv: string[]; env: Record<string, string> } {
  const val = (k: string, d: string): string => {
    const v = vars[k];
    return v === undefined || v === '' ? d : v;
  };
  const ansibleDir = val('ANSIBLE_DIR', join(root, 'fabric-core', 'ansible'));
  const envName = opts.env ?? val('ENV', 'samakia-prod');
  const inventory = ansiblePath(ansibleDir, val('ANSIBLE_INVENTORY', 'inventory/terraform.py'));
  const argv = ['ansible-playbook', '-i', inventory, join(ansibleDir, 'playbooks', opts.playbook), '-u', opts.user ?? val('ANSIBLE_USER', 'samakia')];
  if (opts.bootstrapKeys) {
    const keys = ansiblePath(ansibleDir, val('ANSIBLE_BOOTSTRAP_KEYS_FILE', 'secrets/authorized_keys.yml'));
    if (existsSync(isAbsolute(keys) ? keys : join(root, keys))) argv.push('-e', `@${keys}`);
  }
  argv.push(...splitWords(vars['ANSIBLE_FLAGS']), ...(opts.extraFlags ?? []));
  const env: Record<string, string> = { FABRIC_TERRAFORM_ENV: envName, ANSIBLE_CONFIG: join(ansibleDir, 'ansible.cfg') };
  if (envName === 'samakia-minio') {
    const out = join(val('MINIO_BOOTSTRAP_DIR', join(home, '.cache', 'samakia-fabric', 'tf-bootstrap', 'samakia-minio')), 'terraform-output.json');
    if (existsSync(out)) env['TF_OUTPUT_PATH'] = out;
  }
  return { argv, env };
}

/**
 * Runs a playbook as the Makefile's ansible targets do (after sourcing the runner env file), from
 * FABRIC_REPO_ROOT. Throws GlueError with the Makefile's messages for a missing ANSIBLE_DIR (exit 1) or a
 * failing playbook (its exit code).
 */
export async function ansiblePlaybook(ctx: GlueContext, opts: PlaybookOptions): Promise<void> {
  const root = await fabricRepoRoot(ctx);
  const ansibleDir = varOr(ctx, 'ANSIBLE_DIR', join(root, 'fabric-core', 'ansible'));
  if (!existsSync(ansibleDir) || !statSync(ansibleDir).isDirectory()) throw new GlueError(`ERROR: ANSIBLE_DIR not found: ${ansibleDir}`, 1);
  const { sourced, vars } = await runnerEnv(ctx);
  const home = varOr(ctx, 'HOME', '');
  const { argv, env } = playbookCommand({ ...vars, MINIO_BOOTSTRAP_DIR: minioBootstrapDir(ctx) }, root, home, opts);
  const code = await ctx.exec(argv, { env: { ...sourced, ...env }, cwd: root });
  if (code !== 0) throw new GlueError(`ERROR: ansible-playbook ${opts.playbook} failed (exit ${code})`, code);
}

/** ansible.bootstrap: `playbooks/bootstrap.yml -u root [-e @keys] ${ANSIBLE_FLAGS} [extra]`. */
export function ansibleBootstrap(ctx: GlueContext, opts: { extraFlags?: readonly string[]; env?: string } = {}): Promise<void> {
  return ansiblePlaybook(ctx, { playbook: 'bootstrap.yml', user: 'root', bootstrapKeys: true, ...opts });
}

/** ENV as the node sees it (Makefile default samakia-prod). */
export function envOf(ctx: GlueContext): string {
  return getVar(ctx, 'ENV') || 'samakia-prod';
}
