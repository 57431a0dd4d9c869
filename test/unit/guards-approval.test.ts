// The approval() guard on real signed documents (ed25519 through node:crypto; OpenPGP through gpg when installed):
// every mismatch is refused with its exact reason.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, timedTest } from '../helpers/rig.js';
import { approval } from '../../lib/guards/index.js';
import { bindParams, generateEd25519, keyFingerprint, loadKeyring, parseExpiry, signEd25519, signOpenPgp, type ApprovalBody } from '../../lib/guards/approval-doc.js';
import { findOnPath } from '../../lib/guards/require.js';
import type { GuardDecision, GuardFacts } from '../../lib/guards/types.js';
import { createPrivateKey } from 'node:crypto';

const COMMIT = 'a'.repeat(40);
const OTHER_COMMIT = 'b'.repeat(40);
const DIGEST = `sha256:${'1'.repeat(64)}`;
const NOW = new Date('2026-01-04T10:00:00Z');
const SELECTION = [
  { id: 'tf.plan[ENV=samakia-prod]', task: 'tf.plan', params: { ENV: 'samakia-prod' } },
  { id: 'tf.apply[ENV=samakia-prod]', task: 'tf.apply', params: { ENV: 'samakia-prod' } },
];

function body(over: Partial<ApprovalBody> = {}): ApprovalBody {
  return {
    kind: 'fabric-approval',
    version: 1,
    targets: ['tf.apply[ENV=samakia-prod]'],
    nodes: SELECTION.map((s) => ({ id: s.id, task: s.task, params: bindParams(s.params) })),
    gitCommit: COMMIT,
    planDigest: DIGEST,
    approver: 'alice',
    reason: 'CHG-1234 quarterly prod apply',
    createdAt: '2026-01-04T09:00:00Z',
    expiresAt: '2026-01-04T11:00:00Z',
    ...over,
  };
}

interface Env {
  dir: string;
  keyFile: string;
  strangerKeyFile: string;
  facts(vars: Record<string, string>, over?: Partial<GuardFacts>): GuardFacts;
}

async function setup(): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-approval-'));
  await mkdir(join(dir, 'keys'));
  await mkdir(join(dir, 'private'));
  const alice = generateEd25519();
  const stranger = generateEd25519();
  await writeFile(join(dir, 'private', 'alice.key'), alice.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'private', 'stranger.key'), stranger.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'keys', 'alice.pub'), alice.publicKeyPem);
  return {
    dir,
    keyFile: join(dir, 'private', 'alice.key'),
    strangerKeyFile: join(dir, 'private', 'stranger.key'),
    facts: (vars, over = {}) => ({
      node: 'tf.apply[ENV=samakia-prod]',
      task: 'tf.apply',
      effect: 'mutating',
      params: { ENV: 'samakia-prod' },
      vars: { ENV: 'samakia-prod', ...vars },
      env: { PATH: process.env['PATH'] },
      ci: false,
      interactive: false,
      now: NOW,
      operator: 'op@host',
      repoRoot: dir,
      gitCommit: COMMIT,
      planDigest: DIGEST,
      selection: SELECTION,
      keyrings: { ed25519: join(dir, 'keys') },
      ...over,
    }),
  };
}

async function write(env: Env, name: string, b: ApprovalBody, key = env.keyFile): Promise<string> {
  const doc = signEd25519(b, createPrivateKey(await readFile(key, 'utf8')), 'alice');
  await writeFile(join(env.dir, name), JSON.stringify(doc, null, 2) + '\n');
  return name;
}

const G = approval();
async function check(env: Env, file: string | undefined, over: Partial<GuardFacts> = {}): Promise<GuardDecision> {
  return G.evaluate(env.facts(file === undefined ? {} : { FABRIC_APPROVAL: file }, over));
}

function approvalTest(name: string, fn: (env: Env) => Promise<void>): void {
  timedTest(name, async () => {
    const env = await setup();
    try {
      await fn(env);
    } finally {
      await rm(env.dir, { recursive: true, force: true });
    }
  });
}

approvalTest('valid approval → allow, naming the approver, key, expiry and reason', async (env) => {
  const f = await write(env, 'ok.json', body());
  const d = await check(env, f);
  assert.equal(d.outcome, 'allow');
  const fpr = keyFingerprint(createPrivateKey(await readFile(env.keyFile, 'utf8')));
  assert.equal(d.reason, `approved by alice (key alice ${fpr}) until 2026-01-04T11:00:00Z: "CHG-1234 quarterly prod apply"`);
  assert.equal(d.facts['signer'], 'alice');
});

approvalTest('no approval variable → deny', async (env) => {
  const d = await check(env, undefined);
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'approval required: FABRIC_APPROVAL is not set');
  assert.equal(d.remedy, "write one with 'fabric approve <tasks> [VAR=value] --key KEY --approver ID --reason TEXT --expires 2h -o FILE' for the same selection, then set FABRIC_APPROVAL=FILE");
});

approvalTest('approval file not found → deny', async (env) => {
  assert.equal((await check(env, 'nope.json')).reason, 'approval file not found: nope.json');
});

approvalTest('expired → deny', async (env) => {
  const f = await write(env, 'old.json', body({ createdAt: '2026-01-04T08:00:00Z', expiresAt: '2026-01-04T09:59:59Z' }));
  const d = await check(env, f);
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'approval expired at 2026-01-04T09:59:59Z (now 2026-01-04T10:00:00Z)');
  assert.equal(d.remedy, 'ask alice for a new approval');
});

approvalTest('other commit → deny', async (env) => {
  const f = await write(env, 'c.json', body({ gitCommit: OTHER_COMMIT }));
  assert.equal((await check(env, f)).reason, 'approval is for commit bbbbbbbbbbbb, but HEAD is aaaaaaaaaaaa');
  assert.equal((await check(env, f, { gitCommit: undefined })).reason, 'approval is for commit bbbbbbbbbbbb, but the repository has no commit (not a git work tree?)');
});

approvalTest('other params → deny', async (env) => {
  const staging = [
    { id: 'tf.plan[ENV=samakia-staging]', task: 'tf.plan', params: { ENV: 'samakia-staging' } },
    { id: 'tf.apply[ENV=samakia-staging]', task: 'tf.apply', params: { ENV: 'samakia-staging' } },
  ];
  const f = await write(env, 'p.json', body({ nodes: staging }));
  assert.equal((await check(env, f)).reason, 'approval is for tf.plan with ENV=samakia-staging, but this run has ENV=samakia-prod');
});

approvalTest('other nodes → deny (missing and extra)', async (env) => {
  const f1 = await write(env, 'n1.json', body({ nodes: [SELECTION[1]!] }));
  assert.equal((await check(env, f1)).reason, 'approval does not cover tf.plan[ENV=samakia-prod] (approved: tf.apply[ENV=samakia-prod])');
  const f2 = await write(env, 'n2.json', body({ nodes: [...SELECTION, { id: 'dns.up', task: 'dns.up', params: {} }] }));
  assert.equal((await check(env, f2)).reason, "approval covers dns.up, which is not in this run's selection");
});

approvalTest('plan changed → deny', async (env) => {
  const f = await write(env, 'pl.json', body({ planDigest: `sha256:${'2'.repeat(64)}` }));
  const d = await check(env, f);
  assert.equal(d.reason, `plan changed since approval: approved sha256:${'2'.repeat(64)}, now ${DIGEST}`);
  assert.equal(d.remedy, "review 'fabric plan --json' and get a new approval for the current plan");
});

approvalTest('one flipped byte → invalid signature', async (env) => {
  const f = await write(env, 't.json', body());
  const text = await readFile(join(env.dir, f), 'utf8');
  const i = text.indexOf('quarterly') + 2;
  await writeFile(join(env.dir, f), text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1));
  assert.equal((await check(env, f)).reason, 'approval signature is invalid: the document was changed after it was signed');
  // a flipped byte inside the signature itself
  const f2 = await write(env, 't2.json', body());
  const doc = JSON.parse(await readFile(join(env.dir, f2), 'utf8')) as { signature: { value: string } };
  const v = doc.signature.value;
  doc.signature.value = v.slice(0, 10) + (v[10] === 'A' ? 'B' : 'A') + v.slice(11);
  await writeFile(join(env.dir, f2), JSON.stringify(doc));
  assert.equal((await check(env, f2)).reason, 'approval signature is invalid: the document was changed after it was signed');
});

approvalTest('unknown key → deny', async (env) => {
  const f = await write(env, 'u.json', body(), env.strangerKeyFile);
  const fpr = keyFingerprint(createPrivateKey(await readFile(env.strangerKeyFile, 'utf8')));
  assert.equal((await check(env, f)).reason, `approval is signed by an unknown key ${fpr} (not in keyring keys)`);
});

approvalTest('no keyring configured → deny', async (env) => {
  const f = await write(env, 'ok.json', body());
  assert.equal((await check(env, f, { keyrings: {} })).reason, 'no ed25519 keyring is configured to check approvals');
});

approvalTest('malformed approval → located deny', async (env) => {
  await writeFile(join(env.dir, 'bad.json'), '{\n  "kind": "fabric-approval",\n  "version": 1,\n  "nodes": [\n');
  const d = await check(env, 'bad.json');
  assert.equal(d.outcome, 'deny');
  assert.match(d.reason, /^malformed approval: bad\.json:\d+:\d+: invalid YAML: /);
  assert.ok(d.diagnostics?.[0]?.location);
  const f = await write(env, 'schema.json', body());
  const doc = JSON.parse(await readFile(join(env.dir, f), 'utf8')) as Record<string, unknown>;
  doc['expiresAt'] = 'tomorrow';
  await writeFile(join(env.dir, f), JSON.stringify(doc, null, 2));
  const d2 = await check(env, f);
  const line = JSON.stringify(doc, null, 2).split('\n').findIndex((l) => l.includes('"expiresAt"')) + 1;
  assert.equal(d2.reason, `malformed approval: schema.json:${line}:16: approval at /expiresAt must match pattern "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$"`);
});

approvalTest('when condition: skip outside prod', async (env) => {
  const g = approval({ when: { param: 'ENV', equals: 'samakia-prod' } });
  const d = await g.evaluate(env.facts({ ENV: 'samakia-dev' }));
  assert.equal(d.outcome, 'skip');
  assert.equal(d.reason, 'skipped: applies only when ENV=samakia-prod (ENV is "samakia-dev")');
  assert.equal(g.name, 'approval(FABRIC_APPROVAL) when ENV=samakia-prod');
});

approvalTest('secret params are bound by hash, never in clear', async (env) => {
  const sel = [{ id: 'x', task: 'x', params: { TOKEN: 'tok-very-secret' }, secretParams: ['TOKEN'] }];
  const b = body({ nodes: [{ id: 'x', task: 'x', params: bindParams({ TOKEN: 'tok-very-secret' }, ['TOKEN']) }] });
  const f = await write(env, 's.json', b);
  assert.ok(!(await readFile(join(env.dir, f), 'utf8')).includes('tok-very-secret'));
  assert.equal((await check(env, f, { selection: sel })).outcome, 'allow');
  const other = [{ id: 'x', task: 'x', params: { TOKEN: 'another-secret' }, secretParams: ['TOKEN'] }];
  assert.equal((await check(env, f, { selection: other })).reason, 'approval is for x with TOKEN=[secret], but this run has TOKEN=[secret]');
});

timedTest('keyring file with id lines; parseExpiry', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-ring-'));
  try {
    const a = generateEd25519();
    const b = generateEd25519();
    await writeFile(join(dir, 'ring.pem'), `# trusted approvers\nid: alice\n${a.publicKeyPem}\n# id: bob\n${b.publicKeyPem}`);
    const ring = loadKeyring(join(dir, 'ring.pem'));
    assert.deepEqual(ring.keys.map((k) => [k.id, k.fingerprint]), [['alice', a.fingerprint], ['bob', b.fingerprint]]);
    assert.deepEqual(ring.problems, []);
    assert.throws(() => loadKeyring(join(dir, 'missing')), /keyring not found/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(parseExpiry('2h', NOW)?.toISOString(), '2026-01-04T12:00:00.000Z');
  assert.equal(parseExpiry('30m', NOW)?.toISOString(), '2026-01-04T10:30:00.000Z');
  assert.equal(parseExpiry('2026-02-01T00:00:00Z', NOW)?.toISOString(), '2026-02-01T00:00:00.000Z');
  assert.equal(parseExpiry('soon', NOW), undefined);
  assert.equal(parseExpiry('0h', NOW), undefined);
});

// ---------------------------------------------------------------- OpenPGP

const HAVE_GPG = findOnPath('gpg', process.env['PATH']) !== undefined;

function gpg(home: string, args: string[], input?: string): string {
  const r = spawnSync('gpg', ['--batch', '--homedir', home, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gpg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

if (HAVE_GPG) {
  timedTest('OpenPGP: valid, tampered, unknown key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fabric-gpg-'));
    const signer = join(dir, 's');
    const trusted = join(dir, 't');
    const other = join(dir, 'o');
    try {
      for (const h of [signer, trusted, other]) await mkdir(h, { mode: 0o700 });
      gpg(signer, ['--passphrase', '', '--quick-gen-key', 'Alice <alice@example.org>', 'ed25519', 'sign', 'never']);
      gpg(other, ['--passphrase', '', '--quick-gen-key', 'Mallory <mallory@example.org>', 'ed25519', 'sign', 'never']);
      gpg(trusted, ['--import'], gpg(signer, ['--armor', '--export', 'alice@example.org']));
      const doc = await signOpenPgp(body(), 'alice@example.org', { homedir: signer, env: process.env });
      assert.equal(doc.signature.scheme, 'openpgp');
      await writeFile(join(dir, 'a.json'), JSON.stringify(doc, null, 2));
      const facts = (file: string): GuardFacts => ({
        node: 'n', task: 'tf.apply', effect: 'mutating', params: {}, vars: { FABRIC_APPROVAL: file }, env: { PATH: process.env['PATH'] },
        ci: false, interactive: false, now: NOW, operator: 'o@h', repoRoot: dir, gitCommit: COMMIT, planDigest: DIGEST, selection: SELECTION,
        keyrings: { gpgHome: trusted },
      });
      const ok = await approval().evaluate(facts('a.json'));
      assert.equal(ok.outcome, 'allow', ok.reason);
      assert.match(ok.reason, /^approved by alice \(OpenPGP key [0-9A-F]{40} \(Alice <alice@example\.org>\)\) until 2026-01-04T11:00:00Z: "CHG-1234 quarterly prod apply"$/);

      const tampered = { ...doc, reason: 'CHG-1234 quarterly prod applY' };
      await writeFile(join(dir, 'b.json'), JSON.stringify(tampered));
      assert.equal((await approval().evaluate(facts('b.json'))).reason, 'approval signature is invalid: the document was changed after it was signed');

      const mallory = await signOpenPgp(body(), 'mallory@example.org', { homedir: other, env: process.env });
      await writeFile(join(dir, 'c.json'), JSON.stringify(mallory));
      assert.equal((await approval().evaluate(facts('c.json'))).reason, `approval is signed by an unknown key ${mallory.signature.keyId} (not in gpg keyring t)`);
    } finally {
      for (const h of [signer, trusted, other]) spawnSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent']);
      await rm(dir, { recursive: true, force: true });
    }
  });
} else {
  console.log('gpg not installed: OpenPGP approval tests skipped');
}

test.run();
