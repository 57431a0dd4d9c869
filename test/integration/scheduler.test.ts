// The scheduler through the real CLI (`fabric run --output=json`): gates, function steps, redaction of
// a secret param split across chunks, okCodes/ignoreFailure, and SIGTERM during a function step.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture, rigTest, test, type Rig } from '../helpers/rig.js';

const FF = (body: string) =>
  `import { task } from 'fabric';\nconst NODE = ${JSON.stringify(process.execPath)};\nconst fx = (n: string) => ${JSON.stringify(fixture('') + '/')} + n;\n${body}\n`;
const FLAGS = ['--output=json', '--no-evidence', '--no-cache'];

async function lines(rig: Rig, rel: string, n: number, ms = 20_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const got = readFileSync(rig.path(rel), 'utf8').split('\n').filter(Boolean);
      if (got.length >= n) return got;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${rel} did not get ${n} lines`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

rigTest('a gate that warns: ALLOW_WARN=1 lets read-only dependents run, mutating ones fail with gate-closed', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('quorum', { effect: 'read-only', gate: { description: 'quorum is healthy', warnCode: 2, allowWarnVar: 'ALLOW_WARN' }, run: [[NODE, fx('exit.mjs'), '2', 'degraded']] });
task('report', { effect: 'read-only', deps: ['quorum'], run: [[NODE, fx('count.mjs'), 'ran.log', 'report']] });
task('migrate', { effect: 'mutating', deps: ['quorum'], run: [[NODE, fx('count.mjs'), 'ran.log', 'migrate']] });
task('all', { effect: 'read-only', deps: ['report', 'migrate'] });`),
  });
  const closed = await rig.fabric(['run', 'all', '--keep-going', ...FLAGS]);
  assert.equal(closed.code, 1, closed.stderr);
  const gate = closed.events.find((e) => e.type === 'gate');
  assert.ok(gate?.type === 'gate' && gate.state === 'warn' && !gate.open, JSON.stringify(gate));
  assert.deepEqual(closed.brief(['task-failure']).sort(), ['task-failure all dependency-failed', 'task-failure migrate gate-closed', 'task-failure report gate-closed']);
  assert.equal(rig.exists('ran.log'), false);

  const open = await rig.fabric(['run', 'all', '--keep-going', 'ALLOW_WARN=1', ...FLAGS]);
  assert.equal(open.code, 1, open.stderr);
  const g2 = open.events.find((e) => e.type === 'gate');
  assert.ok(g2?.type === 'gate' && g2.state === 'warn' && g2.open);
  assert.ok(open.brief().includes('task-success report ran'));
  assert.ok(open.brief().includes('task-failure migrate gate-closed'));
  assert.equal(await rig.read('ran.log'), 'report\n');
});

rigTest('a function step: ctx.exec and ctx.$ run in the task cwd with its env; ctx.log reaches the event stream', async (rig) => {
  await rig.write({
    'sub/.keep': '',
    'fabricfile.ts': FF(`
task('fn', {
  effect: 'read-only',
  cwd: 'sub',
  params: { WHO: { default: 'world' } },
  run: async function greet(ctx) {
    const code = await ctx.exec([NODE, fx('exit.mjs'), '0', 'from exec']);
    const out = await ctx.$\`echo "hello $WHO"; pwd\`;
    ctx.log('zx said: ' + out.stdout.trim().split('\\n').join(' | '));
    return code;
  },
});`),
  });
  const r = await rig.fabric(['run', 'fn', 'WHO=fabric', ...FLAGS]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.events.flatMap((e) => (e.type === 'task-output' && e.stream === 'stdout' ? [e.chunk] : [])).join('');
  assert.equal(out, `from exec\nhello fabric\n${rig.path('sub')}\nzx said: hello fabric | ${rig.path('sub')}\n`);
  const commands = r.events.flatMap((e) => (e.type === 'command-start' ? [e.command] : []));
  assert.equal(commands[0], '<function greet>');
  assert.equal(commands.length, 3);
});

rigTest('a secret param split across two output chunks never appears in the event stream', async (rig) => {
  const secret = 'pw-0123456789-abcdef';
  await rig.write({
    'fabricfile.ts': FF(`
task('leak', { effect: 'read-only', params: { TOKEN: { secret: true, required: true } },
  run: [[NODE, fx('chunks.mjs'), '200', 'token=' + 'pw-0123456', '789-abcdef' + ' done\\n']] });`),
  });
  const r = await rig.fabric(['run', 'leak', `TOKEN=${secret}`, ...FLAGS]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(secret), 'the secret is in the output');
  const chunks = r.events.flatMap((e) => (e.type === 'task-output' ? [e.chunk] : []));
  for (const c of chunks) assert.ok(!c.includes('789-abcdef') && !c.includes('pw-0123456'), `a chunk leaked part of the secret: ${c}`);
  const out = chunks.join('');
  assert.equal(out, 'token=[REDACTED] done\n');
});

rigTest('okCodes and ignoreFailure steps through the DSL', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('tolerant', { effect: 'read-only', run: [
  { cmd: [NODE, fx('exit.mjs'), '2'], okCodes: [2] },
  { cmd: 'exit 9', ignoreFailure: true },
  [NODE, fx('count.mjs'), 'ran.log', 'last'],
] });
task('strict', { effect: 'read-only', run: [{ cmd: [NODE, fx('exit.mjs'), '3'], okCodes: [2] }, [NODE, fx('count.mjs'), 'ran.log', 'never']] });`),
  });
  const ok = await rig.fabric(['run', 'tolerant', ...FLAGS]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(await rig.read('ran.log'), 'last\n');
  const bad = await rig.fabric(['run', 'strict', ...FLAGS]);
  assert.equal(bad.code, 1);
  const f = bad.events.find((e) => e.type === 'task-failure');
  assert.ok(f?.type === 'task-failure' && f.failure.reason === 'exit-non-zero' && f.failure.status === 3);
  assert.equal(await rig.read('ran.log'), 'last\n');
});

rigTest('SIGTERM during a function step: exit 130, every process it started is gone (kill -0 fails)', async (rig) => {
  await rig.write({
    'fabricfile.ts': FF(`
task('fn', { effect: 'read-only', run: async (ctx) => {
  void ctx.exec([NODE, fx('hang.mjs'), 'pids.log']).catch(() => {});
  await ctx.$\`\${NODE} \${fx('hang.mjs')} pids.log ignore-term & \${NODE} \${fx('hang.mjs')} pids.log; wait\`;
} });
task('plain', { effect: 'read-only', run: [[NODE, fx('hang.mjs'), 'pids.log', 'ignore-term']] });
task('both', { effect: 'read-only', deps: ['fn', 'plain'] });`),
    '.fabricrc.json': JSON.stringify({ graceMs: 500 }),
  });
  let child: import('node:child_process').ChildProcess | undefined;
  const done = rig.fabric(['run', 'both', '-j2', ...FLAGS], { onSpawn: (c) => (child = c) });
  const pids = (await lines(rig, 'pids.log', 4)).map(Number);
  child!.kill('SIGTERM');
  const r = await done;
  assert.equal(r.code, 130, r.stderr);
  const interrupted = r.events.find((e) => e.type === 'run-interrupted');
  assert.ok(interrupted?.type === 'run-interrupted' && interrupted.signal === 'SIGTERM');
  assert.deepEqual(r.brief(['task-failure']).sort(), ['task-failure both aborted', 'task-failure fn aborted', 'task-failure plain aborted']);
  const leaders = r.events.flatMap((e) => (e.type === 'command-start' && e.pid !== undefined ? [e.pid] : []));
  for (const pid of [...pids, ...leaders]) assert.throws(() => process.kill(pid, 0), /ESRCH/, `pid ${pid} survived`);
}, { ms: 90_000 });

test.run();
