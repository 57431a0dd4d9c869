// How renderers name a failure: an invalid definition points at file:line:col, like every diagnostic.
import * as assert from 'node:assert/strict';
import { describeFailure } from '../../lib/render/describe.js';
import { rigTest, test } from '../helpers/rig.js';

rigTest('an invalid-definition failure names file:line:col of each problem', async (rig) => {
  await rig.write({ 'fabricfile.ts': "import { task } from 'fabric';\ntask('a', { run: 'x' });\n" });
  const file = rig.path('fabricfile.ts');
  const offset = "import { task } from 'fabric';\ntask('a', { ".length;
  const d = describeFailure({
    reason: 'invalid-definition',
    diagnostics: [
      { severity: 'error', code: 'c', message: 'bad run', location: { file, offset, length: 3 }, hint: 'fix it' },
      { severity: 'error', code: 'c', message: 'gone', location: { file: rig.path('missing.ts'), offset: 4, length: 1 } },
      { severity: 'warning', code: 'w', message: 'nowhere' },
    ],
  });
  assert.equal(d.status, 'failed');
  assert.equal(d.text, 'invalid definition (3 problems)');
  assert.deepEqual(d.detail, [`error at ${file}:2:13: bad run (fix it)`, `error at ${rig.path('missing.ts')}: gone`, 'warning: nowhere']);
});

test.run();
