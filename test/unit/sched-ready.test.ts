// ReadyTracker (lib/engine/sched-ready.ts) against a brute-force scan: on random graphs with random
// outcomes, the nodes it reports ready and blocked are exactly those a scan of every pending node finds.
import * as assert from 'node:assert/strict';
import { RankHeap, ReadyTracker } from '../../lib/engine/sched-ready.js';
import { seededRandom } from '../../lib/engine/sched-util.js';
import { test } from '../helpers/rig.js';

test('RankHeap pops in rank order, whatever the push order', () => {
  const random = seededRandom(3);
  for (let round = 0; round < 50; round++) {
    const n = 1 + Math.floor(random() * 60);
    const ids = Array.from({ length: n }, (_, i) => `n${i}`);
    const rank = new Map(ids.map((id) => [id, Math.floor(random() * 20)] as const));
    const heap = new RankHeap(rank);
    for (const id of [...ids].sort(() => random() - 0.5)) heap.push(id);
    const out: number[] = [];
    for (let id = heap.pop(); id !== undefined; id = heap.pop()) out.push(rank.get(id)!);
    assert.equal(out.length, n);
    assert.deepEqual(out, [...out].sort((a, b) => a - b));
  }
});

type Outcome = 'pass' | 'fail' | 'read-only-only';

test('ready and blocked nodes match a full scan, on 300 random graphs', () => {
  const random = seededRandom(11);
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(random() * 40);
    const order = Array.from({ length: n }, (_, i) => `t${i}`);
    const rank = new Map(order.map((id, i) => [id, i] as const));
    const deps = new Map<string, string[]>();
    const readOnly = new Map<string, boolean>();
    for (let i = 0; i < n; i++) {
      const ds: string[] = [];
      for (let j = 0; j < i; j++) if (random() < 0.15) ds.push(`t${j}`);
      if (random() < 0.03) ds.push('missing-from-the-graph');
      if (ds.length && random() < 0.1) ds.push(ds[0]!); // a duplicate edge counts once
      deps.set(`t${i}`, ds);
      readOnly.set(`t${i}`, random() < 0.5);
    }
    const outcome = new Map<string, Outcome>();
    const settled = new Set<string>();
    const passes = (dep: string, dependent: string): boolean => {
      const o = outcome.get(dep);
      return o === 'pass' || (o === 'read-only-only' && readOnly.get(dependent) === true);
    };
    const tracker = new ReadyTracker(order, (id) => deps.get(id)!, rank);
    const trackerReady = new Set<string>(tracker.takeAll());

    const scanReady = () => order.filter((id) => !settled.has(id) && deps.get(id)!.every((d) => settled.has(d) && passes(d, id)));
    const scanBlocked = () => order.filter((id) => !settled.has(id) && deps.get(id)!.some((d) => settled.has(d) && !passes(d, id)));

    for (;;) {
      assert.deepEqual([...trackerReady].sort(), scanReady().sort(), `round ${round}: ready`);
      const candidates = [...trackerReady];
      if (candidates.length === 0) break;
      // Run one ready node to an outcome; fail what it blocks, transitively, as the scheduler does.
      const id = candidates[Math.floor(random() * candidates.length)]!;
      trackerReady.delete(id);
      const r = random();
      outcome.set(id, r < 0.7 ? 'pass' : r < 0.85 ? 'fail' : 'read-only-only');
      settled.add(id);
      const queue = tracker.settle(id, (d) => passes(id, d));
      const failedNow: string[] = [];
      while (queue.length) {
        const b = queue.shift()!;
        if (settled.has(b)) continue;
        settled.add(b);
        outcome.set(b, 'fail');
        failedNow.push(b);
        queue.push(...tracker.settle(b, () => false));
      }
      for (const x of tracker.takeAll()) trackerReady.add(x);
      assert.deepEqual(scanBlocked(), [], `round ${round}: a blocked node was not reported`);
      for (const b of failedNow) assert.ok(!trackerReady.has(b));
    }
    // Whatever is left never became ready: it waits for a dependency missing from the graph.
    for (const id of order) if (!settled.has(id)) assert.ok(deps.get(id)!.some((d) => !rank.has(d) || !settled.has(d)), `round ${round}: ${id} stuck`);
  }
});

test('take, putBack and takeAll keep rank order', () => {
  const order = ['a', 'b', 'c', 'd'];
  const rank = new Map(order.map((id, i) => [id, i] as const));
  const t = new ReadyTracker(order, () => [], rank);
  assert.equal(t.take(), 'a');
  assert.equal(t.take(), 'b');
  t.putBack('a');
  assert.deepEqual(t.takeAll(), ['a', 'c', 'd']);
  assert.equal(t.take(), undefined);
});

test.run();
