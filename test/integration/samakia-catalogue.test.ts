// The Samakia task catalogue as the operator sees it: `fabric list` covers exactly the Makefile's 318
// targets (same names, sections, effects), `fabric graph minio.up` is the real chain with each check once
// and in the Makefile's order, and `fabric run minio.up ... --dry-run` has no side effect.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FABRIC_BIN, ROOT, rigTest, test, timedTest, type Rig } from '../helpers/rig.js';
import { CATALOGUE_PATH, catalogue, fixtureEnv, samakiaRepo } from './samakia-catalogue-fixture.js';

interface ListedTask {
  name: string;
  description: string;
  section: string;
  effect: 'read-only' | 'mutating';
  tags: string[];
  params: { name: string; default?: string; secret?: boolean }[];
  deps: string[];
}
interface GraphJson {
  nodes: { id: string; task: string; deps: string[]; params: Record<string, string> }[];
}

/** The catalogue's tasks, without the repo's own validation graph (`self`) and the chains' internal steps. */
const catalogueTasks = (tasks: ListedTask[]) => tasks.filter((t) => !t.tags.includes('self') && !t.tags.includes('internal'));

async function list(rig: Rig): Promise<ListedTask[]> {
  const r = await rig.fabric(['list', '--json'], { env: fixtureEnv(rig.dir) });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ListedTask[];
}

timedTest('the committed tasks/*.ts are what scripts/gen-catalogue.mjs generates from the catalogue', () => {
  const r = spawnSync(process.execPath, ['scripts/gen-catalogue.mjs', '--check', '--catalogue', CATALOGUE_PATH], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `stale generated files (run node scripts/gen-catalogue.mjs):\n${r.stderr}`);
});

// V8 keeps a script's source as one byte per character only when no character is above U+00FF: one
// arrow in a comment (esbuild escapes them in code, not in comments) made the 450 KB Samakia bundle
// two bytes per character, ~5 ms more to read and compile at every start (bench/RESULTS.md, 13th pass).
// The load narrows such comments in bundles; fabric's own dist/ is built without that step.
rigTest('the Samakia bundles and fabric\'s own dist files have no character above U+00FF', async (rig) => {
  await samakiaRepo(rig.dir);
  await list(rig);
  const nonAscii = async (dir: string, ext: RegExp): Promise<string[]> => {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const file = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await nonAscii(file, ext)));
      if (!e.isFile() || !ext.test(e.name)) continue;
      const text = await readFile(file, 'utf8');
      const at = text.search(/[^\x00-\xff]/);
      if (at !== -1) out.push(`${file}: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}`);
    }
    return out;
  };
  const built = await nonAscii(join(rig.dir, '.fabric', 'build'), /\.(mjs|cjs)$/);
  assert.ok((await readdir(join(rig.dir, '.fabric', 'build'), { withFileTypes: true })).some((e) => e.isDirectory() && existsSync(join(rig.dir, '.fabric', 'build', e.name, 'fabricfile.mjs'))), 'no bundle was built');
  assert.deepEqual(built, []);
  assert.deepEqual(await nonAscii(join(ROOT, 'dist'), /\.js$/), []);
});

rigTest('fabric list covers exactly the 318 Makefile targets, under the same names', async (rig) => {
  await samakiaRepo(rig.dir);
  const listed = catalogueTasks(await list(rig));
  const expected = (await catalogue()).map((t) => t.name);
  assert.equal(expected.length, 318);
  const names = listed.map((t) => t.name);
  assert.deepEqual(names.filter((n) => !expected.includes(n)), [], 'tasks that are not Makefile targets');
  assert.deepEqual(expected.filter((n) => !names.includes(n)), [], 'Makefile targets without a task');
  assert.equal(new Set(names).size, 318);
  for (const t of listed) {
    assert.ok(t.description.trim().length > 0, `${t.name} has no description`);
    assert.ok(t.description.length <= 120, `${t.name}: description too long for fabric list (${t.description.length})`);
  }
});

rigTest('fabric list over the whole catalogue loads neither zx, listr2 nor ajv', async (rig) => {
  await samakiaRepo(rig.dir);
  // A resolve hook that fails the process if one of the heavy modules is ever imported.
  const hook = `export async function resolve(specifier, context, next) {
  if (/^(zx|listr2|ajv)(\\/|$)/.test(specifier)) throw new Error('heavy module loaded: ' + specifier);
  return next(specifier, context);
}`;
  await writeFile(rig.path('hooks.mjs'), hook);
  await writeFile(rig.path('register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify('file://' + rig.path('hooks.mjs'))});\n`);
  const env: Record<string, string | undefined> = { ...process.env, ...fixtureEnv(rig.dir), CI: '' };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const r = spawnSync(process.execPath, ['--import', rig.path('register.mjs'), FABRIC_BIN, 'list'], { cwd: rig.dir, env: env as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /minio\.up/);
  // The hook is live: a task that runs a glue function through ctx.$ would load zx (not done here); check the hook itself.
  const probe = spawnSync(process.execPath, ['--import', rig.path('register.mjs'), '-e', "import('zx').then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); })"], { cwd: rig.dir, encoding: 'utf8' });
  assert.equal(probe.status, 3, 'the hook refuses zx');
});

rigTest("every task's effect and section are the catalogue's", async (rig) => {
  await samakiaRepo(rig.dir);
  const listed = new Map(catalogueTasks(await list(rig)).map((t) => [t.name, t]));
  const wrongEffect: string[] = [];
  const wrongSection: string[] = [];
  for (const t of await catalogue()) {
    const l = listed.get(t.name)!;
    const effect = t.effects.readOnly ? 'read-only' : 'mutating';
    if (l.effect !== effect) wrongEffect.push(`${t.name}: ${l.effect}, catalogue ${effect}`);
    if (l.section !== t.section) wrongSection.push(`${t.name}: ${l.section}, catalogue ${t.section}`);
  }
  assert.deepEqual(wrongEffect, []);
  assert.deepEqual(wrongSection, []);
});

rigTest('params carry the Makefile defaults: ENV=samakia-prod, date-derived ids computed, secrets marked', async (rig) => {
  await samakiaRepo(rig.dir);
  const listed = new Map((await list(rig)).map((t) => [t.name, t]));
  const cat = await catalogue();
  const missing: string[] = [];
  for (const t of cat) {
    const l = listed.get(t.name)!;
    const env = t.params.find((p) => p.name === 'ENV');
    if (env) {
      const p = l.params.find((x) => x.name === 'ENV');
      if (!p) missing.push(`${t.name}: ENV not a param`);
      else assert.equal(p.default, 'samakia-prod', `${t.name}: ENV default`);
    }
    // Every Make variable with a literal `?=` default is a param with that default.
    for (const mp of t.params) {
      if (mp.assign !== '?=' || mp.default === null || /[$<]/.test(mp.default)) continue;
      const p = l.params.find((x) => x.name === mp.name);
      if (!p) missing.push(`${t.name}: ${mp.name} not a param`);
      else assert.equal(p.default, mp.default, `${t.name}: ${mp.name} default`);
    }
  }
  assert.deepEqual(missing, []);
  for (const name of ['incidents.open', 'incident.forensics', 'compliance.pack', 'audit.export']) {
    const ids = listed.get(name)!.params.filter((p) => /_ID$|PACK_NAME/.test(p.name) && p.default === '<computed once per run>');
    assert.ok(ids.length >= 1, `${name}: a date-derived id computed once per run`);
  }
  const passphrases = [...listed.values()].flatMap((t) => t.params.filter((p) => p.name === 'SECRETS_PASSPHRASE'));
  assert.ok(passphrases.length >= 1);
  assert.ok(passphrases.every((p) => p.secret === true), 'SECRETS_PASSPHRASE is a secret param');
});

/** The analyzed graph of a selection: the nodes of the dry-run plan (task, params, deps), no process started. */
async function graphJson(rig: Rig, args: string[]): Promise<GraphJson> {
  const r = await rig.fabric(['run', ...args, '--dry-run', '--output=json'], { env: fixtureEnv(rig.dir) });
  const start = r.events.find((e) => e.type === 'run-start');
  assert.ok(start && start.type === 'run-start', r.stdout + r.stderr);
  return { nodes: start.nodes.map((n) => ({ id: n.id, task: n.task, deps: [...n.deps], params: { ...n.params } })) };
}

/** Whether `from` (transitively) depends on `to`. */
function reaches(g: GraphJson, from: string, to: string): boolean {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(byId.get(id)?.deps ?? []));
  }
  return false;
}
const nodeOf = (g: GraphJson, task: string, params: Record<string, string> = {}) => {
  const found = g.nodes.filter((n) => n.task === task && Object.entries(params).every(([k, v]) => n.params[k] === v));
  assert.equal(found.length, 1, `one node for ${task} ${JSON.stringify(params)}: ${found.map((n) => n.id).join(', ')}`);
  return found[0]!.id;
};

rigTest('fabric graph minio.up: the real chain, each check once, in the Makefile order', async (rig) => {
  await samakiaRepo(rig.dir);
  // What `fabric graph` shows: one runner.env.check node however many paths reach it.
  const gr = await rig.fabric(['graph', 'minio.up', 'ENV=samakia-minio', '--format', 'json'], { env: fixtureEnv(rig.dir) });
  assert.equal(gr.code, 0, gr.stderr);
  const ids = (JSON.parse(gr.stdout) as { nodes: { id: string }[] }).nodes.map((n) => n.id);
  assert.deepEqual(ids.filter((id) => id.startsWith('runner.env.check')), ['runner.env.check']);
  assert.ok(ids.length >= 14, `the whole chain is in the graph (${ids.length} nodes)`);
  const tree = await rig.fabric(['graph', 'minio.up', 'ENV=samakia-minio'], { env: fixtureEnv(rig.dir) });
  assert.equal(tree.code, 0, tree.stderr);
  assert.match(tree.stdout, /minio\.state\.migrate/);
  const g = await graphJson(rig, ['minio.up', 'ENV=samakia-minio']);
  const count = (task: string) => g.nodes.filter((n) => n.task === task).length;
  // The Makefile ran runner.env.check 6 times in minio.up; the HA gate and the quorum guard twice.
  assert.equal(count('runner.env.check'), 1);
  assert.equal(count('ha.enforce.check'), 1);
  assert.equal(count('minio.quorum.guard'), 1);
  assert.equal(count('minio.backend.smoke'), 1);
  // Catalogue order of minio.up's steps (its sub-makes and its own recipe lines), each after the one before.
  const order = [
    nodeOf(g, 'runner.env.check'),
    nodeOf(g, 'minio.up:sdn-ensure'),
    nodeOf(g, 'backend.configure'),
    nodeOf(g, 'minio.tf.plan'),
    nodeOf(g, 'minio.tf.apply', { CI: '1' }),
    nodeOf(g, 'minio.up:lxc-start'),
    nodeOf(g, 'inventory.check', { ENV: 'samakia-minio' }),
    nodeOf(g, 'minio.up:bootstrap'),
    nodeOf(g, 'minio.ansible.apply'),
    nodeOf(g, 'minio.accept'),
    nodeOf(g, 'minio.quorum.guard'),
    nodeOf(g, 'minio.state.migrate'),
  ];
  for (let i = 1; i < order.length; i++) assert.ok(reaches(g, order[i]!, order[i - 1]!), `${order[i]} runs after ${order[i - 1]}`);
  // The state migration's backend smoke needs the MinIO this chain deploys.
  assert.ok(reaches(g, nodeOf(g, 'minio.backend.smoke'), nodeOf(g, 'minio.quorum.guard')));
  // The catalogue's sub-make targets are all in the graph (the two conditional bootstraps are glue inside minio.up:bootstrap).
  const subMakes = (await catalogue()).find((t) => t.name === 'minio.up')!.deps.filter((d) => d.kind === 'make' && !d.conditional).map((d) => d.target);
  for (const t of subMakes) assert.ok(count(t) >= 1, `${t} in the graph`);
});

rigTest('fabric graph dns.up: depth-4 chain with backend smoke, quorum guard and backend init once', async (rig) => {
  await samakiaRepo(rig.dir);
  const g = await graphJson(rig, ['dns.up', 'ENV=samakia-dns']);
  const count = (task: string) => g.nodes.filter((n) => n.task === task).length;
  // The Makefile: runner.env.check 5x, minio.backend.smoke / tf.backend.init / ha.enforce.check 2x each.
  for (const t of ['runner.env.check', 'minio.backend.smoke', 'tf.backend.init', 'ha.enforce.check', 'minio.quorum.guard']) assert.equal(count(t), 1, t);
  const order = [
    nodeOf(g, 'runner.env.check'),
    nodeOf(g, 'minio.backend.smoke', { ENV: 'samakia-minio' }),
    nodeOf(g, 'minio.quorum.guard', { ENV: 'samakia-minio' }),
    nodeOf(g, 'tf.plan', { ENV: 'samakia-dns' }),
    nodeOf(g, 'tf.apply', { ENV: 'samakia-dns', CI: '1' }),
    nodeOf(g, 'dns.up:bootstrap'),
    nodeOf(g, 'dns.ansible.apply'),
    nodeOf(g, 'dns.accept'),
  ];
  for (let i = 1; i < order.length; i++) assert.ok(reaches(g, order[i]!, order[i - 1]!), `${order[i]} runs after ${order[i - 1]}`);
  // dns.tf.apply -> tf.apply -> minio.backend.smoke -> runner.env.check (depth 4).
  assert.ok(reaches(g, nodeOf(g, 'dns.tf.apply'), nodeOf(g, 'minio.backend.smoke')));
});

rigTest('outside a chain, a member runs alone: the chain edges are skipped', async (rig) => {
  await samakiaRepo(rig.dir);
  const g = await graphJson(rig, ['minio.tf.apply', 'ENV=samakia-minio']);
  assert.deepEqual(g.nodes.map((n) => n.task).sort(), ['ha.enforce.check', 'minio.tf.apply', 'runner.env.check']);
});

rigTest('README file dependencies are edges: bindings.render before exposure.plan, drift.detect before drift.summary', async (rig) => {
  await samakiaRepo(rig.dir);
  const g = await graphJson(rig, ['exposure.plan', 'drift.summary', 'docs.cookbook.lint', 'consumers.bundle.check', 'milestone.phase1-12.lock', 'TENANT=canary', 'WORKLOAD=sample']);
  assert.ok(reaches(g, nodeOf(g, 'exposure.plan'), nodeOf(g, 'bindings.render', { TENANT: 'canary' })));
  assert.ok(reaches(g, nodeOf(g, 'drift.summary'), nodeOf(g, 'drift.detect', { TENANT: 'canary' })));
  assert.ok(reaches(g, nodeOf(g, 'docs.cookbook.lint'), nodeOf(g, 'docs.operator.check')));
  assert.ok(reaches(g, nodeOf(g, 'consumers.bundle.check'), nodeOf(g, 'consumers.bundle')));
  assert.ok(reaches(g, nodeOf(g, 'milestone.phase1-12.lock'), nodeOf(g, 'milestone.phase1-12.verify')));
  // phase3.part2.accept's GameDay: baseline evidence, drills, then the post-check, one GameDay id for all.
  const gd = await graphJson(rig, ['phase3.part2.accept']);
  const steps = ['gameday.precheck', 'gameday.evidence', 'gameday.vip.failover.dry', 'gameday.service.restart.dry', 'gameday.postcheck'].map((t) => nodeOf(gd, t));
  for (let i = 1; i < steps.length; i++) assert.ok(reaches(gd, steps[i]!, steps[i - 1]!), `${steps[i]} after ${steps[i - 1]}`);
  const ids = new Set(gd.nodes.filter((n) => n.params['GAMEDAY_ID'] !== undefined).map((n) => n.params['GAMEDAY_ID']));
  assert.equal(ids.size, 1, `one GameDay id: ${[...ids].join(', ')}`);
  assert.match([...ids][0]!, /^phase3-part2-\d{8}T\d{6}Z$/);
});

rigTest('fabric run minio.up ENV=samakia-minio --dry-run prints the whole plan and runs nothing', async (rig) => {
  await samakiaRepo(rig.dir);
  const env = fixtureEnv(rig.dir);
  const r = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', '--dry-run', '--output=json'], { env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const start = r.events.find((e) => e.type === 'run-start');
  assert.ok(start && start.type === 'run-start' && start.dryRun);
  const tasks = start.nodes.map((n) => n.task);
  for (const t of ['runner.env.check', 'minio.up:sdn-ensure', 'backend.configure', 'minio.tf.plan', 'minio.tf.apply', 'minio.up:lxc-start', 'inventory.check', 'minio.up:bootstrap', 'minio.ansible.apply', 'minio.accept', 'minio.quorum.guard', 'minio.state.migrate', 'minio.up']) {
    assert.ok(tasks.includes(t), `${t} in the plan`);
  }
  assert.equal(tasks.filter((t) => t === 'runner.env.check').length, 1);
  // The plan shows the exact commands, e.g. the SDN ensure script with --apply and the migration.
  const commands = start.nodes.flatMap((n) => n.commands);
  assert.ok(commands.some((c) => c.includes('bash ops/scripts/proxmox-sdn-ensure-stateful-plane.sh --apply')));
  assert.ok(commands.some((c) => c.includes('bash ops/scripts/tf-backend-init.sh samakia-minio --migrate')));
  assert.deepEqual(r.events.filter((e) => e.type === 'run-denied'), []);
  // Nothing started: no task, no command, no fake tool or script call, no workspace, no state.
  assert.deepEqual(r.brief(['task-start', 'command-start']), []);
  assert.equal(existsSync(rig.path('tools.log')), false, 'a fake tool ran');
  assert.equal(existsSync(rig.path('scripts.log')), false, 'a repo script ran');
  assert.equal(existsSync(rig.path('home', '.cache', 'samakia-fabric')), false, 'the bootstrap workspace was created');
  assert.equal(existsSync(rig.path('evidence')), false, 'evidence written by a dry run');
  // The same fakes do record a real run (so the checks above can fail): a read-only validation target.
  const real = await rig.fabric(['run', 'tenants.validate', 'minio.accept', '--output=json'], { env });
  assert.equal(real.code, 0, real.stdout + real.stderr);
  const calls = (await readFile(rig.path('scripts.log'), 'utf8')).split('\n').filter(Boolean).map((l) => l.trim()).sort();
  assert.deepEqual(calls, ['ops/scripts/minio-accept.sh', 'ops/tenants/validate.sh']);
});

rigTest('one signing model: EVIDENCE_SIGN / EVIDENCE_SIGN_KEY reach every script family under the name it reads', async (rig) => {
  await samakiaRepo(rig.dir);
  const envLog = async () => (await readFile(rig.path('env.log'), 'utf8')).split('\n').filter(Boolean);
  const run = await rig.fabric(
    ['run', 'exposure.plan', 'image.evidence.build', 'TENANT=canary', 'WORKLOAD=sample', 'ENV=samakia-dev', 'QCOW2=/x.qcow2', 'IMAGE=ubuntu-24.04', 'VERSION=v1', 'EVIDENCE_SIGN=1', 'EVIDENCE_SIGN_KEY=ABCDEF12', '--output=json'],
    { env: fixtureEnv(rig.dir) },
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const lines = await envLog();
  // The exposure signer read EXPOSURE_SIGN, which the Makefile never set (it passed EXPOSE_SIGN).
  assert.ok(lines.includes('ops/exposure/plan/plan.sh EXPOSURE_SIGN=1 EVIDENCE_GPG_KEY=<unset> COMPLIANCE_GPG_KEY=<unset>'), lines.join('\n'));
  // The image evidence scripts read EVIDENCE_GPG_KEY: the one key variable reaches them.
  assert.ok(lines.includes('ops/images/vm/evidence/image-build-evidence.sh EXPOSURE_SIGN=<unset> EVIDENCE_GPG_KEY=ABCDEF12 COMPLIANCE_GPG_KEY=<unset>'), lines.join('\n'));
  // An explicit family variable still wins.
  await writeFile(rig.path('env.log'), '');
  const explicit = await rig.fabric(['run', 'image.evidence.build', 'QCOW2=/x.qcow2', 'IMAGE=ubuntu-24.04', 'VERSION=v1', 'EVIDENCE_SIGN_KEY=ABCDEF12', '--output=json'], {
    env: fixtureEnv(rig.dir, { EVIDENCE_GPG_KEY: 'OTHERKEY' }),
  });
  assert.equal(explicit.code, 0, explicit.stdout + explicit.stderr);
  assert.deepEqual(await envLog(), ['ops/images/vm/evidence/image-build-evidence.sh EXPOSURE_SIGN=<unset> EVIDENCE_GPG_KEY=OTHERKEY COMPLIANCE_GPG_KEY=<unset>']);
});

rigTest('the runner env file a recipe sources: the secrets it assigns are redacted (dns.sdn.accept); every runner-env task declares the file', async (rig) => {
  await samakiaRepo(rig.dir);
  const TOKEN = 'pve-token-secret-from-runner-env';
  // What runner.env.check requires, and the token the script echoes.
  const env = ['TF_VAR_pm_api_url=https://pve.example:8006/api2/json', 'TF_VAR_pm_api_token_id=fabric@pve!ci', `TF_VAR_pm_api_token_secret=${TOKEN}`, `TF_VAR_ssh_public_keys='["ssh-ed25519 AAAA op"]'`];
  await writeFile(rig.path('runner.env'), [...env, 'PM_API_URL=https://pve.example:8006', `export PM_API_TOKEN_SECRET="${TOKEN}"`, ''].join('\n'));
  await writeFile(rig.path('ops/scripts/dns-sdn-accept.sh'), '#!/usr/bin/env bash\necho "sdn check at $PM_API_URL with $PM_API_TOKEN_SECRET"\n');
  const r = await rig.fabric(['run', 'dns.sdn.accept', 'ENV=samakia-dns', `RUNNER_ENV_FILE=${rig.path('runner.env')}`, '--output=plain'], { env: fixtureEnv(rig.dir) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /sdn check at https:\/\/pve\.example:8006 with \[REDACTED\]/);
  assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN));
  // Every task of the catalogue analyzes (a recipe that sources the runner env file declares RUNNER_ENV_FILE).
  const all = await rig.fabric(['run', '*', '--dry-run', '--output=plain'], { env: fixtureEnv(rig.dir) });
  assert.doesNotMatch(all.stdout + all.stderr, /is not a param of the task/);
  assert.match(all.stdout, /Dry run: nothing was run\./);
}, { ms: 120_000 });

rigTest('DRY_RUN=1 minio.up plans only: the plan branch, the apply chain skipped and shown as skipped', async (rig) => {
  await samakiaRepo(rig.dir);
  const r = await rig.fabric(['run', 'minio.up', 'ENV=samakia-minio', 'DRY_RUN=1', '--dry-run', '--output=json'], { env: fixtureEnv(rig.dir) });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const start = r.events.find((e) => e.type === 'run-start');
  assert.ok(start && start.type === 'run-start');
  const tasks = start.nodes.map((n) => n.task).sort();
  assert.deepEqual(tasks, ['ha.enforce.check', 'minio.tf.apply', 'minio.tf.plan', 'minio.up', 'runner.env.check']);
  const up = start.nodes.find((n) => n.task === 'minio.up')!;
  assert.match(up.variant ?? '', /plan only/);
  assert.ok(up.skippedDeps.some((d) => d.task === 'minio.state.migrate' && /DRY_RUN/.test(d.condition)));
  const apply = start.nodes.find((n) => n.task === 'minio.tf.apply')!;
  assert.match(apply.variant ?? '', /plan only/);
});

test.run();
