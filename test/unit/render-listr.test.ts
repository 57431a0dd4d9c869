import * as assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { timedTest, test } from '../helpers/rig.js';
import { ListrRenderer } from '../../lib/render/listr.js';
import type { FabricEvent } from '../../lib/engine/events.js';
import { CaptureOut, Events, feed, plainText } from './render-events.js';

/** Feeds events in steps with a pause between them, as a real run would (listr2 draws asynchronously). */
async function play(r: ListrRenderer, steps: readonly FabricEvent[][], pauseMs = 60): Promise<void> {
  for (const step of steps) {
    feed(r, step);
    await sleep(pauseMs);
  }
}

/** The final frame: what is on screen after the last redraw (text after the last erase sequence). */
/** Waits (polling, up to 10 s: listr2 is imported lazily and a loaded machine draws late) until `cond` holds. */
async function drawn(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`no frame ${what} within 10 s`);
    await sleep(20);
  }
}

function lastFrame(raw: string): string {
  const i = raw.lastIndexOf('\x1b[G');
  return plainText(i === -1 ? raw : raw.slice(i));
}

timedTest('the live view runs a run to completion on a TTY: one task per node, collapsed results, then the summary', async () => {
  const out = new CaptureOut(true, 100);
  const r = new ListrRenderer(out, { color: false });
  const ev = new Events();
  const mark = () => ev.list.length;
  const steps: FabricEvent[][] = [];
  let m = mark();
  const step = (f: () => void) => {
    f();
    steps.push(ev.list.slice(m));
    m = mark();
  };
  step(() => ev.start(['a', 'b', 'c', 'd', 'e']).begin('a').cmd('a', 'make a').out('a', 'compiling\n'));
  step(() => ev.begin('b').out('b', 'b output\n'));
  step(() => ev.out('a', 'linking\n').ok('a'));
  step(() => ev.push({ type: 'cache', node: 'c', result: 'hit' }).ok('c', 'cached', 2));
  step(() => ev.out('b', 'oops\n').fail('b', { reason: 'exit-non-zero', status: 2, command: 'make b' }));
  step(() => ev.fail('d', { reason: 'dependency-failed', dependency: 'b' }).push({ type: 'warning', message: 'cache dir not writable' }).end(false));
  await play(r, steps);
  await r.close();
  const raw = out.text;
  const text = plainText(raw);
  // It is a live view: frames are redrawn with erase sequences, and the cursor is restored at the end.
  assert.ok(raw.includes('\x1b[1A'), 'redraws in place');
  assert.ok(raw.includes('\x1b[?25h'), 'cursor shown again');
  // The running node showed its output under it.
  assert.ok(/a\n  › \$ make a\n  › compiling/.test(text), text);
  // Final state of each node, collapsed (no output lines under finished nodes in the final tree).
  const final = text.slice(text.lastIndexOf('✔ a (ran, 120 ms)'));
  assert.ok(final.startsWith('✔ a (ran, 120 ms)\n✖ b: exit 2 (50 ms)\n✔ c (cached)\n↓ d: dependency b failed\n↓ e: not started\n'), final);
  // Notes, then the summary with the failure last and its tail.
  assert.ok(/⚠ cache dir not writable\n\nSummary:\n/.test(text), text);
  assert.ok(/✗ b +failed +50 ms +exit 2\n +command: make b\n +last 2 lines of output:\n +│ b output\n +│ oops\n1 ok, 1 cached, 1 failed, 2 not run in /.test(text), text);
});

timedTest('nodes stay hidden until they start', async () => {
  const out = new CaptureOut(true, 100);
  const r = new ListrRenderer(out, { color: false });
  const ev = new Events().start(['first', 'second']).begin('first');
  feed(r, ev.list);
  await drawn(() => lastFrame(out.text).includes('first'), "showing 'first'");
  await sleep(100);
  const frame = lastFrame(out.text);
  assert.ok(frame.includes('first'), frame);
  assert.ok(!out.text.includes('second'), 'a waiting node is not drawn');
  const m = ev.list.length;
  ev.ok('first').begin('second').ok('second').end();
  feed(r, ev.list.slice(m));
  await r.close();
  assert.ok(plainText(out.text).includes('✔ second (ran, 120 ms)'));
});

timedTest('a dry run and a denied run are printed as text, not as a live view', async () => {
  const dry = new CaptureOut(true, 100);
  const r1 = new ListrRenderer(dry, { color: false });
  feed(r1, new Events().start(['a'], { dryRun: true }).guard('a', { guard: 'g', outcome: 'allow', reason: 'fine' }).end().list);
  await r1.close();
  assert.ok(!dry.text.includes('\x1b'), 'no escape sequences');
  assert.ok(dry.text.includes('1. a  [read-only]'));
  assert.ok(dry.text.includes('✓ allow      g: fine'));
  assert.ok(dry.text.trimEnd().endsWith('Dry run: nothing was run.'));

  const denied = new CaptureOut(true, 100);
  const r2 = new ListrRenderer(denied, { color: false });
  feed(
    r2,
    new Events()
      .start(['t', 'x'])
      .guard('x', { guard: 'g', outcome: 'deny', reason: 'no', remedy: 'ask' })
      .push({ type: 'run-denied', denials: [{ node: 'x', decision: { guard: 'g', kind: 'k', outcome: 'deny', reason: 'no', remedy: 'ask', facts: {} }, path: ['t', 'x'] }] })
      .end(false).list,
  );
  await r2.close();
  assert.ok(!denied.text.includes('\x1b'));
  assert.ok(denied.text.includes('    path:   t -> x'));
  assert.ok(denied.text.includes('(denied by guards)'));
});

timedTest('lines fit the terminal width from Out; a width of 0 (some pseudo-terminals) still draws', async () => {
  for (const columns of [40, 0]) {
    const out = new CaptureOut(true, columns);
    const r = new ListrRenderer(out, { color: false });
    const ev = new Events().start(['build']).begin('build').out('build', 'x'.repeat(200) + '\n');
    feed(r, ev.list);
    await drawn(() => out.text.includes('xxx'), 'with the output line');
    const m = ev.list.length;
    feed(r, ev.ok('build').end().list.slice(m));
    await r.close();
    const text = plainText(out.text);
    assert.ok(text.includes('✔ build (ran, 120 ms)'), `columns=${columns}: ${text}`);
    const longest = Math.max(...text.split('\n').filter((l) => l.includes('xxx')).map((l) => l.length));
    assert.ok(longest <= (columns || 80), `columns=${columns}: a line of ${longest}`);
    assert.ok(text.includes('x…'), 'cut lines end with an ellipsis');
  }
});

timedTest('close settles even if the engine stopped without run-end', async () => {
  const out = new CaptureOut(true, 100);
  const r = new ListrRenderer(out, { color: false });
  feed(r, new Events().start(['a', 'b']).begin('a').out('a', 'partial').list);
  await sleep(50);
  await r.close();
  const text = plainText(out.text);
  assert.ok(text.includes('↓ a: cancelled'), text);
  assert.ok(text.includes('0 ok, 0 cached, 0 failed, 2 not run'));
});

test.run();
