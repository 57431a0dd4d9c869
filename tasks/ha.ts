// Group "ha": HA placement policy and Proxmox HA checks. Hand-finished from the catalogue
// (scripts/gen-catalogue.mjs leaves this file alone).
//
// The enforcement itself lives in the repo scripts (they compare fabric-core/ha/placement-policy.yml with
// the terraform outputs and the Proxmox HA resources). fabric adds the override rule up front: HA_OVERRIDE=1
// counts only with HA_OVERRIDE_REASON, and an accepted override is recorded (who, when, why) in the plan
// and the evidence. HA_OVERRIDE / HA_OVERRIDE_REASON are params so `VAR=value` on the command line reaches
// the scripts, and they propagate to ha.enforce.check when tf.plan / tf.apply pull it in.
import { task, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, script, scriptsPresent, onlyIf, haOverride, HA_PARAMS, BASE_PASSTHROUGH } from './_support.js';

const PASSTHROUGH = [...BASE_PASSTHROUGH, 'INTERACTIVE', 'PM_API_URL', 'PM_API_TOKEN_ID', 'PM_API_TOKEN_SECRET', 'PM_TLS_INSECURE', 'HA_SSH_USER', 'OBS_CA_SRC'];
const common = { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, ...HA_PARAMS } as const satisfies Record<string, ParamSpec>;

task('ha.placement.validate', {
  description: 'Validate the HA placement policy against the inventory of ENV (ENV= empty: every env)',
  section: SECTION.phase1OperationalHardeningTargets,
  effect: 'read-only',
  params: { ...common, ENV: P.ENV },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  inputs: ['fabric-core/ha/placement-policy.yml', 'fabric-core/terraform/envs/{{ENV}}/terraform-output.json'],
  guards: [scriptsPresent(['ops/scripts/ha/placement-validate.sh']), haOverride()],
  run: [
    onlyIf({ param: 'ENV', notEquals: '' }, script('ops/scripts/ha/placement-validate.sh', ['--env', '{{ENV}}'], { env: { FABRIC_TERRAFORM_ENV: '{{ENV}}' } })),
    onlyIf({ param: 'ENV', equals: '' }, script('ops/scripts/ha/placement-validate.sh', ['--all'])),
  ],
});

task('ha.proxmox.audit', {
  description: 'Audit the Proxmox HA resources against the placement policy (API, read-only)',
  section: SECTION.phase1OperationalHardeningTargets,
  effect: 'read-only',
  params: common,
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  inputs: ['fabric-core/ha/placement-policy.yml'],
  guards: [scriptsPresent(['ops/scripts/ha/proxmox-ha-audit.sh']), haOverride()],
  run: script('ops/scripts/ha/proxmox-ha-audit.sh'),
});

task('ha.enforce.check', {
  description: 'HA gate before every plan/apply: placement enforcement and Proxmox HA audit in enforce mode',
  section: SECTION.phase1OperationalHardeningTargets,
  effect: 'read-only',
  params: { ...common, ENV: P.ENV },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  // terraform-output.json comes from tf.apply / minio.tf.apply (not an edge: the gate must not apply anything).
  inputs: ['fabric-core/ha/placement-policy.yml', 'fabric-core/terraform/envs/{{ENV}}/terraform-output.json'],
  guards: [scriptsPresent(['ops/scripts/ha/enforce-placement.sh', 'ops/scripts/ha/proxmox-ha-audit.sh']), haOverride()],
  run: [
    script('ops/scripts/ha/enforce-placement.sh', ['--env', '{{ENV}}'], { env: { ENV: '{{ENV}}' } }),
    script('ops/scripts/ha/proxmox-ha-audit.sh', ['--enforce', '--env', '{{ENV}}'], { env: { ENV: '{{ENV}}' } }),
  ],
});

task('ha.evidence.snapshot', {
  description: 'Collect an HA state report into a new timestamped dir under artifacts/ha-evidence',
  section: SECTION.phase1OperationalHardeningTargets,
  effect: 'mutating',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [scriptsPresent(['ops/scripts/ha/evidence-snapshot.sh'])],
  run: script('ops/scripts/ha/evidence-snapshot.sh'),
});
