// The interrupt budget `fabric run` gives V8 (lib/cli/tiering.ts): set unless the user chose one.
import * as assert from 'node:assert/strict';
import { INTERRUPT_BUDGET, tieringFlag } from '../../lib/cli/tiering.js';
import { timedTest, test } from '../helpers/rig.js';

const ours = `--interrupt-budget=${INTERRUPT_BUDGET}`;
const V8 = '11.3.244.8-node.33';

timedTest('tiering: the budget is raised by default', () => {
  assert.equal(tieringFlag([], undefined, V8), ours);
  assert.equal(tieringFlag(['--enable-source-maps'], '--max-old-space-size=4096  --trace-warnings', V8), ours);
  assert.ok(INTERRUPT_BUDGET > 67584, 'larger than V8 11.3 default');
});

timedTest("tiering: the user's own budget wins, from execArgv or NODE_OPTIONS, in either spelling", () => {
  assert.equal(tieringFlag(['--interrupt-budget=1000'], undefined, V8), undefined);
  assert.equal(tieringFlag([], '--trace-warnings --interrupt_budget=1000', V8), undefined);
  assert.equal(tieringFlag([], ' --interrupt-budget', V8), undefined);
});

timedTest('tiering: a different flag with the same prefix is not a budget', () => {
  assert.equal(tieringFlag(['--interrupt-budget-for-feedback-allocation=940'], '--interrupt-budget-factor-for-feedback-allocation=8', V8), ours);
});

timedTest('tiering: only on V8 11 (Node 20 and 21), where it was measured', () => {
  assert.equal(tieringFlag([], undefined, '11.8.172.17-node.19'), ours);
  assert.equal(tieringFlag([], undefined, '12.4.254.21-node.33'), undefined);
  assert.equal(tieringFlag([], undefined, '13.6.233.10-node.1'), undefined);
  assert.equal(tieringFlag([], undefined, '1.0'), undefined);
});

timedTest('tiering: this Node (the one CI runs) gets the flag, and setting it prints nothing', async () => {
  const { spawnSync } = await import('node:child_process');
  const mod = new URL('../../lib/cli/tiering.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { tuneTiering } from ${JSON.stringify(mod)}; tuneTiering([], undefined); console.log('ok')`], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.deepEqual([r.status, r.stdout, r.stderr], [0, 'ok\n', '']);
  assert.equal(tieringFlag([], undefined, process.versions.v8) !== undefined, process.versions.v8.startsWith('11.'));
});

test.run();
