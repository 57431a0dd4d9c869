// The floor of fabric's spawn path, against GNU Make: 1000 `/bin/true` at -j2 through fabric's fork
// server from a Node process that does nothing else (no graph, no cache, no events, no evidence),
// alternating with `make -r -j2` over the same 1000 commands. What W1 could reach if everything fabric
// does per task cost nothing (bench/RESULTS.md, seventh pass).
// Usage: node bench/spawn-floor.mjs [--reps N]   (needs build/, compiled by `npm test`)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const N = 1000;
const J = 2;
const repsAt = process.argv.indexOf('--reps');
const reps = repsAt > 0 ? Number(process.argv[repsAt + 1]) : 7;
if (!Number.isInteger(reps) || reps < 1) {
  console.error('spawn-floor: --reps needs a whole number ≥ 1');
  process.exit(2);
}
const server = join(REPO, 'build', 'lib', 'engine', 'sched-forkserver.js');
if (!existsSync(server)) {
  console.error(`spawn-floor: ${server} is missing; run \`npm test\` (it compiles build/) first`);
  process.exit(2);
}

if (process.argv[2] === '--child') {
  const { ForkServer } = await import(server);
  const keep = setInterval(() => {}, 1000);
  const t0 = performance.now();
  const s = ForkServer.start();
  await s.whenReady();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  let next = 0;
  let done = 0;
  await new Promise((resolve) => {
    const launch = () => {
      if (next >= N) return;
      next++;
      let exited = false;
      let closed = false;
      const end = () => {
        if (!exited || !closed) return;
        if (++done === N) resolve();
        else launch();
      };
      s.launch({ file: '/bin/true', argv0: '/bin/true', args: [], cwd: process.cwd(), env }, {
        started() {},
        failed() {
          exited = closed = true;
          end();
        },
        data() {},
        exit() {
          exited = true;
          end();
        },
        closed() {
          closed = true;
          end();
        },
        lost(reason) {
          console.error(`fork server lost: ${reason}`);
          process.exit(1);
        },
      });
    };
    for (let i = 0; i < J; i++) launch();
  });
  console.log(`${(performance.now() - t0).toFixed(1)}`);
  s.close();
  clearInterval(keep);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-spawn-floor-'));
  const names = Array.from({ length: N }, (_, i) => `t${i}`);
  writeFileSync(join(dir, 'Makefile'), `.PHONY: all ${names.join(' ')}\nall: ${names.join(' ')}\n${names.map((n) => `${n}:\n\t@/bin/true\n`).join('')}`);
  const wall = (cmd, args) => {
    const t = performance.now();
    const r = spawnSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}`);
    return { ms: performance.now() - t, out: r.stdout };
  };
  const rows = { floor: [], inner: [], make: [] };
  wall('make', ['-r', '-j2', 'all']);
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? ['floor', 'make'] : ['make', 'floor'];
    for (const which of order) {
      if (which === 'make') rows.make.push(wall('make', ['-r', `-j${J}`, 'all']).ms);
      else {
        const r = wall(process.execPath, [fileURLToPath(import.meta.url), '--child']);
        rows.floor.push(r.ms);
        rows.inner.push(Number(r.out.trim()));
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const med = (a) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1];
  const ratios = rows.floor.map((f, i) => f / rows.make[i]);
  console.log(`${N} /bin/true at -j${J}, ${reps} alternating repetitions, medians:`);
  console.log(`  make -r -j${J}:                         ${med(rows.make).toFixed(0)} ms`);
  console.log(`  fork server alone (whole process):      ${med(rows.floor).toFixed(0)} ms, ${med(ratios).toFixed(2)}x make`);
  console.log(`  fork server alone (after Node's start): ${med(rows.inner).toFixed(0)} ms`);
}
