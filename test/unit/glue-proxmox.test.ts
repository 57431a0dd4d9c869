// CT start through the Proxmox API against a real HTTPS server on 127.0.0.1 whose certificate is issued
// by a CA made for the test (openssl): trusted only through the CA file or NODE_EXTRA_CA_CERTS; an
// untrusted certificate, a wrong host name, http://, a user (not token) id and PM_TLS_INSECURE are refused.
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { timedTest, test } from '../helpers/rig.js';
import { makeContext, sandbox, ROOT } from '../fixtures/samakia/context.js';
import { fakeProxmox, makePki, SECRET, TOKEN_ID, type Seen } from '../fixtures/samakia/proxmox.js';
import { ensureContainersRunning, listContainers, proxmoxApiFromVars, proxmoxRequest, ProxmoxError, type ProxmoxApi } from '../../tasks/lib/proxmox.js';
import { GlueError } from '../../tasks/lib/vars.js';

async function withServer(fn: (s: { port: number; seen: Seen[]; pki: Awaited<ReturnType<typeof makePki>>; dir: string; home: string; fakeLog: string }) => Promise<void>): Promise<void> {
  const sb = await sandbox('pve');
  const pki = await makePki(sb.dir);
  const srv = await fakeProxmox(pki.key, pki.cert);
  try {
    await fn({ port: srv.port, seen: srv.seen, pki, dir: sb.dir, home: sb.home, fakeLog: sb.fakeLog });
  } finally {
    srv.server.closeAllConnections();
    await new Promise((r) => srv.server.close(r));
    await sb.remove();
  }
}

const api = (port: number, extra: Partial<ProxmoxApi> = {}): ProxmoxApi => ({ apiUrl: `https://127.0.0.1:${port}/api2/json`, tokenId: TOKEN_ID, tokenSecret: SECRET, ...extra });

timedTest('ensureContainersRunning starts the stopped containers of the env, token auth only, CA from PM_CA_FILE', () =>
  withServer(async ({ port, seen, pki, home, fakeLog }) => {
    const ctx = makeContext({ home, fakeLog, params: { ENV: 'samakia-minio', FABRIC_REPO_ROOT: home }, env: { PM_API_URL: `https://127.0.0.1:${port}/api2/json`, PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET, PM_CA_FILE: pki.ca } });
    const r = await ensureContainersRunning(ctx, 'samakia-minio', { pollMs: 10 });
    assert.deepEqual(r, { started: ['minio-edge-2', 'minio-1'], alreadyRunning: ['minio-edge-1', 'minio-2', 'minio-3'] });
    const calls = seen.map((s) => `${s.method} ${s.url.replace(/UPID[^/]*/, 'UPID')}`);
    assert.deepEqual(calls, [
      'GET /api2/json/cluster/resources?type=vm',
      'POST /api2/json/nodes/proxmox2/lxc/202/status/start',
      'GET /api2/json/nodes/proxmox2/tasks/UPID/status',
      'GET /api2/json/nodes/proxmox2/tasks/UPID/status',
      'POST /api2/json/nodes/proxmox1/lxc/211/status/start',
      'GET /api2/json/nodes/proxmox1/tasks/UPID/status',
      'GET /api2/json/nodes/proxmox1/tasks/UPID/status',
    ]);
    assert.ok(seen.every((s) => s.auth === `PVEAPIToken=${TOKEN_ID}=${SECRET}`), 'every request carries the API token');
    assert.ok(!seen.some((s) => s.url.includes('/access/ticket')), 'never password/ticket auth');
    assert.ok(ctx.lines.includes('note: minio-edge-1 runs on proxmox4, envs/samakia-minio.yml places it on proxmox1'), ctx.lines.join('\n'));
    assert.ok(!ctx.lines.join('\n').includes(SECRET), 'the secret is never logged');
  }),
);

timedTest('the repo CA (ops/ca/proxmox-root-ca.crt under FABRIC_REPO_ROOT) is trusted by default; TF_VAR_pm_api_* work too', () =>
  withServer(async ({ port, pki, home, fakeLog }) => {
    const repo = join(home, 'samakia');
    await mkdir(join(repo, 'ops', 'ca'), { recursive: true });
    await copyFile(pki.ca, join(repo, 'ops', 'ca', 'proxmox-root-ca.crt'));
    const a = proxmoxApiFromVars({ TF_VAR_pm_api_url: `https://127.0.0.1:${port}`, TF_VAR_pm_api_token_id: TOKEN_ID, TF_VAR_pm_api_token_secret: SECRET }, repo);
    const cts = await listContainers(a);
    assert.deepEqual(cts.map((c) => c.vmid), [201, 202, 211, 212, 213, 400], 'qemu VMs are not containers');
  }),
);

timedTest('an untrusted certificate is refused (system roots only, or another CA), and so is a name the certificate does not cover', () =>
  withServer(async ({ port, seen, pki }) => {
    await assert.rejects(proxmoxRequest(api(port), 'GET', '/cluster/resources?type=vm'), (e: unknown) => {
      assert.ok(e instanceof ProxmoxError);
      assert.match(e.message, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
      return true;
    });
    await assert.rejects(proxmoxRequest(api(port, { ca: [await readFile(pki.rogueCa, 'utf8')] }), 'GET', '/version'), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED/);
    await assert.rejects(
      proxmoxRequest({ ...api(port, { ca: [await readFile(pki.ca, 'utf8')] }), apiUrl: `https://localhost:${port}` }, 'GET', '/version'),
      /ERR_TLS_CERT_ALTNAME_INVALID|does not match/,
    );
    assert.equal(seen.length, 0, 'no request got past the TLS handshake');
  }),
);

timedTest('NODE_EXTRA_CA_CERTS is honoured (a fresh process, as it is read at startup)', () =>
  withServer(async ({ port, pki }) => {
    const mod = join(ROOT, 'build', 'tasks', 'lib', 'proxmox.js');
    const code = `const m = await import(${JSON.stringify(mod)}); const d = await m.proxmoxRequest({apiUrl: 'https://127.0.0.1:${port}', tokenId: ${JSON.stringify(TOKEN_ID)}, tokenSecret: ${JSON.stringify(SECRET)}}, 'GET', '/cluster/resources?type=vm'); console.log(d.length);`;
    const run = (env: Record<string, string>): Promise<{ status: number | null; out: string }> =>
      new Promise((resolve) => {
        // spawnSync would block the event loop that serves the fake API, so run the child asynchronously
        execFile(process.execPath, ['--input-type=module', '-e', code], { env: { PATH: process.env['PATH'] ?? '', ...env } }, (err, stdout, stderr) =>
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
        );
      });
    const trusted = await run({ NODE_EXTRA_CA_CERTS: pki.ca });
    assert.equal(trusted.status, 0, trusted.out);
    assert.equal(trusted.out.trim(), '7');
    const untrusted = await run({});
    assert.notEqual(untrusted.status, 0);
    assert.match(untrusted.out, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/);
  }),
);

timedTest('a wrong token is a 401 without the secret in the message', () =>
  withServer(async ({ port, pki }) => {
    const ca = [await readFile(pki.ca, 'utf8')];
    await assert.rejects(proxmoxRequest(api(port, { ca, tokenSecret: 'wrong-secret-value' }), 'GET', '/cluster/resources?type=vm'), (e: unknown) => {
      assert.ok(e instanceof ProxmoxError);
      assert.equal(e.status, 401);
      assert.match(e.message, /HTTP 401 authentication failed/);
      assert.ok(!e.message.includes('wrong-secret-value'));
      return true;
    });
  }),
);

// [title, vars, message]
const REFUSED: [string, Record<string, string>, RegExp][] = [
  ['http://', { PM_API_URL: 'http://127.0.0.1:8006/api2/json', PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET }, /must be https:\/\//],
  ['a user id (password auth)', { PM_API_URL: 'https://127.0.0.1:8006', PM_API_TOKEN_ID: 'root@pam', PM_API_TOKEN_SECRET: SECRET }, /must contain '!'.*password auth is not supported/],
  ['no token, only a password', { PM_API_URL: 'https://127.0.0.1:8006', PM_USER: 'root@pam', PM_PASS: 'pw' }, /token auth only/],
  ['PM_TLS_INSECURE=1', { PM_API_URL: 'https://127.0.0.1:8006', PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET, PM_TLS_INSECURE: '1' }, /PM_TLS_INSECURE is not allowed/],
  ['credentials in the URL', { PM_API_URL: 'https://root:pw@127.0.0.1:8006', PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET }, /must not carry credentials/],
  ['a missing CA file', { PM_API_URL: 'https://127.0.0.1:8006', PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET, PM_CA_FILE: '/nonexistent/ca.crt' }, /PM_CA_FILE not found/],
];
for (const [title, vars, message] of REFUSED) {
  timedTest(`refused before any connection: ${title}`, async () => {
    const attempt = async (): Promise<unknown> => proxmoxRequest(proxmoxApiFromVars(vars, '/nonexistent'), 'GET', '/version');
    await assert.rejects(attempt(), (e: unknown) => e instanceof ProxmoxError && message.test(e.message));
  });
}

timedTest('a container of the env missing from the cluster is an error (exit 1), nothing is started', () =>
  withServer(async ({ port, seen, pki, home, fakeLog }) => {
    const ctx = makeContext({ home, fakeLog, params: { ENV: 'samakia-dns', FABRIC_REPO_ROOT: home }, env: { PM_API_URL: `https://127.0.0.1:${port}`, PM_API_TOKEN_ID: TOKEN_ID, PM_API_TOKEN_SECRET: SECRET, PM_CA_FILE: pki.ca } });
    await assert.rejects(ensureContainersRunning(ctx, 'samakia-dns'), (e: unknown) => e instanceof GlueError && e.exitCode === 1 && /not found in the Proxmox cluster: dns-edge-2, dns-auth-1, dns-auth-2/.test(e.message));
    assert.deepEqual(seen.map((s) => s.method), ['GET']);
  }),
);

test.run();
