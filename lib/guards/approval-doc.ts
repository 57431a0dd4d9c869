/**
 * Signed approval documents: what they bind, how they are signed (ed25519 through node:crypto, or an
 * OpenPGP detached signature through gpg) and how keyrings are read. Used by `fabric approve` (write)
 * and the approval() guard (verify).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { canonicalJson } from '../engine/plan.js';
import type { GuardFacts } from './types.js';

export interface ApprovalNode {
  readonly id: string;
  readonly task: string;
  /** Param values; secret ones as `secret:sha256:<hex>` (never in clear). */
  readonly params: Readonly<Record<string, string>>;
}

export type ApprovalSignature =
  | { readonly scheme: 'ed25519'; readonly keyId: string; readonly keyName?: string; readonly value: string }
  | { readonly scheme: 'openpgp'; readonly keyId: string; readonly armored: string };

export interface ApprovalBody {
  readonly kind: 'fabric-approval';
  readonly version: 1;
  readonly targets?: readonly string[];
  readonly nodes: readonly ApprovalNode[];
  readonly gitCommit: string;
  readonly planDigest: string;
  readonly approver: string;
  readonly reason: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

export interface ApprovalDocument extends ApprovalBody {
  readonly signature: ApprovalSignature;
}

/** Secret param values are bound by a hash (the same value always gives the same text). */
export function bindParams(params: Readonly<Record<string, string>>, secretNames: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(params).sort()) {
    const v = params[k]!;
    out[k] = secretNames.includes(k) ? `secret:sha256:${createHash('sha256').update(`fabric-approval-secret\0${k}\0${v}`).digest('hex')}` : v;
  }
  return out;
}

function paramsText(params: Readonly<Record<string, string>>): string {
  const keys = Object.keys(params).sort();
  if (keys.length === 0) return 'no params';
  return keys.map((k) => `${k}=${params[k]!.startsWith('secret:sha256:') ? '[secret]' : params[k]}`).join(' ');
}

/** Compares the approved nodes with this run's selection; the first difference, worded for the operator. */
export function selectionMismatch(approved: readonly ApprovalNode[], selection: GuardFacts['selection']): string | undefined {
  const current = selection.map((s) => ({ id: s.id, task: s.task, params: bindParams(s.params, s.secretParams ?? []) }));
  const approvedById = new Map(approved.map((n) => [n.id, n]));
  const same = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
  };
  for (const cur of current) {
    const a = approvedById.get(cur.id);
    if (a && same(a.params, cur.params)) continue;
    const sameTask = a ?? approved.find((n) => n.task === cur.task && !current.some((c) => c.id === n.id));
    if (sameTask) return `approval is for ${cur.task} with ${paramsText(sameTask.params)}, but this run has ${paramsText(cur.params)}`;
    return `approval does not cover ${cur.id} (approved: ${approved.map((n) => n.id).join(', ')})`;
  }
  const currentIds = new Set(current.map((c) => c.id));
  const extra = approved.filter((n) => !currentIds.has(n.id));
  if (extra.length) return `approval covers ${extra.map((n) => n.id).join(', ')}, which ${extra.length === 1 ? 'is' : 'are'} not in this run's selection`;
  return undefined;
}

/** The bytes that are signed: canonical JSON of every field except `signature` (and `$schema`). */
export function signedPayload(doc: ApprovalBody | ApprovalDocument): Buffer {
  const { signature: _s, $schema: _x, ...body } = doc as ApprovalDocument & { $schema?: string };
  return Buffer.from(canonicalJson(body), 'utf8');
}

// ---------------------------------------------------------------- ed25519

/** `SHA256:<base64>` of the public key's SPKI DER (the form ssh-keygen -l prints). */
export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

export interface KeyPairFiles {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
  readonly fingerprint: string;
}

/** A new ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
export function generateEd25519(): KeyPairFiles {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: keyFingerprint(publicKey),
  };
}

/** Reads an ed25519 private key (PEM, as written by `fabric approve --generate-key` or `openssl genpkey -algorithm ed25519`). */
export function readPrivateKey(file: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read key ${file}: ${(e as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (e) {
    throw new Error(`${file} is not a PEM private key: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; approvals need an ed25519 key`);
  return key;
}

export function signEd25519(body: ApprovalBody, key: KeyObject, keyName?: string): ApprovalDocument {
  const value = sign(null, signedPayload(body), key).toString('base64');
  const signature: ApprovalSignature = keyName ? { scheme: 'ed25519', keyId: keyFingerprint(key), keyName, value } : { scheme: 'ed25519', keyId: keyFingerprint(key), value };
  return { ...body, signature };
}

export interface KeyringKey {
  /** The name the keyring gives the key (file name, or an `id:` line). */
  readonly id: string;
  readonly fingerprint: string;
  readonly key: KeyObject;
  readonly source: string;
}

export interface Keyring {
  readonly keys: readonly KeyringKey[];
  /** Files or blocks that could not be read as ed25519 public keys (ignored, never trusted). */
  readonly problems: readonly string[];
}

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

function keysFromText(text: string, source: string, defaultId: string): { keys: KeyringKey[]; problems: string[] } {
  const keys: KeyringKey[] = [];
  const problems: string[] = [];
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) problems.push(`${source}: no PEM public key`);
  blocks.forEach((m, n) => {
    // The id is the nearest `id: NAME` (or `# id: NAME`) line before the block.
    const before = text.slice(0, m.index).split('\n').reverse();
    let id: string | undefined;
    for (const line of before) {
      if (line.includes('-----END')) break;
      const mm = /^\s*#?\s*id:\s*(\S+)\s*$/.exec(line);
      if (mm) {
        id = mm[1]!;
        break;
      }
    }
    try {
      const key = createPublicKey(m[0]);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key, not ed25519`);
      keys.push({ id: id ?? (blocks.length === 1 ? defaultId : `${defaultId}#${n + 1}`), fingerprint: keyFingerprint(key), key, source });
    } catch (e) {
      problems.push(`${source}: key ${n + 1}: ${(e as Error).message}`);
    }
  });
  return { keys, problems };
}

/**
 * A keyring: a directory of public keys (`<id>.pub` or `<id>.pem`, one PEM key each), or one file
 * holding PEM public keys, each optionally preceded by an `id: NAME` line.
 */
export function loadKeyring(path: string): Keyring {
  const keys: KeyringKey[] = [];
  const problems: string[] = [];
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`keyring not found: ${path}`);
  }
  const add = (file: string, id: string) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
      return;
    }
    const r = keysFromText(text, file, id);
    keys.push(...r.keys);
    problems.push(...r.problems);
  };
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) {
      if (!/\.(pub|pem)$/.test(name) || name.endsWith('.key.pem')) continue;
      add(join(path, name), name.replace(/(\.pub)?\.(pub|pem)$/, ''));
    }
  } else add(path, basename(path).replace(/(\.pub)?\.(pub|pem)$/, ''));
  return { keys, problems };
}

export function verifyEd25519(doc: ApprovalDocument & { signature: { scheme: 'ed25519' } }, key: KeyObject): boolean {
  try {
    return verify(null, signedPayload(doc), key, Buffer.from(doc.signature.value, 'base64'));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- OpenPGP (gpg)

interface GpgResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runGpg(args: readonly string[], opts: { input?: Buffer; env: Record<string, string | undefined>; timeoutMs?: number }): Promise<GpgResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'HOME', 'GNUPGHOME', 'LANG', 'LC_ALL', 'TMPDIR', 'USER', 'GPG_AGENT_INFO']) if (opts.env[k] !== undefined) env[k] = opts.env[k]!;
    const child = spawn('gpg', ['--batch', '--no-tty', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

/** Signs with gpg (`--local-user key`), using `homedir` or the caller's GNUPGHOME. */
export async function signOpenPgp(body: ApprovalBody, gpgKey: string, opts: { homedir?: string | undefined; env: Record<string, string | undefined> }): Promise<ApprovalDocument> {
  const home = opts.homedir ? ['--homedir', opts.homedir] : [];
  const r = await runGpg([...home, '--armor', '--detach-sign', '--local-user', gpgKey, '--status-fd', '2', '--output', '-'], { input: signedPayload(body), env: opts.env });
  if (r.code !== 0 || !r.stdout.includes('-----BEGIN PGP SIGNATURE-----')) {
    const why = r.stderr.split('\n').filter((l) => l.startsWith('gpg:')).join('; ') || `gpg exited with ${r.code}`;
    throw new Error(`gpg could not sign with key ${gpgKey}: ${why}`);
  }
  const fpr = /\[GNUPG:\] SIG_CREATED \S+ \S+ \S+ \S+ \S+ ([0-9A-F]{40})/.exec(r.stderr)?.[1];
  if (!fpr) throw new Error(`gpg signed, but did not report the key fingerprint`);
  return { ...body, signature: { scheme: 'openpgp', keyId: fpr, armored: r.stdout.trim() + '\n' } };
}

export type OpenPgpCheck =
  | { readonly ok: true; readonly fingerprint: string; readonly primary: string; readonly user: string }
  | { readonly ok: false; readonly why: 'unknown-key' | 'bad-signature' | 'expired-key' | 'revoked-key' | 'error'; readonly detail: string };

/** Verifies a detached armored signature over the payload against the keys in `homedir` only. */
export async function verifyOpenPgp(doc: ApprovalDocument & { signature: { scheme: 'openpgp' } }, homedir: string, env: Record<string, string | undefined>): Promise<OpenPgpCheck> {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-approval-'));
  try {
    const data = join(dir, 'payload.json');
    const sig = join(dir, 'payload.json.asc');
    writeFileSync(data, signedPayload(doc));
    writeFileSync(sig, doc.signature.armored);
    let r: GpgResult;
    try {
      r = await runGpg(['--homedir', homedir, '--status-fd', '1', '--verify', sig, data], { env });
    } catch (e) {
      return { ok: false, why: 'error', detail: `cannot run gpg: ${(e as Error).message}` };
    }
    const status = r.stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice(9));
    const has = (tag: string) => status.find((l) => l === tag || l.startsWith(tag + ' '));
    if (has('BADSIG')) return { ok: false, why: 'bad-signature', detail: has('BADSIG')! };
    const errsig = has('ERRSIG');
    // ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]: rc 9 is "no public key".
    if (has('NO_PUBKEY') || errsig?.split(' ')[6] === '9') return { ok: false, why: 'unknown-key', detail: errsig ?? has('NO_PUBKEY')! };
    if (has('EXPKEYSIG')) return { ok: false, why: 'expired-key', detail: has('EXPKEYSIG')! };
    if (has('REVKEYSIG')) return { ok: false, why: 'revoked-key', detail: has('REVKEYSIG')! };
    const valid = has('VALIDSIG');
    const good = has('GOODSIG');
    if (r.code === 0 && valid && good) {
      const f = valid.split(' ');
      return { ok: true, fingerprint: f[1]!, primary: f[10] ?? f[1]!, user: good.split(' ').slice(2).join(' ') };
    }
    if (errsig) return { ok: false, why: 'bad-signature', detail: errsig };
    return { ok: false, why: 'error', detail: r.stderr.split('\n').filter((l) => l.startsWith('gpg:')).join('; ') || `gpg exited with ${r.code}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Parses `2h`, `30m`, `1d`, `45s` or an ISO-8601 UTC time into an expiry date (relative to `now`). */
export function parseExpiry(text: string, now: Date): Date | undefined {
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (rel) {
    const n = Number(rel[1]);
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return n > 0 ? new Date(now.getTime() + n * unit) : undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)$/.test(text.trim())) return undefined;
  const d = new Date(text.trim());
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** ISO-8601 UTC without milliseconds (the approval's time format). */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
