// `fabric run validate` (tasks/self.ts) through the real CLI on a copy of this repo: it passes offline,
// is cached on the second run, writes evidence, and every kind of breakage fails the right node with an
// error located in the file. An env file loaded by a task gives the same located error.
import * as assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { rigTest, test, type FabricRun } from '../helpers/rig.js';
import { selfRepo } from '../fixtures/samakia/repo.js';

const output = (run: FabricRun, node?: string): string =>
  run.events.flatMap((e) => (e.type === 'task-output' && (node === undefined || e.node === node) ? [e.chunk] : [])).join('') + run.stderr;

/** `node status` for every node that finished. */
const outcomes = (run: FabricRun): string[] =>
  run.events.flatMap((e) => (e.type === 'task-success' ? [`${e.node} ${e.reason}`] : e.type === 'task-failure' ? [`${e.node} ${e.failure.reason}`] : [])).sort();

const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

rigTest('validate passes on a fresh copy, offline, writes reports and evidence, and is cached the second time', async (rig) => {
  await selfRepo(rig.dir);
  const first = await rig.fabric(['run', 'validate', '-o', 'json']);
  assert.equal(first.code, 0, output(first));
  assert.deepEqual(outcomes(first), ['validate ran', 'validate.contracts ran', 'validate.envs ran', 'validate.tasks ran']);
  assert.match(output(first, 'validate.envs'), /envs: 6 checked, 0 error\(s\)/);
  assert.match(output(first, 'validate.contracts'), /contracts: \d+ checked, 0 error\(s\)/);
  for (const r of ['contracts', 'envs', 'tasks']) {
    const report = JSON.parse(await rig.read(`.fabric/validate/${r}.json`)) as { ok: boolean; checked: string[] };
    assert.equal(report.ok, true);
    assert.ok(report.checked.length > 0);
  }
  const packets = await readdir(rig.path('evidence'));
  assert.equal(packets.length, 1, 'one evidence packet');
  assert.ok(existsSync(rig.path('evidence', packets[0]!, 'run.json')));
  assert.ok(existsSync(rig.path('evidence', packets[0]!, 'manifest.sha256')));
  const second = await rig.fabric(['run', 'validate', '-o', 'json']);
  assert.equal(second.code, 0);
  assert.deepEqual(outcomes(second), ['validate ran', 'validate.contracts cached', 'validate.envs cached', 'validate.tasks cached']);
  // an input change reruns only the node that reads it
  await writeFile(rig.path('envs', 'samakia-dev.yml'), (await rig.read('envs/samakia-dev.yml')) + '\n');
  const third = await rig.fabric(['run', 'validate', '-o', 'json']);
  assert.deepEqual(outcomes(third), ['validate ran', 'validate.contracts cached', 'validate.envs ran', 'validate.tasks cached']);
}, { ms: 120_000 });

rigTest('a broken env file fails validate.envs with the YAML line and column; the other checks still pass (-k)', async (rig) => {
  await selfRepo(rig.dir);
  const text = (await rig.read('envs/samakia-dns.yml')).replace('vip: 192.168.11.100', 'vip: 192.168.11.1000').replace('hosts: [dns-auth-1, dns-auth-2]', 'hosts: [dns-auth-1, dns-auth-3]');
  await writeFile(rig.path('envs', 'samakia-dns.yml'), text);
  const run = await rig.fabric(['run', 'validate', '-k', '-o', 'json']);
  assert.equal(run.code, 1);
  assert.deepEqual(outcomes(run), ['validate dependency-failed', 'validate.contracts ran', 'validate.envs exit-non-zero', 'validate.tasks ran'], `stdout: ${run.stdout.slice(0, 3000)}\nstderr: ${run.stderr}`);
  const out = output(run, 'validate.envs');
  assert.match(out, new RegExp(`envs/samakia-dns\\.yml:${lineOf(text, '192.168.11.1000')}:8 env at /lan/vip must match pattern`));
  // the schema error stops at the schema; fix it and the cross-reference error shows, at its own line
  await writeFile(rig.path('envs', 'samakia-dns.yml'), text.replace('192.168.11.1000', '192.168.11.100'));
  const again = await rig.fabric(['run', 'validate.envs', '-o', 'json']);
  assert.equal(again.code, 1);
  const line = lineOf(text, 'dns-auth-3]');
  assert.match(output(again), new RegExp(`envs/samakia-dns\\.yml:${line}:\\d+ unknown container "dns-auth-3"`));
  assert.match(output(again), /containers: dns-edge-1, dns-edge-2, dns-auth-1, dns-auth-2/);
  const report = JSON.parse(await rig.read('.fabric/validate/envs.json')) as { ok: boolean; diagnostics: { file: string; code: string }[] };
  assert.equal(report.ok, false);
  assert.deepEqual(report.diagnostics.map((d) => `${d.file} ${d.code}`), ['envs/samakia-dns.yml env']);
}, { ms: 120_000 });

rigTest('a contract that does not compile in strict mode fails validate.contracts at the offending line', async (rig) => {
  await selfRepo(rig.dir);
  const schema = JSON.parse(await rig.read('contracts/env.schema.json')) as { properties: Record<string, Record<string, unknown>> };
  schema.properties['production'] = { type: 'boolean', minimun: 1 };
  const text = JSON.stringify(schema, null, 2);
  await writeFile(rig.path('contracts', 'env.schema.json'), text);
  await writeFile(rig.path('contracts', 'broken.schema.json'), '{\n  "$schema": "https://json-schema.org/draft/2020-12/schema",\n  "$id": "x",\n}\n');
  const run = await rig.fabric(['run', 'validate', '-k', '-o', 'json']);
  assert.equal(run.code, 1);
  assert.deepEqual(outcomes(run), ['validate dependency-failed', 'validate.contracts exit-non-zero', 'validate.envs exit-non-zero', 'validate.tasks ran']);
  const out = output(run, 'validate.contracts');
  assert.match(out, new RegExp(`contracts/env\\.schema\\.json:${lineOf(text, '"minimun"')}:\\d+ does not compile with ajv \\(strict\\): strict mode: unknown keyword: "minimun"`));
  assert.match(out, /contracts\/broken\.schema\.json:4:1 invalid JSON/);
  assert.match(output(run, 'validate.envs'), /the env schema does not compile/);
}, { ms: 120_000 });

rigTest('a task without a description or effect, or with an unknown dependency, fails validate.tasks at its declaration', async (rig) => {
  const extra = [
    "import { task } from 'fabric';",
    "task('lonely', { run: 'true' });",
    "task('dangling', { description: 'points nowhere', effect: 'read-only', deps: ['validate.contract'] });",
    '',
  ].join('\n');
  await selfRepo(rig.dir, extra);
  // the analyzer refuses the unknown dependency before anything runs, with the nearest name
  const refused = await rig.fabric(['run', 'validate', '-o', 'json']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /fabricfile\.ts:4:79 Task "dangling" depends on "validate\.contract", which is not defined.[^]*did you mean "validate\.contracts"\?/);
  await writeFile(rig.path('fabricfile.ts'), `import './tasks/self.js';\n${extra.replace("deps: ['validate.contract'] ", '')}`);
  const run = await rig.fabric(['run', 'validate', '-k', '-o', 'json']);
  assert.equal(run.code, 1);
  const out = output(run, 'validate.tasks');
  assert.match(out, /fabricfile\.ts:3:1 Task "lonely" has no description\./);
  assert.match(out, /fabricfile\.ts:3:1 Task "lonely" does not declare its effect/);
  assert.match(out, /tasks: 6 checked, 2 error\(s\)/);
}, { ms: 120_000 });

rigTest('a task that loads an invalid env file fails with the located error (what an operator sees)', async (rig) => {
  await selfRepo(rig.dir, [
    "import { task } from 'fabric';",
    "import { loadEnv } from './tasks/lib/envs.js';",
    "task('show.env', { description: 'print the env VIP', effect: 'read-only', params: { ENV: { default: 'samakia-minio' } },",
    '  run: async (ctx) => { const env = await loadEnv(ctx.repoRoot, ctx.params.ENV!); ctx.log(`vip ${env.lan?.vip}`); } });',
    '',
  ].join('\n'));
  const good = await rig.fabric(['run', 'show.env', '-o', 'json']);
  assert.equal(good.code, 0, output(good));
  assert.match(output(good), /vip 192\.168\.11\.101/);
  const text = (await rig.read('envs/samakia-minio.yml')).replace('vlan: 140', 'vlan: 0');
  await writeFile(rig.path('envs', 'samakia-minio.yml'), text);
  const bad = await rig.fabric(['run', 'show.env', '-o', 'json']);
  assert.equal(bad.code, 1);
  const failure = bad.events.find((e) => e.type === 'task-failure');
  assert.ok(failure && failure.type === 'task-failure' && failure.failure.reason === 'function-threw');
  assert.match(failure.failure.message, new RegExp(`envs/samakia-minio\\.yml:${lineOf(text, 'vlan: 0')}:9 env at /sdn/vlan must be >= 1`));
  const unknown = await rig.fabric(['run', 'show.env', 'ENV=samakia-nope', '-o', 'json']);
  assert.equal(unknown.code, 1);
  assert.match(output(unknown) + JSON.stringify(unknown.events), /no environment file for ENV=samakia-nope/);
}, { ms: 120_000 });

rigTest('the validEnvFile guard refuses a run with a broken env file before anything starts', async (rig) => {
  await selfRepo(rig.dir, [
    "import { task } from 'fabric';",
    "import { validEnvFile } from './tasks/lib/envs.js';",
    "task('step.one', { description: 'first mutating step', effect: 'mutating', params: { ENV: { default: 'samakia-prod' } }, run: 'touch one.ran' });",
    "task('deploy', { description: 'deploy', effect: 'mutating', params: { ENV: { default: 'samakia-prod' } }, deps: [{ task: 'step.one', params: { ENV: '{{ENV}}' } }],",
    "  guards: [validEnvFile()], run: 'touch deploy.ran' });",
    '',
  ].join('\n'));
  const ok = await rig.fabric(['run', 'deploy', 'ENV=samakia-dns', '-o', 'json']);
  assert.equal(ok.code, 0, output(ok));
  assert.ok(rig.exists('one.ran') && rig.exists('deploy.ran'));
  const text = (await rig.read('envs/samakia-dns.yml')).replace('vlan: 10.10.100.22', 'vlan: 10.10.100.256');
  await writeFile(rig.path('envs', 'samakia-dns.yml'), text);
  await writeFile(rig.path('one.ran'), 'old');
  const refused = await rig.fabric(['run', 'deploy', 'ENV=samakia-dns', '-o', 'json']);
  assert.equal(refused.code, 2);
  assert.equal(await rig.read('one.ran'), 'old', 'nothing ran');
  const denied = refused.events.find((e) => e.type === 'run-denied');
  assert.ok(denied && denied.type === 'run-denied');
  const d = denied.denials[0]!.decision;
  assert.equal(d.guard, 'env-file(ENV)');
  assert.match(d.reason, /^envs\/samakia-dns\.yml is invalid: env at \/containers\/3\/vlan must match pattern/);
  assert.equal(d.diagnostics?.length, 1);
  const loc = d.diagnostics![0]!.location!;
  assert.equal(text.slice(loc.offset, loc.offset + loc.length), '10.10.100.256');
  const unknown = await rig.fabric(['run', 'deploy', 'ENV=samakia-nope', '-o', 'json']);
  assert.equal(unknown.code, 2);
  assert.match(JSON.stringify(unknown.events), /no environment file for ENV=samakia-nope/);
}, { ms: 120_000 });

test.run();
