// evaluateGuards and makeFactsProvider on hand-built graphs: CI-mode effect check with dependency paths,
// fail-closed evaluation, facts precedence.
import * as assert from 'node:assert/strict';
import { test, timedTest } from '../helpers/rig.js';
import type { Effect, TaskDef, TaskSpec } from '../../lib/api/types.js';
import type { Graph, Node } from '../../lib/engine/graph.js';
import { graphDigest } from '../../lib/engine/plan.js';
import { evaluateGuards, dependencyPath } from '../../lib/guards/evaluate.js';
import { makeFactsProvider } from '../../lib/guards/facts.js';
import { acknowledge, custom, paramEquals } from '../../lib/guards/index.js';
import type { CiMutationAllowance, Guard, GuardFacts } from '../../lib/guards/types.js';

interface NodeSpec {
  deps?: string[];
  effect?: Effect;
  guards?: Guard[];
  ci?: CiMutationAllowance;
  params?: Record<string, string>;
  vars?: Record<string, string>;
  spec?: TaskSpec;
  secrets?: string[];
}

function graph(nodes: Record<string, NodeSpec>, targets: string[]): Graph {
  const map = new Map<string, Node>();
  for (const [id, s] of Object.entries(nodes)) {
    const name = id.replace(/\[.*$/, '');
    const def: TaskDef = { name, spec: s.spec ?? {}, site: () => undefined, __fabricTask: true };
    map.set(id, {
      id,
      task: def,
      params: s.params ?? {},
      vars: s.vars ?? {},
      effect: s.effect ?? 'mutating',
      deps: s.deps ?? [],
      skippedDeps: [],
      steps: [],
      cwd: '/repo',
      env: {},
      envNames: [],
      secrets: s.secrets ?? [],
      secretPatterns: [],
      timeoutMs: undefined,
      retries: 0,
      retryDelayMs: 250,
      mutex: [],
      tags: [],
      inputs: [],
      outputs: [],
      cacheable: false,
      guards: s.guards ?? [],
      ci: s.ci,
      variant: undefined,
      gate: undefined,
    });
  }
  // topological order: dependencies first
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const d of map.get(id)!.deps) visit(d);
    order.push(id);
  };
  for (const t of targets) visit(t);
  return { repoRoot: '/repo', fabricfile: '/repo/fabricfile.ts', nodes: map, targets, order };
}

const provider = (g: Graph, env: Record<string, string | undefined> = {}, ci = false) =>
  makeFactsProvider({ graph: g, env, ci, interactive: false, now: new Date('2026-01-04T10:00:00Z'), operator: 'op@host', keyrings: {} });

// CI deploy pipeline: deploy -> apply (mutating) -> plan (read-only) -> lint (read-only)
const PIPELINE = (ci?: CiMutationAllowance) =>
  graph(
    {
      lint: { effect: 'read-only' },
      plan: { effect: 'read-only', deps: ['lint'] },
      'apply[ENV=samakia-prod]': { effect: 'mutating', deps: ['plan'], params: { ENV: 'samakia-prod' }, ...(ci ? { ci } : {}) },
      deploy: { effect: 'read-only', deps: ['apply[ENV=samakia-prod]'] },
    },
    ['deploy'],
  );

timedTest('CI mode: a mutating node deep in the closure is denied, with the path from the target', async () => {
  const g = PIPELINE();
  const r = await evaluateGuards(g, provider(g, { CI: 'true' }, true), { ci: true });
  assert.equal(r.denials.length, 1);
  const d = r.denials[0]!;
  assert.equal(d.node, 'apply[ENV=samakia-prod]');
  assert.deepEqual(d.path, ['deploy', 'apply[ENV=samakia-prod]']);
  assert.equal(d.decision.guard, 'ci-mode-effect');
  assert.equal(d.decision.kind, 'ci-effect');
  assert.equal(d.decision.reason, 'apply[ENV=samakia-prod] is mutating and CI mode is on (CI=true)');
  assert.equal(d.decision.remedy, 'select only read-only tasks in CI, or run it outside CI; a task may declare a `ci` allowance for specific CI-run mutations');
  // read-only nodes get no CI decision
  assert.deepEqual(r.decisions.map((x) => x.node), ['apply[ENV=samakia-prod]']);
});

timedTest('CI mode via --ci only: the reason says so', async () => {
  const g = PIPELINE();
  const r = await evaluateGuards(g, provider(g, {}, true), { ci: true });
  assert.equal(r.denials[0]!.decision.reason, 'apply[ENV=samakia-prod] is mutating and CI mode is on (--ci)');
});

timedTest('outside CI mode there is no effect check', async () => {
  const g = PIPELINE();
  const r = await evaluateGuards(g, provider(g, { CI: 'false' }, false), { ci: false });
  assert.deepEqual(r, { decisions: [], denials: [] });
});

const NONPROD: CiMutationAllowance = { param: 'ENV', allow: ['samakia-dev', 'samakia-staging'], confirm: { variable: 'CONFIRM_APPLY', phrase: 'I_UNDERSTAND_APPLY_IS_MUTATING' }, reason: 'non-prod apply workflow' };

timedTest('CI allowance: env not in the allow list → denied', async () => {
  const g = PIPELINE(NONPROD);
  const r = await evaluateGuards(g, provider(g, { CI: '1', CONFIRM_APPLY: 'I_UNDERSTAND_APPLY_IS_MUTATING' }, true), { ci: true });
  assert.equal(r.denials.length, 1);
  assert.equal(r.denials[0]!.decision.reason, 'ENV "samakia-prod" is not allowed for apply in CI (allowed: samakia-dev, samakia-staging)');
});

timedTest('CI allowance: allowed env, wrong phrase → denied; right phrase → allowed', async () => {
  const g = graph({ 'apply[ENV=samakia-dev]': { params: { ENV: 'samakia-dev' }, ci: NONPROD } }, ['apply[ENV=samakia-dev]']);
  const bad = await evaluateGuards(g, provider(g, { CI: '1', CONFIRM_APPLY: 'yes' }, true), { ci: true });
  assert.equal(bad.denials[0]!.decision.reason, 'confirmation phrase mismatch: CONFIRM_APPLY must be "I_UNDERSTAND_APPLY_IS_MUTATING" to run apply in CI');
  assert.equal(bad.denials[0]!.decision.facts['CONFIRM_APPLY'], '[phrase mismatch]');
  const good = await evaluateGuards(g, provider(g, { CI: '1', CONFIRM_APPLY: 'I_UNDERSTAND_APPLY_IS_MUTATING' }, true), { ci: true });
  assert.equal(good.denials.length, 0);
  assert.equal(good.decisions[0]!.decision.outcome, 'allow');
  assert.equal(good.decisions[0]!.decision.reason, 'mutating in CI, allowed: ENV "samakia-dev" is one of samakia-dev, samakia-staging and CONFIRM_APPLY holds the confirmation phrase (non-prod apply workflow)');
});

timedTest('every guard of every node is evaluated and all denials are reported together', async () => {
  const g = graph(
    {
      a: { effect: 'read-only', guards: [acknowledge('ACK_A'), paramEquals('ENV', 'x')] },
      b: { effect: 'read-only', deps: ['a'], guards: [acknowledge('ACK_B')] },
      c: { effect: 'read-only', deps: ['b'], guards: [paramEquals('ENV', 'x')] },
    },
    ['c'],
  );
  const r = await evaluateGuards(g, provider(g, { ENV: 'x', ACK_B: '1' }), { ci: false });
  assert.deepEqual(
    r.decisions.map((d) => `${d.node} ${d.decision.guard} ${d.decision.outcome}`),
    ['a acknowledge(ACK_A) deny', 'a param-equals(ENV=x) allow', 'b acknowledge(ACK_B) allow', 'c param-equals(ENV=x) allow'],
  );
  assert.deepEqual(r.denials.map((d) => [d.node, d.path]), [['a', ['c', 'b', 'a']]]);
});

timedTest('fail closed: a guard that throws, rejects, or returns garbage denies', async () => {
  const throws: Guard = { kind: 'x', name: 'throws', description: '', evaluate: () => { throw new Error('boom'); } };
  const rejects: Guard = { kind: 'x', name: 'rejects', description: '', evaluate: async () => { throw new TypeError('nope'); } };
  const garbage: Guard = { kind: 'x', name: 'garbage', description: '', evaluate: () => 'allow' as never };
  const noReason: Guard = { kind: 'x', name: 'noReason', description: '', evaluate: () => ({ outcome: 'allow' }) as never };
  const notAGuard = { name: 'broken' } as unknown as Guard;
  const g = graph({ a: { effect: 'read-only', guards: [throws, rejects, garbage, noReason, notAGuard] } }, ['a']);
  const r = await evaluateGuards(g, provider(g), { ci: false });
  assert.deepEqual(
    r.denials.map((d) => `${d.decision.guard}: ${d.decision.reason}`),
    [
      'throws: guard threw: boom',
      'rejects: guard threw: nope',
      'garbage: guard returned "allow" instead of a decision',
      'noReason: guard returned a decision without a reason',
      'broken: guard threw: not a guard (no evaluate function)',
    ],
  );
});

timedTest('fail closed: a facts provider that throws denies the node', async () => {
  const g = graph({ a: { effect: 'read-only', guards: [acknowledge('X')] } }, ['a']);
  const r = await evaluateGuards(g, () => { throw new Error('no git'); }, { ci: false });
  assert.equal(r.denials.length, 1);
  assert.equal(r.denials[0]!.decision.reason, 'could not collect the facts for guards: no git');
});

timedTest('facts are collected only for nodes with guards, and in CI mode for mutating nodes', async () => {
  const g = graph(
    {
      plain: { effect: 'read-only' },
      writes: { effect: 'mutating', deps: ['plain'] },
      guarded: { effect: 'read-only', deps: ['writes'], guards: [acknowledge('X')] },
    },
    ['guarded'],
  );
  const asked: string[] = [];
  const real = provider(g, { X: '1', CI: '1' }, true);
  const counting = (n: Node) => (asked.push(n.id), real(n));
  const off = await evaluateGuards(g, counting, { ci: false });
  assert.deepEqual(asked, ['guarded']);
  assert.deepEqual(off.decisions.map((d) => `${d.node} ${d.decision.guard} ${d.decision.outcome}`), ['guarded acknowledge(X) allow']);
  asked.length = 0;
  const on = await evaluateGuards(g, counting, { ci: true });
  assert.deepEqual(asked, ['writes', 'guarded']);
  assert.deepEqual(on.decisions.map((d) => `${d.node} ${d.decision.guard} ${d.decision.outcome}`), ['writes ci-mode-effect deny', 'guarded acknowledge(X) allow']);
  // A provider that cannot collect facts denies the nodes that need them, and only those.
  const broken = await evaluateGuards(g, () => { throw new Error('no git'); }, { ci: true });
  assert.deepEqual(broken.denials.map((d) => `${d.node} ${d.decision.guard}`), ['writes facts', 'guarded facts']);
});

timedTest('run-wide facts (git commit, plan digest) are read once, and only if some node has something to evaluate', async () => {
  const reads: string[] = [];
  const lazyProvider = (g: Graph) =>
    makeFactsProvider({
      graph: g,
      env: {},
      ci: false,
      interactive: false,
      operator: 'op@host',
      keyrings: {},
      gitCommit: () => (reads.push('git'), 'c0ffee'),
      planDigest: () => (reads.push('digest'), 'sha256:plan'),
    });
  const bare = graph({ a: {}, b: { deps: ['a'] } }, ['b']);
  assert.deepEqual(await evaluateGuards(bare, lazyProvider(bare), { ci: false }), { decisions: [], denials: [] });
  assert.deepEqual(reads, []);
  let seen: GuardFacts[] = [];
  const probe = custom('probe', 'records facts', (f) => (seen.push(f), { outcome: 'allow', reason: 'ok' }));
  const guarded = graph({ a: { guards: [probe] }, b: { deps: ['a'], guards: [probe] } }, ['b']);
  await evaluateGuards(guarded, lazyProvider(guarded), { ci: false });
  assert.deepEqual(reads, ['git', 'digest']);
  assert.deepEqual(seen.map((f) => [f.node, f.gitCommit, f.planDigest]), [['a', 'c0ffee', 'sha256:plan'], ['b', 'c0ffee', 'sha256:plan']]);
  // Without a digest given, it is the plan's.
  seen = [];
  await evaluateGuards(guarded, provider(guarded), { ci: false });
  assert.equal(seen[0]!.planDigest, graphDigest(guarded));
});

timedTest('onDecision sees each decision as it is made', async () => {
  const g = graph({ a: { effect: 'read-only', guards: [acknowledge('X'), acknowledge('Y')] } }, ['a']);
  const seen: string[] = [];
  await evaluateGuards(g, provider(g, { Y: '1' }), { ci: false, onDecision: (n, d) => seen.push(`${n}:${d.outcome}`) });
  assert.deepEqual(seen, ['a:deny', 'a:allow']);
});

timedTest('facts: vars = params > node vars > env; selection, digest and secrets', async () => {
  const g = graph(
    {
      'a[ENV=p]': {
        params: { ENV: 'p', TOKEN_X: 'tok-secret-1' },
        vars: { ENV: 'from-cli', DEPTH: 'cli' },
        spec: { params: { ENV: {}, TOKEN_X: { secret: true } } },
        secrets: ['tok-secret-1'],
      },
    },
    ['a[ENV=p]'],
  );
  let captured: GuardFacts | undefined;
  const probe = custom('probe', 'records facts', (f) => ((captured = f), { outcome: 'allow', reason: 'ok' }));
  (g.nodes.get('a[ENV=p]')!.guards as Guard[]).push(probe);
  const p = makeFactsProvider({ graph: g, env: { ENV: 'env', DEPTH: 'env', HOME_X: 'h', DB_PASSWORD: 'pw' }, ci: false, interactive: true, now: new Date(0), operator: 'op@h', gitCommit: 'abc', keyrings: { ed25519: '/k' }, prompt: async () => 'x', secretPatterns: ['PASSWORD'] });
  await evaluateGuards(g, p, { ci: false });
  const f = captured!;
  assert.equal(f.vars['ENV'], 'p');
  assert.equal(f.vars['DEPTH'], 'cli');
  assert.equal(f.vars['HOME_X'], 'h');
  assert.equal(f.interactive, true);
  assert.equal(typeof f.prompt, 'function');
  assert.equal(f.gitCommit, 'abc');
  assert.equal(f.planDigest, graphDigest(g));
  assert.deepEqual(f.selection, [{ id: 'a[ENV=p]', task: 'a', params: { ENV: 'p', TOKEN_X: 'tok-secret-1' }, secretParams: ['TOKEN_X'] }]);
  assert.deepEqual([...f.secretNames!].sort(), ['DB_PASSWORD', 'TOKEN_X']);
  assert.deepEqual(f.secrets, ['tok-secret-1']);
  // in CI mode nothing is interactive and no prompt is offered
  const ciFacts = makeFactsProvider({ graph: g, env: {}, ci: true, interactive: true, keyrings: {}, prompt: async () => 'x' })(g.nodes.get('a[ENV=p]')!);
  assert.equal(ciFacts.interactive, false);
  assert.equal(ciFacts.prompt, undefined);
});

timedTest('dependencyPath: shortest path from any target; a target itself is [id]', () => {
  const g = graph({ d: {}, c: { deps: ['d'] }, b: { deps: ['c'] }, a: { deps: ['b', 'd'] } }, ['a']);
  assert.deepEqual(dependencyPath(g, 'd'), ['a', 'd']);
  assert.deepEqual(dependencyPath(g, 'c'), ['a', 'b', 'c']);
  assert.deepEqual(dependencyPath(g, 'a'), ['a']);
});

test.run();
