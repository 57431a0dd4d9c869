/**
 * Proxmox VE API client for starting an env's containers: https only, strict TLS (never
 * `rejectUnauthorized: false`; trust = the system roots + NODE_EXTRA_CA_CERTS + an optional CA file such as
 * the repo's ops/ca/proxmox-root-ca.crt), and API-token auth only (`Authorization: PVEAPIToken=<id>=<secret>`;
 * there is no password/ticket path). The secret never appears in errors or logs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { https, tls } from './builtins.js';
import { loadEnv } from './envs.js';
import { runnerEnv } from './runner.js';
import { fabricRepoRoot, GlueError, type GlueContext } from './vars.js';

export interface ProxmoxApi {
  /** `https://host:8006` or `https://host:8006/api2/json` (PM_API_URL / TF_VAR_pm_api_url). */
  readonly apiUrl: string;
  /** `user@realm!tokenname` (PM_API_TOKEN_ID / TF_VAR_pm_api_token_id). */
  readonly tokenId: string;
  readonly tokenSecret: string;
  /** Extra trusted CA certificates (PEM), added to the system roots and NODE_EXTRA_CA_CERTS. */
  readonly ca?: readonly string[] | undefined;
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export class ProxmoxError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProxmoxError';
  }
}

/** Validates the connection settings (https, token id with `!`, a secret); throws ProxmoxError. */
export function checkProxmoxApi(api: ProxmoxApi): URL {
  let url: URL;
  try {
    url = new URL(api.apiUrl);
  } catch {
    throw new ProxmoxError(`Proxmox API URL is not a URL: ${api.apiUrl}`);
  }
  if (url.protocol !== 'https:') throw new ProxmoxError(`Proxmox API URL must be https:// (strict TLS): ${url.origin}`);
  if (url.username || url.password) throw new ProxmoxError('Proxmox API URL must not carry credentials (token auth only)');
  if (!api.tokenId.includes('!')) throw new ProxmoxError("Proxmox API token id must look like user@realm!token (it must contain '!'); password auth is not supported");
  if (api.tokenSecret.trim() === '') throw new ProxmoxError('Proxmox API token secret is empty');
  return url;
}

/** The trust anchors for a request: undefined (Node's default store, incl. NODE_EXTRA_CA_CERTS) or roots + extras. */
function trustAnchors(extra: readonly string[] | undefined): string[] | undefined {
  if (!extra || extra.length === 0) return undefined;
  const anchors = [...tls().rootCertificates, ...extra];
  const nodeExtra = process.env['NODE_EXTRA_CA_CERTS'];
  if (nodeExtra && existsSync(nodeExtra)) anchors.push(readFileSync(nodeExtra, 'utf8'));
  return anchors;
}

/** One API call; resolves to the response's `data`. Non-2xx → ProxmoxError with the status (no secret in it). */
export function proxmoxRequest<T = unknown>(api: ProxmoxApi, method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<T> {
  const base = checkProxmoxApi(api);
  const prefix = base.pathname.replace(/\/+$/, '').endsWith('/api2/json') ? base.pathname.replace(/\/+$/, '') : `${base.pathname.replace(/\/+$/, '')}/api2/json`;
  const url = new URL(`${prefix}${path.startsWith('/') ? path : `/${path}`}`, base.origin);
  const body = form ? new URLSearchParams(form).toString() : '';
  const ca = trustAnchors(api.ca);
  return new Promise<T>((resolve, reject) => {
    const req = https().request(
      url,
      {
        method,
        headers: {
          Authorization: `PVEAPIToken=${api.tokenId}=${api.tokenSecret}`,
          Accept: 'application/json',
          ...(method === 'POST' ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } : {}),
        },
        rejectUnauthorized: true,
        ...(ca ? { ca } : {}),
        ...(api.signal ? { signal: api.signal } : {}),
        timeout: api.timeoutMs ?? 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const why = status === 401 ? 'authentication failed (check the API token)' : (res.statusMessage ?? '').slice(0, 200);
            return reject(new ProxmoxError(`Proxmox API ${method} ${url.pathname}: HTTP ${status} ${why}`.trim(), status));
          }
          try {
            resolve((JSON.parse(text) as { data: T }).data);
          } catch {
            reject(new ProxmoxError(`Proxmox API ${method} ${url.pathname}: response is not JSON`, status));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new ProxmoxError(`Proxmox API ${method} ${url.pathname}: timed out`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof ProxmoxError) return reject(e);
      reject(new ProxmoxError(`Proxmox API ${method} ${url.pathname}: ${e.code ? `${e.code}: ` : ''}${e.message}`));
    });
    req.end(body);
  });
}

export interface ProxmoxContainer {
  readonly vmid: number;
  readonly name: string;
  readonly node: string;
  readonly status: string;
}

/** Every LXC container of the cluster (`GET /cluster/resources?type=vm`, type lxc). */
export async function listContainers(api: ProxmoxApi): Promise<ProxmoxContainer[]> {
  const data = await proxmoxRequest<{ type?: string; vmid?: number; name?: string; node?: string; status?: string }[]>(api, 'GET', '/cluster/resources?type=vm');
  return (data ?? [])
    .filter((r) => r.type === 'lxc' && typeof r.vmid === 'number' && typeof r.node === 'string')
    .map((r) => ({ vmid: r.vmid!, name: r.name ?? '', node: r.node!, status: r.status ?? 'unknown' }));
}

/** `POST /nodes/<node>/lxc/<vmid>/status/start`; resolves to the task's UPID. */
export function startContainer(api: ProxmoxApi, node: string, vmid: number): Promise<string> {
  if (!/^[A-Za-z0-9-]+$/.test(node) || !Number.isInteger(vmid)) throw new ProxmoxError(`invalid container reference ${node}/${vmid}`);
  return proxmoxRequest<string>(api, 'POST', `/nodes/${node}/lxc/${vmid}/status/start`, {});
}

/** Polls `GET /nodes/<node>/tasks/<upid>/status` until the task stops; its exitstatus must be OK. */
export async function waitForTask(api: ProxmoxApi, node: string, upid: string, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const s = await proxmoxRequest<{ status?: string; exitstatus?: string }>(api, 'GET', `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
    if (s?.status === 'stopped') {
      if (s.exitstatus !== 'OK') throw new ProxmoxError(`Proxmox task ${upid} ended with ${s.exitstatus ?? 'no exit status'}`);
      return;
    }
    if (Date.now() > deadline) throw new ProxmoxError(`Proxmox task ${upid} did not finish in time`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}

/**
 * The API settings from the node's variables (after the runner env file): PM_API_URL / TF_VAR_pm_api_url,
 * PM_API_TOKEN_ID / TF_VAR_pm_api_token_id, PM_API_TOKEN_SECRET / TF_VAR_pm_api_token_secret; trust adds
 * PM_CA_FILE if set, else `<FABRIC_REPO_ROOT>/ops/ca/proxmox-root-ca.crt` when it exists. PM_TLS_INSECURE
 * set to anything but empty/0/false is refused.
 */
export function proxmoxApiFromVars(vars: Readonly<Record<string, string | undefined>>, repoRoot: string, signal?: AbortSignal): ProxmoxApi {
  const pick = (...names: string[]): string => names.map((n) => vars[n]).find((v) => v !== undefined && v.trim() !== '')?.trim() ?? '';
  const insecure = (vars['PM_TLS_INSECURE'] ?? '').trim().toLowerCase();
  if (insecure !== '' && insecure !== '0' && insecure !== 'false') throw new ProxmoxError('PM_TLS_INSECURE is not allowed: the Proxmox API is only used with strict TLS');
  const apiUrl = pick('PM_API_URL', 'TF_VAR_pm_api_url');
  const tokenId = pick('PM_API_TOKEN_ID', 'TF_VAR_pm_api_token_id');
  const tokenSecret = pick('PM_API_TOKEN_SECRET', 'TF_VAR_pm_api_token_secret');
  if (!apiUrl) throw new ProxmoxError('missing PM_API_URL (or TF_VAR_pm_api_url)');
  if (!tokenId || !tokenSecret) throw new ProxmoxError('missing PM_API_TOKEN_ID / PM_API_TOKEN_SECRET (token auth only; password auth is not supported)');
  const caFile = pick('PM_CA_FILE') || join(repoRoot, 'ops', 'ca', 'proxmox-root-ca.crt');
  if (vars['PM_CA_FILE'] && !existsSync(caFile)) throw new ProxmoxError(`PM_CA_FILE not found: ${caFile}`);
  const ca = existsSync(caFile) ? [readFileSync(caFile, 'utf8')] : undefined;
  return { apiUrl, tokenId, tokenSecret, ca, signal };
}

export interface EnsureRunningResult {
  readonly started: readonly string[];
  readonly alreadyRunning: readonly string[];
}

/**
 * Starts every container of `envs/<ENV>.yml` that is not running (matched by name among the cluster's
 * LXC resources), waiting for each start task. A container missing from the cluster is an error.
 */
export async function ensureContainersRunning(ctx: GlueContext, envName: string, opts: { pollMs?: number } = {}): Promise<EnsureRunningResult> {
  const env = await loadEnv(ctx.repoRoot, envName);
  const names = (env.containers ?? []).map((c) => c.name);
  if (names.length === 0) throw new GlueError(`ERROR: envs/${envName}.yml lists no containers to start`, 1);
  const { vars } = await runnerEnv(ctx);
  let api: ProxmoxApi;
  try {
    api = proxmoxApiFromVars(vars, await fabricRepoRoot(ctx), ctx.signal);
  } catch (e) {
    throw new GlueError(`ERROR: ${(e as Error).message}`, 1);
  }
  try {
    const all = await listContainers(api);
    const missing = names.filter((n) => !all.some((c) => c.name === n));
    if (missing.length) throw new GlueError(`ERROR: containers of ${envName} not found in the Proxmox cluster: ${missing.join(', ')}`, 1);
    const started: string[] = [];
    const alreadyRunning: string[] = [];
    for (const name of names) {
      const c = all.find((x) => x.name === name)!;
      const want = env.containers?.find((x) => x.name === name)?.node;
      if (want && want !== c.node) ctx.log(`note: ${name} runs on ${c.node}, envs/${envName}.yml places it on ${want}`);
      if (c.status === 'running') {
        alreadyRunning.push(name);
        continue;
      }
      ctx.log(`starting ${name} (${c.node}/${c.vmid})`);
      const upid = await startContainer(api, c.node, c.vmid);
      await waitForTask(api, c.node, upid, opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {});
      started.push(name);
    }
    ctx.log(`containers running: ${[...alreadyRunning, ...started].join(', ')}${started.length ? ` (started ${started.join(', ')})` : ''}`);
    return { started, alreadyRunning };
  } catch (e) {
    if (e instanceof ProxmoxError) throw new GlueError(`ERROR: ${e.message}`, 1);
    throw e;
  }
}
