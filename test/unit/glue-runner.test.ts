// runner.env.check's logic and the quorum-guard exit codes: pure tables, then the real task functions
// against a fake Samakia checkout whose ops/scripts are small bash scripts.
import * as assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { timedTest, test } from '../helpers/rig.js';
import { makeContext, sandbox } from '../fixtures/samakia/context.js';
import { checkRunnerEnv, runnerEnvCheck } from '../../tasks/lib/runner.js';
import { QUORUM_GATE, quorumDecision, quorumState, runQuorumGuard } from '../../tasks/lib/quorum.js';
import { glueTask, GlueError, isCiValue, sourceEnvFile, splitWords } from '../../tasks/lib/vars.js';

const GOOD = {
  TF_VAR_pm_api_url: 'https://192.168.11.2:8006/api2/json',
  TF_VAR_pm_api_token_id: 'terraform@pve!fabric',
  TF_VAR_pm_api_token_secret: 's3cr3t-value',
  TF_VAR_ssh_public_keys: '["ssh-ed25519 AAAA op@host"]',
};

// [title, changes to GOOD, expected messages]
const RUNNER: [string, Record<string, string | undefined>, string[]][] = [
  ['complete', {}, []],
  ['missing keys', { TF_VAR_ssh_public_keys: undefined }, ['ERROR: missing required env var: TF_VAR_ssh_public_keys']],
  ['blank token secret', { TF_VAR_pm_api_token_secret: '  ' }, ['ERROR: missing required env var: TF_VAR_pm_api_token_secret']],
  ['keys not JSON', { TF_VAR_ssh_public_keys: 'ssh-ed25519 AAAA' }, ['ERROR: TF_VAR_ssh_public_keys must be valid JSON']],
  ['keys an empty list', { TF_VAR_ssh_public_keys: '[]' }, ['ERROR: TF_VAR_ssh_public_keys must be a non-empty JSON list of keys']],
  ['keys not a list', { TF_VAR_ssh_public_keys: '{"a":1}' }, ['ERROR: TF_VAR_ssh_public_keys must be a non-empty JSON list of keys']],
  ['http API', { TF_VAR_pm_api_url: 'http://192.168.11.2:8006/api2/json' }, ['ERROR: TF_VAR_pm_api_url must be https:// (strict TLS)']],
  ['user id instead of token id', { TF_VAR_pm_api_token_id: 'root@pam' }, ["ERROR: TF_VAR_pm_api_token_id must be an API token id (user@realm!token): it must contain '!'"]],
  ['http backend', { TF_BACKEND_S3_ENDPOINT: 'http://192.168.11.101:9000' }, ['ERROR: TF_BACKEND_S3_ENDPOINT must be https://']],
  ['insecure TLS asked', { PM_TLS_INSECURE: '1' }, ['ERROR: PM_TLS_INSECURE is not allowed (strict TLS only)']],
  ['everything missing', { TF_VAR_pm_api_url: undefined, TF_VAR_pm_api_token_id: undefined, TF_VAR_pm_api_token_secret: undefined, TF_VAR_ssh_public_keys: undefined }, [
    'ERROR: missing required env var: TF_VAR_pm_api_url', 'ERROR: missing required env var: TF_VAR_pm_api_token_id',
    'ERROR: missing required env var: TF_VAR_pm_api_token_secret', 'ERROR: missing required env var: TF_VAR_ssh_public_keys',
  ]],
];
for (const [title, change, expected] of RUNNER) {
  timedTest(`runner env: ${title}`, () => {
    const problems = checkRunnerEnv({ ...GOOD, ...change });
    assert.deepEqual(problems.map((p) => p.message), expected);
    for (const p of problems) assert.ok(!p.message.includes('s3cr3t'), 'no secret value in messages');
  });
}

timedTest('isCiValue and splitWords', () => {
  assert.deepEqual(['1', 'true', 'yes', 'on', '', '0', 'false', 'FALSE', ' 0 '].map(isCiValue), [true, true, true, true, false, false, false, false, false]);
  assert.equal(isCiValue(undefined), false);
  assert.deepEqual(splitWords('  --limit  minio-edge-*\t-v '), ['--limit', 'minio-edge-*', '-v']);
  assert.deepEqual(splitWords(''), []);
});

/** A fake Samakia checkout whose scripts log their argv and a few env vars to $FAKE_LOG, then exit with $<NAME>_RC. */
async function scriptRepo(dir: string): Promise<string> {
  const repo = join(dir, 'samakia');
  await mkdir(join(repo, 'ops', 'scripts'), { recursive: true });
  const script = (rcVar: string): string =>
    `#!/usr/bin/env bash\nset -euo pipefail\nprintf '{"tool":"script:%s","argv":["%s"],"cwd":"","env":{"ENV":"%s","TF_VAR_pm_api_token_id":"%s"}}\\n' "$(basename "$0")" "$*" "\${ENV:-}" "\${TF_VAR_pm_api_token_id:-}" >> "$FAKE_LOG"\nexit "\${${rcVar}:-0}"\n`;
  for (const [name, rc] of [['runner-env-check.sh', 'RUNNER_CHECK_RC'], ['minio-quorum-guard.sh', 'QUORUM_RC']] as const) {
    await writeFile(join(repo, 'ops', 'scripts', name), script(rc));
    await chmod(join(repo, 'ops', 'scripts', name), 0o755);
  }
  return repo;
}

timedTest('sourceEnvFile: set -a semantics, a path with spaces and quotes, nothing spliced into the shell', async () => {
  const sb = await sandbox('src');
  try {
    const dir = join(sb.dir, `it's a "dir"`);
    await mkdir(dir);
    const file = join(dir, 'env.sh');
    await writeFile(file, `TF_VAR_pm_api_url="https://pve:8006/api2/json"\nexport FOO='a b'\nBAR=$(printf x)y\necho noise\n`);
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog });
    const got = await sourceEnvFile(ctx, file);
    assert.deepEqual(got, { TF_VAR_pm_api_url: 'https://pve:8006/api2/json', FOO: 'a b', BAR: 'xy' });
    assert.deepEqual(await sourceEnvFile(ctx, join(dir, 'missing.sh')), {});
  } finally {
    await sb.remove();
  }
});

timedTest('runnerEnvCheck: sources RUNNER_ENV_FILE, checks, then runs runner-env-check.sh --file F with the sourced env', async () => {
  const sb = await sandbox('runner');
  try {
    const repo = await scriptRepo(sb.dir);
    const file = join(sb.dir, 'env.sh');
    await writeFile(file, Object.entries(GOOD).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n');
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { RUNNER_ENV_FILE: file, FABRIC_REPO_ROOT: repo } });
    assert.equal(await runnerEnvCheck(ctx), 0);
    const calls = await sb.calls();
    assert.deepEqual(calls.map((c) => [c.tool, c.argv[0], c.env['TF_VAR_pm_api_token_id']]), [['script:runner-env-check.sh', `--file ${file}`, 'terraform@pve!fabric']]);
    // a broken file: the TS check refuses before the script runs, exit 1, every problem listed
    await writeFile(file, `TF_VAR_pm_api_url=http://x\n`);
    const bad = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { RUNNER_ENV_FILE: file, FABRIC_REPO_ROOT: repo } });
    assert.equal(await glueTask(runnerEnvCheck)(bad as never), 1);
    assert.ok(bad.lines.includes('ERROR: missing required env var: TF_VAR_ssh_public_keys'));
    assert.ok(bad.lines.includes('ERROR: TF_VAR_pm_api_url must be https:// (strict TLS)'));
    assert.equal((await sb.calls()).length, 1, 'the script did not run again');
    // the script's own failure code is the task's
    const scriptFails = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { FABRIC_REPO_ROOT: repo }, env: { ...GOOD, RUNNER_CHECK_RC: '2' } });
    assert.equal(await glueTask(runnerEnvCheck)(scriptFails as never), 2);
    // no script in the checkout: a clear error naming the path and FABRIC_REPO_ROOT
    const noRepo = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { FABRIC_REPO_ROOT: sb.home }, env: GOOD });
    await assert.rejects(runnerEnvCheck(noRepo), (e: unknown) => e instanceof GlueError && e.message === `ERROR: script not found: ${join(sb.home, 'ops/scripts/runner-env-check.sh')} (FABRIC_REPO_ROOT=${sb.home})`);
  } finally {
    await sb.remove();
  }
});

timedTest('quorum: 0 pass, 2 warn, 1 (and anything else) fail', () => {
  assert.deepEqual([0, 1, 2, 3, 127, null].map(quorumState), ['pass', 'fail', 'warn', 'fail', 'fail', 'fail']);
  assert.deepEqual(QUORUM_GATE, { description: QUORUM_GATE.description, warnCode: 2, allowWarnVar: 'ALLOW_DEGRADED' });
});

// [code, ALLOW_DEGRADED, consumer, proceed]
const GATE: [number, string | undefined, 'read-only' | 'mutating', boolean][] = [
  [0, undefined, 'mutating', true],
  [0, undefined, 'read-only', true],
  [1, '1', 'read-only', false],
  [2, undefined, 'read-only', false],
  [2, '0', 'read-only', false],
  [2, 'true', 'read-only', false],
  [2, '1', 'read-only', true],
  [2, '1', 'mutating', false],
];
for (const [code, allow, consumer, proceed] of GATE) {
  timedTest(`quorum gate: exit ${code}, ALLOW_DEGRADED=${String(allow)}, ${consumer} consumer → ${proceed ? 'proceed' : 'stop'}`, () => {
    const d = quorumDecision(code, { allowDegraded: allow, consumer });
    assert.equal(d.proceed, proceed);
    if (code === 2 && proceed) assert.match(d.message, /\[WARN\].*ALLOW_DEGRADED=1/);
  });
}

timedTest('runQuorumGuard returns the script code (0/1/2) for the gate; dns.up passes ENV=samakia-minio', async () => {
  const sb = await sandbox('quorum');
  try {
    const repo = await scriptRepo(sb.dir);
    for (const rc of [0, 1, 2]) {
      const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: repo }, env: { QUORUM_RC: String(rc) } });
      assert.equal(await runQuorumGuard(ctx, { env: { ENV: 'samakia-minio' } }), rc);
    }
    assert.deepEqual((await sb.calls()).map((c) => c.env['ENV']), ['samakia-minio', 'samakia-minio', 'samakia-minio']);
    const crash = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { FABRIC_REPO_ROOT: repo }, env: { QUORUM_RC: '3' } });
    assert.equal(await glueTask((c) => runQuorumGuard(c))(crash as never), 3);
  } finally {
    await sb.remove();
  }
});

test.run();
