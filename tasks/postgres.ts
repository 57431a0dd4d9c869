// Group "postgres": the internal Patroni/Postgres cluster on the shared VLAN (ENV=samakia-shared).
// Hand-finished from the catalogue (scripts/gen-catalogue.mjs leaves this file alone).
import { task, paramEquals, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, sh, script, scriptsPresent, repoPath, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';
import { ansiblePlaybook, glueTask, stagedBootstrapTask, type GlueContext } from './lib/index.js';

const S = SECTION.internalPostgresPatroniOnSharedVLAN;
const SHARED = 'samakia-shared';
const pinned = () => paramEquals('ENV', SHARED, { message: `set ENV=${SHARED}`, remedy: `run with ENV=${SHARED}` });
const TARGET = '-target=module.postgres_internal';

const PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
  'PM_API_URL',
  'PM_API_TOKEN_ID',
  'PM_API_TOKEN_SECRET',
  'PM_TLS_INSECURE',
  'POSTGRES_INTERNAL_CA_FILE',
  'POSTGRES_INTERNAL_ADMIN_USER',
  'POSTGRES_INTERNAL_ADMIN_PASSWORD',
  'TF_BACKEND_S3_ENDPOINT',
  'TF_BACKEND_S3_BUCKET',
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
const base = { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ENV: P.ENV } as const satisfies Record<string, ParamSpec>;

task('postgres.internal.plan', {
  description: 'tf.plan of samakia-shared limited to module.postgres_internal',
  section: S,
  effect: 'read-only',
  params: base,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'tf.plan', params: { ENV: '{{ENV}}', TF_PLAN_FLAGS: TARGET } }],
  guards: [pinned()],
});

task('postgres.internal.ansible.apply', {
  description: 'Run playbooks/postgres-internal.yml',
  section: S,
  effect: 'mutating',
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE, ...ANSIBLE_PARAMS, CHAIN },
  env: [...PASSTHROUGH, 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  inputs: ['fabric-core/terraform/envs/{{ENV}}/terraform-output.json'],
  deps: chainDeps('postgres.internal.ansible.apply'),
  guards: [pinned(), repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible'), requireTools(['ansible-playbook'])],
  run: glueTask(function postgresPlaybook(ctx: GlueContext) {
    return ansiblePlaybook(ctx, { playbook: 'postgres-internal.yml' });
  }),
});

task('postgres.internal.apply:refresh', {
  description: 'postgres.internal.apply step: refresh-only apply, then terraform output -json',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: 'terraform:{{ENV}}',
  deps: [{ task: 'tf.apply', params: { ENV: '{{ENV}}', CI: '1', TF_APPLY_FLAGS: TARGET } }],
  guards: [pinned(), requireTools(['terraform'])],
  run: [
    sh('terraform -chdir=fabric-core/terraform/envs/{{ENV}} apply -refresh-only -input=false -auto-approve', { runnerEnv: true, env: { TF_VAR_fabric_repo_root: '{{FABRIC_REPO_ROOT}}' } }),
    // The refreshed outputs feed the inventory (terraform-output.json), written only when the command succeeds.
    sh(
      'out=fabric-core/terraform/envs/{{ENV}}/terraform-output.json; terraform -chdir=fabric-core/terraform/envs/{{ENV}} output -json > "$out.tmp" && mv "$out.tmp" "$out"',
      { runnerEnv: true, env: { TF_VAR_fabric_repo_root: '{{FABRIC_REPO_ROOT}}' } },
    ),
  ],
});

task('postgres.internal.apply:bootstrap', {
  description: 'postgres.internal.apply step: jump host, ssh probes of the VLAN hosts, ansible.bootstrap for those still on root',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: {
    ...base,
    RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
    ...ANSIBLE_PARAMS,
    ANSIBLE_BOOTSTRAP_KEYS_FILE: { description: 'passed as -e @file when it exists', default: 'secrets/authorized_keys.yml' },
  },
  env: [...PASSTHROUGH, 'SSH_AUTH_SOCK', 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'postgres.internal.apply:refresh', params: { ENV: '{{ENV}}' } }],
  guards: [pinned(), requireTools(['ssh', 'ansible-playbook'])],
  run: glueTask(stagedBootstrapTask(['postgres'])),
});

task('postgres.internal.apply', {
  description: 'Targeted terraform apply, outputs refresh, staged bootstrap and the postgres playbook',
  section: S,
  effect: 'mutating',
  params: { ...base, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE, ...ANSIBLE_PARAMS },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    'runner.env.check',
    { task: 'postgres.internal.apply:bootstrap', params: { ENV: '{{ENV}}' } },
    { task: 'postgres.internal.ansible.apply', params: { ENV: '{{ENV}}', CHAIN: 'postgres.internal.apply' } },
  ],
  guards: [pinned()],
});

task('postgres.internal.doctor', {
  description: 'Read-only health probes against the internal Patroni/Postgres cluster',
  section: S,
  effect: 'read-only',
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [pinned(), scriptsPresent(['ops/scripts/postgres-internal-doctor.sh'])],
  run: script('ops/scripts/postgres-internal-doctor.sh'),
});

task('postgres.internal.accept', {
  description: 'Postgres acceptance, then a live canary exposure.verify (VERIFY_LIVE=1, vault secrets)',
  section: S,
  effect: 'mutating',
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    {
      task: 'exposure.verify',
      params: { ENV: 'samakia-dev', TENANT: 'canary', WORKLOAD: 'sample', VERIFY_LIVE: '1', BIND_SECRETS_BACKEND: 'vault' },
    },
  ],
  guards: [pinned(), scriptsPresent(['ops/scripts/postgres-internal-accept.sh'])],
  run: script('ops/scripts/postgres-internal-accept.sh'),
});
