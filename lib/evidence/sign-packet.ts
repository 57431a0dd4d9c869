/**
 * Detached signatures of a packet's manifest.sha256 (which covers every other file), written under
 * signatures/ so that adding one never changes what the manifest covers: custodian A signs during the
 * run, custodian B can add the second signature later (`fabric evidence sign`), as Samakia's staged
 * dual control does. While fewer distinct keys have signed than run.json requires, signatures/INCOMPLETE
 * says so (verification counts signatures itself; the marker is for people and `fabric evidence ls`).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { INCOMPLETE_MARKER, MANIFEST_FILE, RUN_FILE, SIGNATURES_DIR } from './constants.js';
import { writeFileAtomic } from './fsutil.js';
import { ed25519Fingerprint, gpgExportPublic, gpgSignFileArmored, parseEd25519PublicKey, signBytes, verifyEd25519, type Signer } from './sign.js';

export interface SignatureFile {
  readonly type: 'ed25519' | 'gpg';
  readonly keyId: string;
  /** Relative to the packet. */
  readonly file: string;
}

/** Signature files present in a packet (ed25519 `<id>.sig`, GPG `<id>.asc` but not `<id>.pub.asc`). */
export async function listSignatureFiles(packetDir: string): Promise<SignatureFile[]> {
  let names: string[];
  try {
    names = await readdir(join(packetDir, SIGNATURES_DIR));
  } catch {
    return [];
  }
  const out: SignatureFile[] = [];
  for (const n of names.sort()) {
    if (n.endsWith('.sig')) out.push({ type: 'ed25519', keyId: n.slice(0, -4), file: `${SIGNATURES_DIR}/${n}` });
    else if (n.endsWith('.asc') && !n.endsWith('.pub.asc')) out.push({ type: 'gpg', keyId: n.slice(0, -4), file: `${SIGNATURES_DIR}/${n}` });
  }
  return out;
}

/** Signs manifest.sha256 with each signer; returns the files written (relative to the packet). */
export async function signPacket(packetDir: string, signers: readonly Signer[]): Promise<string[]> {
  const manifestPath = join(packetDir, MANIFEST_FILE);
  const data = await readFile(manifestPath);
  // Temp files go beside the signatures: signatures/ is not covered by the manifest either.
  const tmp = join(packetDir, SIGNATURES_DIR);
  const written: string[] = [];
  for (const s of signers) {
    const base = join(packetDir, SIGNATURES_DIR, s.keyId);
    if (s.type === 'ed25519') {
      await writeFileAtomic(`${base}.sig`, await signBytes(s, data), tmp);
      await writeFileAtomic(`${base}.pub`, s.publicKeyPem, tmp);
      written.push(`${SIGNATURES_DIR}/${s.keyId}.sig`);
    } else {
      await writeFileAtomic(`${base}.asc`, await gpgSignFileArmored(s, manifestPath), tmp);
      const pub = await gpgExportPublic(s);
      if (pub) await writeFileAtomic(`${base}.pub.asc`, pub, tmp);
      written.push(`${SIGNATURES_DIR}/${s.keyId}.asc`);
    }
  }
  return written;
}

/**
 * Counts the distinct keys that signed, as far as the packet itself can tell (ed25519 signatures that
 * verify with the public key shipped beside them; GPG signatures by file name), and writes or removes
 * signatures/INCOMPLETE against `required` (from run.json when not given).
 */
export async function updateCompleteness(packetDir: string, required?: number): Promise<{ required: number; present: string[] }> {
  if (required === undefined) {
    try {
      const run = JSON.parse(await readFile(join(packetDir, RUN_FILE), 'utf8')) as { signing?: { required?: number } };
      required = run.signing?.required ?? 0;
    } catch {
      required = 0;
    }
  }
  const data = await readFile(join(packetDir, MANIFEST_FILE)).catch(() => undefined);
  const present = new Set<string>();
  for (const f of await listSignatureFiles(packetDir)) {
    if (f.type === 'gpg') {
      present.add(f.keyId);
      continue;
    }
    const pem = await readFile(join(packetDir, SIGNATURES_DIR, `${f.keyId}.pub`), 'utf8').catch(() => '');
    const key = parseEd25519PublicKey(pem);
    const sig = await readFile(join(packetDir, f.file)).catch(() => Buffer.alloc(0));
    if (key && data && verifyEd25519(data, sig, [{ id: f.keyId, fingerprint: ed25519Fingerprint(key), key, source: f.file }])) {
      present.add(ed25519Fingerprint(key));
    }
  }
  const marker = join(packetDir, SIGNATURES_DIR, INCOMPLETE_MARKER);
  if (present.size < required) {
    await writeFileAtomic(
      marker,
      `${required} signatures of manifest.sha256 by distinct keys are required; ${present.size} present.\n` +
        `Add one with: fabric evidence sign ${packetDir} --key <ed25519.pem> (or --gpg-key <id>)\n`,
    );
  } else await rm(marker, { force: true });
  return { required, present: [...present] };
}
