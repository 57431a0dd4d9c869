// The minio.up and dns.up chains, really run by the CLI in a Samakia-shaped checkout with fake
// terraform/ansible/ssh/mc/curl, fake repo scripts and a fake Proxmox API (HTTPS, test CA), all logging
// to one file: every call happens in the catalogue's order with its arguments, and each distinct check
// runs exactly once (runner.env.check once, where the Makefile ran it 6 and 5 times).
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rigTest, test, type FabricRun } from '../helpers/rig.js';
import { chainRepo, type Call } from '../fixtures/samakia/chain-repo.js';

const OPTS = '-o BatchMode=yes -o ConnectTimeout=3 -o StrictHostKeyChecking=accept-new';
const INV = '<repo>/fabric-core/ansible/inventory/terraform.py';
const BOOK = (b: string): string => `<repo>/fabric-core/ansible/playbooks/${b}`;

const failureText = (run: FabricRun): string =>
  run.events.flatMap((e) => (e.type === 'task-failure' ? [`${e.node}: ${JSON.stringify(e.failure)}`] : e.type === 'task-output' ? [e.chunk] : [])).join('\n').slice(-6000) + run.stderr.slice(-2000);

/**
 * Checks the log against the catalogue's order: `main` must appear as a subsequence in exactly this
 * order; each `[call, before]` of `hoisted` (dependencies fabric may start earlier than the recipe line
 * that needed them) must appear once, before the first occurrence of `before`; nothing else may run.
 */
function assertOrder(calls: readonly Call[], main: readonly string[], hoisted: readonly (readonly [string, string])[]): void {
  const lines = calls.map((c) => c.line);
  const show = `\nactual log:\n  ${lines.join('\n  ')}`;
  const hoistedSet = new Set(hoisted.map(([c]) => c));
  assert.deepEqual(lines.filter((l) => !hoistedSet.has(l)), [...main], `main sequence${show}`);
  for (const [call, before] of hoisted) {
    const at = lines.indexOf(call);
    assert.ok(at >= 0, `${call} ran${show}`);
    assert.equal(lines.lastIndexOf(call), at, `${call} ran once${show}`);
    const b = lines.indexOf(before);
    assert.ok(b >= 0 && at < b, `${call} ran before ${before}${show}`);
  }
}

const MINIO_MAIN = [
  'script:ops/scripts/proxmox-sdn-ensure-stateful-plane.sh --apply',
  'script:ops/scripts/backend-configure.sh --file <envfile>',
  'terraform -chdir=<ws> init -input=false -backend=false -reconfigure',
  'terraform -chdir=<ws> validate',
  'terraform -chdir=<ws> plan -input=false -lock=false',
  'terraform -chdir=<ws> init -input=false -backend=false -reconfigure',
  'terraform -chdir=<ws> validate',
  'terraform -chdir=<ws> apply -input=false -lock=false -auto-approve',
  'terraform -chdir=<ws> output -json',
  'proxmox-api GET /api2/json/cluster/resources?type=vm',
  'proxmox-api POST /api2/json/nodes/proxmox2/lxc/302/status/start',
  'proxmox-api GET /api2/json/nodes/proxmox2/tasks/UPID/status',
  'proxmox-api GET /api2/json/nodes/proxmox2/tasks/UPID/status',
  'proxmox-api POST /api2/json/nodes/proxmox1/lxc/303/status/start',
  'proxmox-api GET /api2/json/nodes/proxmox1/tasks/UPID/status',
  'proxmox-api GET /api2/json/nodes/proxmox1/tasks/UPID/status',
  `ansible-inventory -i ${INV} --list`,
  'script:ops/scripts/inventory-sanity-check.sh samakia-minio',
  `ssh ${OPTS} root@192.168.11.102 true`,
  `ssh ${OPTS} root@192.168.11.103 true`,
  `ansible-playbook -i ${INV} ${BOOK('bootstrap.yml')} -u root --limit minio-edge-*`,
  `ssh ${OPTS} samakia@192.168.11.102 true`,
  `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.102 root@10.10.140.11 true`,
  `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.102 root@10.10.140.12 true`,
  `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.102 root@10.10.140.13 true`,
  `ansible-playbook -i ${INV} ${BOOK('bootstrap.yml')} -u root --limit minio-1,minio-2,minio-3`,
  `ansible-playbook -i ${INV} ${BOOK('state-backend.yml')} -u samakia`,
  'script:ops/scripts/minio-accept.sh',
  'script:ops/scripts/minio-quorum-guard.sh',
  'script:ops/scripts/minio-terraform-backend-smoke.sh',
  'script:ops/scripts/tf-backend-init.sh samakia-minio --migrate',
];
const MINIO_HOISTED = [
  ['script:ops/scripts/runner-env-check.sh --file <envfile>', 'script:ops/scripts/proxmox-sdn-ensure-stateful-plane.sh --apply'],
  ['script:ops/scripts/ha/enforce-placement.sh --env samakia-minio', 'terraform -chdir=<ws> plan -input=false -lock=false'],
  ['script:ops/scripts/ha/proxmox-ha-audit.sh --enforce --env samakia-minio', 'terraform -chdir=<ws> plan -input=false -lock=false'],
] as const;

rigTest('fabric run minio.up ENV=samakia-minio: the catalogue order and arguments, each check once', async (rig) => {
  const repo = await chainRepo(rig.dir);
  try {
    await repo.control({ FAKE_SSH_OK: 'root@192.168.11.102,samakia@192.168.11.102,root@10.10.140.13^samakia@192.168.11.102' });
    const run = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
    assert.equal(run.code, 0, failureText(run));
    const calls = await repo.calls();
    assertOrder(calls, MINIO_MAIN, MINIO_HOISTED);
    // the workspace left backend.tf out; state and outputs came back to the env dir
    const envDir = join(rig.dir, 'fabric-core', 'terraform', 'envs', 'samakia-minio');
    assert.equal(existsSync(join(repo.workspace, 'backend.tf')), false);
    assert.ok(existsSync(join(repo.workspace, 'main.tf')));
    assert.match(await readFile(join(envDir, 'terraform.tfstate'), 'utf8'), /"type": "proxmox_lxc"/);
    assert.deepEqual(JSON.parse(await readFile(join(envDir, 'terraform-output.json'), 'utf8')), { fake: { value: 'ok' } });
    // the playbooks saw the env and, for samakia-minio, the bootstrap outputs
    for (const c of calls.filter((x) => x.tool === 'ansible-playbook' || x.tool === 'ansible-inventory')) {
      assert.equal(c.env['FABRIC_TERRAFORM_ENV'], 'samakia-minio', c.line);
      assert.equal(c.env['TF_OUTPUT_PATH'], join(repo.workspace, 'terraform-output.json'), c.line);
    }
    // every node ran once
    const started = run.events.flatMap((e) => (e.type === 'task-start' ? [e.node] : []));
    assert.equal(new Set(started).size, started.length, `a node started twice: ${started.join(', ')}`);
    assert.equal(started.filter((n) => n.startsWith('runner.env.check')).length, 1);
  } finally {
    await repo.close();
  }
}, { ms: 240_000 });

const DNS_DIR = '<repo>/fabric-core/terraform/envs/samakia-dns';
const DNS_MAIN = [
  'script:ops/scripts/minio-terraform-backend-smoke.sh',
  'script:ops/scripts/minio-quorum-guard.sh',
  `terraform -chdir=${DNS_DIR} validate`,
  `terraform -chdir=${DNS_DIR} plan -input=false -lock-timeout=60s`,
  `terraform -chdir=${DNS_DIR} validate`,
  `terraform -chdir=${DNS_DIR} apply -input=false -lock-timeout=60s -auto-approve`,
  `terraform -chdir=${DNS_DIR} output -json`,
  `ssh ${OPTS} root@192.168.11.111 true`,
  `ssh ${OPTS} root@192.168.11.112 true`,
  `ansible-playbook -i ${INV} ${BOOK('bootstrap.yml')} -u root --limit dns-edge-*`,
  `ssh ${OPTS} samakia@192.168.11.111 true`,
  `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.111 root@10.10.100.21 true`,
  `ssh ${OPTS} -o ProxyJump=samakia@192.168.11.111 root@10.10.100.22 true`,
  `ansible-playbook -i ${INV} ${BOOK('bootstrap.yml')} -u root --limit dns-auth-1,dns-auth-2`,
  `ansible-playbook -i ${INV} ${BOOK('dns.yml')} -u samakia`,
  'script:ops/scripts/dns-accept.sh',
];
const DNS_HOISTED = [
  ['script:ops/scripts/runner-env-check.sh --file <envfile>', 'script:ops/scripts/minio-terraform-backend-smoke.sh'],
  ['script:ops/scripts/tf-backend-init.sh samakia-dns', `terraform -chdir=${DNS_DIR} validate`],
  ['script:ops/scripts/ha/enforce-placement.sh --env samakia-dns', `terraform -chdir=${DNS_DIR} plan -input=false -lock-timeout=60s`],
  ['script:ops/scripts/ha/proxmox-ha-audit.sh --enforce --env samakia-dns', `terraform -chdir=${DNS_DIR} plan -input=false -lock-timeout=60s`],
] as const;

rigTest('fabric run dns.up ENV=samakia-dns: the catalogue order and arguments, backend smoke, backend init, HA gate and runner check once', async (rig) => {
  const repo = await chainRepo(rig.dir);
  try {
    await repo.control({ FAKE_SSH_OK: 'root@192.168.11.112,samakia@192.168.11.111,root@10.10.100.21^samakia@192.168.11.111' });
    const run = await rig.fabric(['run', 'dns.up', 'ENV=samakia-dns', '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
    assert.equal(run.code, 0, failureText(run));
    const calls = await repo.calls();
    assertOrder(calls, DNS_MAIN, DNS_HOISTED);
    // the backend smoke and the quorum guard are about samakia-minio; everything else about samakia-dns
    const byLine = (l: string): Call => calls.find((c) => c.line === l)!;
    assert.equal(byLine('script:ops/scripts/minio-quorum-guard.sh').env['ENV'], 'samakia-minio');
    assert.equal(byLine('script:ops/scripts/minio-terraform-backend-smoke.sh').env['ENV'] ?? 'samakia-minio', 'samakia-minio');
    for (const c of calls.filter((x) => x.tool === 'ansible-playbook')) assert.equal(c.env['FABRIC_TERRAFORM_ENV'], 'samakia-dns', c.line);
    assert.deepEqual(JSON.parse(await readFile(join(rig.dir, 'fabric-core', 'terraform', 'envs', 'samakia-dns', 'terraform-output.json'), 'utf8')), { fake: { value: 'ok' } });
    const started = run.events.flatMap((e) => (e.type === 'task-start' ? [e.node] : []));
    assert.equal(new Set(started).size, started.length, `a node started twice: ${started.join(', ')}`);
    for (const check of ['runner.env.check', 'minio.backend.smoke', 'tf.backend.init', 'ha.enforce.check']) {
      assert.equal(started.filter((n) => n === check || n.startsWith(`${check}[`)).length, 1, `${check} once: ${started.join(', ')}`);
    }
  } finally {
    await repo.close();
  }
}, { ms: 240_000 });

rigTest('minio.up stops with exit 1 and the Makefile message when no edge takes the samakia login; nothing after it runs', async (rig) => {
  const repo = await chainRepo(rig.dir);
  try {
    await repo.control({ FAKE_SSH_OK: '' });
    const run = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
    assert.equal(run.code, 1);
    const out = run.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join('');
    assert.match(out, /ERROR: cannot reach any MinIO edge as samakia \(192\.168\.11\.102\/103\)/);
    const lines = (await repo.calls()).map((c) => c.line);
    assert.ok(!lines.some((l) => l.includes('ProxyJump=')), 'no VLAN probe');
    assert.ok(!lines.some((l) => l.startsWith('ansible-playbook')), 'no playbook');
    assert.ok(!lines.some((l) => l.includes('minio-quorum-guard') || l.includes('--migrate')), 'no guard, no migration');
  } finally {
    await repo.close();
  }
}, { ms: 240_000 });

// [quorum guard exit, ALLOW_DEGRADED, the state migration runs?]: a WARN is only for read-only consumers.
const QUORUM: [number, string | undefined, boolean][] = [
  [2, undefined, false],
  [2, '1', false],
  [1, '1', false],
];
for (const [code, allow, migrates] of QUORUM) {
  rigTest(`minio.up with a quorum guard exit ${code}${allow ? ` and ALLOW_DEGRADED=${allow}` : ''}: the state migration ${migrates ? 'runs' : 'does not run'}`, async (rig) => {
    const repo = await chainRepo(rig.dir);
    try {
      await repo.control({ FAKE_SSH_OK: 'samakia@192.168.11.102', FAKE_SCRIPT_EXIT: `ops/scripts/minio-quorum-guard.sh=${code}` });
      const run = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', ...(allow ? [`ALLOW_DEGRADED=${allow}`] : []), '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
      assert.notEqual(run.code, 0, 'minio.up fails');
      const lines = (await repo.calls()).map((c) => c.line);
      assert.ok(lines.includes('script:ops/scripts/minio-quorum-guard.sh'), 'the guard ran');
      assert.equal(lines.includes('script:ops/scripts/tf-backend-init.sh samakia-minio --migrate'), migrates, lines.join('\n'));
      const gate = run.events.find((e) => e.type === 'gate');
      assert.ok(gate && gate.type === 'gate', 'a gate event');
      assert.equal(gate.state, code === 2 ? 'warn' : 'fail');
    } finally {
      await repo.close();
    }
  }, { ms: 240_000 });
}

rigTest('DRY_RUN=1 minio.up really runs only the two plans (no SDN, no containers, no apply, no ansible, no migration)', async (rig) => {
  const repo = await chainRepo(rig.dir);
  try {
    const run = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', 'DRY_RUN=1', '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
    assert.equal(run.code, 0, failureText(run));
    const plan = ['terraform -chdir=<ws> init -input=false -backend=false -reconfigure', 'terraform -chdir=<ws> validate', 'terraform -chdir=<ws> plan -input=false -lock=false'];
    assertOrder(await repo.calls(), [...plan, ...plan], [
      ['script:ops/scripts/runner-env-check.sh --file <envfile>', 'terraform -chdir=<ws> validate'],
      ['script:ops/scripts/ha/enforce-placement.sh --env samakia-minio', 'terraform -chdir=<ws> plan -input=false -lock=false'],
      ['script:ops/scripts/ha/proxmox-ha-audit.sh --enforce --env samakia-minio', 'terraform -chdir=<ws> plan -input=false -lock=false'],
    ]);
    assert.equal(existsSync(join(rig.dir, 'fabric-core', 'terraform', 'envs', 'samakia-minio', 'terraform-output.json')), false);
    const out = run.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : [])).join('');
    assert.match(out, /DRY_RUN=1: planning only/);
  } finally {
    await repo.close();
  }
}, { ms: 240_000 });

rigTest('an invalid env file stops minio.up with the located error before any infrastructure is touched', async (rig) => {
  const repo = await chainRepo(rig.dir);
  try {
    const file = join(rig.dir, 'envs', 'samakia-minio.yml');
    const text = (await readFile(file, 'utf8')).replace('vlan: 10.10.140.12', 'vlan: 10.10.14.12');
    await writeFile(file, text);
    const line = text.split('\n').findIndex((l) => l.includes('10.10.14.12')) + 1;
    const run = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', '-o', 'json'], { env: repo.env(), timeoutMs: 180_000 });
    assert.notEqual(run.code, 0);
    const all = JSON.stringify(run.events) + run.stderr;
    assert.match(all, new RegExp(`envs/samakia-minio\\.yml:${line}:11 VLAN address 10\\.10\\.14\\.12 of minio-2 is outside the env's subnet 10\\.10\\.140\\.0/24`));
    const lines = (await repo.calls()).map((c) => c.line);
    assert.ok(!lines.some((l) => l.startsWith('proxmox-api') || l.startsWith('ssh') || l.startsWith('ansible-playbook') || l.includes(' apply ')), lines.join('\n'));
  } finally {
    await repo.close();
  }
}, { ms: 240_000 });

test.run();
