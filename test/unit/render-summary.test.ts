import * as assert from 'node:assert/strict';
import { timedTest, test } from '../helpers/rig.js';
import { RunSummary, TAIL_LINES } from '../../lib/render/summary.js';
import { formatMs } from '../../lib/render/style.js';
import { CaptureOut, Events, feed } from './render-events.js';
import { PlainRenderer } from '../../lib/render/plain.js';

function summarize(ev: Events): { s: RunSummary; lines: string[] } {
  const s = new RunSummary();
  for (const e of ev.list) s.observe(e);
  return { s, lines: s.format() };
}

const manyLines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`).join('\n') + '\n';

timedTest('every node with status and duration; failed nodes last in the order they failed, with reason and tail', () => {
  const ev = new Events()
    .start(['fetch', 'build', 'lint', 'test', 'deploy', 'docs', 'notify'])
    .task('fetch', 'ok\n', 'ran')
    .task('lint', 'lint says no\n', { reason: 'exit-non-zero', status: 3, command: 'eslint .' })
    .task('build', manyLines('build line', 30), 'cached')
    .task('test', manyLines('test', 25) + 'no newline', { reason: 'timeout', ms: 90_000 })
    .fail('deploy', { reason: 'dependency-failed', dependency: 'test' })
    .begin('docs')
    .fail('docs', { reason: 'aborted' })
    .fail('notify', { reason: 'aborted' }, 0)
    .end(false);
  const { s, lines } = summarize(ev);
  assert.equal(lines[0], 'Summary:');
  const rows = lines.filter((l) => /^  [✓↺✗⊘] /.test(l)).map((l) => l.trim().split(/\s{2,}/));
  assert.deepEqual(
    rows.map((r) => r.slice(0, 1).concat(r.slice(1, 3))),
    [
      ['✓ fetch', 'ok', '120 ms'],
      ['↺ build', 'cached', '120 ms'],
      ['⊘ deploy', 'not started', '-'],
      ['⊘ docs', 'cancelled', '50 ms'],
      ['⊘ notify', 'cancelled', '-'],
      ['✗ lint', 'failed', '50 ms'],
      ['✗ test', 'failed', '50 ms'],
    ],
  );
  // Reasons for failed and not-run nodes.
  assert.ok(lines.some((l) => /⊘ deploy .* dependency test failed$/.test(l)));
  assert.ok(lines.some((l) => /✗ lint .* exit 3$/.test(l)));
  assert.ok(lines.some((l) => /✗ test .* timed out after 1 m 30 s$/.test(l)));
  // Tails: lint's whole output, test's last 20 lines including the unterminated one; none for others.
  const lint = lines.findIndex((l) => l.includes('✗ lint'));
  assert.deepEqual(lines.slice(lint + 1, lint + 4), ['      command: eslint .', '      last 1 line of output:', '      │ lint says no']);
  const t = lines.findIndex((l) => l.includes('✗ test'));
  assert.equal(lines[t + 1], `      last ${TAIL_LINES} lines of output:`);
  const tail = lines.slice(t + 2, t + 2 + TAIL_LINES).map((l) => l.replace(/^ +│ /, ''));
  assert.deepEqual(tail, [...Array.from({ length: 19 }, (_, i) => `test ${i + 7}`), 'no newline']);
  assert.ok(!lines.some((l) => l.includes('build line')), 'only failed nodes show output');
  assert.deepEqual(s.counts(), { ok: 1, cached: 1, failed: 2, notRun: 3 });
  assert.equal(lines.at(-1), `1 ok, 1 cached, 2 failed, 3 not run in ${formatMs(2 * 120 + 4 * 50 + 0 + 7)}`);
});

timedTest('the tail is of the last attempt; fresh counts as cached; a clean run ends with the counts line', () => {
  const ev = new Events()
    .start(['a', 'b'])
    .begin('a')
    .out('a', 'first attempt output\n')
    .push({ type: 'task-retry', node: 'a', attempt: 1, delayMs: 10, failure: { reason: 'exit-non-zero', status: 1, command: 'x' } })
    .begin('a', 2)
    .out('a', 'second attempt output\n')
    .fail('a', { reason: 'exit-non-zero', status: 1, command: 'x' })
    .ok('b', 'fresh', 1)
    .end(false);
  const { s, lines } = summarize(ev);
  assert.ok(lines.some((l) => l.endsWith('│ second attempt output')));
  assert.ok(!lines.some((l) => l.includes('first attempt output')));
  assert.ok(lines.some((l) => /↺ b +cached .* up to date$/.test(l)));
  assert.deepEqual(s.counts(), { ok: 0, cached: 1, failed: 1, notRun: 0 });

  const clean = summarize(new Events().start(['x', 'y']).task('x', '').task('y', '').end());
  assert.equal(clean.lines.at(-1), '2 ok, 0 cached, 0 failed, 0 not run in 247 ms');
});

timedTest('plain prints the summary after the run, with long durations readable', () => {
  const out = new CaptureOut();
  feed(new PlainRenderer(out), new Events().start(['slow']).begin('slow').ok('slow', 'ran', 61_500).end().list);
  const lines = out.lines;
  const i = lines.indexOf('Summary:');
  assert.ok(i > 0);
  assert.match(lines[i + 1]!, /^  ✓ slow +ok +1 m 02 s$/);
  assert.equal(formatMs(999), '999 ms');
  assert.equal(formatMs(1234), '1.23 s');
  assert.equal(formatMs(12_345), '12.3 s');
  assert.equal(formatMs(3_725_000), '1 h 02 m');
});

test.run();
