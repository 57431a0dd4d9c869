import * as assert from 'node:assert/strict';
import { timedTest, test } from '../helpers/rig.js';
import { PlainRenderer, ghaData, ghaProperty } from '../../lib/render/plain.js';
import { CaptureOut, Events, feed, planned, plainText } from './render-events.js';

function render(events: Events, opts: ConstructorParameters<typeof PlainRenderer>[1] = {}): CaptureOut {
  const out = new CaptureOut();
  const r = new PlainRenderer(out, opts);
  feed(r, events.list);
  r.close();
  return out;
}

/** Index of the first line equal to (or, with a RegExp, matching) `l`; fails if absent. */
function at(lines: readonly string[], l: string | RegExp): number {
  const i = lines.findIndex((x) => (typeof l === 'string' ? x === l : l.test(x)));
  assert.ok(i !== -1, `missing line ${String(l)} in:\n${lines.join('\n')}`);
  return i;
}

const interleaved = () =>
  new Events()
    .start(['a', 'b', 'c', 'd'])
    .begin('a')
    .cmd('a', 'make a')
    .out('a', 'hel')
    .begin('b')
    .out('b', 'b one\nb tw')
    .out('a', 'lo\r\nprogress 10%\rprogress 100%\nno newline at end')
    .out('b', 'err line\n', 'stderr')
    .ok('a')
    .push({ type: 'cache', node: 'c', result: 'hit' })
    .out('c', 'from the cache\n', 'stdout', true)
    .ok('c', 'cached', 2)
    .out('b', 'o\nb three')
    .fail('b', { reason: 'exit-non-zero', status: 2, command: 'make b' })
    .fail('d', { reason: 'dependency-failed', dependency: 'b' })
    .end(false);

timedTest('stream mode prefixes every output line with its node and joins partial lines', () => {
  const lines = render(interleaved()).lines;
  // Partial chunks are joined per node; CRLF and progress carriage returns are cleaned.
  assert.deepEqual(
    lines.filter((l) => l.startsWith('[a] ')),
    ['[a] $ make a', '[a] hello', '[a] progress 100%', '[a] no newline at end'],
  );
  // A partial line is flushed when its task ends, before the status line.
  assert.ok(at(lines, '[a] no newline at end') < at(lines, '✓ a (ran, 120 ms)'));
  // stdout and stderr are buffered separately: the stderr line does not complete the stdout partial.
  assert.deepEqual(lines.filter((l) => l.startsWith('[b] ')), ['[b] b one', '[b] err line', '[b] b two', '[b] b three']);
  // Interleaving follows arrival: b's first line comes before a's completed line.
  assert.ok(at(lines, '[b] b one') < at(lines, '[a] hello'));
  assert.ok(at(lines, '▶ a') < at(lines, '▶ b'));
});

timedTest('status lines: ran, cached (with replayed output marked), failed, not started', () => {
  const lines = render(interleaved()).lines;
  at(lines, '✓ a (ran, 120 ms)');
  at(lines, '[c] ↺ from the cache');
  at(lines, '↺ c (cached)');
  assert.ok(at(lines, '[c] ↺ from the cache') < at(lines, '↺ c (cached)'));
  const fail = at(lines, '✗ b: exit 2 (50 ms)');
  assert.equal(lines[fail + 1], '    command: make b');
  at(lines, '⊘ d: dependency b failed');
  // Without colour there is no escape sequence anywhere.
  assert.ok(!render(interleaved()).text.includes('\x1b'));
});

timedTest('retries, gates, warnings, corrupt cache, overrides and interruption are reported', () => {
  const ev = new Events()
    .start(['q', 'a'])
    .guard('a', {
      guard: 'ha-quorum',
      outcome: 'overridden',
      reason: 'overridden',
      override: { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON', reason: 'window 7', operator: 'op@h', at: 'T', overrode: 'ha-quorum', overrodeReason: '1 of 3 up' },
    })
    .guard('a', { guard: 'quiet', outcome: 'allow', reason: 'fine' })
    .begin('q')
    .push({ type: 'gate', node: 'q', state: 'warn', open: true, detail: 'quorum degraded (2/3)' })
    .ok('q')
    .push({ type: 'cache', node: 'a', result: 'corrupt', detail: 'bad manifest' })
    .begin('a')
    .out('a', 'try 1 partial')
    .push({ type: 'task-retry', node: 'a', attempt: 1, delayMs: 250, failure: { reason: 'timeout', ms: 5000 } })
    .begin('a', 2)
    .push({ type: 'warning', node: 'a', message: 'no inputs declared' }, { type: 'warning', message: 'cache dir is not writable' })
    .push({ type: 'run-interrupted', signal: 'SIGINT' })
    .fail('a', { reason: 'aborted' })
    .end(false, true);
  const lines = render(ev).lines;
  const o = at(lines, '⚠ a: guard overridden');
  assert.match(lines[o + 1]!, /! overridden +ha-quorum: overridden/);
  assert.match(lines[o + 2]!, /override: HA_OVERRIDE by op@h at T, HA_OVERRIDE_REASON="window 7"/);
  assert.ok(!lines.some((l) => l.includes('quiet')), 'allow decisions are not printed during a run');
  at(lines, '◆ q: gate warn, open: quorum degraded (2/3)');
  at(lines, '⚠ a: cache entry is corrupt (bad manifest); running the task');
  // The partial line of the failed attempt is printed before the retry notice.
  assert.ok(at(lines, '[a] try 1 partial') < at(lines, '↻ a: attempt 1 failed (timed out after 5.00 s); retrying in 250 ms'));
  at(lines, '▶ a (attempt 2)');
  at(lines, '⚠ a: no inputs declared');
  at(lines, '⚠ cache dir is not writable');
  at(lines, /^⚠ interrupted by SIGINT: stopping running tasks/);
  at(lines, '⊘ a: cancelled');
  at(lines, /^1 ok, 0 cached, 0 failed, 1 not run in .* \(interrupted by SIGINT\)$/);
});

timedTest('grouped mode prints each task as one block when it ends', () => {
  const lines = render(interleaved(), { grouped: true }).lines;
  const a = at(lines, '[a] $ make a');
  assert.deepEqual(lines.slice(a, a + 5), ['[a] $ make a', '[a] hello', '[a] progress 100%', '[a] no newline at end', '✓ a (ran, 120 ms)']);
  const b1 = at(lines, '[b] b one');
  assert.deepEqual(lines.slice(b1, b1 + 6), ['[b] b one', '[b] err line', '[b] b two', '[b] b three', '✗ b: exit 2 (50 ms)', '    command: make b']);
  // Blocks come in the order tasks ended, and no start lines interleave them.
  assert.ok(a < at(lines, '[c] ↺ from the cache'));
  assert.ok(at(lines, '↺ c (cached)') < b1);
  assert.ok(!lines.some((l) => l.startsWith('▶ a')));
  assert.ok(!lines.some((l) => l.startsWith('::')), 'no workflow commands outside GitHub Actions');
});

timedTest('GitHub Actions: blocks in ::group:: markers, failures as ::error, output cannot inject commands', () => {
  const ev = new Events()
    .start(['a', 'b', 'c', 'd'])
    .begin('a')
    .out('a', '::set-output name=x::y\n%done\n')
    .ok('a')
    .begin('b')
    .out('b', 'broken\n')
    .fail('b', { reason: 'function-threw', message: 'bad: 100%\nat line 2' })
    .fail('c', { reason: 'dependency-failed', dependency: 'b' })
    .fail('d', { reason: 'exit-non-zero', status: 1, command: 'x' })
    .end(false);
  const lines = render(ev, { grouped: true, gha: true }).lines;
  const g = at(lines, '::group::a');
  assert.deepEqual(lines.slice(g, g + 5), ['::group::a', '[a] ::set-output name=x::y', '[a] %done', '::endgroup::', '✓ a (ran, 120 ms)']);
  const gb = at(lines, '::group::b');
  assert.deepEqual(lines.slice(gb, gb + 3), ['::group::b', '[b] broken', '::endgroup::']);
  at(lines, '::error title=b::function threw: bad: 100%25 …%0Aat line 2');
  // A node that never started is not an error of its own; a node without output gets no empty group.
  assert.ok(!lines.some((l) => l.startsWith('::error title=c')));
  assert.ok(!lines.includes('::group::d'));
  at(lines, '::error title=d::exit 1%0Acommand: x');
  // Only fabric's own lines start with "::".
  assert.ok(lines.filter((l) => l.startsWith('::')).every((l) => /^::(group|endgroup|error|warning)\b/.test(l)));
  assert.equal(ghaData('a%b\r\nc'), 'a%25b%0D%0Ac');
  assert.equal(ghaProperty('x: a,b'), 'x%3A a%2Cb');
});

timedTest('dry run prints the exact plan, then the guard decisions, and that nothing was run', () => {
  const ev = new Events()
    .start(
      [
        planned('tf.init[ENV=dns]', { task: 'tf.init', params: { ENV: 'dns' }, commands: ['terraform init -input=false'] }),
        planned('tf.apply[ENV=dns]', {
          task: 'tf.apply',
          params: { ENV: 'dns', TOKEN: '[REDACTED]' },
          effect: 'mutating',
          deps: ['tf.init[ENV=dns]'],
          variant: 'dry-run (X_EXECUTE unset)',
          gate: 'quorum must pass',
          mutex: ['tf-state'],
          commands: ['set -e\nterraform apply -auto-approve', '<function verify>'],
          skippedDeps: [{ task: 'minio.smoke', condition: 'ENV == samakia-minio' }],
        }),
      ],
      { dryRun: true, targets: ['tf.apply[ENV=dns]'] },
    )
    .guard('tf.apply[ENV=dns]', { guard: 'env-allowlist(ENV)', outcome: 'allow', reason: 'ENV=dns is allowed' })
    .guard('tf.apply[ENV=dns]', { guard: 'confirm', outcome: 'deny', reason: 'I_UNDERSTAND is not set', remedy: 'set I_UNDERSTAND=yes' })
    .guard('tf.apply[ENV=dns]', {
      guard: 'ha-quorum',
      outcome: 'overridden',
      reason: 'overridden by HA_OVERRIDE',
      override: { variable: 'HA_OVERRIDE', reasonVariable: 'HA_OVERRIDE_REASON', reason: 'window 42', operator: 'op@h', at: 'T0', overrode: 'ha-quorum', overrodeReason: '1 of 3 up' },
    })
    .end();
  const text = render(ev).text;
  const lines = text.split('\n');
  at(lines, 'Plan: 2 nodes for tf.apply[ENV=dns] (dry run: nothing will be started)');
  const n1 = at(lines, '1. tf.init[ENV=dns]  [read-only]');
  const n2 = at(lines, '2. tf.apply[ENV=dns]  [mutating]');
  assert.ok(n1 < n2);
  const block = lines.slice(n2, at(lines, 'Guard decisions:'));
  for (const want of [
    /^ +params +ENV=dns TOKEN=\[REDACTED\]$/,
    /^ +effect +mutating$/,
    /^ +variant +dry-run \(X_EXECUTE unset\)$/,
    /^ +gate +quorum must pass$/,
    /^ +mutex +tf-state$/,
    /^ +deps +tf.init\[ENV=dns\]$/,
    /^ +skipped +minio.smoke \(condition false: ENV == samakia-minio\)$/,
    /^ +\$ set -e$/,
    /^ +terraform apply -auto-approve$/,
    /^ +\$ <function verify>$/,
  ]) {
    assert.ok(block.some((l) => want.test(l)), `plan of node 2 lacks ${String(want)}:\n${block.join('\n')}`);
  }
  assert.ok(lines.slice(n1, n2).some((l) => /^ +\$ terraform init -input=false$/.test(l)));
  const g = at(lines, 'Guard decisions:');
  assert.deepEqual(lines.slice(g + 1, g + 9), [
    '  tf.apply[ENV=dns]',
    '    ✓ allow      env-allowlist(ENV): ENV=dns is allowed',
    '    ✗ deny       confirm: I_UNDERSTAND is not set',
    '                 remedy: set I_UNDERSTAND=yes',
    '    ! overridden ha-quorum: overridden by HA_OVERRIDE',
    '                 override: HA_OVERRIDE by op@h at T0, HA_OVERRIDE_REASON="window 42"',
    '                 overrode: ha-quorum: 1 of 3 up',
    '  no guards: tf.init[ENV=dns]',
  ]);
  assert.equal(lines.filter(Boolean).at(-1), 'Dry run: nothing was run.');
  assert.ok(!text.includes('Summary:'));
});

timedTest('a denied run lists every denial with guard, reason, remedy and the path that pulls the node in', () => {
  const ev = new Events()
    .start(['all', 'dns.up', 'tf.apply[ENV=prod]', 'lint'])
    .guard('tf.apply[ENV=prod]', { guard: 'env-equals(ENV=dev)', outcome: 'deny', reason: 'ENV is prod', remedy: 'run with ENV=dev' })
    .push({
      type: 'run-denied',
      denials: [
        { node: 'tf.apply[ENV=prod]', decision: { guard: 'env-equals(ENV=dev)', kind: 'env', outcome: 'deny', reason: 'ENV is prod', remedy: 'run with ENV=dev', facts: {} }, path: ['all', 'dns.up', 'tf.apply[ENV=prod]'] },
        { node: 'dns.up', decision: { guard: 'ci-effect', kind: 'ci', outcome: 'deny', reason: 'mutating task in CI mode', facts: {} }, path: ['all', 'dns.up'] },
      ],
    })
    .end(false);
  const lines = render(ev, { gha: true }).lines;
  const h = at(lines, '✗ Denied: 2 guard decisions refused the run; nothing was started.');
  assert.deepEqual(lines.slice(h + 1, h + 13), [
    '',
    '  tf.apply[ENV=prod]',
    '    guard:  env-equals(ENV=dev)',
    '    reason: ENV is prod',
    '    remedy: run with ENV=dev',
    '    path:   all -> dns.up -> tf.apply[ENV=prod]',
    '',
    '  dns.up',
    '    guard:  ci-effect',
    '    reason: mutating task in CI mode',
    '    path:   all -> dns.up',
    '::error title=denied%3A tf.apply[ENV=prod]::env-equals(ENV=dev): ENV is prod%0Aremedy: run with ENV=dev',
  ]);
  at(lines, /^ +⊘ tf.apply\[ENV=prod\] +denied +- +denied by env-equals\(ENV=dev\): ENV is prod$/);
  assert.ok(!lines.some((l) => /^ +⊘ lint /.test(l)), 'a denied run lists only the denied nodes');
  at(lines, /^0 ok, 0 cached, 0 failed, 4 not run in .* \(denied by guards\)$/);
});

timedTest('colour only when asked (the picker asks on a TTY without NO_COLOR)', () => {
  const coloured = render(interleaved(), { color: true }).text;
  assert.ok(coloured.includes('\x1b[32m✓'), 'green tick');
  assert.ok(coloured.includes('\x1b[31m✗ b: exit 2'), 'red failure');
  assert.equal(plainText(coloured), render(interleaved()).text);
});

timedTest('close without run-end still prints held output and the summary', () => {
  const ev = new Events().start(['a']).begin('a').out('a', 'half a line');
  const out = render(ev);
  const lines = out.lines;
  at(lines, '[a] half a line');
  at(lines, 'Summary:');
  at(lines, /^0 ok, 0 cached, 0 failed, 1 not run$/);
});

test.run();
