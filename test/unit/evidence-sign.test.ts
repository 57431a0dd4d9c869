// Signing: ed25519 (checked by our verifier and by the real openssl), GPG (checked by our verifier
// and by the real gpg), DSSE-wrapped statements, tampering, and dual control.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEvidenceSink, loadSigners, type EvidenceOptions, type SigningOptions } from '../../lib/evidence/sink.js';
import { signPacket, updateCompleteness } from '../../lib/evidence/sign-packet.js';
import { verifyPacket } from '../../lib/evidence/verify.js';
import { EvidenceKeyError } from '../../lib/evidence/sign.js';
import { decodeBase64 } from '../../lib/evidence/dsse.js';
import { formatManifest, parseManifest } from '../../lib/evidence/manifest.js';
import { sha256Hex } from '../../lib/evidence/fsutil.js';
import type { DsseEnvelope, NodeManifest, RunRecord } from '../../lib/evidence/types.js';
import { rigTest, test, type Rig } from '../helpers/rig.js';
import { attestationLines, ed25519Key, gpgHome, graphOf, ranNode, runEnd, runStart, schemaProblems, sha256sumCheck } from './evidence-helpers.js';

const RUN = '20261126T110000Z-0badc0';
const packet = (rig: Rig) => rig.path('evidence', RUN);

async function signedRun(rig: Rig, signing: SigningOptions): Promise<void> {
  await rig.write({ 'out/x.txt': 'x\n' });
  const graph = graphOf(rig.dir, { build: { commands: ['build'], outputs: ['out/x.txt'] }, test: { deps: ['build'], commands: ['test'] } });
  const opts: EvidenceOptions = {
    dir: rig.path('evidence'),
    runId: RUN,
    graph,
    argv: ['run', 'test'],
    version: '0.1.0-test',
    repoRoot: rig.dir,
    ci: false,
    operator: 'alice@host',
    git: {},
    secretValues: [],
    signing,
  };
  const sink = createEvidenceSink(opts);
  for (const e of [runStart(graph, RUN), ...ranNode('build', { stdout: ['built\n'] }), ...ranNode('test', { stdout: ['ok\n'] }), runEnd(true)]) sink.onEvent(e);
  await sink.close();
}

rigTest('ed25519: manifest signature and DSSE envelopes verify with the keyring, and with openssl', async (rig) => {
  const alice = await ed25519Key(rig.path('keys'), 'alice');
  await signedRun(rig, { ed25519Key: alice.priv });
  const dir = packet(rig);
  assert.deepEqual((await readdir(join(dir, 'signatures'))).sort(), ['alice.pub', 'alice.sig']);
  const run = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as RunRecord;
  assert.equal(run.signing.required, 1);
  assert.deepEqual(run.signing.signers.map((s) => [s.type, s.keyId]), [['ed25519', 'alice']]);
  const m = JSON.parse(await readFile(join(dir, 'nodes/build/manifest.json'), 'utf8')) as NodeManifest;
  assert.deepEqual(m.attestations, ['attestations.intoto.jsonl']);
  const [env] = await attestationLines<DsseEnvelope>(dir, 'build');
  assert.ok(env);
  assert.equal(env.payloadType, 'application/vnd.in-toto+json');
  assert.equal(env.signatures[0]?.keyid, 'alice');
  assert.equal(JSON.parse(decodeBase64(env.payload)!.toString('utf8'))._type, 'https://in-toto.io/Statement/v1');
  assert.deepEqual(await schemaProblems(dir), []);
  assert.equal(sha256sumCheck(dir).code, 0);

  const v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.deepEqual(v.problems, []);
  assert.equal(v.trustedKeyring, true);
  assert.equal(v.validSigners, 1);
  // Without fabric: openssl checks the same signature with the trusted public key.
  const ossl = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', alice.pub, '-rawin', '-in', join(dir, 'manifest.sha256'), '-sigfile', join(dir, 'signatures/alice.sig')], { encoding: 'utf8' });
  assert.equal(ossl.status, 0, ossl.stdout + ossl.stderr);
  assert.match(ossl.stdout, /Signature Verified Successfully/);

  // A keyring that does not hold alice's key: the signature and every envelope are named.
  const mallory = await ed25519Key(rig.path('other'), 'mallory');
  const w = await verifyPacket(dir, { keyringDir: mallory.pubDir });
  assert.equal(w.ok, false);
  assert.ok(w.problems.some((p) => p.file === 'signatures/alice.sig' && /not valid/.test(p.message)), JSON.stringify(w.problems));
  assert.ok(w.problems.some((p) => p.file === 'nodes/build/attestations.intoto.jsonl' && /line 1: DSSE: signature 1 \(keyid alice\) does not verify/.test(p.message)));
  assert.ok(w.problems.some((p) => p.file === 'signatures' && /incomplete/.test(p.message) && p.expected === '1' && p.found === '0'));
});

rigTest('a tampered signature fails, and so does a re-hashed packet whose record was rewritten', async (rig) => {
  const alice = await ed25519Key(rig.path('keys'), 'alice');
  await signedRun(rig, { ed25519Key: alice.priv });
  const dir = packet(rig);
  const sigPath = join(dir, 'signatures/alice.sig');
  const sig = await readFile(sigPath);
  const bad = Buffer.from(sig);
  bad[10] = bad[10]! ^ 0x40;
  await writeFile(sigPath, bad);
  let v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.equal(v.ok, false);
  assert.deepEqual(v.problems.map((p) => p.file).sort(), ['signatures', 'signatures/alice.sig']);
  await writeFile(sigPath, sig);
  assert.equal((await verifyPacket(dir, { keyringDir: alice.pubDir })).ok, true);
  // A forger rewrites run.json (status failed → ok is too easy; they hide the operator) and re-hashes the manifest.
  const runPath = join(dir, 'run.json');
  const run = JSON.parse(await readFile(runPath, 'utf8')) as RunRecord;
  await writeFile(runPath, JSON.stringify({ ...run, operator: 'nobody@nowhere' }, null, 2) + '\n');
  const entries = parseManifest(await readFile(join(dir, 'manifest.sha256'), 'utf8')).entries.map((e) => (e.path === 'run.json' ? { ...e, sha256: sha256Hex(readFileSync(runPath)) } : e));
  await writeFile(join(dir, 'manifest.sha256'), formatManifest(entries));
  assert.equal(sha256sumCheck(dir).code, 0, 'the forged packet is self-consistent');
  v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.equal(v.ok, false);
  assert.ok(v.problems.some((p) => p.file === 'signatures/alice.sig'), JSON.stringify(v.problems));
});

rigTest('dual control: one key of two is incomplete and fails; a second distinct key completes it', async (rig) => {
  const alice = await ed25519Key(rig.path('keys-a'), 'alice');
  const bob = await ed25519Key(rig.path('keys-b'), 'bob');
  const both = rig.path('ring');
  await mkdir(both);
  await copyFile(alice.pub, join(both, 'alice.pub'));
  await copyFile(bob.pub, join(both, 'bob.pub'));
  await signedRun(rig, { ed25519Key: alice.priv, required: 2 });
  const dir = packet(rig);
  assert.equal(existsSync(join(dir, 'signatures/INCOMPLETE')), true);
  assert.match(await readFile(join(dir, 'signatures/INCOMPLETE'), 'utf8'), /2 signatures .* required; 1 present/);
  let v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.equal(v.ok, false);
  assert.deepEqual(v.problems.map((p) => [p.file, p.expected, p.found]), [['signatures', '2', '1']]);
  assert.match(v.problems[0]!.message, /dual control/);
  // The same key again under another name does not count twice.
  const again = await loadSigners({ ed25519Key: alice.priv, keyId: 'alice-again' });
  await signPacket(dir, again);
  assert.deepEqual((await updateCompleteness(dir)).present.length, 1);
  v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.deepEqual(v.problems.map((p) => [p.file, p.expected, p.found]), [['signatures', '2', '1']]);
  // Custodian B signs later.
  await signPacket(dir, await loadSigners({ ed25519Key: bob.priv }));
  assert.equal((await updateCompleteness(dir)).present.length, 2);
  assert.equal(existsSync(join(dir, 'signatures/INCOMPLETE')), false);
  v = await verifyPacket(dir, { keyringDir: alice.pubDir });
  assert.deepEqual(v.problems.map((p) => p.file), ['signatures/bob.sig', 'signatures'], 'bob is not in a keyring that holds only alice');
  v = await verifyPacket(dir, { keyringDir: both });
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.validSigners, 2);
});

rigTest('GPG: armored detached signature and DSSE envelopes; verified by our verifier and by gpg; tampering fails', async (rig) => {
  const base = rig.dir;
  const k = await gpgHome('carol');
  const other = await gpgHome('mallory');
  try {
    await signedRun(rig, { gpgKey: k.fpr, gpgHome: k.home });
    const dir = join(base, 'evidence', RUN);
    const asc = join(dir, 'signatures', `${k.fpr}.asc`);
    assert.match(await readFile(asc, 'utf8'), /^-----BEGIN PGP SIGNATURE-----/);
    assert.equal(existsSync(join(dir, 'signatures', `${k.fpr}.pub.asc`)), true);
    // The verifier gets a keyring directory holding carol's exported public key.
    const ring = join(base, 'ring');
    await mkdir(ring);
    await copyFile(k.pubFile, join(ring, 'carol.asc'));
    let v = await verifyPacket(dir, { keyringDir: ring });
    assert.deepEqual(v.problems, []);
    assert.equal(v.signatures[0]?.fingerprint, k.fpr);
    // gpg itself, in a fresh home that trusts only carol's key (as Samakia's verify script does).
    const { mkdtemp, rm } = await import('node:fs/promises');
    const fresh = await mkdtemp(join((await import('node:os')).tmpdir(), 'fg-'));
    spawnSync('gpg', ['--homedir', fresh, '--batch', '--import', k.pubFile]);
    const g = spawnSync('gpg', ['--homedir', fresh, '--batch', '--verify', asc, join(dir, 'manifest.sha256')], { encoding: 'utf8' });
    assert.equal(g.status, 0, g.stderr);
    assert.match(g.stderr, /Good signature from "carol/);
    spawnSync('gpgconf', ['--homedir', fresh, '--kill', 'all']);
    await rm(fresh, { recursive: true, force: true });
    // Wrong keyring: named.
    const ring2 = join(base, 'ring2');
    await mkdir(ring2);
    await copyFile(other.pubFile, join(ring2, 'mallory.asc'));
    v = await verifyPacket(dir, { keyringDir: ring2 });
    assert.ok(v.problems.some((p) => p.file === `signatures/${k.fpr}.asc`), JSON.stringify(v.problems));
    // Tampered signature: named.
    const text = await readFile(asc, 'utf8');
    const lines = text.split('\n');
    const i = lines.findIndex((l) => /^[A-Za-z0-9+/=]{20,}$/.test(l));
    lines[i] = lines[i]!.slice(0, 10) + (lines[i]![10] === 'A' ? 'B' : 'A') + lines[i]!.slice(11);
    await writeFile(asc, lines.join('\n'));
    v = await verifyPacket(dir, { keyringDir: ring });
    assert.equal(v.ok, false);
    assert.ok(v.problems.some((p) => p.file === `signatures/${k.fpr}.asc` && /not valid/.test(p.message)), JSON.stringify(v.problems));
  } finally {
    await k.dispose();
    await other.dispose();
  }
}, { ms: 60_000 });

rigTest('dual control with ed25519 + GPG signing during the run is complete', async (rig) => {
  const base = rig.dir;
  const k = await gpgHome('dave');
  try {
    const alice = await ed25519Key(join(base, 'keys'), 'alice');
    await signedRun(rig, { ed25519Key: alice.priv, gpgKey: k.fpr, gpgHome: k.home, required: 2 });
    const dir = join(base, 'evidence', RUN);
    assert.equal(existsSync(join(dir, 'signatures/INCOMPLETE')), false);
    await copyFile(k.pubFile, join(alice.pubDir, 'dave.asc'));
    const v = await verifyPacket(dir, { keyringDir: alice.pubDir });
    assert.deepEqual(v.problems, []);
    assert.equal(v.validSigners, 2);
    const env = (await attestationLines<DsseEnvelope>(dir, 'build'))[1]!;
    assert.deepEqual(env.signatures.map((s) => s.keyid), ['alice', k.fpr]);
  } finally {
    await k.dispose();
  }
}, { ms: 60_000 });

rigTest('a missing or wrong signing key is reported with the file', async (rig) => {
  await assert.rejects(loadSigners({ ed25519Key: rig.path('nope.pem') }), (e: unknown) => e instanceof EvidenceKeyError && e.file === rig.path('nope.pem') && /ENOENT/.test(e.message));
  await rig.write({ 'rsa.pem': spawnSync('openssl', ['genpkey', '-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:1024'], { encoding: 'utf8' }).stdout, 'junk.pem': 'hello' });
  await assert.rejects(loadSigners({ ed25519Key: rig.path('rsa.pem') }), /is rsa, not ed25519/);
  await assert.rejects(loadSigners({ ed25519Key: rig.path('junk.pem') }), /not a PEM private key/);
  await assert.rejects(signedRun(rig, { ed25519Key: rig.path('nope.pem') }), (e: Error) => e.name === 'EvidenceError' && /signing key: .*nope\.pem/.test(e.message));
});

test.run();
