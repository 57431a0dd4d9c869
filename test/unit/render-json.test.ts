import * as assert from 'node:assert/strict';
import { timedTest, test } from '../helpers/rig.js';
import { JsonRenderer, eventLine } from '../../lib/render/json.js';
import type { FabricEvent } from '../../lib/engine/events.js';
import { CaptureOut, Events, feed, planned } from './render-events.js';

function everyEventType(): FabricEvent[] {
  const ev = new Events()
    .start([planned('a', { params: { ENV: 'dev' }, variant: 'dry', gate: 'quorum', mutex: ['tf'], skippedDeps: [{ task: 'x', condition: 'ENV == prod' }] }), 'b'])
    .guard('a', { guard: 'env-equals(ENV=dev)', outcome: 'allow', reason: 'ENV is dev' })
    .push({ type: 'run-denied', denials: [{ node: 'b', decision: { guard: 'g', kind: 'k', outcome: 'deny', reason: 'no', remedy: 'say yes', facts: { n: 1 } }, path: ['b'] }] })
    .begin('a')
    .cmd('a', 'printf "x\\ny"', 1)
    .out('a', 'multi\nline "quoted" \u2713 \u0000 \r\n', 'stderr')
    .out('a', 'again', 'stdout', true)
    .push({ type: 'task-retry', node: 'a', attempt: 1, delayMs: 250, failure: { reason: 'exit-non-zero', status: 1, command: 'x' } })
    .push({ type: 'cache', node: 'a', result: 'hit', fingerprint: 'sha256:00', detail: 'from local store' })
    .ok('a')
    .fail('b', { reason: 'invalid-definition', diagnostics: [{ severity: 'error', code: 'c', message: 'm', location: { file: 'f.ts', offset: 1, length: 2 } }] })
    .push({ type: 'gate', node: 'a', state: 'warn', open: true, detail: 'quorum 2/3' })
    .push({ type: 'warning', node: 'a', message: 'no inputs' }, { type: 'warning', message: 'global' })
    .push({ type: 'run-interrupted', signal: 'SIGINT' })
    .end(false, true);
  return ev.list;
}

timedTest('every event is one line of JSON that parses back to the same event', () => {
  const out = new CaptureOut();
  const events = everyEventType();
  const types = new Set(events.map((e) => e.type));
  assert.equal(types.size, 15, 'the fixture covers every event type');
  feed(new JsonRenderer(out), events);
  assert.ok(out.text.endsWith('\n'));
  const lines = out.text.slice(0, -1).split('\n');
  assert.equal(lines.length, events.length);
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), events);
});

timedTest('a value that JSON cannot encode does not break the stream', () => {
  const facts: Record<string, unknown> = { big: 10n, err: new Error('boom'), fn: () => 1 };
  facts['self'] = facts;
  const shared = { x: 1 };
  const e: FabricEvent = { type: 'guard-decision', node: 'a', decision: { guard: 'g', kind: 'k', outcome: 'allow', reason: 'r', facts: { ...facts, one: shared, two: shared } } };
  const line = eventLine(e);
  assert.ok(!line.includes('\n'));
  const back = JSON.parse(line) as { decision: { facts: Record<string, unknown> } };
  assert.equal(back.decision.facts['big'], '10');
  assert.deepEqual(back.decision.facts['err'], { name: 'Error', message: 'boom' });
  assert.equal('fn' in back.decision.facts, false);
  assert.deepEqual(back.decision.facts['self'], { big: '10', err: { name: 'Error', message: 'boom' }, self: '[Circular]' });
  // The same object twice (not a cycle) is written twice.
  assert.deepEqual(back.decision.facts['one'], { x: 1 });
  assert.deepEqual(back.decision.facts['two'], { x: 1 });
});

timedTest('close runs the close hook once per close call', async () => {
  let closed = 0;
  const r = new JsonRenderer(new CaptureOut(), () => {
    closed++;
  });
  await r.close();
  assert.equal(closed, 1);
});

test.run();
