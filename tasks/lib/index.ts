/**
 * Samakia orchestration glue, for tasks/<group>.ts. Task functions take the TaskContext; wrap them with
 * `glueTask(fn)` so that a GlueError becomes a logged message and the Makefile's exit code.
 * Vars are read with getVar(ctx, NAME): the node's declared params first, then its env, so a task using a
 * function must declare (as params or env passthrough) the variables listed under "reads".
 *
 * | export                                   | module       | what                                                                                  | reads |
 * |------------------------------------------|--------------|---------------------------------------------------------------------------------------|-------|
 * | loadEnv(repoRoot, name)                  | envs.ts      | envs/<name>.yml validated (ajv, lazy) → EnvFile; throws EnvFileError (file:line:col)  | |
 * | loadEnvResult / validateEnvText          | envs.ts      | same, as Result<…, Diagnostic[]> (validate.envs uses these)                            | |
 * | listEnvNames, envFilePath, stageHosts, jumpHosts, resolveHost, container | envs.ts | addresses for tasks (no literals in tasks)                          | |
 * | compileSchemaFile(path)                  | envs.ts      | ajv 2020-12 compile of a contracts/*.json schema (cached)                              | |
 * | validEnvFile(param = 'ENV', {only})      | envs.ts      | guard: envs/<ENV>.yml missing/invalid → deny before anything starts (located diagnostics) | ENV |
 * | validateContracts/Envs/Tasks(ctx), checkContracts, checkEnvs, checkTaskDefs | validate.ts | the `validate` graph of tasks/self.ts (reports in .fabric/validate/) | |
 * | runnerEnvCheck(ctx)                      | runner.ts    | runner.env.check: source RUNNER_ENV_FILE, checkRunnerEnv, then ops/scripts/runner-env-check.sh --file F | RUNNER_ENV_FILE HOME FABRIC_REPO_ROOT |
 * | checkRunnerEnv(vars) / runnerEnv(ctx)    | runner.ts    | pure check (TF_VAR_pm_api_*, ssh keys JSON list, https) / sourced env                 | |
 * | minioTfPlan(ctx), minioTfApply(ctx)      | terraform.ts | minio.tf.plan/apply body: bootstrap-local workspace, init -backend=false, validate, plan/apply -lock=false, state copy-back, output -json | ENV MINIO_BOOTSTRAP_DIR RUNNER_ENV_FILE HOME DRY_RUN CI TF_PLAN_FLAGS TF_APPLY_FLAGS FABRIC_REPO_ROOT |
 * | tfApply(ctx)                             | terraform.ts | tf.apply body after its deps: validate, apply [-auto-approve], output -json            | ENV CI TF_LOCK_TIMEOUT TF_APPLY_FLAGS RUNNER_ENV_FILE FABRIC_REPO_ROOT |
 * | prepareBootstrapWorkspace(src, work), copyStateBack(work, src) | terraform.ts | the workspace copy (no backend.tf; lock file only if present) | |
 * | autoApproveArgs(vars)                    | terraform.ts | ['-auto-approve'] only in CI mode (non-interactive)                                   | |
 * | terraformOutputJson(ctx, dir, files)     | terraform.ts | `terraform output -json` → terraform-output.json (atomic)                             | |
 * | stagedBootstrap(ctx, env, stages)        | ssh.ts       | probes as root → ansible.bootstrap --limit per stage; jump host chosen once           | ANSIBLE_* ENV |
 * | stagedBootstrapTask(stages)              | ssh.ts       | task fn: minio.up ['edges','nodes'], dns.up ['edges','auth'], shared.up ['edges','services'], postgres.internal.apply ['postgres'] | ENV ANSIBLE_FLAGS … |
 * | selectJumpHost(ctx, env), sshProbe, sshProbeArgv, probeHosts | ssh.ts | BatchMode=yes ConnectTimeout=3 StrictHostKeyChecking=accept-new; none → exit 1 | |
 * | ansibleBootstrap(ctx, {extraFlags})      | ansible.ts   | ansible.bootstrap recipe (-u root, -e @keys if present, TF_OUTPUT_PATH for minio)     | ENV ANSIBLE_DIR ANSIBLE_INVENTORY ANSIBLE_FLAGS ANSIBLE_BOOTSTRAP_KEYS_FILE MINIO_BOOTSTRAP_DIR |
 * | ansiblePlaybook(ctx, {playbook, user})   | ansible.ts   | minio.ansible.apply (state-backend.yml), dns.ansible.apply (dns.yml), …               | ENV ANSIBLE_USER ANSIBLE_FLAGS … |
 * | QUORUM_GATE, runQuorumGuard(ctx, {env})  | quorum.ts    | gate spec {warnCode 2, allowWarnVar ALLOW_DEGRADED}; runs minio-quorum-guard.sh, returns 0/1/2 | ALLOW_DEGRADED |
 * | quorumDecision(code, {allowDegraded, consumer}) | quorum.ts | WARN proceeds only with ALLOW_DEGRADED=1 and a read-only consumer                | |
 * | ensureContainersRunning(ctx, envName)    | proxmox.ts   | CT start via the Proxmox API (strict TLS, token only)                                 | PM_API_URL PM_API_TOKEN_ID PM_API_TOKEN_SECRET (or TF_VAR_pm_api_*) PM_CA_FILE |
 * | proxmoxRequest, listContainers, startContainer, waitForTask, proxmoxApiFromVars | proxmox.ts | the API client | |
 * | glueTask(fn), GlueError, getVar, varOr, isCiValue, splitWords, fabricRepoRoot, runRepoScript, sourceEnvFile, capture | vars.ts | helpers | |
 */
export * from './vars.js';
export * from './envs.js';
export * from './runner.js';
export * from './terraform.js';
export * from './ansible.js';
export * from './ssh.js';
export * from './quorum.js';
export * from './proxmox.js';
export * from './validate.js';
