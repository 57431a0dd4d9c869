import * as assert from 'node:assert/strict';
import { ciEffectDecision } from '../../lib/guards/ci.js';
import type { GuardFacts } from '../../lib/guards/types.js';
import { timedTest, test } from '../helpers/rig.js';

const facts = (vars: Record<string, string> = {}): GuardFacts => ({
  node: 'n',
  task: 'consumers.bundle',
  effect: 'mutating',
  params: {},
  vars,
  env: { CI: 'true' },
  ci: true,
  interactive: false,
  now: new Date(0),
  operator: 'op@host',
  repoRoot: '/repo',
  selection: [],
  keyrings: {},
});

timedTest('a workspace-scoped CI allowance lets a task that writes only git-ignored files run in CI', () => {
  const d = ciEffectDecision({ id: 'consumers.bundle', effect: 'mutating', ci: { scope: 'workspace', reason: 'bundles under artifacts/' } }, facts());
  assert.equal(d.outcome, 'allow');
  assert.equal(d.reason, 'mutating in CI, allowed: it writes only git-ignored files in the workspace (bundles under artifacts/)');
});

timedTest('without an allowance a mutating node is denied in CI; an env-bound allowance checks its param', () => {
  assert.equal(ciEffectDecision({ id: 'x', effect: 'mutating', ci: undefined }, facts()).reason, 'x is mutating and CI mode is on (CI=true)');
  const bound = { param: 'ENV', allow: ['samakia-dev'], reason: 'non-prod apply' };
  assert.equal(ciEffectDecision({ id: 'x', effect: 'mutating', ci: bound }, facts({ ENV: 'samakia-prod' })).outcome, 'deny');
  assert.equal(ciEffectDecision({ id: 'x', effect: 'mutating', ci: bound }, facts({ ENV: 'samakia-dev' })).outcome, 'allow');
});

test.run();
