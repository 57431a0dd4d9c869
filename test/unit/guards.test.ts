// Guards as pure functions: facts in, decision out. One allow and one deny per guard kind, with the exact message.
import * as assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, timedTest } from '../helpers/rig.js';
import {
  acknowledge,
  changeWindow,
  ciRefuse,
  confirm,
  custom,
  envAllowlist,
  executeFlag,
  isCiMode,
  override,
  paramEquals,
  paramNonEmpty,
  paramNotEquals,
  paramOneOf,
  paramPattern,
  requireFiles,
  requireTools,
  requireVars,
  when,
} from '../../lib/guards/index.js';
import type { Guard, GuardDecision, GuardFacts } from '../../lib/guards/types.js';

const NOW = new Date('2026-01-04T10:15:00Z');

function facts(vars: Record<string, string | undefined> = {}, over: Partial<GuardFacts> = {}): GuardFacts {
  return {
    node: 'minio.tf.plan',
    task: 'minio.tf.plan',
    effect: 'mutating',
    params: {},
    vars,
    env: {},
    ci: false,
    interactive: false,
    now: NOW,
    operator: 'alice@host',
    repoRoot: '/nonexistent',
    gitCommit: undefined,
    planDigest: undefined,
    selection: [],
    keyrings: {},
    ...over,
  };
}

async function ev(g: Guard, f: GuardFacts): Promise<GuardDecision> {
  return await g.evaluate(f);
}

/** [title, guard, facts, outcome, reason, remedy?] */
type Row = [string, Guard, GuardFacts, GuardDecision['outcome'], string, string?];
const ROWS: Row[] = [
  ['param-equals allow', paramEquals('ENV', 'samakia-minio'), facts({ ENV: 'samakia-minio' }), 'allow', 'ENV is "samakia-minio"'],
  ['param-equals deny', paramEquals('ENV', 'samakia-minio'), facts({ ENV: 'samakia-prod' }), 'deny', 'ENV must be "samakia-minio" (got "samakia-prod")', 'set ENV=samakia-minio'],
  ['param-equals deny unset', paramEquals('ENV', 'samakia-minio'), facts({}), 'deny', 'ENV must be "samakia-minio" (ENV is not set)', 'set ENV=samakia-minio'],
  [
    'param-equals custom message and remedy',
    paramEquals('ENV', 'samakia-minio', { message: 'ENV must be samakia-minio', remedy: 'use {{task}} with ENV=samakia-minio, not {{value}}' }),
    facts({ ENV: 'samakia-dev' }),
    'deny',
    'ENV must be samakia-minio',
    'use minio.tf.plan with ENV=samakia-minio, not samakia-dev',
  ],
  ['param-one-of allow', paramOneOf('ENV', ['samakia-dev', 'samakia-staging']), facts({ ENV: 'samakia-dev' }), 'allow', 'ENV is "samakia-dev" (one of samakia-dev, samakia-staging)'],
  ['param-one-of deny', paramOneOf('ENV', ['samakia-dev', 'samakia-staging']), facts({ ENV: 'samakia-prod' }), 'deny', 'ENV must be one of samakia-dev, samakia-staging (got "samakia-prod")', 'set ENV to one of: samakia-dev, samakia-staging'],
  ['param-not-equals allow', paramNotEquals('ENV', 'samakia-minio'), facts({ ENV: 'samakia-dev' }), 'allow', 'ENV is "samakia-dev", not samakia-minio'],
  ['param-not-equals allow unset', paramNotEquals('ENV', ['a', 'b']), facts({}), 'allow', 'ENV is not set (not a, b)'],
  [
    'param-not-equals deny (Samakia tf.plan wording)',
    paramNotEquals('ENV', 'samakia-minio', { message: '{{task}} is forbidden for ENV={{value}}', remedy: 'use minio.tf.plan / minio.state.migrate' }),
    facts({ ENV: 'samakia-minio' }, { task: 'tf.plan', node: 'tf.plan' }),
    'deny',
    'tf.plan is forbidden for ENV=samakia-minio',
    'use minio.tf.plan / minio.state.migrate',
  ],
  ['param-not-equals deny default', paramNotEquals('ENV', 'samakia-minio'), facts({ ENV: 'samakia-minio' }), 'deny', 'ENV must not be "samakia-minio"', 'set ENV to another value than samakia-minio'],
  ['param-pattern allow', paramPattern('VERSION', 'v\\d+'), facts({ VERSION: 'v12' }), 'allow', 'VERSION matches /v\\d+/'],
  ['param-pattern deny (anchored)', paramPattern('VERSION', 'v\\d+'), facts({ VERSION: 'v12-rc' }), 'deny', 'VERSION must match /v\\d+/ (got "v12-rc")', 'set VERSION to a value matching /v\\d+/'],
  ['param-pattern invalid pattern denies', paramPattern('VERSION', '(unclosed'), facts({ VERSION: 'x' }), 'deny', 'invalid pattern /(unclosed/ for VERSION: Invalid regular expression: /^(?:(unclosed)$/u: Unterminated group', 'fix the pattern in the task definition'],
  ['param-non-empty allow', paramNonEmpty('TENANT'), facts({ TENANT: 'all' }), 'allow', 'TENANT is set'],
  ['param-non-empty deny blank', paramNonEmpty('TENANT', { message: 'TENANT is required (use TENANT=all for all tenants)' }), facts({ TENANT: '  ' }), 'deny', 'TENANT is required (use TENANT=all for all tenants)', 'set TENANT=<value>'],
  ['confirm allow', confirm('CONFIRM', 'YES'), facts({ CONFIRM: 'YES' }), 'allow', 'CONFIRM is "YES"'],
  ['confirm deny unset, no terminal', confirm('CONFIRM', 'YES'), facts({}), 'deny', 'confirmation required: re-run with CONFIRM=YES (CONFIRM is not set and there is no terminal to ask)', 're-run with CONFIRM=YES'],
  ['confirm deny wrong value', confirm('CONFIRM', 'YES'), facts({ CONFIRM: 'yes' }), 'deny', 'confirmation required: re-run with CONFIRM=YES (CONFIRM is "yes")', 're-run with CONFIRM=YES'],
  ['confirm deny in CI', confirm('CONFIRM', 'YES'), facts({}, { ci: true }), 'deny', 'confirmation required: re-run with CONFIRM=YES (CONFIRM is not set and CI mode never prompts)', 're-run with CONFIRM=YES'],
  ['acknowledge allow', acknowledge('I_UNDERSTAND_MUTATION'), facts({ I_UNDERSTAND_MUTATION: '1' }), 'allow', 'I_UNDERSTAND_MUTATION=1'],
  ['acknowledge deny', acknowledge('I_UNDERSTAND_MUTATION'), facts({ I_UNDERSTAND_MUTATION: 'yes' }), 'deny', 'I_UNDERSTAND_MUTATION=1 is required', 'set I_UNDERSTAND_MUTATION=1 to acknowledge'],
  ['env-allowlist inline allow', envAllowlist('ENV', ['samakia-dev', 'samakia-staging']), facts({ ENV: 'samakia-staging' }), 'allow', 'ENV "samakia-staging" is allowlisted (inline)'],
  ['env-allowlist inline deny', envAllowlist('ENV', ['samakia-dev', 'samakia-staging']), facts({ ENV: 'samakia-prod' }), 'deny', 'ENV "samakia-prod" is not allowlisted (allowed: samakia-dev, samakia-staging)', 'use ENV=samakia-dev or samakia-staging'],
  ['env-allowlist inline never', envAllowlist('ENV', ['samakia-dev', 'samakia-prod'], { never: ['samakia-prod'] }), facts({ ENV: 'samakia-dev' }), 'deny', 'samakia-prod must never be allowlisted (task definition of minio.tf.plan)', 'fix the allowlist in the task definition'],
  ['require-vars allow', requireVars(['A', 'B']), facts({ A: '1', B: '2' }), 'allow', 'A, B are set'],
  ['require-vars deny', requireVars(['TF_VAR_ssh_public_keys']), facts({}), 'deny', 'missing required env var: TF_VAR_ssh_public_keys', 'set TF_VAR_ssh_public_keys=<value>'],
  ['require-vars deny several', requireVars(['A', 'B', 'C']), facts({ B: 'x' }), 'deny', 'missing required env vars: A, C', 'set A=<value> C=<value>'],
  ['ci-refuse allow', ciRefuse('exposure apply is not allowed in CI'), facts({}), 'allow', 'not in CI mode'],
  ['ci-refuse deny', ciRefuse('exposure apply is not allowed in CI'), facts({}, { ci: true, env: { CI: 'true' } }), 'deny', 'exposure apply is not allowed in CI', 'run it outside CI'],
  ['ci-refuse deny default', ciRefuse(), facts({}, { ci: true, env: { CI: '1' } }), 'deny', 'minio.tf.plan is not allowed in CI (CI mode is on: CI=1)', 'run it outside CI'],
  ['when: condition holds', when({ param: 'ENV', equals: 'samakia-prod' }, acknowledge('I_UNDERSTAND')), facts({ ENV: 'samakia-prod' }), 'deny', 'I_UNDERSTAND=1 is required', 'set I_UNDERSTAND=1 to acknowledge'],
  ['when: condition does not hold', when({ param: 'ENV', equals: 'samakia-prod' }, acknowledge('I_UNDERSTAND')), facts({ ENV: 'samakia-dev' }), 'skip', 'skipped: applies only when ENV=samakia-prod (ENV is "samakia-dev")'],
  ['custom allow', custom('quorum', 'quorum report says PASS', () => ({ outcome: 'allow', reason: 'PASS' })), facts({}), 'allow', 'PASS'],
  ['custom deny', custom('quorum', 'quorum report says PASS', (f) => ({ outcome: 'deny', reason: `no quorum for ${f.task}`, remedy: 'wait' })), facts({}), 'deny', 'no quorum for minio.tf.plan', 'wait'],
  ['custom that throws denies', custom('boom', 'throws', () => { throw new Error('kaput'); }), facts({}), 'deny', 'guard threw: kaput', 'fix the custom guard'],
  ['custom malformed result denies', custom('bad', 'bad', () => ({ outcome: 'maybe', reason: 'x' }) as never), facts({}), 'deny', 'guard returned an invalid outcome "maybe" (expected one of allow, deny, overridden, skip)', 'fix the guard'],
];

for (const [title, guard, f, outcome, reason, remedy] of ROWS) {
  timedTest(title, async () => {
    const d = await ev(guard, f);
    assert.equal(d.guard, guard.name);
    assert.equal(d.kind, guard.kind);
    assert.equal(d.outcome, outcome);
    assert.equal(d.reason, reason);
    if (outcome === 'deny') assert.equal(d.remedy, remedy);
    else assert.equal(d.remedy, undefined);
  });
}

timedTest('guard names and kinds', () => {
  assert.equal(paramEquals('ENV', 'x').name, 'param-equals(ENV=x)');
  assert.equal(override(paramEquals('A', '1'), { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON' }).name, 'override(HA_OVERRIDE: param-equals(A=1))');
  assert.equal(changeWindow({ startVar: 'S', endVar: 'E', maxMinutes: 60 }).name, 'change-window(S..E, max 60m)');
  assert.equal(when({ param: 'ENV', oneOf: ['a', 'b'] }, acknowledge('X')).name, 'acknowledge(X) when ENV in a|b');
});

timedTest('secret values never appear in decisions: facts show [set, N chars]', async () => {
  const f = facts({ TF_VAR_pm_api_token_secret: 'hunter2-very-secret', DB_PASS: 'pw-123456' }, { secretNames: ['DB_PASS'] });
  const d1 = await ev(requireVars(['TF_VAR_pm_api_token_secret', 'DB_PASS']), f);
  assert.equal(d1.outcome, 'allow');
  assert.deepEqual(d1.facts, { TF_VAR_pm_api_token_secret: '[set, 19 chars]', DB_PASS: '[set, 9 chars]' });
  const d2 = await ev(paramEquals('DB_PASS', 'other'), f);
  assert.equal(d2.reason, 'DB_PASS must be "other" (got [secret])');
  assert.ok(!JSON.stringify([d1, d2]).includes('hunter2') && !JSON.stringify([d1, d2]).includes('pw-123456'));
  // a value equal to one of the node's secret values is masked whatever its name
  const d3 = await ev(paramNonEmpty('LABEL'), facts({ LABEL: 's3cr3t-value' }, { secrets: ['s3cr3t-value'] }));
  assert.deepEqual(d3.facts, { LABEL: '[set, 12 chars]' });
});

// ---------------------------------------------------------------- confirm: prompts

timedTest('confirm prompts in an interactive terminal outside CI: typing the phrase allows', async () => {
  const asked: string[] = [];
  const d = await ev(confirm('CONFIRM', 'YES'), facts({}, { interactive: true, prompt: async (q) => (asked.push(q), 'YES\n') }));
  assert.equal(d.outcome, 'allow');
  assert.equal(d.reason, 'confirmed at the prompt by typing "YES"');
  assert.deepEqual(asked, ['minio.tf.plan: type YES to confirm (default: no): ']);
});

timedTest('confirm prompt: empty answer (default) is no', async () => {
  const d = await ev(confirm('CONFIRM', 'YES'), facts({}, { interactive: true, prompt: async () => '' }));
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'confirmation required: re-run with CONFIRM=YES (declined at the prompt)');
});

timedTest('confirm never prompts in CI even with a terminal', async () => {
  let asked = false;
  const d = await ev(confirm('CONFIRM', 'YES'), facts({}, { interactive: true, ci: true, prompt: async () => ((asked = true), 'YES') }));
  assert.equal(d.outcome, 'deny');
  assert.equal(asked, false);
});

// ---------------------------------------------------------------- override (HA_OVERRIDE)

const HA_CHECK = custom('ha-placement', 'HA placement must be valid', () => ({ outcome: 'deny', reason: 'placement enforcement violations present', remedy: 'fix placement-policy.yml' }));
const HA = override(HA_CHECK, { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON', minReasonLength: 12 });

timedTest('override: check denies and no override → deny with the check reason', async () => {
  const d = await ev(HA, facts({}));
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'placement enforcement violations present');
  assert.equal(d.remedy, 'fix placement-policy.yml; or override with HA_OVERRIDE=1 and HA_OVERRIDE_REASON=<why>');
});

timedTest('override: HA_OVERRIDE=1 without a reason → deny (Samakia wording)', async () => {
  const d = await ev(HA, facts({ HA_OVERRIDE: '1' }));
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing');
  assert.equal(d.override, undefined);
  const blank = await ev(HA, facts({ HA_OVERRIDE: '1', HA_OVERRIDE_REASON: '   \t ' }));
  assert.equal(blank.reason, 'HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing');
});

timedTest('override: a too-short reason → deny', async () => {
  const d = await ev(HA, facts({ HA_OVERRIDE: '1', HA_OVERRIDE_REASON: 'node  down' }));
  assert.equal(d.outcome, 'deny');
  assert.equal(d.reason, 'HA_OVERRIDE_REASON is too short (8 non-blank characters, at least 12 required)');
  assert.equal(d.remedy, 'give a reason of at least 12 characters in HA_OVERRIDE_REASON');
});

timedTest('override: with a reason → overridden, with the full record', async () => {
  const d = await ev(HA, facts({ HA_OVERRIDE: '1', HA_OVERRIDE_REASON: ' pve2 is in maintenance until 18:00 ' }));
  assert.equal(d.outcome, 'overridden');
  assert.equal(d.reason, 'ha-placement overridden by HA_OVERRIDE=1 (HA_OVERRIDE_REASON: "pve2 is in maintenance until 18:00"): placement enforcement violations present');
  assert.deepEqual(d.override, {
    variable: 'HA_OVERRIDE',
    reasonVariable: 'HA_OVERRIDE_REASON',
    reason: 'pve2 is in maintenance until 18:00',
    operator: 'alice@host',
    at: '2026-01-04T10:15:00.000Z',
    overrode: 'ha-placement',
    overrodeReason: 'placement enforcement violations present',
  });
});

timedTest('override: a passing check is not overridden (allow passes through)', async () => {
  const g = override(paramEquals('ENV', 'x'), { variable: 'O', reasonVariable: 'R' });
  const d = await ev(g, facts({ ENV: 'x', O: '1', R: 'because' }));
  assert.equal(d.outcome, 'allow');
  assert.equal(d.reason, 'ENV is "x"');
  assert.equal(d.override, undefined);
});

timedTest('override: a check that throws is a deny, still overridable only with a reason', async () => {
  const g = override(custom('t', 't', () => { throw new Error('no api'); }), { variable: 'O', reasonVariable: 'R' });
  assert.equal((await ev(g, facts({}))).reason, 'guard threw: no api');
  assert.equal((await ev(g, facts({ O: '1', R: 'x' }))).outcome, 'overridden');
});

// ---------------------------------------------------------------- change windows

const WIN = changeWindow({ startVar: 'MAINT_WINDOW_START', endVar: 'MAINT_WINDOW_END', maxMinutes: 60 });
const WINDOW_ROWS: [string, Record<string, string>, GuardDecision['outcome'], string][] = [
  ['inside', { MAINT_WINDOW_START: '2026-01-04T10:00:00Z', MAINT_WINDOW_END: '2026-01-04T10:30:00Z' }, 'allow', 'now 2026-01-04T10:15:00Z is inside the maintenance window 2026-01-04T10:00:00Z..2026-01-04T10:30:00Z (30.0m ≤ 60m)'],
  ['inside, +00:00 offset and no seconds', { MAINT_WINDOW_START: '2026-01-04T10:00+00:00', MAINT_WINDOW_END: '2026-01-04T11:00Z' }, 'allow', 'now 2026-01-04T10:15:00Z is inside the maintenance window 2026-01-04T10:00:00Z..2026-01-04T11:00:00Z (60.0m ≤ 60m)'],
  ['outside (future)', { MAINT_WINDOW_START: '2026-01-04T11:00:00Z', MAINT_WINDOW_END: '2026-01-04T11:30:00Z' }, 'deny', 'current UTC time 2026-01-04T10:15:00Z is outside the maintenance window 2026-01-04T11:00:00Z..2026-01-04T11:30:00Z'],
  ['outside (past)', { MAINT_WINDOW_START: '2026-01-04T09:00:00Z', MAINT_WINDOW_END: '2026-01-04T10:00:00Z' }, 'deny', 'current UTC time 2026-01-04T10:15:00Z is outside the maintenance window 2026-01-04T09:00:00Z..2026-01-04T10:00:00Z'],
  ['too long', { MAINT_WINDOW_START: '2026-01-04T09:30:00Z', MAINT_WINDOW_END: '2026-01-04T11:00:00Z' }, 'deny', 'maintenance window exceeds max duration (90.0m > 60m)'],
  ['malformed start', { MAINT_WINDOW_START: 'tomorrow', MAINT_WINDOW_END: '2026-01-04T11:00:00Z' }, 'deny', 'MAINT_WINDOW_START is not an ISO-8601 UTC time: "tomorrow" (expected e.g. 2026-01-04T10:00:00Z)'],
  ['malformed end (not UTC)', { MAINT_WINDOW_START: '2026-01-04T10:00:00Z', MAINT_WINDOW_END: '2026-01-04T11:00:00+02:00' }, 'deny', 'MAINT_WINDOW_END is not an ISO-8601 UTC time: "2026-01-04T11:00:00+02:00" (expected e.g. 2026-01-04T10:00:00Z)'],
  ['malformed end (no such day)', { MAINT_WINDOW_START: '2026-01-04T10:00:00Z', MAINT_WINDOW_END: '2026-02-30T11:00:00Z' }, 'deny', 'MAINT_WINDOW_END is not an ISO-8601 UTC time: "2026-02-30T11:00:00Z" (expected e.g. 2026-01-04T10:00:00Z)'],
  ['end before start', { MAINT_WINDOW_START: '2026-01-04T10:30:00Z', MAINT_WINDOW_END: '2026-01-04T10:00:00Z' }, 'deny', 'maintenance window end must be after start'],
  ['missing', { MAINT_WINDOW_START: '2026-01-04T10:30:00Z' }, 'deny', 'MAINT_WINDOW_START and MAINT_WINDOW_END are required'],
];
for (const [title, vars, outcome, reason] of WINDOW_ROWS) {
  timedTest(`change window: ${title}`, async () => {
    const d = await ev(WIN, facts(vars));
    assert.equal(d.outcome, outcome);
    assert.equal(d.reason, reason);
    if (outcome === 'deny') assert.equal(d.remedy, 'set MAINT_WINDOW_START and MAINT_WINDOW_END (ISO-8601 UTC, e.g. 2026-01-04T10:00:00Z) to a window of at most 60 minutes around now');
  });
}

// ---------------------------------------------------------------- files and tools

timedTest('require-tools and require-files look at PATH and the repo root', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-guards-'));
  try {
    await mkdir(join(dir, 'bin'));
    await writeFile(join(dir, 'bin', 'packer'), '#!/bin/sh\n');
    await chmod(join(dir, 'bin', 'packer'), 0o755);
    await writeFile(join(dir, 'bin', 'ansible'), 'not executable');
    await mkdir(join(dir, 'ops', 'ca'), { recursive: true });
    await writeFile(join(dir, 'ops', 'ca', 'root.crt'), 'x');
    const f = facts({ PATH: join(dir, 'bin') }, { repoRoot: dir });
    const ok = await ev(requireTools(['packer']), f);
    assert.equal(ok.outcome, 'allow');
    assert.equal(ok.reason, 'packer found on PATH');
    assert.deepEqual(ok.facts, { packer: join(dir, 'bin', 'packer') });
    const no = await ev(requireTools(['packer', 'ansible', 'terraform']), f);
    assert.equal(no.outcome, 'deny');
    assert.equal(no.reason, 'ansible, terraform not found in PATH');
    assert.equal(no.remedy, 'install ansible, terraform or add them to PATH');
    const fok = await ev(requireFiles(['ops/ca/root.crt']), f);
    assert.equal(fok.reason, 'ops/ca/root.crt exists');
    const fno = await ev(requireFiles(['ops/ca/root.crt', 'ops/ca/missing.crt']), f);
    assert.equal(fno.outcome, 'deny');
    assert.equal(fno.reason, 'required file not found: ops/ca/missing.crt');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- policy files

timedTest('env allowlist from a policy file: allow, deny, and located errors for malformed policies', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-policy-'));
  try {
    const policy = join(dir, 'ops', 'execute-policy.yml');
    await mkdir(join(dir, 'ops'));
    await writeFile(policy, '# tenants execute policy\nallowed_envs:\n  - samakia-dev\n  - samakia-staging\nreason_min_length: 12\n');
    const g = envAllowlist('ENV', { policyFile: 'ops/execute-policy.yml', key: 'allowed_envs' }, { never: ['samakia-prod'] });
    const ok = await ev(g, facts({ ENV: 'samakia-dev' }, { repoRoot: dir }));
    assert.equal(ok.outcome, 'allow');
    assert.equal(ok.reason, 'ENV "samakia-dev" is allowlisted (ops/execute-policy.yml#allowed_envs)');
    // a same-size edit within the same process is seen (no stale cache)
    await writeFile(policy, '# tenants execute policy\nallowed_envs:\n  - samakia-deX\n  - samakia-staging\nreason_min_length: 12\n');
    assert.equal((await ev(g, facts({ ENV: 'samakia-dev' }, { repoRoot: dir }))).outcome, 'deny');
    await writeFile(policy, '# tenants execute policy\nallowed_envs:\n  - samakia-dev\n  - samakia-staging\nreason_min_length: 12\n');
    const no = await ev(g, facts({ ENV: 'samakia-prod' }, { repoRoot: dir }));
    assert.equal(no.outcome, 'deny');
    assert.equal(no.reason, 'ENV "samakia-prod" is not allowlisted (allowed: samakia-dev, samakia-staging)');

    const cases: [string, string, string][] = [
      ['a YAML syntax error', 'allowed_envs: [samakia-dev, samakia-staging\n', 'invalid policy file: ops/execute-policy.yml:2:1: invalid YAML:'],
      ['a list item that is not a string', 'allowed_envs:\n  - samakia-dev\n  - { env: samakia-staging }\n', 'invalid policy file: ops/execute-policy.yml:3:5: policy entry "allowed_envs" item 1 must be a non-empty string'],
      ['a missing key', 'other: [a]\n', 'invalid policy file: ops/execute-policy.yml:1:1: policy has no entry "allowed_envs"'],
      ['prod allowlisted', 'allowed_envs:\n  - samakia-dev\n  - samakia-prod\n', 'invalid policy file: ops/execute-policy.yml:3:5: "samakia-prod" must never be allowlisted in "allowed_envs"'],
      ['not a map at the top', '- samakia-dev\n', 'invalid policy file: ops/execute-policy.yml:1:1: policy must be object'],
    ];
    for (const [what, text, reason] of cases) {
      await writeFile(policy, text);
      const d = await ev(g, facts({ ENV: 'samakia-dev' }, { repoRoot: dir }));
      assert.equal(d.outcome, 'deny', what);
      assert.ok(d.reason.startsWith(reason), `${what}: ${d.reason}`);
      assert.equal(d.remedy, 'fix ops/execute-policy.yml');
      assert.ok(d.diagnostics && d.diagnostics.length > 0 && d.diagnostics[0]!.location, `${what}: located diagnostics`);
    }
    await rm(policy);
    const gone = await ev(g, facts({ ENV: 'samakia-dev' }, { repoRoot: dir }));
    assert.equal(gone.outcome, 'deny');
    assert.equal(gone.reason, 'policy file not found: ops/execute-policy.yml');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

timedTest('nested policy keys are reached with dots', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fabric-policy-'));
  try {
    await writeFile(join(dir, 'p.yaml'), 'tenants:\n  allowed_envs: [samakia-dev]\n');
    const g = envAllowlist('ENV', { policyFile: 'p.yaml', key: 'tenants.allowed_envs' });
    assert.equal((await ev(g, facts({ ENV: 'samakia-dev' }, { repoRoot: dir }))).reason, 'ENV "samakia-dev" is allowlisted (p.yaml#tenants.allowed_envs)');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- CI detection, execute flags

const CI_MATRIX: [string | undefined, boolean][] = [
  [undefined, false],
  ['', false],
  ['0', false],
  ['false', false],
  ['FALSE', false],
  [' False ', false],
  ['1', true],
  ['true', true],
  ['yes', true],
  ['no', true],
];
for (const [value, on] of CI_MATRIX) {
  timedTest(`isCiMode: CI=${JSON.stringify(value)} → ${on}`, () => {
    assert.equal(isCiMode(value === undefined ? {} : { CI: value }), on);
    assert.equal(isCiMode(value === undefined ? {} : { CI: value }, true), true, '--ci always turns CI mode on');
  });
}

timedTest('executeFlag: X=1 selects the execute form (mutating by default), anything else the dry-run form', () => {
  const v = executeFlag('TENANT_EXECUTE', { execute: 'apply.sh', dryRun: 'apply.sh --dry-run', dryRunEffect: 'read-only' });
  assert.equal(v.param, 'TENANT_EXECUTE');
  assert.equal(v.fallback, 'dry-run');
  assert.deepEqual(v.cases['1'], { description: 'execute (TENANT_EXECUTE=1)', run: 'apply.sh', effect: 'mutating' });
  assert.deepEqual(v.cases['dry-run'], { description: 'TENANT_EXECUTE is not 1', run: 'apply.sh --dry-run', effect: 'read-only' });
  const w = executeFlag('X', { execute: 'a', dryRun: 'b' });
  assert.equal('effect' in w.cases['dry-run']!, false);
});

test.run();
