// Group "backend": local settings for the MinIO S3 state backend. Hand-finished from the catalogue.
import { task } from 'fabric';
import { SECTION } from './_sections.js';
import { P, script, scriptsPresent, BASE_PASSTHROUGH } from './_support.js';
import { CHAIN, chainDeps } from './_chains.js';

task('backend.configure', {
  description: 'Configure the local MinIO backend settings: credentials, CA/TLS bundle, env.sh block (mode 600)',
  section: SECTION.phase1RunnerHostBootstrapping,
  effect: 'mutating',
  params: { FABRIC_REPO_ROOT: P.FABRIC_REPO_ROOT, RUNNER_ENV_FILE: P.RUNNER_ENV_FILE, CHAIN },
  env: [...BASE_PASSTHROUGH, 'INTERACTIVE', 'TF_BACKEND_S3_CA_SRC', 'TF_BACKEND_S3_ENDPOINT', 'TF_BACKEND_S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'],
  cwd: '{{FABRIC_REPO_ROOT}}',
  cache: false,
  deps: chainDeps('backend.configure'),
  guards: [scriptsPresent(['ops/scripts/backend-configure.sh'])],
  run: script('ops/scripts/backend-configure.sh', ['--file', '{{RUNNER_ENV_FILE}}']),
});
