/**
 * Keys and signatures: ed25519 through node:crypto (PEM keys, so `openssl pkeyutl` can check the
 * same files) and GPG through the `gpg` binary (argv only, never a shell string). Used by the writer
 * (signing) and the verifier (checking against a keyring); imports nothing from the rest of fabric.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { sha256Hex } from './fsutil.js';

/** A problem with keys or signing configuration that the operator can fix (shown without a stack). */
export class EvidenceKeyError extends Error {
  constructor(message: string, readonly file?: string) {
    super(message);
    this.name = 'EvidenceKeyError';
  }
}

export interface Ed25519Signer {
  readonly type: 'ed25519';
  readonly keyId: string;
  /** sha256 (hex) of the public key's SPKI DER encoding. */
  readonly fingerprint: string;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
}

export interface GpgSigner {
  readonly type: 'gpg';
  /** The primary key fingerprint (40 hex), also the signature file's name. */
  readonly keyId: string;
  readonly fingerprint: string;
  readonly homedir: string | undefined;
}

export type Signer = Ed25519Signer | GpgSigner;

export function ed25519Fingerprint(key: KeyObject): string {
  return sha256Hex(key.export({ format: 'der', type: 'spki' }));
}

/** A key id that is also a safe file name. */
export function safeKeyId(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return s === '' ? 'key' : s.slice(0, 80);
}

/** Loads an ed25519 private key (PEM, PKCS#8 as `openssl genpkey -algorithm ed25519` writes it). */
export async function loadEd25519Signer(pemPath: string, keyId?: string): Promise<Ed25519Signer> {
  let text: string;
  try {
    text = await readFile(pemPath, 'utf8');
  } catch (e) {
    throw new EvidenceKeyError(`cannot read the ed25519 signing key: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, pemPath);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new EvidenceKeyError('not a PEM private key (expected the output of `openssl genpkey -algorithm ed25519`)', pemPath);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new EvidenceKeyError(`the signing key is ${privateKey.asymmetricKeyType ?? 'unknown'}, not ed25519`, pemPath);
  }
  const pub = createPublicKey(privateKey);
  const stem = basename(pemPath).replace(/\.(pem|key)$/i, '');
  return {
    type: 'ed25519',
    keyId: safeKeyId(keyId ?? stem),
    fingerprint: ed25519Fingerprint(pub),
    privateKey,
    publicKeyPem: pub.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

interface Proc {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: readonly string[], input?: Uint8Array): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(e));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => {
      /* the process may exit before reading everything; its exit code says what happened */
    });
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

const homeArgs = (homedir: string | undefined): string[] => (homedir ? ['--homedir', homedir] : []);

async function gpg(homedir: string | undefined, args: readonly string[], input?: Uint8Array): Promise<Proc> {
  try {
    return await run('gpg', [...homeArgs(homedir), '--batch', '--no-tty', ...args], input);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new EvidenceKeyError('gpg is not installed (needed for GPG signatures)');
    throw e;
  }
}

/** Resolves a GPG key (id, fingerprint or user id) to its primary fingerprint, as Samakia's scripts do. */
export async function resolveGpgSigner(key: string, homedir?: string): Promise<GpgSigner> {
  const r = await gpg(homedir, ['--with-colons', '--fingerprint', '--list-secret-keys', '--', key]);
  const fpr = r.stdout
    .toString('utf8')
    .split('\n')
    .find((l) => l.startsWith('fpr:'))
    ?.split(':')[9];
  if (r.code !== 0 || !fpr) {
    throw new EvidenceKeyError(`no GPG secret key "${key}"${homedir ? ` in ${homedir}` : ''}: ${r.stderr.trim().split('\n').pop() ?? ''}`.trim());
  }
  return { type: 'gpg', keyId: fpr, fingerprint: fpr, homedir };
}

/** A raw signature of `data`: 64 bytes for ed25519, a binary OpenPGP detached signature for GPG. */
export async function signBytes(signer: Signer, data: Uint8Array): Promise<Buffer> {
  if (signer.type === 'ed25519') return cryptoSign(null, data, signer.privateKey);
  const r = await gpg(signer.homedir, ['--local-user', signer.fingerprint, '--detach-sign', '--output', '-'], data);
  if (r.code !== 0 || r.stdout.length === 0) throw new EvidenceKeyError(`gpg could not sign: ${r.stderr.trim()}`);
  return r.stdout;
}

/** An armored detached GPG signature of a file (`gpg --armor --detach-sign`), returned as text. */
export async function gpgSignFileArmored(signer: GpgSigner, file: string): Promise<string> {
  const r = await gpg(signer.homedir, ['--yes', '--armor', '--local-user', signer.fingerprint, '--detach-sign', '--output', '-', '--', file]);
  if (r.code !== 0 || r.stdout.length === 0) throw new EvidenceKeyError(`gpg could not sign ${file}: ${r.stderr.trim()}`);
  return r.stdout.toString('utf8');
}

export async function gpgExportPublic(signer: GpgSigner): Promise<string> {
  const r = await gpg(signer.homedir, ['--armor', '--export', signer.fingerprint]);
  return r.code === 0 ? r.stdout.toString('utf8') : '';
}

// ---------------------------------------------------------------------------------------------
// Verification side

export interface TrustedEd25519Key {
  readonly id: string;
  readonly fingerprint: string;
  readonly key: KeyObject;
  readonly source: string;
}

export interface Keyring {
  readonly ed25519: readonly TrustedEd25519Key[];
  /** A GPG home holding the trusted public keys (imported from the keyring directory, or given). */
  readonly gpgHome: string | undefined;
  /** Files of the keyring that were neither an ed25519 public key nor an OpenPGP key. */
  readonly ignored: readonly string[];
  /** Removes the temporary GPG home, if one was made. */
  dispose(): Promise<void>;
}

export function parseEd25519PublicKey(pem: string): KeyObject | undefined {
  try {
    const k = createPublicKey({ key: pem, format: 'pem' });
    return k.asymmetricKeyType === 'ed25519' ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads a keyring directory (or a single key file): ed25519 public keys (`*.pub`/`*.pem`, PEM SPKI; key id = file name
 * without extension) and OpenPGP public keys (armored or binary, any name), which are imported into a
 * temporary GPG home. `gpgHome` adds an existing GPG home instead (its keys are trusted as they are).
 */
export async function loadKeyring(opts: { dir?: string | undefined; gpgHome?: string | undefined }): Promise<Keyring> {
  const ed: TrustedEd25519Key[] = [];
  const ignored: string[] = [];
  const pgpFiles: string[] = [];
  if (opts.dir) {
    let files: string[];
    try {
      files = (await stat(opts.dir)).isDirectory() ? (await readdir(opts.dir)).sort().map((n) => join(opts.dir!, n)) : [opts.dir];
    } catch (e) {
      throw new EvidenceKeyError(`cannot read the keyring: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, opts.dir);
    }
    for (const file of files) {
      const name = basename(file);
      let buf: Buffer;
      try {
        buf = await readFile(file);
      } catch {
        continue; // a subdirectory or unreadable entry
      }
      const text = buf.toString('utf8');
      if (text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') || buf[0] === 0x99 || buf[0] === 0xc6) {
        pgpFiles.push(file);
        continue;
      }
      const key = text.includes('-----BEGIN PUBLIC KEY-----') ? parseEd25519PublicKey(text) : undefined;
      if (key) ed.push({ id: name.replace(/\.(pub|pem)$/i, ''), fingerprint: ed25519Fingerprint(key), key, source: file });
      else ignored.push(file);
    }
  }
  let gpgHome = opts.gpgHome;
  let temp: string | undefined;
  if (pgpFiles.length > 0 && !gpgHome) {
    temp = await mkdtemp(join(tmpdir(), 'fabric-gpg-'));
    await chmod(temp, 0o700);
    gpgHome = temp;
  }
  for (const f of pgpFiles) {
    const r = await gpg(gpgHome, ['--import', '--', f]);
    if (r.code !== 0) ignored.push(f);
  }
  return {
    ed25519: ed,
    gpgHome,
    ignored,
    async dispose() {
      if (!temp) return;
      await run('gpgconf', ['--homedir', temp, '--kill', 'all']).catch(() => undefined);
      await rm(temp, { recursive: true, force: true });
    },
  };
}

/** The trusted ed25519 key that verifies `sig` over `data`, if any. */
export function verifyEd25519(data: Uint8Array, sig: Uint8Array, keys: readonly TrustedEd25519Key[]): TrustedEd25519Key | undefined {
  if (sig.length !== 64) return undefined;
  return keys.find((k) => {
    try {
      return cryptoVerify(null, data, k.key, sig);
    } catch {
      return false;
    }
  });
}

export interface GpgVerifyResult {
  readonly ok: boolean;
  /** Primary key fingerprint of the signer (from VALIDSIG). */
  readonly fingerprint?: string;
  readonly detail: string;
}

/** Checks a detached signature (armored or binary) of `data` against the keys in `homedir`. */
export async function gpgVerify(signature: Uint8Array, data: Uint8Array, homedir: string | undefined): Promise<GpgVerifyResult> {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-gpgv-'));
  try {
    const sigFile = join(dir, 'sig');
    const dataFile = join(dir, 'data');
    await writeFile(sigFile, signature);
    await writeFile(dataFile, data);
    const r = await gpg(homedir, ['--status-fd', '1', '--trust-model', 'always', '--verify', '--', sigFile, dataFile]);
    const status = r.stdout.toString('utf8');
    const valid = /^\[GNUPG:\] VALIDSIG (\S+)(?: \S+){8} (\S+)/m.exec(status);
    if (r.code === 0 && valid) return { ok: true, fingerprint: valid[2]!, detail: 'good signature' };
    const bad = /^\[GNUPG:\] (BADSIG|ERRSIG|NO_PUBKEY|EXPSIG|EXPKEYSIG|REVKEYSIG)\b.*$/m.exec(status);
    return { ok: false, detail: bad ? bad[0].replace('[GNUPG:] ', '') : r.stderr.trim().split('\n').pop() ?? `gpg exited ${r.code}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
