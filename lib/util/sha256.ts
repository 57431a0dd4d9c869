/** sha256 as lowercase hex in one call (the cache: file digests, fingerprints, inline outputs and logs). */
import * as nodeCrypto from 'node:crypto';

/** `crypto.hash` (Node 20.12 and later): a one-shot digest, without a Hash object per call. */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }).hash;

/** The digest of `data` (a string is hashed as UTF-8, as `Hash.update` does). */
export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : nodeCrypto.createHash('sha256').update(data).digest('hex');
}
