// The interrupt budget `fabric run` gives V8 (lib/cli/tiering.ts): set unless the user chose one.
import * as assert from 'node:assert/strict';
import { INTERRUPT_BUDGET, tieringFlag } from '../../lib/cli/tiering.js';
import { timedTest, test } from '../helpers/rig.js';

const ours = `--interrupt-budget=${INTERRUPT_BUDGET}`;

timedTest('tiering: the budget is raised by default', () => {
  assert.equal(tieringFlag([], undefined), ours);
  assert.equal(tieringFlag(['--enable-source-maps'], '--max-old-space-size=4096  --trace-warnings'), ours);
  assert.ok(INTERRUPT_BUDGET > 67584, 'larger than V8 11.3 default');
});

timedTest("tiering: the user's own budget wins, from execArgv or NODE_OPTIONS, in either spelling", () => {
  assert.equal(tieringFlag(['--interrupt-budget=1000'], undefined), undefined);
  assert.equal(tieringFlag([], '--trace-warnings --interrupt_budget=1000'), undefined);
  assert.equal(tieringFlag([], ' --interrupt-budget'), undefined);
});

timedTest('tiering: a different flag with the same prefix is not a budget', () => {
  assert.equal(tieringFlag(['--interrupt-budget-for-feedback-allocation=940'], '--interrupt-budget-factor-for-feedback-allocation=8'), ours);
});

test.run();
