// Group "dns": the DNS infrastructure (samakia-dns). Hand-finished from the catalogue
// (scripts/gen-catalogue.mjs leaves this file alone). Its Terraform goes through tf.* with the S3 backend
// on MinIO, so every plan/apply first checks MinIO (backend smoke, quorum guard).
import { task, paramEquals, confirm, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, dflt, sh, script, scriptsPresent, repoPath, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';
import { ansiblePlaybook, glueTask, stagedBootstrapTask, type GlueContext } from './lib/index.js';

const S = SECTION.dNSInfrastructureTerraformAnsibleAcceptance;
const DNS = 'samakia-dns';
const pinned = () => paramEquals('ENV', DNS, { message: `set ENV=${DNS}`, remedy: `run with ENV=${DNS}` });

const PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
  'PM_API_URL',
  'PM_API_TOKEN_ID',
  'PM_API_TOKEN_SECRET',
  'PM_TLS_INSECURE',
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
const base = { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ENV: P.ENV, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE } as const satisfies Record<string, ParamSpec>;

task('dns.tf.plan', {
  description: 'tf.plan for samakia-dns (CI=1)',
  section: S,
  effect: 'read-only',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ENV: P.ENV },
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'tf.plan', params: { ENV: '{{ENV}}', CI: '1' } }],
  guards: [pinned()],
});

task('dns.tf.apply', {
  description: 'tf.apply for samakia-dns with CI=1 (auto-approve)',
  section: S,
  effect: 'mutating',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ENV: P.ENV },
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'tf.apply', params: { ENV: '{{ENV}}', CI: '1' } }],
  guards: [pinned()],
});

task('dns.tf.destroy', {
  description: 'Destroy samakia-dns (CONFIRM=YES)',
  section: S,
  effect: 'mutating',
  params: { ...base, TF_LOCK_TIMEOUT: dflt('60s'), CONFIRM: { description: 'must be YES (destructive)', default: '' } },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: 'terraform:{{ENV}}',
  deps: [{ task: 'tf.backend.init', params: { ENV: '{{ENV}}' } }],
  guards: [
    pinned(),
    confirm('CONFIRM', 'YES', { message: 'destructive. Re-run with CONFIRM=YES', remedy: 'set CONFIRM=YES' }),
    repoPath('fabric-core/terraform/envs/{{ENV}}', 'dir', 'Terraform env dir not found: fabric-core/terraform/envs/{{ENV}}'),
    requireTools(['terraform']),
  ],
  // CONFIRM=YES (checked before anything ran) is the confirmation; fabric cannot hand terraform the terminal.
  run: sh('terraform -chdir=fabric-core/terraform/envs/{{ENV}} destroy -input=false -lock-timeout={{TF_LOCK_TIMEOUT}} -auto-approve', {
    runnerEnv: true,
    env: { TF_VAR_fabric_repo_root: '{{FABRIC_REPO_ROOT}}' },
  }),
});

task('dns.ansible.apply', {
  description: 'Run playbooks/dns.yml against the DNS hosts',
  section: S,
  effect: 'mutating',
  params: { ...base, ...ANSIBLE_PARAMS, CHAIN },
  env: [...PASSTHROUGH, 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  inputs: ['fabric-core/terraform/envs/{{ENV}}/terraform-output.json'],
  deps: chainDeps('dns.ansible.apply'),
  guards: [pinned(), repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible'), requireTools(['ansible-playbook'])],
  run: glueTask(function dnsPlaybook(ctx: GlueContext) {
    return ansiblePlaybook(ctx, { playbook: 'dns.yml' });
  }),
});

task('dns.accept', {
  description: 'DNS acceptance: queries against the VIPs, HA and NAT behaviour, playbook idempotency',
  section: S,
  effect: 'read-only',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, CHAIN },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: chainDeps('dns.accept'),
  guards: [scriptsPresent(['ops/scripts/dns-accept.sh'])],
  run: script('ops/scripts/dns-accept.sh'),
});

task('dns.sdn.accept', {
  description: 'Validate the DNS SDN plane (VLAN 100), read-only',
  section: S,
  effect: 'read-only',
  params: base,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: ['runner.env.check'],
  guards: [pinned(), scriptsPresent(['ops/scripts/dns-sdn-accept.sh'])],
  run: script('ops/scripts/dns-sdn-accept.sh', [], { runnerEnv: true }),
});

task('dns.up:bootstrap', {
  description: 'dns.up step: ssh probes; ansible.bootstrap for the edges, then the auth servers through a jump host',
  section: S,
  effect: 'mutating',
  tags: ['internal'],
  params: { ...base, ...ANSIBLE_PARAMS, ANSIBLE_BOOTSTRAP_KEYS_FILE: { description: 'passed as -e @file when it exists', default: 'secrets/authorized_keys.yml' } },
  env: [...PASSTHROUGH, 'SSH_AUTH_SOCK', 'ANSIBLE_VAULT_PASSWORD_FILE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [{ task: 'dns.tf.apply', params: { ENV: '{{ENV}}', CHAIN: 'dns.up' } }],
  guards: [pinned(), requireTools(['ssh', 'ansible-playbook'])],
  // root@ each edge (BatchMode, ConnectTimeout=3, accept-new): any answer -> bootstrap --limit dns-edge-*;
  // a samakia@ jump host (none -> exit 1); dns-auth-1/2 through it -> bootstrap --limit dns-auth-1,dns-auth-2.
  run: glueTask(stagedBootstrapTask(['edges', 'auth'])),
});

const chain = { CHAIN: 'dns.up' } as const;

task('dns.up', {
  description: 'One-shot DNS deployment: backend smoke, quorum guard, terraform, bootstrap, playbook, acceptance',
  section: S,
  effect: 'mutating',
  params: { ...base, ...ANSIBLE_PARAMS },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: [
    'runner.env.check',
    { task: 'minio.backend.smoke', params: { ENV: 'samakia-minio', ...chain } },
    // The Makefile ran the guard script directly: WARN aborted too. As a gate, WARN stops this mutating chain.
    { task: 'minio.quorum.guard', params: { ENV: 'samakia-minio', ...chain } },
    { task: 'dns.tf.plan', params: { ENV: '{{ENV}}', ...chain } },
    { task: 'dns.tf.apply', params: { ENV: '{{ENV}}', ...chain } },
    { task: 'dns.up:bootstrap', params: { ENV: '{{ENV}}' } },
    { task: 'dns.ansible.apply', params: { ENV: '{{ENV}}', ...chain } },
    { task: 'dns.accept', params: chain },
  ],
  guards: [pinned()],
});
