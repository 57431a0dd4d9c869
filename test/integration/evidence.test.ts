// Evidence through the real CLI: `fabric run` writes a packet for every run, `fabric evidence` lists,
// shows, verifies and signs it. Real processes, real files, the real sha256sum/gpg.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walkFiles } from '../../lib/evidence/fsutil.js';
import { listRuns } from '../../lib/evidence/read.js';
import type { NodeManifest, RunRecord } from '../../lib/evidence/types.js';
import { fixture, rigTest, test, type FabricRun, type Rig } from '../helpers/rig.js';
import { allText, ed25519Key, gpgHome, schemaProblems, sha256sumCheck } from '../unit/evidence-helpers.js';

const NODE = JSON.stringify(process.execPath);
const WAIT = JSON.stringify(fixture('wait-for.mjs'));

const FABRICFILE = `import { task, paramEquals } from 'fabric';
task('gen', { effect: 'read-only', inputs: ['src/*.txt'], outputs: ['out/gen.txt'], run: 'mkdir -p out && cat src/*.txt > out/gen.txt && echo generated' });
task('bad', { deps: ['gen'], run: 'echo about to fail >&2; exit 3' });
task('after', { deps: ['bad'], run: 'echo never' });
task('prod', { params: { ENV: { default: 'prod' } }, guards: [paramEquals('ENV', 'dev')], run: 'echo deploying' });
task('slow', { run: [[${NODE}, ${WAIT}, '.release-slow', '.pid-slow']] });
task('two', { deps: ['gen'], run: [[${NODE}, ${WAIT}, '.release-two', '.pid-two']] });
`;

async function setup(rig: Rig, extra: Record<string, string> = {}): Promise<void> {
  await rig.write({ 'fabricfile.ts': FABRICFILE, 'src/a.txt': 'alpha\n', 'src/b.txt': 'beta\n', ...extra });
}

async function runs(rig: Rig): Promise<string[]> {
  const root = rig.path('evidence');
  return existsSync(root) ? (await readdir(root)).filter((n) => !n.startsWith('.')).sort() : [];
}
// The newest packet as fabric orders them (by start time: run ids only sort to the second).
const lastPacket = async (rig: Rig): Promise<string> => (await listRuns(rig.path('evidence'))).at(-1)!.dir;
const readRun = async (dir: string): Promise<RunRecord> => JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as RunRecord;
const statuses = (run: RunRecord) => Object.fromEntries(run.nodes.map((n) => [n.id, n.status]));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

rigTest('every node status gets a manifest; each packet passes sha256sum -c, its schemas and fabric evidence verify', async (rig) => {
  await setup(rig);
  const seen: Record<string, string | null>[] = [];
  const known = new Set<string>();
  const order: string[] = [];
  // The packet a run wrote is the one that was not there before (ids only sort to the second).
  const record = async () => {
    const fresh = (await runs(rig)).filter((id) => !known.has(id));
    assert.equal(fresh.length, 1, `expected one new packet, got ${fresh.join(', ')}`);
    known.add(fresh[0]!);
    order.push(fresh[0]!);
    seen.push(statuses(await readRun(rig.path('evidence', fresh[0]!))));
  };
  assert.equal((await rig.fabric(['run', 'gen'])).code, 0);
  await record();
  assert.equal((await rig.fabric(['run', 'gen'])).code, 0);
  await record();
  assert.equal((await rig.fabric(['run', 'after'])).code, 1);
  await record();
  const denied = await rig.fabric(['run', 'prod']);
  assert.equal(denied.code, 2, denied.stderr + denied.stdout);
  await record();
  // Cancelled: SIGINT while `slow` runs.
  let failed: unknown;
  const interrupted = await rig.fabric(['run', 'slow'], {
    onSpawn: (child) => {
      until(() => rig.exists('.pid-slow'), 'slow to start').then(
        () => child.kill('SIGINT'),
        (e: unknown) => ((failed = e), child.kill('SIGKILL')),
      );
    },
  });
  if (failed) throw failed;
  assert.equal(interrupted.code, 130, interrupted.stderr);
  await record();
  assert.deepEqual(seen, [
    { gen: 'ok' },
    { gen: 'cached' },
    { gen: 'cached', bad: 'failed', after: 'skipped-after-failure' },
    { prod: 'denied' },
    { slow: 'cancelled' },
  ]);
  for (const id of await runs(rig)) {
    const dir = rig.path('evidence', id);
    for (const n of (await readRun(dir)).nodes) assert.ok(existsSync(join(dir, 'nodes', n.safeId, 'manifest.json')), `${id}: no manifest for ${n.id}`);
    const sum = sha256sumCheck(dir);
    assert.equal(sum.code, 0, `${id}: ${sum.out}`);
    assert.deepEqual(await schemaProblems(dir), [], id);
    const v = await rig.fabric(['evidence', 'verify', dir]);
    assert.equal(v.code, 0, `${id}: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /✓ verified /);
  }
  const statusesByRun = (await Promise.all((await runs(rig)).map(async (id) => (await readRun(rig.path('evidence', id))).status)));
  assert.deepEqual(statusesByRun.sort(), ['denied', 'failed', 'interrupted', 'ok', 'ok']);
  const gen = JSON.parse(await readFile(join(rig.path('evidence', order[0]!), 'nodes/gen/manifest.json'), 'utf8')) as NodeManifest;
  assert.deepEqual(gen.inputs.map((i) => i.path), ['src/a.txt', 'src/b.txt']);
  assert.deepEqual(gen.outputs.map((o) => [o.path, o.size]), [['out/gen.txt', 11]]);

  // ls: one line per run, oldest first, with status and counts.
  const ls = await rig.fabric(['evidence', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trim().split('\n');
  assert.equal(lines.length, 5);
  assert.match(lines[2]!, /failed\s+3 nodes: 1 cached, 1 failed, 1 skipped-after-failure\s+unsigned/);
  assert.match(lines[3]!, /denied\s+1 nodes: 1 denied/);
  const lsJson = JSON.parse((await rig.fabric(['evidence', 'ls', '--json'])).stdout) as { status: string }[];
  assert.deepEqual(lsJson.map((r) => r.status), ['ok', 'ok', 'failed', 'denied', 'interrupted']);
  // show: a run and a node.
  const show = await rig.fabric(['evidence', 'show', 'latest']);
  assert.match(show.stdout, /run \S+ {2}interrupted \(SIGINT\)/);
  const third = order[2]!;
  const node = await rig.fabric(['evidence', 'show', third.slice(0, 22), 'bad']);
  assert.equal(node.code, 0, node.stderr);
  assert.match(node.stdout, /^bad {2}failed\n/);
  assert.match(node.stdout, /\$ echo about to fail >&2; exit 3 {3}→ exit 3/);
  assert.match(node.stdout, /stderr \(14 B\):\n {2}│ about to fail/);
  const denial = await rig.fabric(['evidence', 'show', order[3]!, 'prod', '--json']);
  const pm = JSON.parse(denial.stdout) as NodeManifest;
  assert.equal(pm.guards[0]?.outcome, 'deny');
  assert.equal(pm.failure?.reason, 'denied');
  const nope = await rig.fabric(['evidence', 'show', 'no-such-run']);
  assert.equal(nope.code, 2);
  assert.match(nope.stderr, /no run "no-such-run"/);
}, { ms: 180_000 });

rigTest('a planted secret (MY_TOKEN, declared and echoed, split across chunks) appears nowhere in evidence or terminal output', async (rig) => {
  const TOKEN = 'sekr1t-T0KEN-4242';
  await rig.write({
    'fabricfile.ts': `import { task } from 'fabric';
task('leak', { effect: 'read-only', env: ['MY_TOKEN'], run: 'echo "token=$MY_TOKEN"; printf "half=%s" "\${MY_TOKEN:0:6}"; sleep 0.3; printf "%s\\\\n" "\${MY_TOKEN:6}"; echo "err $MY_TOKEN" >&2' });
`,
  });
  for (const output of ['plain', 'json']) {
    const r = await rig.fabric(['run', 'leak', `--output=${output}`], { env: { MY_TOKEN: TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), `${output} terminal output leaked the token`);
    assert.ok(r.stdout.includes('[REDACTED]'), `${output}: the output is there, redacted`);
  }
  const everything = await allText(rig.path('evidence'));
  assert.ok(!everything.includes(TOKEN), 'the evidence directory leaked the token');
  const dir = await lastPacket(rig);
  const m = JSON.parse(await readFile(join(dir, 'nodes/leak/manifest.json'), 'utf8')) as NodeManifest;
  assert.deepEqual(m.env, { MY_TOKEN: '[REDACTED]' });
  assert.equal(await readFile(join(dir, 'nodes/leak/stdout.log'), 'utf8'), 'token=[REDACTED]\nhalf=[REDACTED]\n');
  assert.equal(await readFile(join(dir, 'nodes/leak/stderr.log'), 'utf8'), 'err [REDACTED]\n');
  const v = await rig.fabric(['evidence', 'verify', dir]);
  assert.equal(v.code, 0, v.stdout);
});

rigTest('a secret that reaches another node (a plain param fed into a dependency\'s secret param, or equal to a secret env var) shows nowhere: ids, commands, output, evidence, store', async (rig) => {
  // `feed` does not know V is a secret: only `sp`, which gets it as a secret param, does. `use` gets
  // the value of API_TOKEN, which only `up` declares, as a plain param.
  const [V, TOKEN] = ['hush-hush-9911', 'tok-in-an-id-4242'];
  await rig.write({
    'src/a.txt': 'a',
    'fabricfile.ts': `import { task } from 'fabric';
task('sp', { effect: 'read-only', params: { P: { secret: true } }, inputs: ['src/**'], run: 'true' });
task('feed', { effect: 'read-only', deps: [{ task: 'sp', params: { P: '{{V}}' } }], params: { V: {} }, inputs: ['src/**'], run: 'echo value is {{V}}' });
task('up', { effect: 'read-only', env: ['API_TOKEN'], params: { K: {} }, inputs: ['src/**'], run: 'true' });
task('use', { effect: 'read-only', deps: [{ task: 'up', params: { K: '{{K}}' } }], params: { K: {} }, inputs: ['src/**'], run: 'echo using {{K}}' });
`,
  });
  for (const output of ['plain', 'json']) {
    const r = await rig.fabric(['run', 'feed', 'use', `V=${V}`, `K=${TOKEN}`, `--output=${output}`, '--no-cache'], { env: { API_TOKEN: TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    for (const s of [V, TOKEN]) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${output} terminal output leaked ${s}`);
    if (output === 'json') {
      const ids = r.events.flatMap((e) => (e.type === 'task-success' ? [e.node] : [])).sort();
      assert.deepEqual(ids, ['feed[V=<secret>]', 'sp[P=<secret>]', 'up[K=<secret>]', 'use[K=<secret>]']);
      const outs = r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk.trim()] : [])).sort();
      assert.deepEqual(outs, ['using [REDACTED]', 'value is [REDACTED]']);
    }
  }
  const cached = await rig.fabric(['run', 'feed', 'use', `V=${V}`, `K=${TOKEN}`, '--output=json'], { env: { API_TOKEN: TOKEN } });
  assert.equal(cached.code, 0, cached.stderr);
  const again = await rig.fabric(['run', 'feed', 'use', `V=${V}`, `K=${TOKEN}`, '--output=json'], { env: { API_TOKEN: TOKEN } });
  assert.deepEqual(again.brief(['task-success']).filter((l) => !l.endsWith(' cached')), [], 'a second run is served from the cache');
  for (const s of [V, TOKEN]) {
    assert.ok(!(await allText(rig.path('evidence'))).includes(s), `the evidence directory leaked ${s}`);
    assert.ok(!(await allText(rig.path('.fabric'))).includes(s), `the cache leaked ${s}`);
    assert.ok(!again.stdout.includes(s));
  }
  const v = await rig.fabric(['evidence', 'verify', await lastPacket(rig)]);
  assert.equal(v.code, 0, v.stdout);
});

rigTest('a secret from an env file the command sources (secretEnvFiles) appears nowhere in evidence or terminal output', async (rig) => {
  const TOKEN = 'runner-T0KEN-from-file-77';
  await rig.write({
    'runner.env': `# runner env\nPM_API_URL=https://pve.example:8006\nexport PM_API_TOKEN_SECRET='${TOKEN}'\n`,
    'fabricfile.ts': `import { task } from 'fabric';
task('deploy', {
  effect: 'read-only',
  params: { RUNNER_ENV_FILE: { default: 'runner.env' } },
  run: [{ cmd: 'set -a; . "$RUNNER_ENV_FILE"; set +a; echo "url=$PM_API_URL secret=$PM_API_TOKEN_SECRET"; echo "$PM_API_TOKEN_SECRET" >&2', secretEnvFiles: ['{{RUNNER_ENV_FILE}}'] }],
});
`,
  });
  const r = await rig.fabric(['run', 'deploy', '--output=plain']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), r.stdout);
  assert.match(r.stdout, /url=https:\/\/pve\.example:8006 secret=\[REDACTED\]/);
  assert.ok(!(await allText(rig.path('evidence'))).includes(TOKEN), 'the evidence directory leaked the token');
  const dir = await lastPacket(rig);
  assert.equal(await readFile(join(dir, 'nodes/deploy/stderr.log'), 'utf8'), '[REDACTED]\n');
  assert.equal((await rig.fabric(['evidence', 'verify', dir])).code, 0);
});

rigTest('fabric run with a GPG key in the config: every node envelope is signed with it and the packet verifies', async (rig) => {
  const gina = await gpgHome('gina');
  try {
    await setup(rig, { '.fabricrc.json': JSON.stringify({ signing: { gpgKey: gina.fpr, gpgHome: gina.home } }) });
    const r = await rig.fabric(['run', 'gen']);
    assert.equal(r.code, 0, r.stderr);
    const dir = await lastPacket(rig);
    const ring = rig.path('ring');
    await mkdir(ring);
    await copyFile(gina.pubFile, join(ring, 'gina.asc'));
    const v = await rig.fabric(['evidence', 'verify', dir, '--keyring', ring]);
    assert.equal(v.code, 0, v.stdout);
    const lines = (await readFile(join(dir, 'nodes/gen/attestations.intoto.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.deepEqual((JSON.parse(l) as { signatures: { keyid: string }[] }).signatures.map((x) => x.keyid), [gina.fpr]);
  } finally {
    await gina.dispose();
  }
}, { ms: 120_000 });

rigTest('fabric evidence verify: one flipped byte in any file fails and names the file; --check-outputs sees changed outputs', async (rig) => {
  await setup(rig);
  assert.equal((await rig.fabric(['run', 'after'])).code, 1);
  const dir = await lastPacket(rig);
  const files = await walkFiles(dir);
  assert.ok(files.length >= 10, files.join(' '));
  // One file of each kind through the CLI (the unit tests flip a byte in every file of a packet).
  const kinds = new Map<string, string>();
  for (const f of files) if (!kinds.has(f.split('/').at(-1)!)) kinds.set(f.split('/').at(-1)!, f);
  assert.deepEqual([...kinds.keys()].sort(), ['manifest.json', 'manifest.sha256', 'run.json', 'statements.jsonl', 'stderr.log', 'stdout.log']);
  for (const f of kinds.values()) {
    const p = join(dir, f);
    const orig = await readFile(p);
    const bad = Buffer.from(orig.length ? orig : Buffer.from('x'));
    const i = Math.floor(bad.length / 3);
    bad[i] = bad[i]! ^ 0x20;
    await writeFile(p, bad);
    const v = await rig.fabric(['evidence', 'verify', dir]);
    assert.equal(v.code, 1, `flipped ${f}: ${v.stdout}`);
    if (f !== 'manifest.sha256') assert.match(v.stdout, new RegExp(`✖ ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: sha256 does not match manifest.sha256\\n {4}expected [0-9a-f]{64}\\n {4}found {4}[0-9a-f]{64}`), v.stdout);
    assert.match(v.stdout, /✖ NOT verified/);
    await writeFile(p, orig);
  }
  assert.equal((await rig.fabric(['evidence', 'verify', dir])).code, 0);
  // Outputs on disk: unchanged → ok; changed → named with both digests.
  assert.equal((await rig.fabric(['evidence', 'verify', dir, '--check-outputs'])).code, 0);
  await writeFile(rig.path('out/gen.txt'), 'tampered\n');
  const o = await rig.fabric(['evidence', 'verify', dir, '--check-outputs', '--json']);
  assert.equal(o.code, 1);
  const rep = JSON.parse(o.stdout) as { problems: { file: string; message: string }[] };
  assert.deepEqual(rep.problems.map((p) => [p.file, p.message]), [['out/gen.txt', 'output of gen changed since the run']]);
  // A third party: no fabricfile anywhere near, just the packet path.
  const outside = await rig.fabric(['evidence', 'verify', dir], { cwd: '/' });
  assert.equal(outside.code, 0, outside.stdout + outside.stderr);
}, { ms: 180_000 });

rigTest('signing from the config: ed25519 + dual control incomplete; GPG second signature completes it; tampering fails', async (rig) => {
  const alice = await ed25519Key(rig.path('keys'), 'alice');
  const carol = await gpgHome('carol');
  try {
    await setup(rig, { '.fabricrc.json': JSON.stringify({ signing: { ed25519Key: 'keys/alice.pem', required: 2 } }) });
    const r = await rig.fabric(['run', 'gen']);
    assert.equal(r.code, 0, r.stderr);
    const dir = await lastPacket(rig);
    assert.ok(existsSync(join(dir, 'signatures/alice.sig')));
    assert.ok(existsSync(join(dir, 'nodes/gen/attestations.intoto.jsonl')));
    assert.deepEqual(await schemaProblems(dir), []);
    let v = await rig.fabric(['evidence', 'verify', dir, '--keyring', alice.pubDir]);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /✖ signatures: incomplete: 2 signatures by distinct trusted keys required \(dual control\)\n {4}expected 2\n {4}found {4}1/);
    assert.match((await rig.fabric(['evidence', 'ls'])).stdout, /signed 1\/2 \(incomplete\)/);
    // Custodian B adds a GPG signature afterwards.
    const s = await rig.fabric(['evidence', 'sign', 'latest', '--gpg-key', carol.fpr, '--gpg-home', carol.home]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /complete: 2 of 2 required signer\(s\)/);
    const ring = rig.path('ring');
    await mkdir(ring);
    await copyFile(alice.pub, join(ring, 'alice.pub'));
    await copyFile(carol.pubFile, join(ring, 'carol.asc'));
    v = await rig.fabric(['evidence', 'verify', dir, '--keyring', ring]);
    assert.equal(v.code, 0, v.stdout);
    assert.match(v.stdout, /2 of 2 required signer\(s\)/);
    // A tampered ed25519 signature.
    const sigPath = join(dir, 'signatures/alice.sig');
    const sig = await readFile(sigPath);
    const bad = Buffer.from(sig);
    bad[0] = bad[0]! ^ 0xff;
    await writeFile(sigPath, bad);
    v = await rig.fabric(['evidence', 'verify', dir, '--keyring', ring]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /✖ signatures\/alice\.sig: signature of manifest\.sha256 is not valid/);
    await writeFile(sigPath, sig);
    // A missing key file is a clear error, not a stack.
    const e = await rig.fabric(['evidence', 'sign', dir, '--key', 'keys/missing.pem']);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /keys\/missing\.pem: cannot read the ed25519 signing key: ENOENT/);
    assert.doesNotMatch(e.stderr, /\n\s+at /);
  } finally {
    await carol.dispose();
  }
}, { ms: 120_000 });

rigTest('SIGKILL mid-run leaves a verifiable partial packet: run.json says interrupted and lists the completed nodes', async (rig) => {
  await setup(rig);
  let dir = '';
  let failed: unknown;
  const r = await rig.fabric(['run', 'two', '-j1'], {
    onSpawn: (child) => {
      (async () => {
        await until(() => rig.exists('.pid-two'), '"two" to start');
        await until(async () => {
          const ids = await runs(rig);
          if (!ids.length) return false;
          dir = rig.path('evidence', ids[0]!);
          try {
            return (await readRun(dir)).completed.includes('gen');
          } catch {
            return false;
          }
        }, 'gen to be recorded');
        child.kill('SIGKILL');
      })().catch((e: unknown) => ((failed = e), child.kill('SIGKILL')));
    },
  });
  if (failed) throw failed;
  assert.equal(r.signal, 'SIGKILL');
  await rig.release('two'); // let the orphaned wait-for process exit
  const run = await readRun(dir);
  assert.equal(run.status, 'interrupted');
  assert.equal(run.finishedOn, null);
  assert.deepEqual(run.completed, ['gen']);
  assert.deepEqual(statuses(run), { gen: 'ok', two: null });
  const sum = sha256sumCheck(dir);
  assert.equal(sum.code, 0, sum.out);
  assert.deepEqual(await schemaProblems(dir), []);
  const v = await rig.fabric(['evidence', 'verify', dir]);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, /note: the run did not finish \(status interrupted\): 1 of 2 nodes completed/);
  const show = await rig.fabric(['evidence', 'show', dir, 'two']);
  assert.match(show.stdout, /two: unfinished/);
}, { ms: 90_000 });

rigTest('run.json records the git commit and whether tracked files changed (git runs while the graph is built)', async (rig) => {
  await rig.write({ 'fabricfile.ts': `import { task } from 'fabric';\ntask('a', { run: 'true' });\n`, '.gitignore': '.fabric/\nevidence/\n', 'tracked.txt': 'one\n' });
  // The packet of a given run (run ids sort by the second they start in, then by chance).
  const packetOf = (r: FabricRun) => {
    const start = r.events.find((e) => e.type === 'run-start');
    assert.ok(start?.type === 'run-start');
    return rig.path('evidence', start.runId);
  };
  const outside = await rig.fabric(['run', 'a', '-o', 'json']);
  assert.equal(outside.code, 0, outside.stderr);
  assert.deepEqual((await readRun(packetOf(outside))).git, { commit: null, dirty: null }, 'not a git work tree');
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: rig.dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  git('init', '-q');
  git('add', '-A');
  git('commit', '-qm', 'init');
  const head = git('rev-parse', 'HEAD');
  const clean = await rig.fabric(['run', 'a', '-o', 'json']);
  assert.equal(clean.code, 0, clean.stderr);
  assert.deepEqual((await readRun(packetOf(clean))).git, { commit: head, dirty: false });
  await writeFile(rig.path('tracked.txt'), 'one, then two\n'); // a new size: git's own stat check cannot miss it
  const dirty = await rig.fabric(['run', 'a', '-o', 'json']);
  assert.equal(dirty.code, 0, dirty.stderr);
  assert.deepEqual((await readRun(packetOf(dirty))).git, { commit: head, dirty: true });
  // A definition error while git runs is still reported as a definition error.
  const bad = await rig.fabric(['run', 'nosuch']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /nosuch/);
});

rigTest('evidence verify trusts the keyrings of the project config when no --keyring is given', async (rig) => {
  const alice = await ed25519Key(rig.path('keys'), 'alice');
  await ed25519Key(rig.path('other'), 'mallory');
  await setup(rig, { '.fabricrc.json': JSON.stringify({ signing: { ed25519Key: 'keys/alice.pem' }, keyrings: { ed25519: 'keys/pub' } }) });
  assert.equal((await rig.fabric(['run', 'gen'])).code, 0);
  const dir = await lastPacket(rig);
  const trusted = await rig.fabric(['evidence', 'verify', 'latest', '--json']);
  assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
  const rep = JSON.parse(trusted.stdout) as { trustedKeyring: boolean; validSigners: number };
  assert.equal(rep.trustedKeyring, true);
  assert.equal(rep.validSigners, 1);
  // The config now trusts only mallory: alice's signature no longer counts.
  await rig.write({ '.fabricrc.json': JSON.stringify({ signing: { ed25519Key: 'keys/alice.pem' }, keyrings: { ed25519: 'other/pub' } }) });
  const wrong = await rig.fabric(['evidence', 'verify', dir]);
  assert.equal(wrong.code, 1, wrong.stdout);
  assert.match(wrong.stdout, /✖ signatures\/alice\.sig: /);
  // --keyring still wins over the config; outside any project there is no config to use.
  assert.equal((await rig.fabric(['evidence', 'verify', dir, '--keyring', alice.pubDir])).code, 0);
  const outside = await rig.fabric(['evidence', 'verify', dir, '--json'], { cwd: '/' });
  assert.equal(outside.code, 0, outside.stdout);
  assert.equal((JSON.parse(outside.stdout) as { trustedKeyring: boolean }).trustedKeyring, false);
}, { ms: 60_000 });

test.run();
