// Group "inventory": the Ansible inventory sanity check. Hand-finished from the catalogue.
import { task, requireTools } from 'fabric';
import { SECTION } from './_sections.js';
import { P, sh, script, scriptsPresent, repoPath, ANSIBLE_PRELUDE, ANSIBLE_ENV, ANSIBLE_PARAMS, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';

task('inventory.check', {
  description: 'runner.env.check, then the Ansible inventory of ENV parses and passes the DHCP/MAC/IP sanity check',
  section: SECTION.ansibleLifecycle,
  effect: 'read-only',
  params: {
    FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT,
    ENV: P.ENV,
    RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
    ANSIBLE_INVENTORY: ANSIBLE_PARAMS.ANSIBLE_INVENTORY,
    MINIO_BOOTSTRAP_DIR: P.MINIO_BOOTSTRAP_DIR,
    CHAIN,
  },
  env: [...BASE_PASSTHROUGH, 'INTERACTIVE', 'PM_API_URL', 'PM_API_TOKEN_ID', 'PM_API_TOKEN_SECRET', 'PM_TLS_INSECURE'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  // Reads terraform-output.json written by tf.apply / minio.tf.apply (an input, not an edge: a check must not apply).
  inputs: ['fabric-core/terraform/envs/{{ENV}}/terraform-output.json', '{{MINIO_BOOTSTRAP_DIR}}/terraform-output.json'],
  deps: ['runner.env.check', ...chainDeps('inventory.check')],
  guards: [
    repoPath('fabric-core/ansible', 'dir', 'ANSIBLE_DIR not found: fabric-core/ansible'),
    requireTools(['ansible-inventory']),
    requireTools(['terraform']),
    scriptsPresent(['ops/scripts/inventory-sanity-check.sh']),
  ],
  run: [
    sh(`echo 'Checking ansible-inventory parse...'; ${ANSIBLE_PRELUDE}ansible-inventory -i "$inv" --list >/dev/null`, { runnerEnv: true, env: ANSIBLE_ENV }),
    sh("echo 'Checking inventory sanity (DHCP/MAC/IP)...'"),
    script('ops/scripts/inventory-sanity-check.sh', ['{{ENV}}'], { runnerEnv: true }),
  ],
});
