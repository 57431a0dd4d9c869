/**
 * DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse, protocol v1.0.0):
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 * where LEN is the ASCII decimal byte length (type as UTF-8). Signatures cover PAE, never the bare payload.
 */
import { INTOTO_PAYLOAD_TYPE } from './constants.js';
import type { DsseEnvelope, DsseSignature } from './types.js';
import { gpgVerify, signBytes, verifyEd25519, type Keyring, type Signer } from './sign.js';

export function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${body.length} `, 'ascii'), body]);
}

/** Standard or URL-safe base64 (verifiers must accept either); undefined if it is neither. */
export function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export async function createEnvelope(payload: Uint8Array, signers: readonly Signer[], payloadType: string = INTOTO_PAYLOAD_TYPE): Promise<DsseEnvelope> {
  const msg = pae(payloadType, payload);
  const signatures: DsseSignature[] = [];
  for (const s of signers) signatures.push({ keyid: s.keyId, sig: (await signBytes(s, msg)).toString('base64') });
  return { payloadType, payload: Buffer.from(payload).toString('base64'), signatures };
}

export interface EnvelopeCheck {
  /** The payload bytes, if the envelope decoded (it is returned even when signatures fail). */
  readonly payload: Buffer | undefined;
  /** Fingerprints of the distinct trusted keys that verified a signature. */
  readonly acceptedKeys: readonly string[];
  readonly problems: readonly string[];
}

/**
 * Verifies an envelope against trusted keys: each signature is checked against PAE(payloadType,
 * payload); the number of distinct keys that verify must reach `threshold`; the payload type must be
 * supported. The keyid is only a hint and is never trusted.
 */
export async function verifyEnvelope(
  env: DsseEnvelope,
  keyring: Pick<Keyring, 'ed25519' | 'gpgHome'>,
  opts: { threshold: number; payloadTypes?: readonly string[] },
): Promise<EnvelopeCheck> {
  const problems: string[] = [];
  const payload = decodeBase64(env.payload);
  if (!payload) return { payload: undefined, acceptedKeys: [], problems: ['payload is not base64'] };
  const supported = opts.payloadTypes ?? [INTOTO_PAYLOAD_TYPE];
  if (!supported.includes(env.payloadType)) problems.push(`unsupported payloadType "${env.payloadType}"`);
  const msg = pae(env.payloadType, payload);
  const accepted = new Set<string>();
  for (const [i, s] of env.signatures.entries()) {
    const sig = decodeBase64(s.sig);
    const label = `signature ${i + 1}${s.keyid ? ` (keyid ${s.keyid})` : ''}`;
    if (!sig) {
      problems.push(`${label} is not base64`);
      continue;
    }
    const ed = verifyEd25519(msg, sig, keyring.ed25519);
    if (ed) {
      accepted.add(ed.fingerprint);
      continue;
    }
    if (sig.length !== 64 && keyring.gpgHome) {
      const g = await gpgVerify(sig, msg, keyring.gpgHome);
      if (g.ok && g.fingerprint) {
        accepted.add(g.fingerprint);
        continue;
      }
    }
    problems.push(`${label} does not verify with any trusted key`);
  }
  if (accepted.size < opts.threshold) problems.push(`${accepted.size} of ${opts.threshold} required signatures verify`);
  return { payload, acceptedKeys: [...accepted], problems };
}
