// Guards through the real CLI: CI mode on the whole closure, the CI detection matrix, overrides, windows,
// policy files, execute flags and confirmations. The JSON event stream is the oracle.
import * as assert from 'node:assert/strict';
import type { FabricEvent } from '../../lib/engine/events.js';
import type { GuardDecision } from '../../lib/guards/types.js';
import { spawn } from 'node:child_process';
import { findOnPath } from '../../lib/guards/require.js';
import { FABRIC_BIN, rigTest, test, withTimeout, type FabricRun, type Rig } from '../helpers/rig.js';
const SLOW = { ms: 240_000 }; // several CLI processes per test, on a shared 2-core machine

const FF = (body: string) => `import { task, paramEquals, paramNotEquals, override, custom, changeWindow, envAllowlist, executeFlag, confirm, acknowledge, ciRefuse } from 'fabric';\n${body}\n`;

type Denials = Extract<FabricEvent, { type: 'run-denied' }>['denials'];
const denials = (r: FabricRun): Denials => {
  const e = r.events.find((x): x is Extract<FabricEvent, { type: 'run-denied' }> => x.type === 'run-denied');
  return e ? e.denials : [];
};
const decisions = (r: FabricRun): { node: string; decision: GuardDecision }[] =>
  r.events.filter((x): x is Extract<FabricEvent, { type: 'guard-decision' }> => x.type === 'guard-decision').map((e) => ({ node: e.node, decision: e.decision }));
const runStart = (r: FabricRun) => r.events.find((x): x is Extract<FabricEvent, { type: 'run-start' }> => x.type === 'run-start');

// deploy -> tf.apply (mutating) -> tf.plan (read-only, writes plan.ran) -> lint (read-only, writes lint.ran)
const PIPELINE = FF(`
task('lint', { effect: 'read-only', run: 'echo lint >> lint.ran' });
task('tf.plan', { effect: 'read-only', deps: ['lint'], run: 'echo plan >> plan.ran' });
task('tf.apply', { deps: ['tf.plan'], params: { ENV: { default: 'samakia-dev' } }, run: 'echo apply {{ENV}} >> apply.ran',
  ci: { param: 'ENV', allow: ['samakia-dev', 'samakia-staging'], confirm: { variable: 'CONFIRM_APPLY', phrase: 'I_UNDERSTAND_APPLY_IS_MUTATING' }, reason: 'non-prod apply workflow' } });
task('deploy', { effect: 'read-only', deps: ['tf.apply'], run: 'echo deploy >> deploy.ran' });
task('ship', { effect: 'read-only', deps: ['deploy'], params: { ENV: { default: 'samakia-prod' } }, run: 'true' });
task('check', { effect: 'read-only', deps: ['lint'], run: 'echo check >> check.ran' });
`);

rigTest('CI mode: a mutating node deep in the closure refuses the whole run before any process starts', async (rig) => {
  await rig.write({ 'fabricfile.ts': PIPELINE });
  const r = await rig.fabric(['run', 'ship', '--output=json', '--no-evidence'], { env: { CI: 'true' } });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(runStart(r)?.ci, true);
  const d = denials(r);
  assert.equal(d.length, 1);
  assert.equal(d[0]!.node, 'tf.apply');
  assert.deepEqual(d[0]!.path, ['ship', 'deploy', 'tf.apply']);
  assert.equal(d[0]!.decision.guard, 'ci-mode-effect');
  // ship's ENV=samakia-prod does not reach tf.apply (no edge params), so it is the default samakia-dev; without the phrase:
  assert.equal(d[0]!.decision.reason, 'confirmation phrase mismatch: CONFIRM_APPLY must be "I_UNDERSTAND_APPLY_IS_MUTATING" to run tf.apply in CI');
  assert.deepEqual(r.brief(['task-start']), []);
  assert.equal(rig.exists('lint.ran'), false, 'the upstream read-only task did not run');
  assert.equal(rig.exists('plan.ran'), false);
}, SLOW);

rigTest('CI mode: a prod apply is refused even with the phrase; the non-prod apply runs with it', async (rig) => {
  await rig.write({ 'fabricfile.ts': PIPELINE });
  const prod = await rig.fabric(['run', 'deploy', 'ENV=samakia-prod', 'CONFIRM_APPLY=I_UNDERSTAND_APPLY_IS_MUTATING', '--output=json', '--no-evidence'], { env: { CI: '1' } });
  assert.equal(prod.code, 2);
  assert.equal(denials(prod)[0]!.decision.reason, 'ENV "samakia-prod" is not allowed for tf.apply in CI (allowed: samakia-dev, samakia-staging)');
  assert.deepEqual(denials(prod)[0]!.path, ['deploy', 'tf.apply[ENV=samakia-prod]']);
  assert.equal(rig.exists('lint.ran'), false);
  const dev = await rig.fabric(['run', 'deploy', 'ENV=samakia-staging', 'CONFIRM_APPLY=I_UNDERSTAND_APPLY_IS_MUTATING', '--output=json', '--no-evidence'], { env: { CI: '1' } });
  assert.equal(dev.code, 0, dev.stderr);
  assert.equal((await rig.read('apply.ran')).trim(), 'apply samakia-staging');
  const allow = decisions(dev).find((x) => x.decision.guard === 'ci-mode-effect')!;
  assert.equal(allow.decision.outcome, 'allow');
}, SLOW);

const MATRIX: [string | undefined, boolean][] = [
  [undefined, false],
  ['', false],
  ['0', false],
  ['false', false],
  ['1', true],
  ['true', true],
  ['yes', true],
];
rigTest('CI detection matrix: unset, "", 0, false are not CI; 1, true, yes are', async (rig) => {
  await rig.write({ 'fabricfile.ts': PIPELINE });
  for (const [value, ci] of MATRIX) {
    const r = await rig.fabric(['run', 'deploy', '--output=json', '--no-evidence', '--dry-run'], { env: { CI: value } });
    const label = `CI=${JSON.stringify(value)}`;
    assert.equal(runStart(r)?.ci, ci, label);
    assert.equal(r.code, ci ? 2 : 0, `${label}: ${r.stderr}`);
    assert.equal(denials(r).length, ci ? 1 : 0, label);
  }
  // --ci turns it on whatever CI says
  const flag = await rig.fabric(['run', 'deploy', '--ci', '--output=json', '--no-evidence'], { env: { CI: 'false' } });
  assert.equal(flag.code, 2);
  assert.equal(runStart(flag)?.ci, true);
  assert.equal(rig.exists('lint.ran'), false);
}, SLOW);

rigTest('CI mode: a read-only selection runs', async (rig) => {
  await rig.write({ 'fabricfile.ts': PIPELINE });
  const r = await rig.fabric(['run', 'check', '--output=json', '--no-evidence'], { env: { CI: 'true' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await rig.read('check.ran')).trim(), 'check');
}, SLOW);

rigTest('there is no global --yes', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('destroy', { run: 'touch destroyed', guards: [confirm('CONFIRM', 'YES')] });`) });
  const yes = await rig.fabric(['run', 'destroy', '--yes', '--no-evidence']);
  assert.equal(yes.code, 2);
  assert.match(yes.stderr, /unknown flag --yes/);
  const no = await rig.fabric(['run', 'destroy', '--output=json', '--no-evidence']);
  assert.equal(no.code, 2);
  assert.equal(denials(no)[0]!.decision.reason, 'confirmation required: re-run with CONFIRM=YES (CONFIRM is not set and there is no terminal to ask)');
  assert.equal(rig.exists('destroyed'), false);
  const ok = await rig.fabric(['run', 'destroy', 'CONFIRM=YES', '--output=json', '--no-evidence']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(rig.exists('destroyed'), true);
}, SLOW);

const HA = FF(`
const placement = custom('ha-placement', 'tier0/tier1 placement must be valid', () => ({ outcome: 'deny', reason: 'placement enforcement violations present', remedy: 'fix fabric-core/ha/placement-policy.yml' }));
task('ha.enforce.check', { effect: 'read-only', run: 'touch enforced', guards: [override(placement, { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON', minReasonLength: 10 })] });
`);

rigTest('HA override: without a reason, with a too-short reason, and with a reason', async (rig) => {
  await rig.write({ 'fabricfile.ts': HA });
  const plain = await rig.fabric(['run', 'ha.enforce.check', '--output=json', '--no-evidence']);
  assert.equal(plain.code, 2);
  assert.equal(denials(plain)[0]!.decision.reason, 'placement enforcement violations present');
  const noReason = await rig.fabric(['run', 'ha.enforce.check', 'HA_OVERRIDE=1', '--output=json', '--no-evidence']);
  assert.equal(noReason.code, 2);
  assert.equal(denials(noReason)[0]!.decision.reason, 'HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing');
  const short = await rig.fabric(['run', 'ha.enforce.check', 'HA_OVERRIDE=1', '--output=json', '--no-evidence'], { env: { HA_OVERRIDE_REASON: 'pve2 dn' } });
  assert.equal(short.code, 2);
  assert.equal(denials(short)[0]!.decision.reason, 'HA_OVERRIDE_REASON is too short (6 non-blank characters, at least 10 required)');
  assert.equal(rig.exists('enforced'), false);
  const ok = await rig.fabric(['run', 'ha.enforce.check', 'HA_OVERRIDE=1', 'HA_OVERRIDE_REASON=pve2 down for RAM swap', '--output=json', '--no-evidence'], { env: { USER: 'carol' } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(rig.exists('enforced'), true);
  const d = decisions(ok)[0]!.decision;
  assert.equal(d.outcome, 'overridden');
  assert.equal(d.override?.reason, 'pve2 down for RAM swap');
  assert.equal(d.override?.overrode, 'ha-placement');
  assert.match(d.override?.operator ?? '', /^carol@/);
  assert.ok(Math.abs(Date.parse(d.override!.at) - Date.now()) < 60_000);
}, SLOW);

const iso = (offsetMin: number) => new Date(Date.now() + offsetMin * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

rigTest('change windows through the CLI: inside, outside, too long, malformed', async (rig) => {
  await rig.write({ 'fabricfile.ts': FF(`task('tenants.apply', { run: 'touch applied', guards: [changeWindow({ startVar: 'MAINT_WINDOW_START', endVar: 'MAINT_WINDOW_END', maxMinutes: 60 })] });`) });
  const run = (start: string, end: string) => rig.fabric(['run', 'tenants.apply', `MAINT_WINDOW_START=${start}`, `MAINT_WINDOW_END=${end}`, '--output=json', '--no-evidence']);
  const outside = await run(iso(10), iso(40));
  assert.equal(outside.code, 2);
  assert.match(denials(outside)[0]!.decision.reason, /^current UTC time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ is outside the maintenance window \S+Z\.\.\S+Z$/);
  const long = await run(iso(-50), iso(50));
  assert.equal(denials(long)[0]!.decision.reason, 'maintenance window exceeds max duration (100.0m > 60m)');
  const bad = await run('next tuesday', iso(5));
  assert.equal(denials(bad)[0]!.decision.reason, 'MAINT_WINDOW_START is not an ISO-8601 UTC time: "next tuesday" (expected e.g. 2026-01-04T10:00:00Z)');
  assert.equal(rig.exists('applied'), false);
  const inside = await run(iso(-5), iso(25));
  assert.equal(inside.code, 0, inside.stderr);
  assert.match(decisions(inside)[0]!.decision.reason, /^now \S+ is inside the maintenance window .* \(30\.0m ≤ 60m\)$/);
  assert.equal(rig.exists('applied'), true);
}, SLOW);

rigTest('a malformed policy file gives a located error and denies; a good one allows', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('tenants.plan', { effect: 'read-only', params: { ENV: {} }, run: 'touch planned', guards: [envAllowlist('ENV', { policyFile: 'ops/execute-policy.yml', key: 'allowed_envs' }, { never: ['samakia-prod'] })] });`),
    'ops/execute-policy.yml': 'allowed_envs:\n  - samakia-dev\n  - samakia-prod\n',
  });
  const bad = await rig.fabric(['run', 'tenants.plan', 'ENV=samakia-dev', '--output=json', '--no-evidence']);
  assert.equal(bad.code, 2);
  const d = denials(bad)[0]!.decision;
  assert.equal(d.reason, 'invalid policy file: ops/execute-policy.yml:3:5: "samakia-prod" must never be allowlisted in "allowed_envs"');
  assert.equal(d.diagnostics?.[0]?.location?.offset, 'allowed_envs:\n  - samakia-dev\n  - '.length);
  assert.equal(rig.exists('planned'), false);
  await rig.write({ 'ops/execute-policy.yml': 'allowed_envs: [samakia-dev, samakia-staging\n' });
  const syntax = await rig.fabric(['run', 'tenants.plan', 'ENV=samakia-dev', '--output=json', '--no-evidence']);
  assert.equal(syntax.code, 2);
  assert.match(denials(syntax)[0]!.decision.reason, /^invalid policy file: ops\/execute-policy\.yml:\d+:\d+: invalid YAML: /);
  await rig.write({ 'ops/execute-policy.yml': 'allowed_envs: [samakia-dev, samakia-staging]\n' });
  const prod = await rig.fabric(['run', 'tenants.plan', 'ENV=samakia-prod', '--output=json', '--no-evidence']);
  assert.equal(denials(prod)[0]!.decision.reason, 'ENV "samakia-prod" is not allowlisted (allowed: samakia-dev, samakia-staging)');
  const ok = await rig.fabric(['run', 'tenants.plan', 'ENV=samakia-dev', '--output=json', '--no-evidence']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(rig.exists('planned'), true);
}, SLOW);

rigTest('execute flag: unset runs the dry-run form (read-only, allowed in CI); =1 runs the execute form (mutating)', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`task('bindings.apply', { params: { BIND_EXECUTE: { default: '' } }, variants: executeFlag('BIND_EXECUTE', { execute: 'echo execute > mode', dryRun: 'echo dry-run > mode', dryRunEffect: 'read-only' }) });`),
  });
  const dry = await rig.fabric(['run', 'bindings.apply', '--output=json', '--no-evidence'], { env: { CI: 'true' } });
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal((await rig.read('mode')).trim(), 'dry-run');
  const planned = runStart(dry)!.nodes[0]!;
  assert.equal(planned.variant, 'dry-run: BIND_EXECUTE is not 1');
  assert.equal(planned.effect, 'read-only');
  const ciExec = await rig.fabric(['run', 'bindings.apply', 'BIND_EXECUTE=1', '--output=json', '--no-evidence'], { env: { CI: 'true' } });
  assert.equal(ciExec.code, 2);
  assert.equal(denials(ciExec)[0]!.decision.reason, 'bindings.apply[BIND_EXECUTE=1] is mutating and CI mode is on (CI=true)');
  const exec = await rig.fabric(['run', 'bindings.apply', 'BIND_EXECUTE=1', '--output=json', '--no-evidence']);
  assert.equal(exec.code, 0, exec.stderr);
  assert.equal((await rig.read('mode')).trim(), 'execute');
  assert.equal(runStart(exec)!.nodes[0]!.variant, '1: execute (BIND_EXECUTE=1)');
}, SLOW);

rigTest('all denials of all nodes are reported together, with Samakia-style messages and remedies', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('minio.tf.plan', { effect: 'read-only', params: { ENV: { default: 'samakia-prod' } }, run: 'touch a', guards: [paramEquals('ENV', 'samakia-minio', { message: 'ENV must be samakia-minio' })] });
task('tf.plan', { effect: 'read-only', params: { ENV: { default: 'samakia-prod' } }, run: 'touch b', guards: [paramNotEquals('ENV', 'samakia-minio', { message: 'tf.plan is forbidden for ENV=samakia-minio', remedy: 'use minio.tf.plan / minio.state.migrate' })] });
task('all', { effect: 'read-only', deps: ['minio.tf.plan', 'tf.plan'], run: 'true', guards: [acknowledge('I_UNDERSTAND_MUTATION'), ciRefuse('exposure apply is not allowed in CI')] });`),
  });
  const r = await rig.fabric(['run', 'all', 'ENV=samakia-minio', '--output=json', '--no-evidence'], { env: { CI: '1' } });
  assert.equal(r.code, 2);
  assert.deepEqual(
    denials(r).map((d) => [d.node, d.decision.reason, d.decision.remedy, d.path]),
    [
      ['tf.plan[ENV=samakia-minio]', 'tf.plan is forbidden for ENV=samakia-minio', 'use minio.tf.plan / minio.state.migrate', ['all', 'tf.plan[ENV=samakia-minio]']],
      ['all', 'I_UNDERSTAND_MUTATION=1 is required', 'set I_UNDERSTAND_MUTATION=1 to acknowledge', ['all']],
      ['all', 'exposure apply is not allowed in CI', 'run it outside CI', ['all']],
    ],
  );
  assert.equal(decisions(r).find((x) => x.node === 'minio.tf.plan[ENV=samakia-minio]')!.decision.outcome, 'allow');
  assert.equal(rig.exists('a') || rig.exists('b'), false);
}, SLOW);

/** Runs the CLI on a pseudo-terminal (util-linux `script`), answering the confirmation prompt when it appears. */
function underTerminal(rig: Rig, args: string[], env: Record<string, string | undefined>, answer?: string): Promise<{ code: number | null; out: string; prompted: boolean }> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, FABRIC_BIN, ...args].map(q).join(' ');
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, CI: undefined, GITHUB_ACTIONS: undefined, ...env })) if (v !== undefined) childEnv[k] = v;
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: rig.dir, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let prompted = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (!prompted && out.includes('to confirm (default: no): ')) {
      prompted = true;
      if (answer !== undefined) child.stdin.write(answer + '\r');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<{ code: number | null; out: string; prompted: boolean }>((resolve) =>
    child.on('close', (code) => {
      resolve({ code, out, prompted });
    }),
  );
  return withTimeout(done, 60_000, `fabric ${args.join(' ')} on a terminal`).finally(() => {
    child.stdin.end();
    child.kill('SIGKILL');
  });
}

if (findOnPath('script', process.env['PATH'])) {
  rigTest('confirm on a terminal: prompts outside CI (typing the phrase allows, Enter means no); never prompts in CI', async (rig) => {
    await rig.write({ 'fabricfile.ts': FF(`task('destroy', { run: 'touch destroyed', guards: [confirm('CONFIRM', 'YES')] });`) });
    const no = await underTerminal(rig, ['run', 'destroy', '--output=json', '--no-evidence'], {}, '');
    assert.equal(no.prompted, true, no.out);
    assert.equal(no.code, 2, no.out);
    assert.match(no.out, /"reason":"confirmation required: re-run with CONFIRM=YES \(declined at the prompt\)"/);
    assert.equal(rig.exists('destroyed'), false);
    const ci = await underTerminal(rig, ['run', 'destroy', '--output=json', '--no-evidence'], { CI: 'true' });
    assert.equal(ci.prompted, false, ci.out);
    assert.equal(ci.code, 2, ci.out);
    assert.match(ci.out, /"reason":"confirmation required: re-run with CONFIRM=YES \(CONFIRM is not set and CI mode never prompts\)"/);
    const yes = await underTerminal(rig, ['run', 'destroy', '--output=json', '--no-evidence'], {}, 'YES');
    assert.equal(yes.prompted, true, yes.out);
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /"reason":"confirmed at the prompt by typing \\"YES\\""/);
    assert.equal(rig.exists('destroyed'), true);
  }, SLOW);
}

test.run();
