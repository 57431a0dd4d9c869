// The evidence writer fed realistic event sequences over a hand-built graph (the engine is not
// involved): every node status, schemas, the real sha256sum, tamper detection, redaction, crash safety.
import * as assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createEvidenceSink, layoutJson, type EvidenceOptions } from '../../lib/evidence/sink.js';
import { verifyPacket } from '../../lib/evidence/verify.js';
import { walkFiles } from '../../lib/evidence/fsutil.js';
import { formatManifest } from '../../lib/evidence/manifest.js';
import type { NodeManifest, RunRecord, Statement } from '../../lib/evidence/types.js';
import type { FabricEvent } from '../../lib/engine/events.js';
import type { Graph } from '../../lib/engine/graph.js';
import { rigTest, timedTest, test, type Rig } from '../helpers/rig.js';
import { allText, attestationLines, decision, graphOf, ranNode, runEnd, runStart, schemaProblems, sha256sumCheck } from './evidence-helpers.js';

const RUN = '20261126T100000Z-abcdef';

function options(rig: Rig, graph: Graph, extra: Partial<EvidenceOptions> = {}): EvidenceOptions {
  return {
    dir: rig.path('evidence'),
    runId: RUN,
    graph,
    argv: ['run', 'deploy', 'ENV=dev'],
    version: '0.1.0-test',
    repoRoot: rig.dir,
    ci: false,
    operator: 'alice@host',
    git: { commit: 'a'.repeat(40), dirty: false },
    secretValues: [],
    ...extra,
  };
}

const packet = (rig: Rig) => rig.path('evidence', RUN);
const readJson = async <T>(rig: Rig, rel: string): Promise<T> => JSON.parse(await readFile(join(packet(rig), rel), 'utf8')) as T;

/** A graph with one node per status: a ok, b cached, c failed, d skipped (after c), e cancelled. */
async function fivePacket(rig: Rig) {
  await rig.write({ 'src/in.txt': 'input\n', 'out/a.txt': 'A-output\n', 'out/b.txt': 'B-output\n' });
  const graph = graphOf(
    rig.dir,
    {
      a: { commands: ['make-a'], inputs: ['src/*.txt'], outputs: ['out/a.txt'], params: { ENV: 'dev' }, env: { HTTP_PROXY: 'http://proxy:3128' }, envNames: ['HTTP_PROXY'] },
      b: { commands: ['make-b'], outputs: ['out/b.txt'] },
      c: { deps: ['a', 'b'], commands: ['make-c'], effect: 'mutating' },
      d: { deps: ['c'], commands: ['make-d'] },
      e: { commands: ['make-e'] },
    },
    ['d', 'e'],
  );
  const sink = createEvidenceSink(options(rig, graph));
  const events: FabricEvent[] = [
    runStart(graph, RUN),
    { type: 'guard-decision', node: 'c', decision: decision('allow', 'ENV is dev', { ENV: 'dev' }) },
    ...ranNode('a', { stdout: ['building a\n'], stderr: ['warn: a\n'] }),
    ...ranNode('b', { reason: 'cached', stdout: ['replayed b\n'] }),
    ...ranNode('c', { exit: 2, stderr: ['c broke\n'] }),
    { type: 'task-failure', node: 'd', failure: { reason: 'dependency-failed', dependency: 'c' }, ms: 0, at: new Date().toISOString() },
    { type: 'task-failure', node: 'e', failure: { reason: 'aborted' }, ms: 0, at: new Date().toISOString() },
    runEnd(false),
  ];
  for (const e of events) sink.onEvent(e);
  await sink.close();
  return { graph, sink };
}

timedTest('layoutJson: the same JSON value as JSON.stringify, two levels indented, one array element per line', () => {
  const value = {
    a: 1,
    s: 'x\n"y"',
    none: null,
    gone: undefined,
    fn: () => 1,
    when: new Date(Date.UTC(2026, 10, 27)),
    empty: { o: {}, l: [] },
    list: ['p', 2, null, undefined, { k: [1, { deep: true }] }, [['e', 'f']]],
    nested: { edges: [['a', 'b'], ['c', 'd']], obj: { x: { y: [1] } }, n: 0 },
  };
  const text = layoutJson(value);
  assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
  assert.ok(text.endsWith('}\n'));
  const lines = text.split('\n');
  assert.ok(lines.includes('      ["a","b"],'), 'an edge is one line, inside the indented levels');
  assert.ok(lines.includes('    {"k":[1,{"deep":true}]},'), 'an object in an array is one line');
  assert.ok(lines.includes('    "obj": {"x":{"y":[1]}},'), 'below the second level, one line');
  assert.ok(lines.includes('  "empty": {'), 'objects of the first two levels are indented');
  assert.deepEqual([layoutJson([]), layoutJson({}), layoutJson('x'), layoutJson(null)], ['[]\n', '{}\n', '"x"\n', 'null\n']);
});

rigTest('every node status produces a manifest; run.json has statuses, counts, edges; schemas hold', async (rig) => {
  await fivePacket(rig);
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'failed');
  assert.deepEqual(
    Object.fromEntries(run.nodes.map((n) => [n.id, n.status])),
    { a: 'ok', b: 'cached', c: 'failed', d: 'skipped-after-failure', e: 'cancelled' },
  );
  assert.deepEqual(run.counts, { ok: 1, cached: 1, failed: 1, cancelled: 1, denied: 0, 'skipped-after-failure': 1 });
  assert.deepEqual(run.completed, ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(run.graph.edges, [['c', 'a'], ['c', 'b'], ['d', 'c']]);
  const runText = await readFile(join(packet(rig), 'run.json'), 'utf8');
  assert.equal(runText, layoutJson(JSON.parse(runText)), 'run.json is laid out one node and one edge per line');
  assert.ok(runText.includes('\n      ["c","a"],\n') && runText.includes('\n    {"id":"a",'), runText.slice(0, 400));
  assert.equal(run.git.commit, 'a'.repeat(40));
  assert.match(run.planDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(run.finishedOn !== null, true);

  const a = await readJson<NodeManifest>(rig, 'nodes/a/manifest.json');
  assert.equal(a.status, 'ok');
  assert.deepEqual(a.inputs.map((f) => [f.path, f.size]), [['src/in.txt', 6]]);
  assert.deepEqual(a.outputs, [{ path: 'out/a.txt', sha256: createHash('sha256').update('A-output\n').digest('hex'), size: 9 }]);
  assert.equal(a.commands[0]?.exitCode, 0);
  assert.deepEqual(a.env, { HTTP_PROXY: 'http://proxy:3128' });
  assert.equal(await readFile(join(packet(rig), 'nodes/a/stdout.log'), 'utf8'), 'building a\n');
  assert.equal(await readFile(join(packet(rig), 'nodes/a/stderr.log'), 'utf8'), 'warn: a\n');
  const b = await readJson<NodeManifest>(rig, 'nodes/b/manifest.json');
  assert.equal(b.successReason, 'cached');
  assert.equal(b.cache?.result, 'hit');
  assert.equal(await readFile(join(packet(rig), 'nodes/b/stdout.log'), 'utf8'), 'replayed b\n');
  const c = await readJson<NodeManifest>(rig, 'nodes/c/manifest.json');
  assert.equal(c.exitCode, 2);
  assert.deepEqual(c.failure, { reason: 'exit-non-zero', status: 2, command: 'run c' });
  assert.deepEqual(c.guards.map((g) => [g.guard, g.outcome, g.reason]), [['env-equals(ENV=dev)', 'allow', 'ENV is dev']]);
  assert.deepEqual(c.outputs, [], 'a failed node records no outputs');
  const d = await readJson<NodeManifest>(rig, 'nodes/d/manifest.json');
  assert.deepEqual(d.failure, { reason: 'dependency-failed', dependency: 'c' });
  assert.deepEqual(d.commands, []);

  assert.deepEqual(await schemaProblems(packet(rig)), []);
  const sum = sha256sumCheck(packet(rig));
  assert.equal(sum.code, 0, sum.out);
  assert.equal(sum.out.trim().split('\n').length, 15, 'run.json + 5 nodes: manifest.json and statements.jsonl each, and the 4 logs that had output');
  const v = await verifyPacket(packet(rig));
  assert.deepEqual(v.problems, []);
  assert.equal(v.ok, true);
  assert.equal(existsSync(join(packet(rig), '.partial')), false, '.partial is removed after a finished run');
});

rigTest('provenance: subjects are the outputs (or logs), SLSA fields set, guards in the fabric predicate', async (rig) => {
  await fivePacket(rig);
  const a = await readJson<NodeManifest>(rig, 'nodes/a/manifest.json');
  const [prov] = await attestationLines<Statement<Record<string, any>>>(packet(rig), 'a');
  assert.ok(prov);
  assert.equal(prov._type, 'https://in-toto.io/Statement/v1');
  assert.equal(prov.predicateType, 'https://slsa.dev/provenance/v1');
  assert.deepEqual(prov.subject, [{ name: 'out/a.txt', digest: { sha256: a.outputs[0]!.sha256 } }]);
  const p = prov.predicate;
  assert.deepEqual(p['buildDefinition'].externalParameters.task, 'a');
  assert.deepEqual(p['buildDefinition'].externalParameters.params, { ENV: 'dev' });
  assert.deepEqual(p['buildDefinition'].resolvedDependencies.map((r: any) => r.name ?? r.digest.gitCommit), ['a'.repeat(40), 'src/in.txt']);
  assert.equal(p['runDetails'].metadata.invocationId, `${RUN}/a`);
  assert.equal(p['runDetails'].builder.version.fabric, '0.1.0-test');
  const fab = (await attestationLines<Statement<Record<string, any>>>(packet(rig), 'c'))[1]!;
  assert.equal(fab.predicateType, 'urn:fabric:predicate:node:v1');
  assert.equal(fab.predicate['status'], 'failed');
  assert.equal(fab.predicate['guards'][0].reason, 'ENV is dev');
  // c has no outputs: its subjects are its log files (stdout had no output, so no file and no subject).
  const c = await readJson<NodeManifest>(rig, 'nodes/c/manifest.json');
  assert.deepEqual(c.logs.stdout, { path: null, sha256: createHash('sha256').update('').digest('hex'), size: 0 });
  assert.equal(existsSync(join(packet(rig), 'nodes/c/stdout.log')), false);
  assert.deepEqual(fab.subject.map((s) => [s.name, s.digest['sha256']]), [['nodes/c/stderr.log', c.logs.stderr.sha256]]);
  // e has neither outputs nor output: the subject is its own manifest.json.
  const eManifest = await readFile(join(packet(rig), 'nodes/e/manifest.json'));
  for (const st of await attestationLines<Statement<unknown>>(packet(rig), 'e'))
    assert.deepEqual(st.subject, [{ name: 'nodes/e/manifest.json', digest: { sha256: createHash('sha256').update(eManifest).digest('hex') }, annotations: { kind: 'node-manifest' } }]);
});

rigTest('one flipped byte in any file fails verification and names that file', async (rig) => {
  await fivePacket(rig);
  const dir = packet(rig);
  const files = await walkFiles(dir);
  assert.ok(files.includes('manifest.sha256') && files.includes('run.json') && files.length === 16, files.join(' '));
  for (const f of files) {
    const p = join(dir, f);
    const orig = await readFile(p);
    const bad = Buffer.from(orig.length ? orig : Buffer.from('\n'));
    const i = Math.floor(bad.length / 2);
    bad[i] = bad[i]! ^ 0x01;
    await writeFile(p, bad);
    const v = await verifyPacket(dir);
    assert.equal(v.ok, false, `flipping a byte of ${f} went unnoticed`);
    assert.ok(v.problems.some((x) => x.file === f || (f === 'manifest.sha256' && x.file.length > 0)), `${f}: ${JSON.stringify(v.problems)}`);
    if (f !== 'manifest.sha256') {
      const named = v.problems.find((x) => x.file === f)!;
      assert.match(named.message, /sha256 does not match/);
      assert.match(named.expected ?? '', /^[0-9a-f]{64}$/);
      assert.match(named.found ?? '', /^[0-9a-f]{64}$/);
    }
    assert.notEqual(sha256sumCheck(dir).code, 0, `sha256sum -c accepted a flipped ${f}`);
    await writeFile(p, orig);
  }
  assert.equal((await verifyPacket(dir)).ok, true);
});

rigTest('an added file, a removed file and a rewritten record (with a re-hashed manifest) are all caught', async (rig) => {
  await fivePacket(rig);
  const dir = packet(rig);
  await writeFile(join(dir, 'nodes/a/extra.txt'), 'planted');
  let v = await verifyPacket(dir);
  assert.deepEqual(v.problems.map((p) => [p.file, p.message]), [['nodes/a/extra.txt', 'not listed in manifest.sha256 (added after the packet was written?)']]);
  await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'nodes/a/extra.txt')));
  const log = await readFile(join(dir, 'nodes/a/stdout.log'));
  await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'nodes/a/stdout.log')));
  v = await verifyPacket(dir);
  assert.ok(v.problems.some((p) => p.file === 'nodes/a/stdout.log' && /missing/.test(p.message)), JSON.stringify(v.problems));
  await writeFile(join(dir, 'nodes/a/stdout.log'), log);
  // A forger edits a manifest.json to drop a guard and re-hashes manifest.sha256: the schema/subject
  // cross-checks still hold, but an unsigned packet cannot catch that; a signed one can (sign tests).
  v = await verifyPacket(dir);
  assert.equal(v.ok, true);
  // A manifest.json that breaks its schema is named.
  const m = await readJson<Record<string, unknown>>(rig, 'nodes/a/manifest.json');
  m['status'] = 'great';
  await writeFile(join(dir, 'nodes/a/manifest.json'), JSON.stringify(m));
  v = await verifyPacket(dir);
  assert.ok(v.problems.some((p) => p.file === 'nodes/a/manifest.json' && /manifest schema: \/status/.test(p.message)), JSON.stringify(v.problems));
});

rigTest('a denied run: every node gets a manifest with status denied; run status denied', async (rig) => {
  const graph = graphOf(rig.dir, { plan: { commands: ['tf plan'] }, apply: { deps: ['plan'], commands: ['tf apply'], effect: 'mutating' } });
  const sink = createEvidenceSink(options(rig, graph));
  const deny = decision('deny', 'ENV is prod, allowed: dev', { ENV: 'prod' });
  for (const e of [
    runStart(graph, RUN),
    { type: 'guard-decision', node: 'plan', decision: decision('allow', 'read-only') },
    { type: 'guard-decision', node: 'apply', decision: deny },
    { type: 'run-denied', denials: [{ node: 'apply', decision: deny, path: ['apply'] }] },
    runEnd(false),
  ] as FabricEvent[])
    sink.onEvent(e);
  await sink.close();
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'denied');
  assert.deepEqual(run.denials, [{ node: 'apply', guard: 'env-equals(ENV=dev)', reason: 'ENV is prod, allowed: dev', path: ['apply'] }]);
  assert.deepEqual(run.counts.denied, 2);
  const apply = await readJson<NodeManifest>(rig, 'nodes/apply/manifest.json');
  assert.equal(apply.status, 'denied');
  assert.equal(apply.failure?.reason, 'denied');
  assert.equal(apply.guards[0]?.remedy, 'set ENV=dev');
  const plan = await readJson<NodeManifest>(rig, 'nodes/plan/manifest.json');
  assert.equal(plan.status, 'denied');
  assert.deepEqual(plan.failure, { reason: 'run-denied', deniedBy: [{ node: 'apply', guard: 'env-equals(ENV=dev)' }] });
  assert.deepEqual(await schemaProblems(packet(rig)), []);
  assert.equal((await verifyPacket(packet(rig))).ok, true);
});

rigTest('secrets: split across chunks, in env, params, guard facts, argv and commands — never written in clear', async (rig) => {
  const SECRET = 'hunter2-SECRET-value';
  const graph = graphOf(rig.dir, {
    'deploy[ENV=dev]': {
      commands: [`curl -H 'X: ${SECRET}'`],
      params: { ENV: 'dev', PASSPHRASE: SECRET },
      paramSpecs: { PASSPHRASE: { secret: true } },
      env: { MY_TOKEN: 'tok-1234567', API_URL: 'https://api' },
      envNames: ['MY_TOKEN', 'API_URL'],
      vars: { MY_TOKEN: 'tok-1234567', ENV: 'dev' },
      secrets: [SECRET],
    },
  });
  const sink = createEvidenceSink(options(rig, graph, { argv: ['run', 'deploy', `PASSPHRASE=${SECRET}`, 'MY_TOKEN=tok-1234567'], secretValues: ['tok-1234567'] }));
  const id = 'deploy[ENV=dev]';
  for (const e of [
    runStart(graph, RUN),
    { type: 'guard-decision', node: id, decision: decision('allow', `token ${SECRET} looks fine`, { seen: SECRET }) },
    { type: 'task-start', node: id, attempt: 1, at: new Date().toISOString() },
    { type: 'command-start', node: id, command: `curl -H 'X: ${SECRET}'`, pid: 1 },
    { type: 'task-output', node: id, stream: 'stdout', chunk: 'token=hunter2-SE' },
    { type: 'task-output', node: id, stream: 'stdout', chunk: 'CRET-value and tok-12' },
    { type: 'task-output', node: id, stream: 'stdout', chunk: '34567 done\n' },
    { type: 'command-end', node: id, command: `curl -H 'X: ${SECRET}'`, exitCode: 0, signal: null, ms: 3 },
    { type: 'task-success', node: id, reason: 'ran', ms: 4, exitCode: 0, at: new Date().toISOString() },
    runEnd(true),
  ] as FabricEvent[])
    sink.onEvent(e);
  await sink.close();
  const all = await allText(rig.path('evidence'));
  assert.ok(!all.includes(SECRET), 'the secret param value leaked');
  assert.ok(!all.includes('tok-1234567'), 'the token leaked');
  const safe = (await readdir(join(packet(rig), 'nodes')))[0]!;
  assert.equal(await readFile(join(packet(rig), 'nodes', safe, 'stdout.log'), 'utf8'), 'token=[REDACTED] and [REDACTED] done\n');
  const m = await readJson<NodeManifest>(rig, `nodes/${safe}/manifest.json`);
  assert.deepEqual(m.env, { MY_TOKEN: '[REDACTED]', API_URL: 'https://api' });
  assert.deepEqual(m.params, { ENV: 'dev', PASSPHRASE: '[REDACTED]' });
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.deepEqual(run.argv, ['run', 'deploy', 'PASSPHRASE=[REDACTED]', 'MY_TOKEN=[REDACTED]']);
  assert.deepEqual(run.vars, { MY_TOKEN: '[REDACTED]', ENV: 'dev' });
  assert.deepEqual(await schemaProblems(packet(rig)), []);
});

rigTest('run.json at each checkpoint: ids, deps and edges redacted, statuses as they change, laid out as the whole record', async (rig) => {
  // run.json's node entries and edges are serialized once each and reused: a secret inside an id is
  // redacted in them as it is everywhere, and an entry is made again when its node completes. Ids
  // never hold a secret param, but a plain param's value can also be a secret env var's value.
  const SECRET = 's3cr3t-in-an-id';
  const up = `up[K=${SECRET}]`;
  const graph = graphOf(rig.dir, { [up]: { commands: ['u'], secrets: [SECRET] }, b: { deps: [up], commands: ['b'] }, c: { deps: ['b'], commands: ['c'] } });
  const sink = createEvidenceSink(options(rig, graph, { checkpointMs: 0 }));
  sink.onEvent(runStart(graph, RUN));
  const safe = 'up_K__REDACTED-' + createHash('sha256').update('up[K=[REDACTED]]').digest('hex').slice(0, 8);
  const check = async (statuses: (string | null)[], completed: number) => {
    await sink.drain();
    const all = await allText(rig.path('evidence'));
    assert.ok(!all.includes(SECRET), 'a secret in an id reached the packet (a file or a name)');
    const text = await readFile(join(packet(rig), 'run.json'), 'utf8');
    assert.equal(text, layoutJson(JSON.parse(text)));
    const run = JSON.parse(text) as RunRecord;
    assert.deepEqual(run.nodes.map((n) => [n.id, n.safeId, n.status]), [['up[K=[REDACTED]]', safe, statuses[0]], ['b', 'b', statuses[1]], ['c', 'c', statuses[2]]]);
    assert.equal(run.completed.length, completed);
    assert.deepEqual(run.graph.edges, [['b', 'up[K=[REDACTED]]'], ['c', 'b']]);
    assert.equal(run.counts.ok, completed);
    assert.equal(sha256sumCheck(packet(rig)).code, 0);
    assert.deepEqual(await schemaProblems(packet(rig)), []);
  };
  await check([null, null, null], 0);
  for (const e of ranNode(up)) sink.onEvent(e);
  await check(['ok', null, null], 1);
  for (const e of ranNode('b')) sink.onEvent(e);
  await check(['ok', 'ok', null], 2);
  for (const e of ranNode('c')) sink.onEvent(e);
  sink.onEvent(runEnd(true));
  await sink.close();
  await check(['ok', 'ok', 'ok'], 3);
  assert.deepEqual((await verifyPacket(packet(rig))).problems, []);
});

rigTest('two ids that differ only in a secret get two node directories, neither named with it', async (rig) => {
  const [S1, S2] = ['first-s3cr3t', 'second-s3cr3t'];
  const graph = graphOf(rig.dir, { [`up[K=${S1}]`]: { commands: ['u'], secrets: [S1] }, [`up[K=${S2}]`]: { commands: ['u'], secrets: [S2] } });
  const sink = createEvidenceSink(options(rig, graph));
  sink.onEvent(runStart(graph, RUN));
  for (const e of [...ranNode(`up[K=${S1}]`), ...ranNode(`up[K=${S2}]`)]) sink.onEvent(e);
  sink.onEvent(runEnd(true));
  await sink.close();
  const dirs = (await readdir(join(packet(rig), 'nodes'))).sort(); // readdir's order is the file system's
  assert.equal(dirs.length, 2, dirs.join(' '));
  assert.equal(dirs[1], `${dirs[0]}-2`);
  const all = await allText(rig.path('evidence'));
  assert.ok(!all.includes(S1) && !all.includes(S2));
});

rigTest('incremental: before run-end the packet verifies, says interrupted and lists completed nodes', async (rig) => {
  const graph = graphOf(rig.dir, { a: { commands: ['a'] }, b: { deps: ['a'], commands: ['b'] }, c: { deps: ['b'], commands: ['c'] } });
  const sink = createEvidenceSink(options(rig, graph));
  sink.onEvent(runStart(graph, RUN));
  await sink.drain();
  let run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'interrupted');
  assert.deepEqual(run.completed, []);
  assert.equal((await verifyPacket(packet(rig))).ok, true);
  for (const e of ranNode('a', { stdout: ['a out\n'] })) sink.onEvent(e);
  sink.onEvent({ type: 'task-start', node: 'b', attempt: 1, at: new Date().toISOString() });
  sink.onEvent({ type: 'task-output', node: 'b', stream: 'stdout', chunk: 'b is half way\n' });
  await sink.drain();
  run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'interrupted');
  assert.equal(run.finishedOn, null);
  assert.deepEqual(run.completed, ['a']);
  assert.deepEqual(run.nodes.map((n) => n.status), ['ok', null, null]);
  const text = await readFile(join(packet(rig), 'run.json'), 'utf8');
  assert.equal(text, layoutJson(JSON.parse(text)), 'a checkpoint laid out as the whole record would be');
  const v = await verifyPacket(packet(rig));
  assert.deepEqual(v.problems, []);
  assert.match(v.notes.join('\n'), /did not finish \(status interrupted\): 1 of 3 nodes completed/);
  assert.equal(sha256sumCheck(packet(rig)).code, 0);
  assert.deepEqual(await schemaProblems(packet(rig)), []);
  // close() without run-end (the engine crashed): unfinished output is kept in .partial/, still verifiable.
  await sink.close();
  assert.equal(await readFile(join(packet(rig), '.partial', 'b.stdout.log'), 'utf8'), 'b is half way\n');
  assert.equal((await verifyPacket(packet(rig))).ok, true);
  assert.equal((await readJson<RunRecord>(rig, 'run.json')).status, 'interrupted');
});

rigTest('an interrupted run: running node cancelled, never-started nodes cancelled, status interrupted', async (rig) => {
  const graph = graphOf(rig.dir, { a: { commands: ['a'] }, b: { deps: ['a'], commands: ['b'] }, c: { deps: ['b'], commands: ['c'] } });
  const sink = createEvidenceSink(options(rig, graph));
  for (const e of [
    runStart(graph, RUN),
    ...ranNode('a'),
    { type: 'task-start', node: 'b', attempt: 1, at: new Date().toISOString() },
    { type: 'run-interrupted', signal: 'SIGINT' },
    { type: 'task-failure', node: 'b', failure: { reason: 'aborted' }, ms: 9, at: new Date().toISOString() },
    runEnd(false, true),
  ] as FabricEvent[])
    sink.onEvent(e);
  await sink.close();
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'interrupted');
  assert.equal(run.interruptSignal, 'SIGINT');
  assert.deepEqual(run.nodes.map((n) => n.status), ['ok', 'cancelled', 'cancelled']);
  assert.equal((await readJson<NodeManifest>(rig, 'nodes/c/manifest.json')).failure?.reason, 'aborted');
  assert.equal((await verifyPacket(packet(rig))).ok, true);
});

rigTest('large output is spilled to disk as it comes and ends up whole in the log', async (rig) => {
  const graph = graphOf(rig.dir, { big: { commands: ['yes'] } });
  const sink = createEvidenceSink(options(rig, graph));
  sink.onEvent(runStart(graph, RUN));
  sink.onEvent({ type: 'task-start', node: 'big', attempt: 1, at: new Date().toISOString() });
  let expected = '';
  for (let i = 0; i < 400; i++) {
    const chunk = `${String(i).padStart(5, '0')} ${'y'.repeat(2000)}\n`;
    expected += chunk;
    sink.onEvent({ type: 'task-output', node: 'big', stream: 'stdout', chunk });
  }
  await sink.drain();
  assert.ok(existsSync(join(packet(rig), '.partial', 'big.stdout.log')), 'output over 256 KiB is written to .partial/ before the node ends');
  sink.onEvent({ type: 'task-success', node: 'big', reason: 'ran', ms: 1, exitCode: 0, at: new Date().toISOString() });
  sink.onEvent(runEnd(true));
  await sink.close();
  assert.equal(await readFile(join(packet(rig), 'nodes/big/stdout.log'), 'utf8'), expected);
  assert.equal((await verifyPacket(packet(rig))).ok, true);
});

rigTest('a write failure is reported by close() with what failed', async (rig) => {
  const graph = graphOf(rig.dir, { a: { commands: ['a'] } });
  await mkdir(rig.path('evidence'), { recursive: true });
  await writeFile(rig.path('evidence', RUN), 'a file where the packet directory should be');
  const sink = createEvidenceSink(options(rig, graph));
  for (const e of [runStart(graph, RUN), ...ranNode('a'), runEnd(true)]) sink.onEvent(e);
  await assert.rejects(sink.close(), (e: Error) => e.name === 'EvidenceError' && /start: .*(ENOTDIR|EEXIST)/.test(e.message));
});

rigTest('checkpoints: nodes completed after the last one are reported by verify as not covered, not as tampering', async (rig) => {
  const graph = graphOf(rig.dir, { a: { commands: ['a'] }, b: { commands: ['b'] }, c: { deps: ['a', 'b'], commands: ['c'] } });
  // A long checkpoint interval: nothing but the run-start checkpoint happens while a and b complete.
  const sink = createEvidenceSink(options(rig, graph, { checkpointMs: 60_000 }));
  sink.onEvent(runStart(graph, RUN));
  for (const e of [...ranNode('a', { stdout: ['a out\n'] }), ...ranNode('b')]) sink.onEvent(e);
  await sink.drain({ checkpoint: false });
  // What a SIGKILL now leaves: a and b are in nodes/, run.json (from run-start) lists neither.
  assert.ok(existsSync(join(packet(rig), 'nodes/a/manifest.json')) && existsSync(join(packet(rig), 'nodes/b/manifest.json')));
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.deepEqual(run.completed, []);
  let v = await verifyPacket(packet(rig));
  assert.deepEqual(v.problems, []);
  assert.match(v.notes.join('\n'), /2 node directories were written after the last checkpoint .*not counted as evidence\): a, b/);
  // The checked-in part is still protected: a file added to a node run.json lists as completed fails.
  await sink.drain();
  assert.deepEqual((await readJson<RunRecord>(rig, 'run.json')).completed, ['a', 'b']);
  await writeFile(join(packet(rig), 'nodes/a/extra.txt'), 'planted\n');
  v = await verifyPacket(packet(rig));
  assert.ok(v.problems.some((p) => p.file === 'nodes/a/extra.txt' && /not listed/.test(p.message)), JSON.stringify(v.problems));
  // A directory for a node run.json does not know is never excused.
  await mkdir(join(packet(rig), 'nodes/zz'), { recursive: true });
  await writeFile(join(packet(rig), 'nodes/zz/manifest.json'), '{}');
  v = await verifyPacket(packet(rig));
  assert.ok(v.problems.some((p) => p.file === 'nodes/zz/manifest.json' && /not listed/.test(p.message)), JSON.stringify(v.problems));
  await sink.close();
});

rigTest('checkpoints: a finished run lists every node however long the interval; the packet verifies', async (rig) => {
  const specs: Record<string, { commands: string[] }> = {};
  for (let i = 0; i < 40; i++) specs[`n${i}`] = { commands: [`n${i}`] };
  const graph = graphOf(rig.dir, specs);
  const sink = createEvidenceSink(options(rig, graph, { checkpointMs: 60_000 }));
  sink.onEvent(runStart(graph, RUN));
  for (let i = 0; i < 40; i++) for (const e of ranNode(`n${i}`)) sink.onEvent(e);
  sink.onEvent(runEnd(true));
  await sink.close();
  const run = await readJson<RunRecord>(rig, 'run.json');
  assert.equal(run.status, 'ok');
  assert.equal(run.completed.length, 40);
  const v = await verifyPacket(packet(rig));
  assert.deepEqual(v.problems, []);
  assert.deepEqual(v.notes, []);
  assert.equal(sha256sumCheck(packet(rig)).code, 0);
});

rigTest('input and output digests another part of the run already computed are used, not recomputed', async (rig) => {
  await rig.write({ 'src/in.txt': 'input\n', 'out/o.txt': 'output\n' });
  const graph = graphOf(rig.dir, { a: { commands: ['a'], inputs: ['src/*.txt'], outputs: ['out/o.txt'] }, b: { commands: ['b'], inputs: ['src/*.txt'] } });
  // For a, the digests come from the run's cache (here: a marker value that hashing could never produce);
  // for b nothing is known, so the writer hashes the file itself.
  const marker = 'f'.repeat(64);
  const sink = createEvidenceSink(
    options(rig, graph, {
      knownDigests: (n) => (n.id === 'a' ? { inputs: [{ path: rig.path('src/in.txt'), sha256: marker, size: 6 }] } : undefined),
    }),
  );
  for (const e of [runStart(graph, RUN), ...ranNode('a'), ...ranNode('b'), runEnd(true)]) sink.onEvent(e);
  await sink.close();
  const a = await readJson<NodeManifest>(rig, 'nodes/a/manifest.json');
  const b = await readJson<NodeManifest>(rig, 'nodes/b/manifest.json');
  const real = createHash('sha256').update('input\n').digest('hex');
  assert.deepEqual(a.inputs, [{ path: 'src/in.txt', sha256: marker, size: 6 }]);
  assert.deepEqual(a.outputs, [{ path: 'out/o.txt', sha256: createHash('sha256').update('output\n').digest('hex'), size: 7 }]);
  assert.deepEqual(b.inputs, [{ path: 'src/in.txt', sha256: real, size: 6 }]);
});

rigTest('attestations and file-less logs are cross-checked even when manifest.sha256 was re-hashed', async (rig) => {
  await fivePacket(rig);
  const dir = packet(rig);
  const rehash = async (): Promise<void> => {
    const files = await walkFiles(dir, ['manifest.sha256', 'signatures', '.partial']);
    const entries = await Promise.all(files.map(async (path) => ({ path, sha256: createHash('sha256').update(await readFile(join(dir, path))).digest('hex') })));
    await writeFile(join(dir, 'manifest.sha256'), formatManifest(entries));
  };
  // d's statements file loses its fabric statement (the guard decisions).
  const stFile = join(dir, 'nodes/d/statements.jsonl');
  const orig = await readFile(stFile, 'utf8');
  await writeFile(stFile, orig.split('\n')[0] + '\n');
  await rehash();
  let v = await verifyPacket(dir);
  assert.deepEqual(v.problems.map((p) => [p.file, p.message]), [['nodes/d/statements.jsonl', 'holds 0 statements with predicateType urn:fabric:predicate:node:v1 (expected exactly 1)']]);
  await writeFile(stFile, orig);
  // e's manifest claims stdout output that has no file.
  const mFile = join(dir, 'nodes/e/manifest.json');
  const m = JSON.parse(await readFile(mFile, 'utf8')) as NodeManifest;
  await writeFile(mFile, JSON.stringify({ ...m, logs: { ...m.logs, stdout: { path: null, sha256: m.logs.stdout.sha256, size: 12 } } }, null, 2) + '\n');
  await rehash();
  v = await verifyPacket(dir);
  assert.ok(v.problems.some((p) => p.file === 'nodes/e/manifest.json' && /a log without a file must be empty/.test(p.message)), JSON.stringify(v.problems));
  // ... and, since e's statements name its manifest.json as their subject, they no longer match it.
  assert.ok(v.problems.some((p) => p.file === 'nodes/e/statements.jsonl' && /subjects do not match/.test(p.message)), JSON.stringify(v.problems));
});

test.run();
