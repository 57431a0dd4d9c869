// Every guard on the minio.*, dns.*, tf.* and ha.* targets refuses and allows as the Samakia catalogue
// says, with its message. Each scenario is one `fabric run <targets...> --dry-run --output=json` in a
// Samakia-shaped checkout: the oracle is the guard-decision / run-denied events; no process starts.
import * as assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import type { FabricEvent } from '../../lib/engine/events.js';
import type { GuardDecision } from '../../lib/guards/types.js';
import { rigTest, test, type FabricRun, type Rig } from '../helpers/rig.js';
import { catalogue, fakePath, fixtureEnv, samakiaRepo, type CatalogueTarget } from './samakia-catalogue-fixture.js';

const GROUPS = ['minio', 'dns', 'tf', 'ha'];

/** The decisions of a dry run, by task name (all nodes of that task). */
function decisionsByTask(run: FabricRun): Map<string, { node: string; decision: GuardDecision }[]> {
  const start = run.events.find((e): e is Extract<FabricEvent, { type: 'run-start' }> => e.type === 'run-start');
  assert.ok(start, `no run-start event:\n${run.stdout}\n${run.stderr}`);
  const taskOf = new Map(start.nodes.map((n) => [n.id, n.task]));
  const out = new Map<string, { node: string; decision: GuardDecision }[]>();
  for (const e of run.events) {
    if (e.type !== 'guard-decision') continue;
    const t = taskOf.get(e.node)!;
    if (!out.has(t)) out.set(t, []);
    out.get(t)!.push({ node: e.node, decision: e.decision });
  }
  return out;
}

async function dry(rig: Rig, args: string[], env: Record<string, string | undefined> = {}): Promise<FabricRun> {
  const r = await rig.fabric(['run', ...args, '--dry-run', '--output=json'], { env: fixtureEnv(rig.dir, env) });
  assert.ok(r.code === 0 || r.code === 2, `fabric ${args.join(' ')} exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  assert.deepEqual(r.brief(['task-start', 'command-start']), [], 'a dry run started something');
  return r;
}

const denials = (run: FabricRun) => run.events.flatMap((e) => (e.type === 'run-denied' ? e.denials : []));

/** The catalogue's Makefile-level refusals on ENV (and CONFIRM, EDGE) for the four groups. */
async function envPins(): Promise<{ target: CatalogueTarget; var: string; equals?: string; notEquals?: string; nonEmpty?: boolean; message: string }[]> {
  const out = [];
  for (const t of await catalogue()) {
    if (!GROUPS.includes(t.group)) continue;
    for (const s of t.steps) {
      if (s.kind !== 'require-env' || s.scope !== 'make' || s.conditional) continue;
      out.push({
        target: t,
        var: s.var!,
        ...(s.equals !== undefined ? { equals: s.equals } : {}),
        ...(s.notEquals !== undefined ? { notEquals: s.notEquals } : {}),
        ...(s.nonEmpty ? { nonEmpty: true } : {}),
        message: s.message!.replace(/^ERROR: /, ''),
      });
    }
  }
  return out;
}

rigTest('ENV pinning: every minio/dns target refuses another env with "set ENV=..." and allows its own', async (rig) => {
  await samakiaRepo(rig.dir);
  const pins = (await envPins()).filter((p) => p.var === 'ENV' && p.equals !== undefined);
  assert.ok(pins.length >= 17, `${pins.length} pinned targets`);
  for (const env of ['samakia-minio', 'samakia-dns']) {
    const targets = pins.filter((p) => p.equals === env);
    // Refused with ENV at its Makefile default (samakia-prod).
    const refused = await dry(rig, targets.map((p) => p.target.name), { CONFIRM: 'YES', EDGE: 'minio-edge-1' });
    assert.equal(refused.code, 2, 'a denial exits 2');
    const byTask = decisionsByTask(refused);
    for (const p of targets) {
      // The selected node (ENV at its default); a dependency edge may add another node with the right ENV.
      const d = byTask.get(p.target.name)?.find((x) => x.decision.kind === 'param-equals' && x.decision.facts['ENV'] === 'samakia-prod');
      assert.ok(d, `${p.target.name}: an ENV guard`);
      assert.equal(d.decision.outcome, 'deny', p.target.name);
      assert.equal(d.decision.reason, p.message, p.target.name);
      assert.ok(denials(refused).some((x) => x.node === d.node && x.decision.reason === p.message), `${p.target.name} in run-denied`);
    }
    // Allowed with its env: every guard of every node passes (fixture checkout, fake tools on PATH).
    const allowed = await dry(rig, [...targets.map((p) => p.target.name), `ENV=${env}`], { CONFIRM: 'YES', EDGE: 'minio-edge-1' });
    assert.deepEqual(denials(allowed).map((d) => `${d.node}: ${d.decision.reason}`), []);
    assert.equal(allowed.code, 0);
    const ok = decisionsByTask(allowed);
    for (const p of targets) assert.ok(ok.get(p.target.name)?.some((x) => x.decision.kind === 'param-equals' && x.decision.outcome === 'allow'), p.target.name);
  }
});

rigTest('tf.* are forbidden for samakia-minio, each naming its minio.* replacement', async (rig) => {
  await samakiaRepo(rig.dir);
  const pins = (await envPins()).filter((p) => p.var === 'ENV' && p.notEquals === 'samakia-minio');
  assert.deepEqual(pins.map((p) => p.target.name).sort(), ['tf.apply', 'tf.backend.init', 'tf.init', 'tf.plan']);
  const refused = await dry(rig, ['tf.backend.init', 'tf.init', 'tf.plan', 'tf.apply', 'ENV=samakia-minio']);
  assert.equal(refused.code, 2);
  const byTask = decisionsByTask(refused);
  for (const p of pins) {
    const d = byTask.get(p.target.name)!.find((x) => x.decision.kind === 'param-not-equals')!;
    assert.equal(d.decision.outcome, 'deny');
    assert.equal(d.decision.reason, p.message);
    assert.match(d.decision.remedy ?? '', /minio\./);
  }
  const allowed = await dry(rig, ['tf.backend.init', 'tf.init', 'tf.plan', 'tf.apply', 'ENV=samakia-dev']);
  assert.deepEqual(denials(allowed).map((d) => `${d.node}: ${d.decision.reason}`), []);
});

rigTest('CONFIRM=YES guards the two destroys; EDGE is required for the failure simulation', async (rig) => {
  await samakiaRepo(rig.dir);
  const pins = (await envPins()).filter((p) => p.var === 'CONFIRM' || p.var === 'EDGE');
  assert.deepEqual(pins.map((p) => `${p.target.name} ${p.var}`).sort(), ['dns.tf.destroy CONFIRM', 'minio.failure.sim EDGE', 'minio.tf.destroy CONFIRM']);
  for (const [target, env] of [['minio.tf.destroy', 'samakia-minio'], ['dns.tf.destroy', 'samakia-dns']] as const) {
    const msg = pins.find((p) => p.target.name === target)!.message;
    for (const confirmValue of [undefined, 'yes', 'Y']) {
      const r = await dry(rig, [target, `ENV=${env}`, ...(confirmValue ? [`CONFIRM=${confirmValue}`] : [])]);
      assert.equal(r.code, 2, `${target} CONFIRM=${confirmValue}`);
      assert.deepEqual(denials(r).map((d) => d.decision.reason), [msg]);
      assert.equal(denials(r)[0]!.decision.kind, 'confirm');
    }
    const ok = await dry(rig, [target, `ENV=${env}`, 'CONFIRM=YES']);
    assert.equal(ok.code, 0, ok.stdout);
    assert.ok(decisionsByTask(ok).get(target)!.some((x) => x.decision.kind === 'confirm' && x.decision.outcome === 'allow'));
  }
  const noEdge = await dry(rig, ['minio.failure.sim', 'ENV=samakia-minio']);
  assert.deepEqual(denials(noEdge).map((d) => d.decision.reason), ['set EDGE=minio-edge-1|minio-edge-2']);
  const edge = await dry(rig, ['minio.failure.sim', 'ENV=samakia-minio', 'EDGE=minio-edge-2']);
  assert.deepEqual(denials(edge), []);
});

rigTest('HA override: only with a reason, recorded; ha.* and the HA gate of tf.plan/minio.tf.plan', async (rig) => {
  await samakiaRepo(rig.dir);
  const haTargets = (await catalogue()).filter((t) => t.guards.ids.some((g) => g.id === 'ha-override-with-reason')).map((t) => t.name);
  for (const t of ['ha.placement.validate', 'ha.proxmox.audit', 'ha.enforce.check']) assert.ok(haTargets.includes(t), t);
  const targets = ['ha.placement.validate', 'ha.proxmox.audit', 'ha.enforce.check', 'tf.plan'];
  const overrides = (r: FabricRun) => r.events.flatMap((e) => (e.type === 'guard-decision' && e.decision.kind === 'override' ? [e] : []));

  const plain = await dry(rig, [...targets, 'ENV=samakia-dev']);
  assert.equal(plain.code, 0);
  assert.equal(overrides(plain).length, 3, 'one override guard per HA node');
  assert.ok(overrides(plain).every((e) => e.decision.outcome === 'allow'));

  const noReason = await dry(rig, [...targets, 'ENV=samakia-dev', 'HA_OVERRIDE=1']);
  assert.equal(noReason.code, 2);
  assert.deepEqual([...new Set(denials(noReason).map((d) => d.decision.reason))], ['HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing']);
  assert.equal(denials(noReason).length, 3);
  // tf.plan alone is refused through the HA gate it pulls in: the path goes from tf.plan down to it.
  const viaPlan = await dry(rig, ['tf.plan', 'ENV=samakia-dev', 'HA_OVERRIDE=1']);
  assert.deepEqual(
    denials(viaPlan).map((d) => [d.path.map((p) => p.replace(/\[.*$/, '')), d.decision.reason]),
    [[['tf.plan', 'ha.enforce.check'], 'HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing']],
  );

  const blank = await dry(rig, ['ha.enforce.check', 'ENV=samakia-dev', 'HA_OVERRIDE=1', 'HA_OVERRIDE_REASON=   ']);
  assert.deepEqual(denials(blank).map((d) => d.decision.reason), ['HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing']);

  const withReason = await dry(rig, [...targets, 'ENV=samakia-dev', 'HA_OVERRIDE=1', 'HA_OVERRIDE_REASON=proxmox3 in maintenance']);
  assert.equal(withReason.code, 0, withReason.stdout);
  assert.equal(overrides(withReason).length, 3);
  for (const e of overrides(withReason)) {
    assert.equal(e.decision.outcome, 'overridden');
    assert.equal(e.decision.override?.variable, 'HA_OVERRIDE');
    assert.equal(e.decision.override?.reasonVariable, 'HA_OVERRIDE_REASON');
    assert.equal(e.decision.override?.reason, 'proxmox3 in maintenance');
    assert.ok(e.decision.override?.operator);
  }
  // minio.tf.plan's HA gate is the same guard.
  const minio = await dry(rig, ['minio.tf.plan', 'ENV=samakia-minio', 'HA_OVERRIDE=1']);
  assert.deepEqual(denials(minio).map((d) => d.decision.reason), ['HA_OVERRIDE=1 set but HA_OVERRIDE_REASON is missing']);
});

rigTest('tool preflights: terraform / ansible missing from PATH refuse with the Makefile message', async (rig) => {
  await samakiaRepo(rig.dir);
  const msgs = new Map<string, string>();
  for (const t of await catalogue()) {
    if (!GROUPS.includes(t.group)) continue;
    for (const s of t.steps) if (s.kind === 'require-tool') msgs.set(`${t.name} ${s.tool}`, s.message!.replace(/^ERROR: /, ''));
  }
  assert.equal(msgs.get('tf.plan terraform'), 'terraform not found in PATH');
  const r = await dry(rig, ['tf.plan', 'minio.tf.apply', 'dns.ansible.apply', 'ENV=samakia-dev'], { PATH: fakePath(rig.dir, false) });
  const got = denials(r).filter((d) => d.decision.kind === 'require-tools');
  const byTask = new Map(got.map((d) => [d.node.replace(/\[.*$/, ''), d.decision.reason]));
  assert.equal(byTask.get('tf.plan'), msgs.get('tf.plan terraform'));
  assert.equal(byTask.get('minio.tf.apply'), msgs.get('minio.tf.apply terraform'));
  assert.equal(byTask.get('dns.ansible.apply'), 'ansible-playbook not found in PATH');
});

rigTest('a missing repo script or env dir is refused up front, naming the path and FABRIC_REPO_ROOT', async (rig) => {
  await samakiaRepo(rig.dir, { without: ['ops/scripts/minio-quorum-guard.sh'], withoutEnvDirs: ['samakia-staging'] });
  const r = await dry(rig, ['minio.quorum.guard', 'ENV=samakia-minio']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const d = denials(r);
  assert.equal(d.length, 1);
  assert.equal(d[0]!.decision.reason, `missing script ops/scripts/minio-quorum-guard.sh (FABRIC_REPO_ROOT=${rig.dir})`);
  const other = await rig.fabric(['run', 'minio.quorum.guard', 'ENV=samakia-minio', '--dry-run', '--output=json'], {
    env: fixtureEnv(rig.dir, { FABRIC_REPO_ROOT: '/nonexistent/checkout' }),
  });
  assert.match(denials(other).map((x) => x.decision.reason).join('\n'), /FABRIC_REPO_ROOT=\/nonexistent\/checkout/);
  const staging = await dry(rig, ['tf.plan', 'ENV=samakia-staging']);
  assert.ok(denials(staging).some((x) => x.decision.reason === 'Terraform env dir not found: fabric-core/terraform/envs/samakia-staging'));
  await rm(rig.path('fabric-core', 'ansible'), { recursive: true });
  const ans = await dry(rig, ['dns.ansible.apply', 'ENV=samakia-dns']);
  assert.ok(denials(ans).some((x) => x.decision.reason === 'ANSIBLE_DIR not found: fabric-core/ansible'));
});

rigTest('CI mode (CI=true counts): mutating chains are refused with the path; non-prod apply passes with its phrase', async (rig) => {
  await samakiaRepo(rig.dir);
  const up = await dry(rig, ['minio.up', 'ENV=samakia-minio'], { CI: 'true' });
  assert.equal(up.code, 2);
  const ci = denials(up).filter((d) => d.decision.kind === 'ci-effect');
  assert.ok(ci.some((d) => d.node.startsWith('minio.up:sdn-ensure') && d.path[0]!.startsWith('minio.up')), 'path from minio.up down to the step');
  assert.ok(ci.every((d) => /is mutating and CI mode is on \(CI=true\)/.test(d.decision.reason) || /not allowed/.test(d.decision.reason)));
  // minio.tf.plan (pr-tf-plan) is allowed in CI for samakia-minio.
  const plan = await dry(rig, ['minio.tf.plan', 'ENV=samakia-minio'], { CI: '1' });
  assert.deepEqual(denials(plan).map((d) => `${d.node}: ${d.decision.reason}`), []);
  // tf.plan for prod is read-only; its backend init is allowed in CI.
  const tfPlan = await dry(rig, ['tf.plan', 'ENV=samakia-prod'], { CI: '1' });
  assert.deepEqual(denials(tfPlan).map((d) => `${d.node}: ${d.decision.reason}`), []);
  // apply-nonprod: prod refused; dev without the phrase refused; dev with it allowed.
  const prod = await dry(rig, ['tf.apply', 'ENV=samakia-prod', 'CONFIRM_APPLY=I_UNDERSTAND_APPLY_IS_MUTATING'], { CI: '1' });
  assert.ok(denials(prod).some((d) => d.node.startsWith('tf.apply') && /ENV "samakia-prod" is not allowed for tf.apply in CI/.test(d.decision.reason)));
  const noPhrase = await dry(rig, ['tf.apply', 'ENV=samakia-dev'], { CI: '1' });
  assert.ok(denials(noPhrase).some((d) => /confirmation phrase mismatch: CONFIRM_APPLY/.test(d.decision.reason)));
  const dev = await dry(rig, ['tf.apply', 'ENV=samakia-dev', 'CONFIRM_APPLY=I_UNDERSTAND_APPLY_IS_MUTATING'], { CI: '1' });
  assert.deepEqual(denials(dev).map((d) => `${d.node}: ${d.decision.reason}`), []);
  assert.equal(dev.code, 0);
  // pr-validate's TENANT=all evidence steps (and the producers they pull in) run in CI; another tenant does not.
  const prValidate = ['drift.summary', 'runtime.status', 'bindings.verify.offline', 'slo.alerts.generate', 'substrate.observe.compare'];
  const all = await dry(rig, [...prValidate, 'TENANT=all', 'DRIFT_OFFLINE=1', 'DRIFT_REQUIRE_SIGN=0'], { CI: '1' });
  assert.deepEqual(denials(all).map((d) => `${d.node}: ${d.decision.reason}`), []);
  const one = await dry(rig, ['drift.summary', 'TENANT=canary'], { CI: '1' });
  assert.ok(denials(one).some((d) => /TENANT "canary" is not allowed for drift.summary in CI/.test(d.decision.reason)));
});

rigTest('the quorum guard is a gate in the plan; execute flags choose a visible variant', async (rig) => {
  await samakiaRepo(rig.dir);
  const r = await dry(rig, ['minio.state.migrate', 'ENV=samakia-minio']);
  const start = r.events.find((e): e is Extract<FabricEvent, { type: 'run-start' }> => e.type === 'run-start')!;
  const guard = start.nodes.find((n) => n.task === 'minio.quorum.guard')!;
  assert.match(guard.gate ?? '', /0 PASS, 2 WARN/);
  assert.ok(start.nodes.find((n) => n.task === 'minio.state.migrate')!.deps.includes(guard.id));
  const exposure = await dry(rig, ['exposure.apply', 'TENANT=canary', 'WORKLOAD=sample', 'ENV=samakia-dev', 'APPROVAL_DIR=evidence/x']);
  const ex = exposure.events.find((e): e is Extract<FabricEvent, { type: 'run-start' }> => e.type === 'run-start')!;
  assert.match(ex.nodes.find((n) => n.task === 'exposure.apply')!.variant ?? '', /EXPOSE_EXECUTE is not 1/);
  const exec = await dry(rig, ['exposure.apply', 'TENANT=canary', 'WORKLOAD=sample', 'ENV=samakia-dev', 'EXPOSE_EXECUTE=1']);
  const exStart = exec.events.find((e): e is Extract<FabricEvent, { type: 'run-start' }> => e.type === 'run-start')!;
  assert.match(exStart.nodes.find((n) => n.task === 'exposure.apply')!.variant ?? '', /execute \(EXPOSE_EXECUTE=1\)/);
  assert.ok(denials(exec).some((d) => d.decision.reason === 'EXPOSE_REASON is required'));
});

test.run();
