// ssh probes, jump-host selection, staged bootstrap and the ansible.bootstrap command: the fake ssh of
// test/fixtures/samakia/bin answers only for the targets a test lists in FAKE_SSH_OK.
import * as assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { timedTest, test } from '../helpers/rig.js';
import { callLines, makeContext, sandbox, ROOT } from '../fixtures/samakia/context.js';
import { hostListLabel, selectJumpHost, sshProbeArgv, stagedBootstrap, stagedBootstrapTask } from '../../tasks/lib/ssh.js';
import { ansibleBootstrap, ansiblePlaybook, playbookCommand } from '../../tasks/lib/ansible.js';
import { loadEnv } from '../../tasks/lib/envs.js';
import { GlueError, glueTask } from '../../tasks/lib/vars.js';

const OPTS = '-o BatchMode=yes -o ConnectTimeout=3 -o StrictHostKeyChecking=accept-new';

timedTest('probe argv: the three options, optional ProxyJump, `true`', () => {
  assert.equal(sshProbeArgv('root@192.168.11.102').join(' '), `ssh ${OPTS} root@192.168.11.102 true`);
  assert.equal(sshProbeArgv('root@10.10.140.11', 'samakia@192.168.11.102').join(' '), `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.102 root@10.10.140.11 true`);
  assert.throws(() => sshProbeArgv('root@host; rm -rf /'), /invalid ssh target/);
  assert.throws(() => sshProbeArgv('-oProxyCommand=x'), /invalid ssh target/);
});

timedTest('hostListLabel is the Makefile form', () => {
  assert.equal(hostListLabel([{ address: '192.168.11.102' }, { address: '192.168.11.103' }]), '192.168.11.102/103');
});

type Case = [title: string, env: string, stages: string[], sshOk: string, expectedSsh: string[], bootstraps: string[]];
const J = (t: string, j: string): string => `${OPTS} -o ProxyJump=${j} ${t} true`;
const D = (t: string): string => `${OPTS} ${t} true`;
const CASES: Case[] = [
  [
    'minio.up, fresh containers: both stages bootstrap, jump is the first edge that takes samakia',
    'samakia-minio', ['edges', 'nodes'],
    'root@192.168.11.103,samakia@192.168.11.102,root@10.10.140.12^samakia@192.168.11.102',
    [D('root@192.168.11.102'), D('root@192.168.11.103'), D('samakia@192.168.11.102'), J('root@10.10.140.11', 'samakia@192.168.11.102'), J('root@10.10.140.12', 'samakia@192.168.11.102'), J('root@10.10.140.13', 'samakia@192.168.11.102')],
    ['minio-edge-*', 'minio-1,minio-2,minio-3'],
  ],
  [
    'minio.up, already bootstrapped: probes only, jump falls back to the second edge',
    'samakia-minio', ['edges', 'nodes'],
    'samakia@192.168.11.103',
    [D('root@192.168.11.102'), D('root@192.168.11.103'), D('samakia@192.168.11.102'), D('samakia@192.168.11.103'), J('root@10.10.140.11', 'samakia@192.168.11.103'), J('root@10.10.140.12', 'samakia@192.168.11.103'), J('root@10.10.140.13', 'samakia@192.168.11.103')],
    [],
  ],
  [
    'dns.up: edges done, one auth server still takes root',
    'samakia-dns', ['edges', 'auth'],
    'samakia@192.168.11.111,root@10.10.100.22',
    [D('root@192.168.11.111'), D('root@192.168.11.112'), D('samakia@192.168.11.111'), J('root@10.10.100.21', 'samakia@192.168.11.111'), J('root@10.10.100.22', 'samakia@192.168.11.111')],
    ['dns-auth-1,dns-auth-2'],
  ],
  [
    'shared.up: the limit lists only the VLAN hosts that answered',
    'samakia-shared', ['edges', 'services'],
    'root@192.168.11.106,samakia@192.168.11.107,root@10.10.120.22,root@10.10.120.31',
    [D('root@192.168.11.106'), D('root@192.168.11.107'), D('samakia@192.168.11.106'), D('samakia@192.168.11.107'), J('root@10.10.120.21', 'samakia@192.168.11.107'), J('root@10.10.120.22', 'samakia@192.168.11.107'), J('root@10.10.120.31', 'samakia@192.168.11.107'), J('root@10.10.120.32', 'samakia@192.168.11.107')],
    ['ntp-*', 'vault-2,obs-1'],
  ],
];

for (const [title, envName, stages, sshOk, expectedSsh, bootstraps] of CASES) {
  timedTest(title, async () => {
    const sb = await sandbox('ssh');
    try {
      const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: envName }, env: { FAKE_SSH_OK: sshOk } });
      const env = await loadEnv(ROOT, envName);
      const ran: string[] = [];
      await stagedBootstrap(ctx, env, stages, async (_c, limit) => void ran.push(limit));
      const calls = await sb.calls();
      assert.deepEqual(callLines(calls), expectedSsh.map((a) => `ssh ${a}`));
      assert.deepEqual(ran, bootstraps);
    } finally {
      await sb.remove();
    }
  });
}

timedTest('no jump host answers: exit 1 with the Makefile message, and no VLAN probe or bootstrap', async () => {
  const sb = await sandbox('nojump');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio' }, env: { FAKE_SSH_OK: '' } });
    const env = await loadEnv(ROOT, 'samakia-minio');
    const ran: string[] = [];
    await assert.rejects(stagedBootstrap(ctx, env, ['edges', 'nodes'], async (_c, l) => void ran.push(l)), (e: unknown) => {
      assert.ok(e instanceof GlueError);
      assert.equal(e.message, 'ERROR: cannot reach any MinIO edge as samakia (192.168.11.102/103)');
      assert.equal(e.exitCode, 1);
      return true;
    });
    assert.equal((await sb.calls()).filter((c) => c.argv.some((a) => a.startsWith('ProxyJump='))).length, 0);
    assert.deepEqual(ran, []);
    const dns = await loadEnv(ROOT, 'samakia-dns');
    await assert.rejects(selectJumpHost(ctx, dns), /^GlueError: ERROR: cannot reach any DNS edge as samakia \(192\.168\.11\.111\/112\)$/m);
  } finally {
    await sb.remove();
  }
});

async function ansibleRepo(dir: string, keys: boolean): Promise<string> {
  const repo = join(dir, 'samakia');
  await mkdir(join(repo, 'fabric-core', 'ansible', 'playbooks'), { recursive: true });
  if (keys) {
    await mkdir(join(repo, 'fabric-core', 'ansible', 'secrets'), { recursive: true });
    await writeFile(join(repo, 'fabric-core', 'ansible', 'secrets', 'authorized_keys.yml'), 'keys: []\n');
  }
  return repo;
}

timedTest('ansible.bootstrap: -u root, keys only when the file exists, ANSIBLE_FLAGS word-split then --limit, env for the inventory plugin', async () => {
  const sb = await sandbox('ansible');
  try {
    const repo = await ansibleRepo(sb.dir, true);
    const outDir = join(sb.home, '.cache', 'samakia-fabric', 'tf-bootstrap', 'samakia-minio');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'terraform-output.json'), '{}');
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-minio', ANSIBLE_FLAGS: '-v  --diff', FABRIC_REPO_ROOT: repo } });
    await ansibleBootstrap(ctx, { extraFlags: ['--limit', 'minio-edge-*'] });
    const [call] = await sb.calls();
    const A = join(repo, 'fabric-core', 'ansible');
    assert.deepEqual(call?.argv, ['-i', join(A, 'inventory/terraform.py'), join(A, 'playbooks', 'bootstrap.yml'), '-u', 'root', '-e', `@${join(A, 'secrets/authorized_keys.yml')}`, '-v', '--diff', '--limit', 'minio-edge-*']);
    assert.deepEqual(call?.env, { ENV: 'samakia-minio', ANSIBLE_FLAGS: '-v  --diff', ANSIBLE_CONFIG: join(A, 'ansible.cfg'), FABRIC_TERRAFORM_ENV: 'samakia-minio', TF_OUTPUT_PATH: join(outDir, 'terraform-output.json'), FABRIC_REPO_ROOT: repo });
    assert.equal(call?.cwd, repo);
  } finally {
    await sb.remove();
  }
});

timedTest('playbook runs: no keys file → no -e; dns has no TF_OUTPUT_PATH; ./ inventory paths are kept', () => {
  const p = playbookCommand({ ENV: 'samakia-dns', ANSIBLE_INVENTORY: './inv.py' }, '/r', '/h', { playbook: 'dns.yml' });
  assert.deepEqual(p.argv, ['ansible-playbook', '-i', './inv.py', '/r/fabric-core/ansible/playbooks/dns.yml', '-u', 'samakia']);
  assert.deepEqual(p.env, { FABRIC_TERRAFORM_ENV: 'samakia-dns', ANSIBLE_CONFIG: '/r/fabric-core/ansible/ansible.cfg' });
  const b = playbookCommand({ ENV: 'samakia-dns' }, '/nonexistent', '/h', { playbook: 'bootstrap.yml', user: 'root', bootstrapKeys: true });
  assert.ok(!b.argv.includes('-e'));
});

timedTest('a missing ANSIBLE_DIR is the Makefile error; a failing playbook fails with its code', async () => {
  const sb = await sandbox('ansible2');
  try {
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: join(sb.dir, 'none') } });
    await assert.rejects(ansiblePlaybook(ctx, { playbook: 'dns.yml' }), (e: unknown) => e instanceof GlueError && e.exitCode === 1 && e.message === `ERROR: ANSIBLE_DIR not found: ${join(sb.dir, 'none', 'fabric-core', 'ansible')}`);
    const repo = await ansibleRepo(sb.dir, false);
    const bad = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: repo }, env: { FAKE_FAIL: 'ansible-playbook', FAKE_FAIL_CODE: '4' } });
    await assert.rejects(ansiblePlaybook(bad, { playbook: 'dns.yml' }), (e: unknown) => e instanceof GlueError && e.exitCode === 4);
  } finally {
    await sb.remove();
  }
});

timedTest('stagedBootstrapTask runs the real ansible.bootstrap per stage (dns.up) and returns 0', async () => {
  const sb = await sandbox('task');
  try {
    const repo = await ansibleRepo(sb.dir, false);
    const ctx = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: repo, ANSIBLE_FLAGS: '' }, env: { FAKE_SSH_OK: 'root@192.168.11.112,samakia@192.168.11.112,root@10.10.100.21' } });
    assert.equal(await glueTask(stagedBootstrapTask(['edges', 'auth']))(ctx as never), 0);
    const books = (await sb.calls()).filter((c) => c.tool === 'ansible-playbook').map((c) => c.argv.slice(-2).join(' '));
    assert.deepEqual(books, ['--limit dns-edge-*', '--limit dns-auth-1,dns-auth-2']);
    const none = makeContext({ home: sb.home, fakeLog: sb.fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: repo } });
    assert.equal(await glueTask(stagedBootstrapTask(['edges', 'auth']))(none as never), 1);
    assert.ok(none.lines.includes('ERROR: cannot reach any DNS edge as samakia (192.168.11.111/112)'));
  } finally {
    await sb.remove();
  }
});

test.run();
