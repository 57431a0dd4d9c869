// envs/*.yml: every file validates against contracts/env.schema.json, the facts tasks rely on are there,
// and every kind of mistake gives a diagnostic located at the right YAML line:column.
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm, copyFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timedTest, test } from '../helpers/rig.js';
import { ROOT } from '../fixtures/samakia/context.js';
import { EnvFileError, jumpHosts, listEnvNames, loadEnv, loadEnvResult, stageHosts, validateEnvText, inSubnet, container } from '../../tasks/lib/envs.js';
import { lineColOf } from '../../lib/diagnostics/location.js';
import type { Diagnostic } from '../../lib/diagnostics/types.js';

const SCHEMA = join(ROOT, 'contracts', 'env.schema.json');

timedTest('the six Samakia environments exist and all validate', async () => {
  assert.deepEqual(listEnvNames(ROOT), ['samakia-dev', 'samakia-dns', 'samakia-minio', 'samakia-prod', 'samakia-shared', 'samakia-staging']);
  for (const name of listEnvNames(ROOT)) {
    const r = await loadEnvResult(ROOT, name);
    assert.ok(r.ok, `${name}: ${r.ok ? '' : r.error.map((d) => d.message).join('; ')}`);
    assert.equal(r.value.env.name, name);
  }
});

timedTest('samakia-minio carries the MinIO facts', async () => {
  const env = await loadEnv(ROOT, 'samakia-minio');
  assert.equal(env.terraform.backend, 'bootstrap-local');
  assert.deepEqual(env.sdn, { vlan: 140, subnet: '10.10.140.0/24', gatewayVip: '10.10.140.1' });
  assert.equal(env.lan?.vip, '192.168.11.101');
  assert.deepEqual(container(env, 'minio-edge-1'), { name: 'minio-edge-1', role: 'edge', node: 'proxmox1', lan: '192.168.11.102', vlan: '10.10.140.2' });
  assert.equal(container(env, 'minio-edge-2').lan, '192.168.11.103');
  assert.deepEqual(stageHosts(env, 'nodes').hosts.map((h) => h.address), ['10.10.140.11', '10.10.140.12', '10.10.140.13']);
  assert.deepEqual(stageHosts(env, 'edges').hosts.map((h) => h.address), ['192.168.11.102', '192.168.11.103']);
  assert.equal(stageHosts(env, 'edges').stage.limit, 'minio-edge-*');
  assert.equal(stageHosts(env, 'nodes').stage.limit, 'minio-1,minio-2,minio-3');
  assert.deepEqual(jumpHosts(env), { user: 'samakia', label: 'MinIO edge', hosts: [{ address: '192.168.11.102', name: 'minio-edge-1' }, { address: '192.168.11.103', name: 'minio-edge-2' }] });
});

timedTest('samakia-dns and samakia-shared carry their probe targets', async () => {
  const dns = await loadEnv(ROOT, 'samakia-dns');
  assert.deepEqual(dns.sdn, { vlan: 100, subnet: '10.10.100.0/24' });
  assert.equal(dns.lan?.vip, '192.168.11.100');
  assert.equal(container(dns, 'dns-auth-1').node, 'proxmox3');
  assert.deepEqual(stageHosts(dns, 'edges').hosts.map((h) => h.address), ['192.168.11.111', '192.168.11.112']);
  assert.deepEqual(stageHosts(dns, 'auth').hosts.map((h) => h.address), ['10.10.100.21', '10.10.100.22']);
  const shared = await loadEnv(ROOT, 'samakia-shared');
  assert.deepEqual(stageHosts(shared, 'services').hosts.map((h) => `${h.name}=${h.address}`), ['vault-1=10.10.120.21', 'vault-2=10.10.120.22', 'obs-1=10.10.120.31', 'obs-2=10.10.120.32']);
  assert.deepEqual(stageHosts(shared, 'postgres').hosts.map((h) => h.name), ['haproxy-pg-1', 'haproxy-pg-2', 'pg-internal-1', 'pg-internal-2', 'pg-internal-3']);
  assert.deepEqual(jumpHosts(shared)?.hosts.map((h) => h.address), ['192.168.11.106', '192.168.11.107']);
  const prod = await loadEnv(ROOT, 'samakia-prod');
  assert.equal(prod.production, true);
  assert.equal(prod.containers, undefined, 'no invented addresses for prod');
});

timedTest('inSubnet', () => {
  assert.equal(inSubnet('10.10.140.11', '10.10.140.0/24'), true);
  assert.equal(inSubnet('10.10.141.11', '10.10.140.0/24'), false);
  assert.equal(inSubnet('10.10.141.11', '10.10.0.0/16'), true);
});

const MINIO = `name: samakia-minio
terraform:
  dir: fabric-core/terraform/envs/samakia-minio
  backend: bootstrap-local
sdn:
  vlan: 140
  subnet: 10.10.140.0/24
containers:
  - name: minio-edge-1
    lan: 192.168.11.102
  - name: minio-1
    vlan: 10.10.140.11
bootstrap:
  jump:
    user: samakia
    label: MinIO edge
    hosts: [minio-edge-1]
  stages:
    - name: nodes
      via: jump
      hosts: [minio-1]
      limit: minio-1
`;

/** Where a diagnostic points, as `line:col <text under the squiggle>`. */
function where(text: string, d: Diagnostic): string {
  assert.ok(d.location, `diagnostic without location: ${d.message}`);
  const { line, column } = lineColOf(text, d.location.offset);
  return `${line}:${column} ${text.slice(d.location.offset, d.location.offset + d.location.length)}`;
}

// [title, edit of the valid text, expected `line:col text` of each diagnostic, a word of the message]
const CASES: [string, (t: string) => string, string[], RegExp][] = [
  ['a malformed VLAN address', (t) => t.replace('vlan: 10.10.140.11', 'vlan: 10.10.140.300'), ['12:11 10.10.140.300'], /must match pattern/],
  ['an unknown property (points at its key)', (t) => t.replace('  vlan: 140', '  vlna: 140'), ['6:3 vlna'], /unknown property "vlna"/],
  ['a VLAN id out of range', (t) => t.replace('vlan: 140', 'vlan: 5000'), ['6:9 5000'], /must be <= 4094/],
  ['a missing required field (points at the parent)', (t) => t.replace('  backend: bootstrap-local\n', ''), ['3:3 dir: fabric-core/terraform/envs/samakia-minio'], /must have required property 'backend'/],
  ['a bad backend enum', (t) => t.replace('backend: bootstrap-local', 'backend: local'), ['4:12 local'], /"s3", "bootstrap-local"/],
  ['a name that is not the file name', (t) => t.replace('name: samakia-minio', 'name: samakia-mini'), ['1:7 samakia-mini', '3:8 fabric-core/terraform/envs/samakia-minio'], /does not match the file name|terraform.dir must be/],
  ['an address outside the subnet', (t) => t.replace('vlan: 10.10.140.11', 'vlan: 10.10.141.11'), ['12:11 10.10.141.11'], /outside the env's subnet 10.10.140.0\/24/],
  ['a stage host that is not a container', (t) => t.replace('hosts: [minio-1]', 'hosts: [minio-9]'), ['21:15 minio-9'], /unknown container "minio-9"/],
  ['a jump host without a LAN address', (t) => t.replace('hosts: [minio-edge-1]', 'hosts: [minio-1]'), ['17:13 minio-1'], /has no lan address/],
  ['a duplicate container', (t) => t.replace('  - name: minio-1\n', '  - name: minio-edge-1\n'), ['11:11 minio-edge-1', '21:15 minio-1'], /duplicate container|unknown container/],
  ['a YAML syntax error (duplicate key)', (t) => t.replace('  vlan: 140', '  vlan: 140\n  vlan: 141'), ['7:3 v'], /invalid YAML: Map keys must be unique/],
  ['a YAML syntax error (unclosed flow sequence)', (t) => t.replace('  vlan: 140', '  vlan: [140'), ['7:3 s'], /invalid YAML/],
];

for (const [title, edit, expected, word] of CASES) {
  timedTest(`located error: ${title}`, async () => {
    const text = edit(MINIO);
    assert.notEqual(text, MINIO, 'the edit must change the text');
    const r = await validateEnvText('/x/envs/samakia-minio.yml', text, SCHEMA, 'samakia-minio');
    assert.equal(r.ok, false);
    if (r.ok) return;
    const got = r.error.map((d) => where(text, d).split('\n')[0]!.slice(0, 60));
    for (const e of expected) assert.ok(got.some((g) => g.startsWith(e.slice(0, 60))), `expected ${e} in ${JSON.stringify(got)}`);
    assert.ok(r.error.some((d) => word.test(d.message)), `${word} in ${r.error.map((d) => d.message).join(' | ')}`);
  });
}

timedTest('the valid sample passes (the cases above fail only because of their edit)', async () => {
  const r = await validateEnvText('/x/envs/samakia-minio.yml', MINIO, SCHEMA, 'samakia-minio');
  assert.ok(r.ok, r.ok ? '' : r.error.map((d) => d.message).join('; '));
});

timedTest('loadEnv throws an EnvFileError printed as file:line:col with a code frame', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-glue-envs-'));
  try {
    await mkdir(join(dir, 'envs'));
    await mkdir(join(dir, 'contracts'));
    await copyFile(SCHEMA, join(dir, 'contracts', 'env.schema.json'));
    const text = (await readFile(join(ROOT, 'envs', 'samakia-dns.yml'), 'utf8')).replace('lan: 192.168.11.112', 'lan: 192.168.11.1120');
    await writeFile(join(dir, 'envs', 'samakia-dns.yml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('192.168.11.1120')) + 1;
    await assert.rejects(loadEnv(dir, 'samakia-dns'), (e: unknown) => {
      assert.ok(e instanceof EnvFileError);
      assert.match(e.message, new RegExp(`envs/samakia-dns\\.yml:${line}:10 `));
      assert.match(e.message, /192\.168\.11\.1120\n.*~~~~~~~~~~~~~~~/);
      assert.equal(e.diagnostics.length, 1);
      return true;
    });
    const missing = await loadEnvResult(dir, 'samakia-nope');
    assert.equal(missing.ok, false);
    if (!missing.ok) {
      assert.match(missing.error[0]!.message, /no environment file for ENV=samakia-nope/);
      assert.match(missing.error[0]!.hint ?? '', /known environments: samakia-dns/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
