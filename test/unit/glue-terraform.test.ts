// The samakia-minio bootstrap-local workspace, -auto-approve, output capture: real files, the fake
// terraform of test/fixtures/samakia/bin on PATH (it logs its argv and writes a state on apply).
import * as assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { timedTest, test } from '../helpers/rig.js';
import { callLines, makeContext, sandbox, ROOT } from '../fixtures/samakia/context.js';
import { autoApproveArgs, copyStateBack, minioTfApply, minioTfPlan, prepareBootstrapWorkspace, STATE_MARKER, terraformOutputJson } from '../../tasks/lib/terraform.js';
import { glueTask, GlueError } from '../../tasks/lib/vars.js';

const LXC_STATE = JSON.stringify({ version: 4, serial: 7, resources: [{ type: 'proxmox_lxc' }] }, null, 2);
const EMPTY_STATE = JSON.stringify({ version: 4, serial: 8, resources: [] }, null, 2);

/** A fake Samakia checkout with fabric-core/terraform/envs/samakia-minio. */
async function minioRepo(dir: string, files: Record<string, string>): Promise<{ repo: string; src: string }> {
  const repo = join(dir, 'samakia');
  const src = join(repo, 'fabric-core', 'terraform', 'envs', 'samakia-minio');
  await mkdir(src, { recursive: true });
  for (const [f, t] of Object.entries(files)) await writeFile(join(src, f), t);
  return { repo, src };
}

timedTest('STATE_MARKER matches what terraform writes', () => {
  assert.ok(LXC_STATE.includes(STATE_MARKER));
});

timedTest('the workspace gets every *.tf except backend.tf, no lock file when absent (fresh clone), and the state', async () => {
  const sb = await sandbox('ws');
  try {
    const { src } = await minioRepo(sb.dir, { 'main.tf': 'a', 'variables.tf': 'b', 'backend.tf': 'terraform { backend "s3" {} }', 'terraform.tfstate': LXC_STATE, 'notes.md': 'x' });
    const work = join(sb.dir, 'work');
    await mkdir(join(work, '.terraform', 'providers'), { recursive: true });
    await writeFile(join(work, 'stale.tf'), 'old');
    await writeFile(join(work, '.terraform.lock.hcl'), 'old lock');
    const r = await prepareBootstrapWorkspace(src, work);
    assert.deepEqual(r.tfFiles, ['main.tf', 'variables.tf']);
    assert.equal(r.lockFile, 'absent');
    assert.deepEqual(r.stateCopied, ['terraform.tfstate']);
    assert.equal(r.restoredFromBackup, false);
    assert.deepEqual((await readdir(work)).sort(), ['main.tf', 'terraform.tfstate', 'variables.tf']);
  } finally {
    await sb.remove();
  }
});

timedTest('the lock file is copied when it exists; empty state files are not copied', async () => {
  const sb = await sandbox('ws2');
  try {
    const { src } = await minioRepo(sb.dir, { 'main.tf': 'a', '.terraform.lock.hcl': 'lock', 'terraform.tfstate': '', 'terraform.tfstate.backup': '' });
    const work = join(sb.dir, 'work');
    const r = await prepareBootstrapWorkspace(src, work);
    assert.equal(r.lockFile, 'copied');
    assert.equal(await readFile(join(work, '.terraform.lock.hcl'), 'utf8'), 'lock');
    assert.deepEqual(r.stateCopied, []);
    assert.equal(existsSync(join(work, 'terraform.tfstate')), false);
  } finally {
    await sb.remove();
  }
});

// [title, state, backup, restored?]
const BACKUP_CASES: [string, string | undefined, string | undefined, boolean][] = [
  ['state manages containers: kept', LXC_STATE, LXC_STATE.replace('7', '6'), false],
  ['state has no container, backup has: backup restored', EMPTY_STATE, LXC_STATE, true],
  ['no state, backup present: backup restored', undefined, LXC_STATE, true],
  ['neither has containers: state kept', EMPTY_STATE, EMPTY_STATE.replace('8', '5'), false],
  ['no backup: state kept', EMPTY_STATE, undefined, false],
];
for (const [title, state, backup, restored] of BACKUP_CASES) {
  timedTest(`state selection: ${title}`, async () => {
    const sb = await sandbox('bk');
    try {
      const files: Record<string, string> = { 'main.tf': 'a' };
      if (state !== undefined) files['terraform.tfstate'] = state;
      if (backup !== undefined) files['terraform.tfstate.backup'] = backup;
      const { src } = await minioRepo(sb.dir, files);
      const work = join(sb.dir, 'work');
      const r = await prepareBootstrapWorkspace(src, work);
      assert.equal(r.restoredFromBackup, restored);
      const now = existsSync(join(work, 'terraform.tfstate')) ? await readFile(join(work, 'terraform.tfstate'), 'utf8') : undefined;
      assert.equal(now, restored ? backup : state);
    } finally {
      await sb.remove();
    }
  });
}

timedTest('a missing env dir is the Makefile error, exit 1', async () => {
  await assert.rejects(prepareBootstrapWorkspace('/nonexistent/envs/samakia-minio', '/tmp/x'), (e: unknown) => {
    assert.ok(e instanceof GlueError);
    assert.equal(e.message, 'ERROR: Terraform env dir not found: /nonexistent/envs/samakia-minio');
    assert.equal(e.exitCode, 1);
    return true;
  });
});

timedTest('copyStateBack copies the state files that exist', async () => {
  const sb = await sandbox('back');
  try {
    const { src } = await minioRepo(sb.dir, {});
    const work = join(sb.dir, 'work');
    await mkdir(work);
    await writeFile(join(work, 'terraform.tfstate'), LXC_STATE);
    assert.deepEqual(await copyStateBack(work, src), ['terraform.tfstate']);
    assert.equal(await readFile(join(src, 'terraform.tfstate'), 'utf8'), LXC_STATE);
  } finally {
    await sb.remove();
  }
});

// [CI value, auto-approve?]: non-interactive means CI mode, with the one CI rule (CI=true counts, defect 5).
const APPROVE: [string | undefined, boolean][] = [
  ['1', true], ['true', true], ['TRUE', true], ['yes', true], [undefined, false], ['', false], ['0', false], ['false', false], ['False', false],
];
for (const [ci, yes] of APPROVE) {
  timedTest(`-auto-approve with CI=${String(ci)}: ${yes}`, () => {
    assert.deepEqual(autoApproveArgs({ CI: ci }), yes ? ['-auto-approve'] : []);
  });
}

async function applyFixture(name: string): Promise<{ sb: Awaited<ReturnType<typeof sandbox>>; repo: string; src: string; work: string }> {
  const sb = await sandbox(name);
  const { repo, src } = await minioRepo(sb.dir, { 'main.tf': 'a', 'backend.tf': 'b', 'terraform.tfstate': LXC_STATE });
  return { sb, repo, src, work: join(sb.home, '.cache', 'samakia-fabric', 'tf-bootstrap', 'samakia-minio') };
}

timedTest('minio.tf.apply with CI=1: init without backend, validate, apply -auto-approve, state back, output -json in both places', async () => {
  const { sb, repo, src, work } = await applyFixture('apply');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', CI: '1', TF_APPLY_FLAGS: ' -parallelism=2  -refresh=true ', FABRIC_REPO_ROOT: repo } });
    assert.equal(await minioTfApply(ctx), 0);
    assert.deepEqual(callLines(await sb.calls(), work), [
      'terraform -chdir=<dir> init -input=false -backend=false -reconfigure',
      'terraform -chdir=<dir> validate',
      'terraform -chdir=<dir> apply -input=false -lock=false -auto-approve -parallelism=2 -refresh=true',
      'terraform -chdir=<dir> output -json',
    ]);
    // the fake apply bumped the serial in the workspace; the env dir got it back
    assert.equal(JSON.parse(await readFile(join(src, 'terraform.tfstate'), 'utf8')).serial, 8);
    for (const f of [join(work, 'terraform-output.json'), join(src, 'terraform-output.json')]) assert.deepEqual(JSON.parse(await readFile(f, 'utf8')), { fake: { value: 'ok' } });
    assert.equal(existsSync(join(work, 'backend.tf')), false);
  } finally {
    await sb.remove();
  }
});

timedTest('minio.tf.apply without CI: no -auto-approve (terraform asks)', async () => {
  const { sb, repo, work } = await applyFixture('apply-noci');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', CI: '0', FABRIC_REPO_ROOT: repo } });
    await minioTfApply(ctx);
    assert.ok(callLines(await sb.calls(), work).includes('terraform -chdir=<dir> apply -input=false -lock=false'));
  } finally {
    await sb.remove();
  }
});

timedTest('minio.tf.apply DRY_RUN=1 plans, copies state back, writes no output file', async () => {
  const { sb, repo, src, work } = await applyFixture('dry');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', CI: '1', DRY_RUN: '1', TF_PLAN_FLAGS: '-refresh=false', FABRIC_REPO_ROOT: repo } });
    await minioTfApply(ctx);
    assert.deepEqual(callLines(await sb.calls(), work), [
      'terraform -chdir=<dir> init -input=false -backend=false -reconfigure',
      'terraform -chdir=<dir> validate',
      'terraform -chdir=<dir> plan -input=false -lock=false -refresh=false',
    ]);
    assert.equal(existsSync(join(src, 'terraform-output.json')), false);
    assert.equal(existsSync(join(work, 'terraform-output.json')), false);
  } finally {
    await sb.remove();
  }
});

timedTest('minio.tf.plan plans with -lock=false; a failing apply still copies the state back and fails with its code', async () => {
  const { sb, repo, src, work } = await applyFixture('plan');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', FABRIC_REPO_ROOT: repo } });
    await minioTfPlan(ctx);
    assert.deepEqual(callLines(await sb.calls(), work).slice(-1), ['terraform -chdir=<dir> plan -input=false -lock=false']);
    const failing = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', CI: '1', FABRIC_REPO_ROOT: repo }, env: { FAKE_FAIL: 'terraform validate', FAKE_FAIL_CODE: '3' } });
    await assert.rejects(minioTfApply(failing), (e: unknown) => e instanceof GlueError && e.exitCode === 3);
    assert.equal(JSON.parse(await readFile(join(src, 'terraform.tfstate'), 'utf8')).serial, 7);
    assert.ok(failing.lines.some((l) => l.startsWith('copied terraform.tfstate back to')), 'state copied back after the failure');
    assert.equal(existsSync(join(src, 'terraform-output.json')), false);
    // through glueTask the failure becomes the task's exit code and a logged message
    const code = await glueTask(minioTfApply)(failing as never);
    assert.equal(code, 3);
    assert.ok(failing.lines.some((l) => /terraform validate failed \(exit 3\)/.test(l)));
  } finally {
    await sb.remove();
  }
});

timedTest('minio.tf.* refuse any other ENV with exit 2', async () => {
  const sb = await sandbox('env');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns' } });
    await assert.rejects(minioTfPlan(ctx), (e: unknown) => e instanceof GlueError && e.exitCode === 2 && e.message === 'ERROR: set ENV=samakia-minio');
    assert.deepEqual(await sb.calls(), []);
  } finally {
    await sb.remove();
  }
});

timedTest('terraformOutputJson refuses non-JSON output and leaves no file', async () => {
  const sb = await sandbox('out');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, env: { FAKE_TF_OUTPUT: 'Error: not initialized' } });
    const out = join(sb.dir, 'terraform-output.json');
    await assert.rejects(terraformOutputJson(ctx, sb.dir, [out]), /did not print JSON/);
    assert.equal(existsSync(out), false);
    assert.ok(ROOT.length > 0);
  } finally {
    await sb.remove();
  }
});

test.run();
