// The diagnostics printer: reading order (file, then position), unlocated ones last, stable otherwise.
import * as assert from 'node:assert/strict';
import type { Diagnostic } from '../../lib/diagnostics/types.js';
import { formatDiagnostics, sortDiagnostics } from '../../lib/diagnostics/print.js';
import { rigTest, test } from '../helpers/rig.js';

const d = (message: string, file?: string, offset = 0): Diagnostic => ({
  severity: 'error',
  code: 'test',
  message,
  ...(file ? { location: { file, offset, length: 1 } } : {}),
});

rigTest('diagnostics print in reading order; files keep the order they were first reported in', async (rig) => {
  const a = rig.path('a.ts');
  const b = rig.path('b.ts');
  const diags = [d('no location 1'), d('b late', b, 40), d('a late', a, 30), d('b early', b, 2), d('a early', a, 5), d('no location 2'), d('a early twin', a, 5)];
  assert.deepEqual(
    sortDiagnostics(diags).map((x) => x.message),
    ['b early', 'b late', 'a early', 'a early twin', 'a late', 'no location 1', 'no location 2'],
  );
  // The printer uses that order (files that do not exist print without a code frame).
  const text = formatDiagnostics(diags);
  const order = ['b early', 'b late', 'a early', 'a late', 'no location 1'].map((m) => text.indexOf(m));
  assert.deepEqual([...order].sort((x, y) => x - y), order, text);
  assert.match(text, /7 errors\n$/);
});

test.run();
