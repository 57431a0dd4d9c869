// Group "ansible": inventory listing, bootstrap and hardening playbooks. Hand-finished from the catalogue.
// Playbook runs go through tasks/lib/ansible.ts (argv and env exactly as the Makefile's recipes built them).
import { task, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, sh, repoPath, ANSIBLE_PRELUDE, ANSIBLE_ENV, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { ansibleBootstrap, ansiblePlaybook, glueTask, type GlueContext } from './lib/index.js';

const common = {
  FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT,
  ENV: P.ENV,
  RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
  ...ANSIBLE_PARAMS,
} as const satisfies Record<string, ParamSpec>;
const PASSTHROUGH = [...BASE_PASSTHROUGH, 'INTERACTIVE', 'ANSIBLE_VAULT_PASSWORD_FILE', 'SSH_AUTH_SOCK'];
const ansibleDir = repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible');

task('ansible.inventory', {
  description: 'Print the Ansible inventory of ENV (ansible-inventory --list)',
  section: SECTION.ansibleLifecycle,
  effect: 'read-only',
  params: common,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [ansibleDir, requireTools(['ansible-inventory'])],
  run: sh(`${ANSIBLE_PRELUDE}ansible-inventory -i "$inv" --list`, { runnerEnv: true, env: ANSIBLE_ENV }),
});

task('ansible.bootstrap', {
  description: 'Bootstrap playbook as root (authorized keys from ANSIBLE_BOOTSTRAP_KEYS_FILE when present)',
  section: SECTION.ansibleLifecycle,
  effect: 'mutating',
  params: { ...common, ANSIBLE_BOOTSTRAP_KEYS_FILE: { description: 'passed as -e @file when it exists', default: 'secrets/authorized_keys.yml' } },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [ansibleDir, requireTools(['ansible-playbook'])],
  run: glueTask(function bootstrap(ctx: GlueContext) {
    return ansibleBootstrap(ctx);
  }),
});

task('ansible.harden', {
  description: 'Hardening playbook against the inventory of ENV',
  section: SECTION.ansibleLifecycle,
  effect: 'mutating',
  params: common,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [ansibleDir, requireTools(['ansible-playbook'])],
  run: glueTask(function harden(ctx: GlueContext) {
    return ansiblePlaybook(ctx, { playbook: 'harden.yml' });
  }),
});
