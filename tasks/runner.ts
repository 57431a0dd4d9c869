// Group "runner": the runner host's env file (Proxmox API token, ssh keys, backend settings).
// Hand-finished from the catalogue (scripts/gen-catalogue.mjs leaves this file alone).
import { task, paramEquals, ciRefuse } from 'fabric';
import { SECTION } from './_sections.js';
import { P, script, scriptsPresent, BASE_PASSTHROUGH } from './_support.js';
import { glueTask, runnerEnvCheck } from './lib/index.js';

const PASSTHROUGH = [
  ...BASE_PASSTHROUGH,
  'INTERACTIVE',
  'PM_API_URL',
  'PM_API_TOKEN_ID',
  'PM_API_TOKEN_SECRET',
  'PM_TLS_INSECURE',
  'TF_BACKEND_S3_ENDPOINT',
  'TF_BACKEND_S3_BUCKET',
  'TF_BACKEND_S3_CA_SRC',
  'TF_BACKEND_S3_CA_REQUIRED',
  'TF_VAR_pm_api_url',
  'TF_VAR_pm_api_token_id',
  'TF_VAR_pm_api_token_secret',
  'TF_VAR_ssh_public_keys',
];

task('runner.env.install', {
  description: "Write or update the runner's env file (owner-only; prompts, so operator mode only)",
  section: SECTION.phase1RunnerHostBootstrapping,
  effect: 'mutating',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE, RUNNER_MODE: { description: 'must be operator (the script prompts)', default: '' } },
  env: PASSTHROUGH.filter((n) => n !== 'RUNNER_MODE'),
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [
    scriptsPresent(['ops/scripts/runner-env-install.sh']),
    // The Makefile never passes --non-interactive, so the script always requires operator mode.
    paramEquals('RUNNER_MODE', 'operator', { message: 'RUNNER_MODE=operator is required for interactive usage.', remedy: 'run with RUNNER_MODE=operator, outside CI' }),
    ciRefuse('operator mode is forbidden in CI'),
  ],
  run: script('ops/scripts/runner-env-install.sh', ['--file', '{{RUNNER_ENV_FILE}}']),
});

task('runner.env.check', {
  description: 'Check the runner env: Proxmox API token (https, token id), ssh keys as a JSON list, backend CA/TLS',
  section: SECTION.phase1RunnerHostBootstrapping,
  effect: 'read-only',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE },
  env: PASSTHROUGH,
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  guards: [scriptsPresent(['ops/scripts/runner-env-check.sh'])],
  // Sources RUNNER_ENV_FILE, checks the variables (values never printed), then runs
  // ops/scripts/runner-env-check.sh --file ${RUNNER_ENV_FILE} as the Makefile did (tasks/lib/runner.ts).
  run: glueTask(runnerEnvCheck),
});
