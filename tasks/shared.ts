// Group "shared": the shared control-plane services env (samakia-shared: NTP, Vault, PKI, observability).
// Hand-finished from the catalogue (scripts/gen-catalogue.mjs leaves this file alone).
import { task, paramEquals, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, opt, sh, script, scriptsPresent, repoPath, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';
import { ansiblePlaybook, ensureContainersRunning, getVar, glueTask, stagedBootstrapTask, type GlueContext } from './lib/index.js';

const S = SECTION.sharedControlPlaneServicesPhase2_1;
const SHARED = 'samakia-shared';
const pinned = () => paramEquals('ENV', SHARED, { message: `set ENV=${SHARED}`, remedy: `run with ENV=${SHARED}` });

const PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
  'PM_API_URL',
  'PM_API_TOKEN_ID',
  'PM_API_TOKEN_SECRET',
  'PM_TLS_INSECURE',
  'PM_CA_FILE',
  'VAULT_ADDR',
  'VAULT_TOKEN',
  'VAULT_CACERT',
  'OBS_CA_SRC',
  'TF_BACKEND_S3_ENDPOINT',
  'TF_BACKEND_S3_BUCKET',
  'TF_BACKEND_S3_CA_SRC',
  'TF_BACKEND_S3_CA_REQUIRED',
  'TF_VAR_pm_api_url',
  'TF_VAR_pm_api_token_id',
  'TF_VAR_pm_api_token_secret',
  'TF_VAR_ssh_public_keys',
];
const base = { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ENV: P.ENV } as const satisfies Record<string, ParamSpec>;

task('shared.ansible.apply', {
  description: 'Run playbooks/shared.yml (NTP, Vault, PKI, observability); VAULT_FORCE_REINIT=1 re-initialises Vault',
  section: S,
  effect: 'mutating',
  params: {
    ...base,
    RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
    ...ANSIBLE_PARAMS,
    VAULT_FORCE_REINIT: opt('1 passes --extra-vars vault_server_force_reinit=true'),
    CHAIN,
  },
  env: [...PASSTHROUGH, 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  inputs: ['fabric-core/terraform/envs/{{ENV}}/terraform-output.json'],
  deps: chainDeps('shared.ansible.apply'),
  guards: [pinned(), repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible'), requireTools(['ansible-playbook'])],
  // Makefile defect fixed: its recipe tested VAULT_FORCE_REINIT with a single `$`, so the flag never reached ansible.
  run: glueTask(function sharedPlaybook(ctx: GlueContext) {
    const reinit = (getVar(ctx, 'VAULT_FORCE_REINIT') ?? '').trim() === '1';
    return ansiblePlaybook(ctx, { playbook: 'shared.yml', extraFlags: reinit ? ['--extra-vars', 'vault_server_force_reinit=true'] : [] });
  }),
});

task('shared.sdn.accept', {
  description: 'Validate the shared SDN plane, read-only',
  section: S,
  effect: 'read-only',
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE, CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check', ...chainDeps('shared.sdn.accept')],
  guards: [pinned(), scriptsPresent(['ops/scripts/shared-sdn-accept.sh'])],
  run: script('ops/scripts/shared-sdn-accept.sh', [], { runnerEnv: true }),
});

const simpleAccept = (name: string, description: string, path: string) =>
  task(name, {
    description,
    section: S,
    effect: 'read-only',
    params: { ...base, CHAIN },
    env: PASSTHROUGH,
    cwd: '{{FABRIC_REPO_ROOT}}',
    cache: false,
    deps: chainDeps(name),
    guards: [pinned(), scriptsPresent([path])],
    run: script(path),
  });

simpleAccept('shared.ntp.accept', 'Check chrony and the NTP VIP', 'ops/scripts/shared-ntp-accept.sh');
simpleAccept('shared.vault.accept', 'Check that Vault answers on its VIP with a healthy status', 'ops/scripts/shared-vault-accept.sh');
simpleAccept('shared.pki.accept', 'Check that the Vault PKI engine is usable', 'ops/scripts/shared-pki-accept.sh');

task('shared.obs.policy', {
  description: 'Check the observability placement policy (replicas, anti-affinity)',
  section: S,
  effect: 'read-only',
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [
    pinned(),
    scriptsPresent(['ops/observability/validate/validate-policy.sh', 'ops/observability/validate/validate-replicas.sh', 'ops/observability/validate/validate-affinity.sh']),
  ],
  run: [
    script('ops/observability/validate/validate-policy.sh'),
    script('ops/observability/validate/validate-replicas.sh', [], { env: { ENV: '{{ENV}}' } }),
    script('ops/observability/validate/validate-affinity.sh', [], { env: { ENV: '{{ENV}}' } }),
  ],
});

task('shared.obs.accept', {
  description: 'shared.obs.policy, then live checks of Grafana, Prometheus, Alertmanager and Loki',
  section: S,
  effect: 'read-only',
  params: { ...base, CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'shared.obs.policy', params: { ENV: '{{ENV}}' } }, ...chainDeps('shared.obs.accept')],
  guards: [pinned(), scriptsPresent(['ops/scripts/shared-obs-accept.sh'])],
  run: script('ops/scripts/shared-obs-accept.sh'),
});

simpleAccept('shared.obs.ingest.accept', 'Check that Loki receives log series', 'ops/scripts/shared-obs-ingest-accept.sh');
simpleAccept('shared.runtime.invariants.accept', 'Check the systemd readiness invariants on the shared hosts', 'ops/scripts/shared-runtime-invariants-accept.sh');

task('shared.accept', {
  description: 'The five shared acceptance targets (SDN, NTP, Vault, PKI, observability)',
  section: S,
  effect: 'read-only',
  params: base,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['shared.sdn.accept', 'shared.ntp.accept', 'shared.vault.accept', 'shared.pki.accept', 'shared.obs.accept'].map((t) => ({ task: t, params: { ENV: '{{ENV}}' } })),
});

// ---------------------------------------------------------------------------------------------------
// The one-shot chain (listed by the Makefile under the internal Postgres section)

const SP = SECTION.internalPostgresPatroniOnSharedVLAN;
const upParams = {
  ...base,
  RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
  ...ANSIBLE_PARAMS,
  ANSIBLE_BOOTSTRAP_KEYS_FILE: { description: 'passed as -e @file when it exists', default: 'secrets/authorized_keys.yml' },
} as const satisfies Record<string, ParamSpec>;

task('shared.up:sdn-ensure', {
  description: 'shared.up step: create or update the shared SDN plane through the API',
  section: SP,
  effect: 'mutating',
  tags: ['internal'],
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check'],
  guards: [pinned(), scriptsPresent(['ops/scripts/proxmox-sdn-ensure-shared-plane.sh'])],
  run: script('ops/scripts/proxmox-sdn-ensure-shared-plane.sh', ['--apply'], { runnerEnv: true }),
});

task('shared.up:lxc-start', {
  description: "shared.up step: start the env's containers through the Proxmox API (strict TLS, token auth)",
  section: SP,
  effect: 'mutating',
  tags: ['internal'],
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'tf.apply', params: { ENV: '{{ENV}}', CI: '1', CHAIN: 'shared.up' } }],
  guards: [pinned()],
  run: glueTask(async function startContainers(ctx: GlueContext) {
    await ensureContainersRunning(ctx, getVar(ctx, 'ENV') || SHARED);
  }),
});

task('shared.up:bootstrap', {
  description: 'shared.up step: ssh probes; ansible.bootstrap for the edges, then the VLAN services through a jump host',
  section: SP,
  effect: 'mutating',
  tags: ['internal'],
  params: upParams,
  env: [...PASSTHROUGH, 'SSH_AUTH_SOCK', 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'inventory.check', params: { ENV: '{{ENV}}', CHAIN: 'shared.up' } }],
  guards: [pinned(), requireTools(['ssh', 'ansible-playbook'])],
  run: glueTask(stagedBootstrapTask(['edges', 'services'])),
});

const notDry = { param: 'DRY_RUN', notEquals: '1', description: 'DRY_RUN is not 1' } as const;
const dry = { param: 'DRY_RUN', equals: '1', description: 'DRY_RUN=1: plan only' } as const;
const chain = { CHAIN: 'shared.up' } as const;

task('shared.up', {
  description: 'One-shot shared services deployment: SDN, terraform, containers, bootstrap, playbook, acceptance',
  section: SP,
  effect: 'mutating',
  params: { ...upParams, DRY_RUN: opt('1 only plans (tf.plan with CI=1)') },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    'runner.env.check',
    { task: 'tf.plan', params: { ENV: '{{ENV}}', CI: '1' }, when: dry },
    { task: 'shared.up:sdn-ensure', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'tf.plan', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'tf.apply', params: { ENV: '{{ENV}}', CI: '1', ...chain }, when: notDry },
    { task: 'shared.up:lxc-start', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'inventory.check', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'shared.up:bootstrap', params: { ENV: '{{ENV}}' }, when: notDry },
    { task: 'shared.ansible.apply', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
    { task: 'shared.accept', params: { ENV: '{{ENV}}', ...chain }, when: notDry },
  ],
  guards: [pinned()],
  variants: {
    param: 'DRY_RUN',
    cases: {
      '1': { description: 'plan only', run: sh("echo 'DRY_RUN=1: planning only (no apply, no ansible)'") },
      up: { description: 'full deployment' },
    },
    fallback: 'up',
  },
});
