// Group "tf": Terraform lifecycle for the S3/MinIO-backed environments (everything but samakia-minio,
// whose state lives on MinIO itself and is built with local state first: see tasks/minio.ts).
// Hand-finished from the catalogue (scripts/gen-catalogue.mjs leaves this file alone).
import { task, paramNotEquals, requireTools, type ParamSpec } from 'fabric';
import { SECTION } from './_sections.js';
import { P, dflt, script, sh, words, scriptsPresent, repoPath, onlyIf, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';
import { glueTask, tfApply } from './lib/index.js';

/** The terraform env dir of ENV, relative to FABRIC_REPO_ROOT (the Makefile's TERRAFORM_ENV_DIR). */
export const TF_DIR = 'fabric-core/terraform/envs/{{ENV}}';
/** Terraform reads the repo root through TF_VAR_fabric_repo_root (exported by the Makefile). */
const TF_ENV = { TF_VAR_fabric_repo_root: '{{FABRIC_REPO_ROOT}}' };
/** What terraform and the backend scripts read from the environment (the runner env file adds the rest). */
const TF_PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
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
  'TF_CLI_ARGS',
];

/** samakia-minio is built with local state (backend bootstrap rule); each tf.* target names its replacement. */
const notMinio = (target: string, use: string) =>
  paramNotEquals('ENV', 'samakia-minio', { message: `${target} is forbidden for ENV=samakia-minio (use ${use})`, remedy: `use ${use}` });
const envDirExists = repoPath(TF_DIR, 'dir', 'Terraform env dir not found: fabric-core/terraform/envs/{{ENV}}');
const terraformOnPath = requireTools(['terraform']);
/** One terraform working directory per env: init, plan and apply never overlap on it. */
const TF_MUTEX = 'terraform:{{ENV}}';

const common = {
  FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT,
  ENV: P.ENV,
  RUNNER_ENV_FILE: P.RUNNER_ENV_FILE,
} as const satisfies Record<string, ParamSpec>;

task('tf.backend.init', {
  description: 'terraform init of ENV against the S3/MinIO backend (strict TLS); MIGRATE_STATE=1 migrates',
  section: SECTION.terraformLifecycle,
  effect: 'mutating',
  params: { ...common, MIGRATE_STATE: dflt('0', '1 migrates existing state into the backend') },
  env: TF_PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: TF_MUTEX,
  deps: ['runner.env.check'],
  guards: [
    notMinio('tf.backend.init', 'minio.tf.apply, then minio.state.migrate'),
    envDirExists,
    terraformOnPath,
    scriptsPresent(['ops/scripts/tf-backend-init.sh']),
  ],
  // pr-tf-plan runs tf.plan for every S3-backed env in CI: init only writes the env's local .terraform dir.
  ci: {
    param: 'ENV',
    allow: ['samakia-dev', 'samakia-staging', 'samakia-prod', 'samakia-dns', 'samakia-shared'],
    reason: 'terraform init writes only the local .terraform dir (pr-tf-plan, apply-nonprod)',
  },
  run: [
    onlyIf({ param: 'MIGRATE_STATE', equals: '1' }, script('ops/scripts/tf-backend-init.sh', ['{{ENV}}', '--migrate'], { runnerEnv: true, env: TF_ENV })),
    onlyIf({ param: 'MIGRATE_STATE', notEquals: '1' }, script('ops/scripts/tf-backend-init.sh', ['{{ENV}}'], { runnerEnv: true, env: TF_ENV })),
  ],
});

task('tf.init', {
  description: 'tf.backend.init, then terraform init for ENV (TF_INIT_FLAGS appended)',
  section: SECTION.terraformLifecycle,
  effect: 'mutating',
  params: { ...common, TF_INIT_FLAGS: dflt('', 'extra terraform init flags (word-split)') },
  env: TF_PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: TF_MUTEX,
  deps: [{ task: 'tf.backend.init', params: { ENV: '{{ENV}}' } }],
  guards: [notMinio('tf.init', 'minio.tf.plan / minio.tf.apply'), envDirExists, terraformOnPath],
  run: sh(`terraform -chdir=${TF_DIR} init -input=false ${words('TF_INIT_FLAGS')}`, { runnerEnv: true, env: TF_ENV }),
});

task('tf.plan', {
  description: 'Backend init, HA enforcement gate, terraform validate and plan for ENV',
  section: SECTION.terraformLifecycle,
  effect: 'read-only',
  params: {
    ...common,
    TF_LOCK_TIMEOUT: dflt('60s'),
    TF_PLAN_FLAGS: dflt('', 'extra terraform plan flags (word-split), e.g. -target=module.x'),
    CHAIN,
  },
  env: TF_PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: TF_MUTEX,
  deps: [
    { task: 'tf.backend.init', params: { ENV: '{{ENV}}' } },
    { task: 'ha.enforce.check', params: { ENV: '{{ENV}}' } },
    ...chainDeps('tf.plan'),
  ],
  guards: [notMinio('tf.plan', 'minio.tf.plan'), envDirExists, terraformOnPath],
  run: [
    sh(`terraform -chdir=${TF_DIR} validate`, { runnerEnv: true, env: TF_ENV }),
    sh(`terraform -chdir=${TF_DIR} plan -input=false -lock-timeout={{TF_LOCK_TIMEOUT}} ${words('TF_PLAN_FLAGS')}`, { runnerEnv: true, env: TF_ENV }),
  ],
});

task('tf.apply', {
  description: 'Backend smoke, backend init, HA gate, then terraform apply for ENV (-auto-approve only in CI)',
  section: SECTION.terraformLifecycle,
  effect: 'mutating',
  params: {
    ...common,
    CI: dflt('0', '1 (or CI mode) adds -auto-approve; otherwise terraform asks for yes'),
    TF_LOCK_TIMEOUT: dflt('60s'),
    TF_APPLY_FLAGS: dflt('', 'extra terraform apply flags (word-split)'),
    CHAIN,
  },
  env: TF_PASSTHROUGH.filter((n) => n !== 'CI'),
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  mutex: TF_MUTEX,
  // Every apply needs a healthy MinIO backend first (the Makefile's rule, kept).
  deps: [
    { task: 'minio.backend.smoke', params: { ENV: 'samakia-minio' } },
    { task: 'tf.backend.init', params: { ENV: '{{ENV}}' } },
    { task: 'ha.enforce.check', params: { ENV: '{{ENV}}' } },
    // The Makefile ran the observability policy after applying samakia-shared; it validates repo config, so before is as good and fails earlier.
    { task: 'shared.obs.policy', params: { ENV: '{{ENV}}' }, when: { param: 'ENV', equals: 'samakia-shared' } },
    ...chainDeps('tf.apply'),
  ],
  guards: [notMinio('tf.apply', 'minio.tf.apply'), envDirExists, terraformOnPath],
  // The non-prod apply workflow (apply-nonprod.yml): dev/staging only, with its confirmation phrase.
  ci: {
    param: 'ENV',
    allow: ['samakia-dev', 'samakia-staging'],
    confirm: { variable: 'CONFIRM_APPLY', phrase: 'I_UNDERSTAND_APPLY_IS_MUTATING' },
    reason: 'apply-nonprod workflow: manual dispatch for samakia-dev/samakia-staging only',
  },
  outputs: [`${TF_DIR}/terraform-output.json`],
  // validate, apply [-auto-approve], output -json -> terraform-output.json (tasks/lib/terraform.ts).
  run: glueTask(tfApply),
});
