// Group "minio": the MinIO HA state backend (samakia-minio). Hand-finished from the catalogue
// (scripts/gen-catalogue.mjs leaves this file alone).
//
// MinIO holds the remote Terraform state of every other env, so samakia-minio is built with local state in
// a runner-local workspace (MINIO_BOOTSTRAP_DIR; tasks/lib/terraform.ts) and migrated to the S3 backend
// afterwards (minio.state.migrate). minio.up chains it all; see tasks/_chains.ts for how its order is kept.
import { task, paramEquals, paramNonEmpty, confirm, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, opt, dflt, sh, script, scriptsPresent, repoPath, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';
import {
  ansiblePlaybook,
  copyStateBack,
  ensureContainersRunning,
  getVar,
  glueTask,
  minioBootstrapDir,
  minioTfApply,
  minioTfPlan,
  prepareBootstrapWorkspace,
  QUORUM_GATE,
  runnerEnv,
  stagedBootstrapTask,
  terraform,
  terraformEnvDir,
  type GlueContext,
} from './lib/index.js';

const S = SECTION.minIOHABackendTerraformAnsibleAcceptance;
const MINIO = 'samakia-minio';
/** Every minio target except minio.accept refuses other envs (the Makefile's `ERROR: set ENV=samakia-minio`, exit 2). */
const pinned = () => paramEquals('ENV', MINIO, { message: `set ENV=${MINIO}`, remedy: `run with ENV=${MINIO}` });
const envDirExists = repoPath('fabric-core/terraform/envs/{{ENV}}', 'dir', 'Terraform env dir not found: fabric-core/terraform/envs/{{ENV}}');
/** The bootstrap workspace is one directory: plan, apply, destroy and migrate never overlap on it. */
const WORKSPACE = 'minio-bootstrap-workspace';

const PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
  'PM_API_URL',
  'PM_API_TOKEN_ID',
  'PM_API_TOKEN_SECRET',
  'PM_TLS_INSECURE',
  'PM_CA_FILE',
  'PROXMOX_TOKEN_SECRET',
  'TF_BACKEND_S3_ENDPOINT',
  'TF_BACKEND_S3_BUCKET',
  'TF_BACKEND_S3_REGION',
  'TF_BACKEND_S3_KEY_PREFIX',
  'TF_BACKEND_S3_CA_SRC',
  'TF_BACKEND_S3_CA_REQUIRED',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'TF_VAR_pm_api_url',
  'TF_VAR_pm_api_token_id',
  'TF_VAR_pm_api_token_secret',
  'TF_VAR_ssh_public_keys',
];

const base = {
  FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT,
  ENV: P.ENV,
  RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
} as const satisfies Record<string, ParamSpec>;

const tfParams = {
  ...base,
  MINIO_BOOTSTRAP_DIR: P.MINIO_BOOTSTRAP_DIR,
  TF_PLAN_FLAGS: dflt('', 'extra terraform plan flags (word-split)'),
  CHAIN,
} as const satisfies Record<string, ParamSpec>;

// ---------------------------------------------------------------------------------------------------
// Terraform with local state

task('minio.tf.plan', {
  description: 'Plan samakia-minio with local state in the bootstrap workspace (backend.tf left out), HA gate first',
  section: S,
  effect: 'mutating',
  params: tfParams,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: WORKSPACE,
  deps: ['runner.env.check', { task: 'ha.enforce.check', params: { ENV: '{{ENV}}' } }, ...chainDeps('minio.tf.plan')],
  guards: [pinned(), envDirExists, requireTools(['terraform'])],
  // pr-tf-plan plans samakia-minio in CI: the workspace and the env dir's local state copy are all it writes.
  ci: { param: 'ENV', allow: [MINIO], reason: 'pr-tf-plan: local-state plan of samakia-minio in the runner workspace' },
  run: glueTask(minioTfPlan),
});

task('minio.tf.apply', {
  description: 'Apply samakia-minio with local state (DRY_RUN=1 plans instead); writes terraform-output.json',
  section: S,
  effect: 'mutating',
  params: {
    ...tfParams,
    CI: dflt('0', '1 (or CI mode) adds -auto-approve; otherwise terraform asks for yes'),
    DRY_RUN: opt('1 plans instead of applying'),
    TF_APPLY_FLAGS: dflt('', 'extra terraform apply flags (word-split)'),
  },
  env: PASSTHROUGH.filter((n) => n !== 'CI'),
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: WORKSPACE,
  deps: ['runner.env.check', { task: 'ha.enforce.check', params: { ENV: '{{ENV}}' } }, ...chainDeps('minio.tf.apply')],
  guards: [pinned(), envDirExists, requireTools(['terraform'])],
  // The glue plans instead of applying when DRY_RUN=1; the variant makes that choice visible in the plan.
  variants: {
    param: 'DRY_RUN',
    cases: {
      '1': { description: 'plan only (DRY_RUN=1)', run: glueTask(minioTfApply) },
      apply: { description: 'apply (-auto-approve only with CI=1 / in CI mode)', run: glueTask(minioTfApply) },
    },
    fallback: 'apply',
  },
});

async function minioTfDestroy(ctx: GlueContext): Promise<number> {
  const envName = getVar(ctx, 'ENV') || 'samakia-prod';
  const srcDir = await terraformEnvDir(ctx, envName);
  const workDir = minioBootstrapDir(ctx);
  const { sourced } = await runnerEnv(ctx);
  await prepareBootstrapWorkspace(srcDir, workDir);
  try {
    await terraform(ctx, [`-chdir=${workDir}`, 'init', '-input=false', '-backend=false', '-reconfigure'], sourced);
    // CONFIRM=YES (a guard, checked before anything ran) is the confirmation: fabric cannot hand the
    // terminal to terraform's own prompt, so the destroy itself is not asked again.
    await terraform(ctx, [`-chdir=${workDir}`, 'destroy', '-input=false', '-lock=false', '-auto-approve'], sourced);
  } finally {
    await copyStateBack(workDir, srcDir);
  }
  return 0;
}

task('minio.tf.destroy', {
  description: 'Destroy samakia-minio from the bootstrap workspace (CONFIRM=YES)',
  section: S,
  effect: 'mutating',
  params: { ...base, MINIO_BOOTSTRAP_DIR: P.MINIO_BOOTSTRAP_DIR, CONFIRM: opt('must be YES (destructive)') },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: WORKSPACE,
  deps: ['runner.env.check'],
  guards: [pinned(), confirm('CONFIRM', 'YES', { message: 'destructive. Re-run with CONFIRM=YES', remedy: 'set CONFIRM=YES' }), envDirExists, requireTools(['terraform'])],
  run: glueTask(minioTfDestroy),
});

// ---------------------------------------------------------------------------------------------------
// Configuration and acceptance

task('minio.ansible.apply', {
  description: 'Run playbooks/state-backend.yml against the MinIO hosts',
  section: S,
  effect: 'mutating',
  params: { ...base, ...ANSIBLE_PARAMS, CHAIN },
  env: [...PASSTHROUGH, 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  // The inventory plugin reads the bootstrap workspace's terraform-output.json (written by minio.tf.apply).
  inputs: ['{{MINIO_BOOTSTRAP_DIR}}/terraform-output.json'],
  deps: chainDeps('minio.ansible.apply'),
  guards: [pinned(), repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible'), requireTools(['ansible-playbook'])],
  run: glueTask(function stateBackendPlaybook(ctx: GlueContext) {
    return ansiblePlaybook(ctx, { playbook: 'state-backend.yml' });
  }),
});

task('minio.accept', {
  description: 'MinIO acceptance: VIP TLS, HA, bucket access, playbook idempotency',
  section: S,
  effect: 'read-only',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: chainDeps('minio.accept'),
  guards: [scriptsPresent(['ops/scripts/minio-accept.sh'])],
  run: script('ops/scripts/minio-accept.sh'),
});

task('minio.sdn.accept', {
  description: 'Validate the stateful SDN plane (VLAN 140) for MinIO, read-only',
  section: S,
  effect: 'read-only',
  params: { ...base, CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check', ...chainDeps('minio.sdn.accept')],
  guards: [pinned(), scriptsPresent(['ops/scripts/minio-sdn-accept.sh'])],
  run: script('ops/scripts/minio-sdn-accept.sh', [], { runnerEnv: true }),
});

task('minio.converged.accept', {
  description: 'SDN acceptance and cluster convergence checks, then the quorum guard',
  section: S,
  effect: 'mutating',
  params: { ...base, ALLOW_DEGRADED: opt('1 lets read-only consumers through a quorum WARN'), CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  // The Makefile ran the quorum guard after the convergence script; as a gate it runs first and stops the
  // check when quorum is lost (WARN: this target writes evidence, so ALLOW_DEGRADED does not admit it).
  deps: ['runner.env.check', { task: 'minio.sdn.accept', params: { ENV: '{{ENV}}' } }, { task: 'minio.quorum.guard', params: { ENV: '{{ENV}}' } }, ...chainDeps('minio.converged.accept')],
  guards: [pinned(), scriptsPresent(['ops/scripts/minio-convergence-accept.sh'])],
  run: script('ops/scripts/minio-convergence-accept.sh', [], { runnerEnv: true }),
});

task('minio.quorum.guard', {
  description: 'MinIO quorum guard (gate): 0 PASS, 2 WARN (degraded), 1 FAIL; report under audit/',
  section: S,
  effect: 'mutating',
  params: { ...base, ALLOW_DEGRADED: opt('1 lets read-only dependents run on a WARN'), CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  gate: QUORUM_GATE,
  deps: ['runner.env.check', ...chainDeps('minio.quorum.guard')],
  guards: [pinned(), scriptsPresent(['ops/scripts/minio-quorum-guard.sh'])],
  // A command step, so the engine reads its exit code as the gate state (0 pass, 2 warn, else fail).
  run: script('ops/scripts/minio-quorum-guard.sh', [], { runnerEnv: true, env: { ENV: '{{ENV}}' } }),
});

task('minio.state.migrate', {
  description: 'After backend smoke and quorum guard, migrate the bootstrap state to the S3 backend',
  section: S,
  effect: 'mutating',
  params: { ...base, MINIO_BOOTSTRAP_DIR: P.MINIO_BOOTSTRAP_DIR },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: WORKSPACE,
  // The bootstrap state comes from minio.tf.apply (an input, not an edge: migrating must not apply).
  inputs: ['{{MINIO_BOOTSTRAP_DIR}}/terraform.tfstate'],
  deps: [
    'runner.env.check',
    { task: 'minio.backend.smoke', params: { ENV: MINIO } },
    // The quorum guard as a gate: a WARN stops the migration too (it is a state write).
    { task: 'minio.quorum.guard', params: { ENV: '{{ENV}}' } },
  ],
  guards: [pinned(), scriptsPresent(['ops/scripts/tf-backend-init.sh'])],
  run: [
    // Only non-empty state files are copied, so the migration never pushes an empty state.
    sh('for f in terraform.tfstate terraform.tfstate.backup; do if [ -s "$MINIO_BOOTSTRAP_DIR/$f" ]; then cp "$MINIO_BOOTSTRAP_DIR/$f" "fabric-core/terraform/envs/$ENV/$f"; fi; done'),
    script('ops/scripts/tf-backend-init.sh', ['{{ENV}}', '--migrate'], { runnerEnv: true, env: { TF_VAR_fabric_repo_root: '{{FABRIC_REPO_ROOT}}' } }),
  ],
});

task('minio.backend.smoke', {
  description: 'Real terraform init and plan against the S3/MinIO backend in a throwaway workspace',
  section: S,
  effect: 'mutating',
  params: { ...base, CHAIN },
  env: [...PASSTHROUGH, 'WORK_DIR'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check', ...chainDeps('minio.backend.smoke')],
  guards: [pinned(), scriptsPresent(['ops/scripts/minio-terraform-backend-smoke.sh'])],
  // tf.apply runs it before every apply, including the CI non-prod apply: it only writes a temp workspace and audit/.
  ci: { param: 'ENV', allow: [MINIO], reason: 'backend smoke before a CI non-prod apply (throwaway workspace, audit report)' },
  run: script('ops/scripts/minio-terraform-backend-smoke.sh', [], { runnerEnv: true }),
});

// ---------------------------------------------------------------------------------------------------
// Failure simulation: checks before, the simulated edge failure, the same checks again after.

task('minio.failure.sim:simulate', {
  description: 'minio.failure.sim step: SDN check, then the simulated failure of EDGE',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: { ...base, EDGE: opt('minio-edge-1 or minio-edge-2') },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    'runner.env.check',
    { task: 'minio.accept', params: { CHAIN: 'minio.failure.sim' } },
    { task: 'minio.converged.accept', params: { ENV: '{{ENV}}', CHAIN: 'minio.failure.sim' } },
  ],
  guards: [pinned(), scriptsPresent(['ops/scripts/proxmox-sdn-ensure-stateful-plane.sh', 'ops/scripts/minio-edge-failure-sim.sh'])],
  run: [
    script('ops/scripts/proxmox-sdn-ensure-stateful-plane.sh', ['--check-only'], { runnerEnv: true }),
    script('ops/scripts/minio-edge-failure-sim.sh', [], { runnerEnv: true, env: { EDGE: '{{EDGE}}', ENV: '{{ENV}}' } }),
  ],
});

task('minio.failure.sim', {
  description: 'Simulate the loss of one MinIO edge (EDGE=...) with acceptance checks before and after',
  section: S,
  effect: 'mutating',
  params: { ...base, EDGE: opt('minio-edge-1 or minio-edge-2') },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    { task: 'minio.failure.sim:simulate', params: { ENV: '{{ENV}}', EDGE: '{{EDGE}}' } },
    { task: 'minio.sdn.accept', params: { ENV: '{{ENV}}', CHAIN: 'minio.failure.sim:after' } },
    { task: 'minio.accept', params: { CHAIN: 'minio.failure.sim:after' } },
    { task: 'minio.converged.accept', params: { ENV: '{{ENV}}', CHAIN: 'minio.failure.sim:after' } },
  ],
  guards: [pinned(), paramNonEmpty('EDGE', { message: 'set EDGE=minio-edge-1|minio-edge-2' })],
});

// ---------------------------------------------------------------------------------------------------
// The one-shot chain

const upParams = {
  ...base,
  ...ANSIBLE_PARAMS,
  ANSIBLE_BOOTSTRAP_KEYS_FILE: { description: 'passed as -e @file when it exists', default: 'secrets/authorized_keys.yml' },
} as const satisfies Record<string, ParamSpec>;

task('minio.up:sdn-ensure', {
  description: 'minio.up step: create or update the stateful SDN plane (zone, vnet VLAN 140) through the API',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check'],
  guards: [pinned(), scriptsPresent(['ops/scripts/proxmox-sdn-ensure-stateful-plane.sh'])],
  run: script('ops/scripts/proxmox-sdn-ensure-stateful-plane.sh', ['--apply'], { runnerEnv: true }),
});

task('minio.up:lxc-start', {
  description: "minio.up step: start the env's containers through the Proxmox API (strict TLS, token auth)",
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'minio.tf.apply', params: { ENV: '{{ENV}}', CI: '1', CHAIN: 'minio.up' } }],
  guards: [pinned()],
  run: glueTask(async function startContainers(ctx: GlueContext) {
    await ensureContainersRunning(ctx, getVar(ctx, 'ENV') || MINIO);
  }),
});

task('minio.up:bootstrap', {
  description: 'minio.up step: ssh probes; ansible.bootstrap for edges, then for nodes through a jump host',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: upParams,
  env: [...PASSTHROUGH, 'SSH_AUTH_SOCK', 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'inventory.check', params: { ENV: '{{ENV}}', CHAIN: 'minio.up' } }],
  guards: [pinned(), requireTools(['ssh', 'ansible-playbook'])],
  // Probes root@ each edge (BatchMode, ConnectTimeout=3, accept-new): any answer -> bootstrap --limit minio-edge-*;
  // picks a samakia@ jump host (none -> exit 1); probes minio-1..3 through it -> bootstrap --limit minio-1,minio-2,minio-3.
  run: glueTask(stagedBootstrapTask(['edges', 'nodes'])),
});

/** minio.up's steps in order; each edge carries CHAIN so the members order themselves (tasks/_chains.ts). */
const notDry = { param: 'DRY_RUN', notEquals: '1', description: 'DRY_RUN is not 1' } as const;
const dry = { param: 'DRY_RUN', equals: '1', description: 'DRY_RUN=1: plan only' } as const;
const chain = { CHAIN: 'minio.up' } as const;

task('minio.up', {
  description: 'One-shot MinIO deployment: SDN, terraform, containers, bootstrap, playbook, acceptance, state migration',
  section: S,
  effect: 'mutating',
  params: { ...upParams, DRY_RUN: opt('1 only plans (minio.tf.plan and a DRY_RUN apply)') },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    'runner.env.check',
    { task: 'minio.tf.plan', params: { ENV: '{{ENV}}' }, when: dry },
    { task: 'minio.tf.apply', params: { ENV: '{{ENV}}', DRY_RUN: '1', CI: '1' }, when: dry },
    { task: 'minio.up:sdn-ensure', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'backend.configure', params: chain, when: notDry },
    { task: 'minio.tf.plan', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'minio.tf.apply', params: { ENV: '{{ENV}}', CI: '1', ...chain }, when: notDry },
    { task: 'minio.up:lxc-start', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'inventory.check', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'minio.up:bootstrap', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'minio.ansible.apply', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'minio.accept', params: chain, when: notDry },
    { task: 'minio.quorum.guard', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'minio.state.migrate', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
  ],
  guards: [pinned()],
  variants: {
    param: 'DRY_RUN',
    cases: {
      '1': { description: 'plan only', run: sh("echo 'DRY_RUN=1: planning only (no backend.configure, apply, ansible or migration)'") },
      up: { description: 'full deployment' },
    },
    fallback: 'up',
  },
});
