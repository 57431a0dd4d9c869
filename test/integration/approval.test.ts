// Signed approvals end to end: `fabric approve` writes one for a selection, `fabric run` checks it with the
// approval() guard. Real keys (node:crypto, openssl, gpg), a real git repository, the JSON event stream as oracle.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, copyFileSync } from 'node:fs';
import type { FabricEvent } from '../../lib/engine/events.js';
import { findOnPath } from '../../lib/guards/require.js';
import { rigTest, test, type FabricRun, type Rig } from '../helpers/rig.js';
const SLOW = { ms: 240_000 }; // several CLI processes per test, on a shared 2-core machine

const FABRICFILE = `import { task, approval } from 'fabric';
task('tf.plan', { effect: 'read-only', params: { ENV: { default: 'samakia-dev' } }, run: 'echo plan {{ENV}} >> plan.ran' });
task('tf.apply', {
  deps: ['tf.plan'],
  params: { ENV: { default: 'samakia-dev' }, TENANT: { default: 'all' } },
  run: 'echo apply {{ENV}} {{TENANT}} >> apply.ran',
  guards: [approval({ when: { param: 'ENV', equals: 'samakia-prod' } })],
});
`;

function sh(rig: Rig, cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, {
    cwd: rig.dir,
    encoding: 'utf8',
    input,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function repo(rig: Rig, extraConfig: Record<string, unknown> = {}): Promise<void> {
  await rig.write({
    'fabricfile.ts': FABRICFILE,
    '.fabricrc.json': JSON.stringify({ keyrings: { ed25519: 'keys', ...extraConfig } }),
    '.gitignore': '.fabric/\n*.ran\nprivate/\n*.json.bak\napproval*.json\n',
  });
  sh(rig, 'git', ['init', '-q']);
  sh(rig, 'git', ['add', '-A']);
  sh(rig, 'git', ['commit', '-qm', 'init']);
  const gen = await rig.fabric(['approve', '--generate-key', 'private', '--key-id', 'alice']);
  assert.equal(gen.code, 0, gen.stderr);
  assert.match(gen.stdout, /fingerprint: SHA256:[A-Za-z0-9+/]{43}\n/);
  mkdirSync(rig.path('keys'), { recursive: true });
  copyFileSync(rig.path('private/alice.pub'), rig.path('keys/alice.pub'));
}

const approve = (rig: Rig, args: string[], key = 'private/alice.key') =>
  rig.fabric(['approve', 'tf.apply', 'ENV=samakia-prod', '--key', key, '--approver', 'alice', '--reason', 'CHG-42 prod network change', '--expires', '2h', ...args]);

const runApply = (rig: Rig, extra: string[] = [], file = 'approval.json') => rig.fabric(['run', 'tf.apply', 'ENV=samakia-prod', `FABRIC_APPROVAL=${file}`, '--output=json', '--no-evidence', ...extra]);

function approvalDecision(r: FabricRun) {
  const e = r.events.find((x): x is Extract<FabricEvent, { type: 'guard-decision' }> => x.type === 'guard-decision' && x.decision.kind === 'approval');
  assert.ok(e, `no approval decision in: ${r.stdout}\n${r.stderr}`);
  return e.decision;
}

rigTest('a valid approval lets the prod apply run; plan --json prints the digest it binds', async (rig) => {
  await repo(rig);
  const a = await approve(rig, ['-o', 'approval.json']);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /approved 2 nodes \(tf\.apply\[ENV=samakia-prod\]\) at commit [0-9a-f]{12}, plan sha256:[0-9a-f]{64}, until \S+Z, signed with key alice SHA256:/);
  const doc = JSON.parse(await rig.read('approval.json')) as { planDigest: string; gitCommit: string; nodes: { id: string }[]; signature: { scheme: string } };
  const plan = await rig.fabric(['plan', 'tf.apply', 'ENV=samakia-prod', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout) as { digest: string; gitCommit: string; nodes: { id: string }[]; guards: Record<string, { name: string }[]> };
  assert.equal(doc.planDigest, p.digest);
  assert.equal(doc.gitCommit, p.gitCommit);
  assert.deepEqual(doc.nodes.map((n) => n.id), ['tf.plan[ENV=samakia-prod]', 'tf.apply[ENV=samakia-prod]']);
  assert.deepEqual(p.guards['tf.apply[ENV=samakia-prod]']!.map((g) => g.name), ['approval(FABRIC_APPROVAL) when ENV=samakia-prod']);
  assert.equal(doc.signature.scheme, 'ed25519');

  const r = await runApply(rig);
  assert.equal(r.code, 0, r.stderr);
  const d = approvalDecision(r);
  assert.equal(d.outcome, 'allow');
  assert.match(d.reason, /^approved by alice \(key alice SHA256:\S+\) until \S+Z: "CHG-42 prod network change"$/);
  assert.equal((await rig.read('apply.ran')).trim(), 'apply samakia-prod all');
  // no approval needed outside prod; none given in prod → refused
  const dev = await rig.fabric(['run', 'tf.apply', '--output=json', '--no-evidence']);
  assert.equal(dev.code, 0, dev.stderr);
  assert.equal(approvalDecision(dev).outcome, 'skip');
  const none = await rig.fabric(['run', 'tf.apply', 'ENV=samakia-prod', '--output=json', '--no-evidence']);
  assert.equal(none.code, 2);
  assert.equal(approvalDecision(none).reason, 'approval required: FABRIC_APPROVAL is not set');
}, SLOW);

rigTest('other params, plan changed, other commit → refused with the exact reason, nothing runs', async (rig) => {
  await repo(rig);
  assert.equal((await approve(rig, ['-o', 'approval.json'])).code, 0);
  const params = await runApply(rig, ['TENANT=project-birds']);
  assert.equal(params.code, 2);
  assert.equal(approvalDecision(params).reason, 'approval is for tf.apply with ENV=samakia-prod TENANT=all, but this run has ENV=samakia-prod TENANT=project-birds');

  // the plan changes (a command edited, not committed): same commit, other digest
  await rig.write({ 'fabricfile.ts': FABRICFILE.replace('echo apply', 'echo APPLY') });
  const changed = await runApply(rig);
  assert.equal(changed.code, 2);
  assert.match(approvalDecision(changed).reason, /^plan changed since approval: approved sha256:[0-9a-f]{64}, now sha256:[0-9a-f]{64}$/);

  // back to the approved plan, but at another commit
  await rig.write({ 'fabricfile.ts': FABRICFILE, 'README.md': 'unrelated change\n' });
  const before = sh(rig, 'git', ['rev-parse', 'HEAD']).trim();
  sh(rig, 'git', ['add', 'README.md']);
  sh(rig, 'git', ['commit', '-qm', 'docs']);
  const after = sh(rig, 'git', ['rev-parse', 'HEAD']).trim();
  const commit = await runApply(rig);
  assert.equal(commit.code, 2);
  assert.equal(approvalDecision(commit).reason, `approval is for commit ${before.slice(0, 12)}, but HEAD is ${after.slice(0, 12)}`);
  assert.equal(rig.exists('apply.ran') || rig.exists('plan.ran'), false);
}, SLOW);

rigTest('expired, tampered byte, unknown key, malformed → refused', async (rig) => {
  await repo(rig);
  assert.equal((await approve(rig, ['-o', 'approval-short.json', '--expires', '1s'])).code, 0);
  await new Promise((r) => setTimeout(r, 1200));
  const expired = await runApply(rig, [], 'approval-short.json');
  assert.equal(expired.code, 2);
  assert.match(approvalDecision(expired).reason, /^approval expired at \S+Z \(now \S+Z\)$/);

  assert.equal((await approve(rig, ['-o', 'approval.json'])).code, 0);
  const text = await rig.read('approval.json');
  const i = text.indexOf('network');
  await rig.write({ 'approval-tampered.json': text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 0x01) + text.slice(i + 1) });
  const tampered = await runApply(rig, [], 'approval-tampered.json');
  assert.equal(tampered.code, 2);
  assert.equal(approvalDecision(tampered).reason, 'approval signature is invalid: the document was changed after it was signed');

  // a key that is not in the keyring (openssl-made: the documented alternative to --generate-key)
  if (findOnPath('openssl', process.env['PATH'])) {
    sh(rig, 'openssl', ['genpkey', '-algorithm', 'ed25519', '-out', 'private/mallory.key']);
    const m = await approve(rig, ['-o', 'approval-mallory.json'], 'private/mallory.key');
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /warning: key SHA256:\S+ is not in the keyring .*keys; the approval\(\) guard will refuse this approval/);
    const unknown = await runApply(rig, [], 'approval-mallory.json');
    assert.equal(unknown.code, 2);
    assert.match(approvalDecision(unknown).reason, /^approval is signed by an unknown key SHA256:[A-Za-z0-9+/]{43} \(not in keyring keys\)$/);
    // once its public key is in the keyring, the same approval is accepted
    sh(rig, 'openssl', ['pkey', '-in', 'private/mallory.key', '-pubout', '-out', 'keys/mallory.pub']);
    const trusted = await runApply(rig, [], 'approval-mallory.json');
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(approvalDecision(trusted).reason, /\(key mallory SHA256:/);
  }

  await rig.write({ 'approval-bad.json': text.replace('"approver": "alice",', '"approver": "alice",,') });
  const bad = await runApply(rig, [], 'approval-bad.json');
  assert.equal(bad.code, 2);
  const line = text.split('\n').findIndex((l) => l.includes('"approver"')) + 1;
  const d = approvalDecision(bad);
  assert.match(d.reason, new RegExp(`^malformed approval: approval-bad\\.json:${line}:\\d+: `));
  assert.ok(d.diagnostics?.[0]?.location);
}, SLOW);

rigTest('approve: usage errors exit 2 with a message; no approval outside a git repository', async (rig) => {
  await repo(rig);
  const noReason = await rig.fabric(['approve', 'tf.apply', '--key', 'private/alice.key', '--approver', 'alice', '--expires', '2h']);
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /--reason TEXT is required/);
  const badExp = await approve(rig, ['--expires', 'someday']);
  assert.equal(badExp.code, 2);
  assert.match(badExp.stderr, /--expires "someday" is neither a duration \(45m, 2h, 1d\) nor an ISO-8601 UTC time/);
  const noKey = await rig.fabric(['approve', 'tf.apply', '--approver', 'a', '--reason', 'r', '--expires', '1h']);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /no signing key/);
  const badKey = await approve(rig, [], 'keys/alice.pub');
  assert.equal(badKey.code, 2);
  assert.match(badKey.stderr, /keys\/alice\.pub is not a PEM private key/);
  const exists = await rig.fabric(['approve', '--generate-key', 'private', '--key-id', 'alice']);
  assert.equal(exists.code, 2);
  assert.match(exists.stderr, /alice\.key already exists \(refusing to overwrite a key\)/);
  sh(rig, 'rm', ['-rf', '.git']);
  const nogit = await approve(rig, []);
  assert.equal(nogit.code, 2);
  assert.match(nogit.stderr, /is not a git work tree with a commit: approvals bind to a commit/);
}, SLOW);

rigTest('plan and approval never show a secret param in clear; the plan digest still tells values apart', async (rig) => {
  await rig.write({
    'fabricfile.ts': `import { task } from 'fabric';
task('rotate', { params: { TOKEN: { secret: true, required: true } }, run: 'rotate --token {{TOKEN}}' });
`,
    '.fabricrc.json': JSON.stringify({ keyrings: { ed25519: 'keys' } }),
    '.gitignore': '.fabric/\nprivate/\napproval*.json\n',
  });
  sh(rig, 'git', ['init', '-q']);
  sh(rig, 'git', ['add', '-A']);
  sh(rig, 'git', ['commit', '-qm', 'init']);
  assert.equal((await rig.fabric(['approve', '--generate-key', 'private', '--key-id', 'k'])).code, 0);
  const p1 = await rig.fabric(['plan', 'rotate', 'TOKEN=tok-0123456789-secret', '--json']);
  assert.equal(p1.code, 0, p1.stderr);
  assert.ok(!p1.stdout.includes('tok-0123456789-secret'), p1.stdout);
  const plan = JSON.parse(p1.stdout) as { digest: string; nodes: { params: Record<string, string>; commands: string[] }[] };
  assert.equal(plan.nodes[0]!.params['TOKEN'], '[REDACTED]');
  const p2 = JSON.parse((await rig.fabric(['plan', 'rotate', 'TOKEN=tok-other-value-99', '--json'])).stdout) as { digest: string };
  assert.notEqual(plan.digest, p2.digest);
  const text = await rig.fabric(['plan', 'rotate', 'TOKEN=tok-0123456789-secret']);
  assert.ok(!text.stdout.includes('tok-0123456789-secret'));
  assert.match(text.stdout, /^digest: sha256:[0-9a-f]{64}$/m);
  const a = await rig.fabric(['approve', 'rotate', 'TOKEN=tok-0123456789-secret', '--key', 'private/k.key', '--approver', 'k', '--reason', 'rotation', '--expires', '1h']);
  assert.equal(a.code, 0, a.stderr);
  assert.ok(!a.stdout.includes('tok-0123456789-secret'));
  const doc = JSON.parse(a.stdout) as { planDigest: string; nodes: { params: Record<string, string> }[] };
  assert.match(doc.nodes[0]!.params['TOKEN']!, /^secret:sha256:[0-9a-f]{64}$/);
  assert.equal(doc.planDigest, plan.digest);
}, SLOW);

const HAVE_GPG = findOnPath('gpg', process.env['PATH']) !== undefined;
if (HAVE_GPG) {
  rigTest('OpenPGP approvals: signed with --gpg-key, checked against keyrings.gpgHome', async (rig) => {
    await repo(rig, { gpgHome: 'gpg-trusted' });
    const signer = rig.path('gpg-signer');
    const trusted = rig.path('gpg-trusted');
    try {
      mkdirSync(signer, { mode: 0o700 });
      mkdirSync(trusted, { mode: 0o700 });
      sh(rig, 'gpg', ['--batch', '--homedir', signer, '--passphrase', '', '--quick-gen-key', 'Alice Ops <alice@example.org>', 'ed25519', 'sign', 'never']);
      const pub = sh(rig, 'gpg', ['--batch', '--homedir', signer, '--armor', '--export', 'alice@example.org']);
      sh(rig, 'gpg', ['--batch', '--homedir', trusted, '--import'], pub);
      const a = await rig.fabric(['approve', 'tf.apply', 'ENV=samakia-prod', '--gpg-key', 'alice@example.org', '--gpg-home', 'gpg-signer', '--approver', 'alice', '--reason', 'CHG-43', '--expires', '1h', '-o', 'approval-gpg.json']);
      assert.equal(a.code, 0, a.stderr);
      const doc = JSON.parse(await rig.read('approval-gpg.json')) as { signature: { scheme: string; armored: string } };
      assert.equal(doc.signature.scheme, 'openpgp');
      assert.match(doc.signature.armored, /^-----BEGIN PGP SIGNATURE-----/);
      const ok = await runApply(rig, [], 'approval-gpg.json');
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(approvalDecision(ok).reason, /^approved by alice \(OpenPGP key [0-9A-F]{40} \(Alice Ops <alice@example\.org>\)\) until \S+Z: "CHG-43"$/);
      const text = await rig.read('approval-gpg.json');
      await rig.write({ 'approval-gpg2.json': text.replace('"CHG-43"', '"CHG-44"') });
      const bad = await runApply(rig, [], 'approval-gpg2.json');
      assert.equal(bad.code, 2);
      assert.equal(approvalDecision(bad).reason, 'approval signature is invalid: the document was changed after it was signed');
    } finally {
      for (const h of [signer, trusted]) spawnSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent']);
    }
  }, SLOW);
} else {
  console.log('gpg not installed: the OpenPGP approval test is skipped');
}

test.run();
