// DSSE: PAE exactly as the spec defines it, checked against the spec's published example (protocol.md,
// "Test Vectors": its ECDSA P-256 signature must verify over the bytes our pae() produces) and against
// the Ed25519 vectors of secure-systems-lab/dsse testvectors/vectors.json (RFC 8032 test keys).
import * as assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { createEnvelope, decodeBase64, pae, verifyEnvelope } from '../../lib/evidence/dsse.js';
import { ed25519Fingerprint, type Ed25519Signer, type TrustedEd25519Key } from '../../lib/evidence/sign.js';
import type { DsseEnvelope } from '../../lib/evidence/types.js';
import { test, timedTest } from '../helpers/rig.js';

test('PAE of the spec example is "DSSEv1 29 http://example.com/HelloWorld 11 hello world"', () => {
  assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString('latin1'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
});

test("the spec's published ECDSA signature verifies over our PAE (and not over a one-byte-off PAE)", () => {
  // protocol.md: ECDSA over NIST P-256 and SHA-256, raw r||s; the public point (X, Y) in decimal.
  const X = 46950820868899156662930047687818585632848591499744589407958293238635476079160n;
  const Y = 5640078356564379163099075877009565129882514886557779369047442380624545832820n;
  const b64u = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').toString('base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(X), y: b64u(Y) }, format: 'jwk' });
  const sig = Buffer.from('A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==', 'base64');
  const msg = pae('http://example.com/HelloWorld', Buffer.from('hello world'));
  assert.equal(verify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig), true);
  const off = pae('http://example.com/HelloWorld', Buffer.from('hello world!'));
  assert.equal(verify('sha256', off, { key, dsaEncoding: 'ieee-p1363' }, sig), false);
});

// LEN counts bytes: a non-ASCII type and an empty body.
const PAE_CASES: [string, string, Buffer, string][] = [
  ['non-ASCII type: LEN is the UTF-8 byte length', 'application/vnd.exämple+json', Buffer.from('{}'), 'DSSEv1 29 application/vnd.exämple+json 2 {}'],
  ['empty body keeps the trailing space', 'application/vnd.in-toto+json', Buffer.alloc(0), 'DSSEv1 28 application/vnd.in-toto+json 0 '],
  ['empty type', '', Buffer.from('x'), 'DSSEv1 0  1 x'],
];
for (const [title, type, body, want] of PAE_CASES) test(`PAE: ${title}`, () => assert.deepEqual(pae(type, body), Buffer.from(want, 'utf8')));

// Ed25519 vectors (testvectors/vectors.json of secure-systems-lab/dsse); keys are RFC 8032 TEST 1 and TEST 2.
const SEEDS = { A: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', B: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb' } as const;
const PUBS = { A: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', B: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c' } as const;
const seedKey = (seed: string) => createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed, 'hex')]), format: 'der', type: 'pkcs8' });
const trusted = (name: 'A' | 'B'): TrustedEd25519Key => {
  const key = createPublicKey(seedKey(SEEDS[name]));
  return { id: name, fingerprint: ed25519Fingerprint(key), key, source: name };
};
const STMT = 'eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==';
const SIG_A = '2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA==';
const SIG_B = 'c1+67/aT0yqEpwx8PsVY3MLHsj9D0CZ014/Fv/QlG59P+9CobUZ7xECJ/V3USG0Ob9CiE5LjReEZUzNF2l7eBw==';
const INTOTO = 'application/vnd.in-toto+json';

test('the vector keys are the RFC 8032 test keys', () => {
  for (const n of ['A', 'B'] as const) assert.equal(createPublicKey(seedKey(SEEDS[n])).export({ format: 'der', type: 'spki' }).subarray(12).toString('hex'), PUBS[n]);
});

const VECTORS: [string, DsseEnvelope, ('A' | 'B')[], number, string[], boolean][] = [
  ['single signature', { payload: STMT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }] }, ['A'], 1, [INTOTO], true],
  ['URL-safe base64', { payload: '-_-_Pj8=', payloadType: INTOTO, signatures: [{ sig: 'P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw==', keyid: 'A' }] }, ['A'], 1, [INTOTO], true],
  ['payload type swapped', { payload: STMT, payloadType: 'application/vnd.example.other+json', signatures: [{ sig: SIG_A, keyid: 'A' }] }, ['A'], 1, [INTOTO, 'application/vnd.example.other+json'], false],
  ['non-ASCII payload type', { payload: STMT, payloadType: 'application/vnd.exämple+json', signatures: [{ sig: 'xmSk/ug66ysT7ayhkCIjhAq42zgZXSsEWuzUaNL7w2eGAdF/NU6/fRXPtmfN+5DNSAs5/i2lUnHjbbjPsu0tAw==', keyid: 'A' }] }, ['A'], 1, ['application/vnd.exämple+json'], true],
  ['empty payload', { payload: '', payloadType: INTOTO, signatures: [{ sig: 'gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg==', keyid: 'A' }] }, ['A'], 1, [INTOTO], true],
  ['empty payload type is unsupported', { payload: STMT, payloadType: '', signatures: [{ sig: 'iC3q/+3Rm0+lpAJRueDmDh15PnwCfxKmS0NAfKsbv+zgulXQC/WM9trc+j1XEqlwDIg/vf/uNfebeD6sxInrDg==', keyid: 'A' }] }, ['A'], 1, [INTOTO], false],
  ['threshold 2 with two distinct keys', { payload: STMT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }, { sig: SIG_B, keyid: 'B' }] }, ['A', 'B'], 2, [INTOTO], true],
  ['threshold 2 with one key twice', { payload: STMT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }, { sig: SIG_A, keyid: 'A' }] }, ['A', 'B'], 2, [INTOTO], false],
  ['threshold 2 without keyids', { payload: STMT, payloadType: INTOTO, signatures: [{ sig: SIG_A }, { sig: SIG_B }] }, ['A', 'B'], 2, [INTOTO], true],
  ['a signature by an untrusted key', { payload: STMT, payloadType: INTOTO, signatures: [{ sig: SIG_B, keyid: 'A' }] }, ['A'], 1, [INTOTO], false],
];
for (const [title, env, keys, threshold, types, accept] of VECTORS) {
  timedTest(`DSSE vector: ${title} → ${accept ? 'accept' : 'reject'}`, async () => {
    const r = await verifyEnvelope(env, { ed25519: keys.map(trusted), gpgHome: undefined }, { threshold, payloadTypes: types });
    assert.equal(r.problems.length === 0, accept, r.problems.join('; '));
  });
}

timedTest('createEnvelope signs PAE with each signer; a changed payload no longer verifies', async () => {
  const priv = seedKey(SEEDS.A);
  const signer: Ed25519Signer = { type: 'ed25519', keyId: 'A', fingerprint: trusted('A').fingerprint, privateKey: priv, publicKeyPem: '' };
  const env = await createEnvelope(Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}'), [signer]);
  // Deterministic ed25519: same key and message as the first vector, so the same signature.
  assert.deepEqual(env, { payloadType: INTOTO, payload: STMT, signatures: [{ keyid: 'A', sig: SIG_A }] });
  const ok = await verifyEnvelope(env, { ed25519: [trusted('A')], gpgHome: undefined }, { threshold: 1 });
  assert.deepEqual(ok.problems, []);
  const tampered = { ...env, payload: Buffer.from('{"_type":"https://in-toto.io/Statement/v2"}').toString('base64') };
  const bad = await verifyEnvelope(tampered, { ed25519: [trusted('A')], gpgHome: undefined }, { threshold: 1 });
  assert.ok(bad.problems.some((p) => /does not verify/.test(p)), bad.problems.join('; '));
  assert.equal(decodeBase64('not base64!'), undefined);
});

test.run();
