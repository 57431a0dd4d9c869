// pickRenderer: which renderer for which output/terminal/environment, colour, the --events file,
// that listr2 is loaded only for the live view, and the renderers through the real CLI.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT, FABRIC_BIN, rigTest, timedTest, test, type Rig } from '../helpers/rig.js';
import { pickRenderer, isCI, type PickRendererOptions } from '../../lib/cli/pick-renderer.js';
import { UsageError } from '../../lib/cli/args.js';
import { JsonRenderer } from '../../lib/render/json.js';
import { PlainRenderer } from '../../lib/render/plain.js';
import { FanoutSink } from '../../lib/render/fanout.js';
import type { EventSink, FabricEvent } from '../../lib/engine/events.js';
import { CaptureOut, Events, feed } from './render-events.js';

const sample = () =>
  new Events()
    .start(['a', 'b'])
    .task('a', 'hello\n')
    .task('b', 'bad\n', { reason: 'exit-non-zero', status: 2, command: 'false' })
    .end(false).list;

async function pick(output: PickRendererOptions['output'], tty: boolean, env: Record<string, string> = {}, extra: Partial<PickRendererOptions> = {}) {
  const out = new CaptureOut(tty, 100);
  const sink = await pickRenderer({ output, out, env, ...extra });
  return { out, sink };
}

async function run(sink: EventSink, events: readonly FabricEvent[]): Promise<void> {
  feed(sink, events);
  await sink.close?.();
}

timedTest('which renderer: json, plain, grouped, and tty falls back to plain off a terminal or in CI', async () => {
  const cases: [PickRendererOptions['output'], boolean, Record<string, string>, string][] = [
    ['json', true, {}, 'JsonRenderer'],
    ['json', false, {}, 'JsonRenderer'],
    ['plain', true, {}, 'PlainRenderer'],
    ['grouped', false, {}, 'PlainRenderer'],
    ['tty', true, {}, 'ListrRenderer'],
    [undefined, true, {}, 'ListrRenderer'],
    [undefined, true, { CI: 'false' }, 'ListrRenderer'],
    [undefined, true, { CI: '0' }, 'ListrRenderer'],
    [undefined, true, { CI: '' }, 'ListrRenderer'],
    [undefined, true, { CI: 'true' }, 'PlainRenderer'],
    ['tty', true, { CI: '1' }, 'PlainRenderer'],
    ['tty', false, {}, 'PlainRenderer'],
    [undefined, false, {}, 'PlainRenderer'],
  ];
  for (const [output, tty, env, want] of cases) {
    const { sink } = await pick(output, tty, env);
    assert.equal(sink.constructor.name, want, `${String(output)} tty=${tty} ${JSON.stringify(env)}`);
    await sink.close?.();
  }
  assert.equal(isCI({ CI: 'FALSE' }), false);
  assert.equal(isCI({ CI: 'woodpecker' }), true);
  assert.equal(isCI({}), false);
});

timedTest('grouped mode, and by default under GitHub Actions: blocks in ::group:: markers', async () => {
  const grouped = await pick('grouped', false);
  await run(grouped.sink, sample());
  assert.ok(grouped.out.text.includes('[a] hello\n✓ a (ran, 120 ms)'));
  assert.ok(!grouped.out.text.includes('::group::'));

  const gha = await pick(undefined, false, { CI: 'true', GITHUB_ACTIONS: 'true' });
  await run(gha.sink, sample());
  assert.ok(gha.out.text.includes('::group::a\n[a] $ echo a\n[a] hello\n::endgroup::\n✓ a (ran, 120 ms)'), gha.out.text);
  assert.ok(gha.out.text.includes('::error title=b::exit 2%0Acommand: false'));

  // Explicit plain streams lines (no groups possible) but still reports errors to Actions.
  const plain = await pick('plain', false, { GITHUB_ACTIONS: 'true' });
  await run(plain.sink, sample());
  assert.ok(!plain.out.text.includes('::group::'));
  assert.ok(plain.out.text.includes('::error title=b::'));
});

timedTest('colour only on a TTY and never with NO_COLOR', async () => {
  const colored = async (tty: boolean, env: Record<string, string>) => {
    const { out, sink } = await pick('plain', tty, env);
    await run(sink, sample());
    return out.text.includes('\x1b[');
  };
  assert.equal(await colored(true, {}), true);
  assert.equal(await colored(true, { NO_COLOR: '1' }), false);
  assert.equal(await colored(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
  assert.equal(await colored(false, {}), false);
  assert.equal(await colored(false, { FORCE_COLOR: '1' }), false);
});

rigTest('an events file gets the NDJSON stream beside the chosen renderer (--events or FABRIC_EVENT_LOG)', async (rig) => {
  const events = sample();
  const a = await pick('plain', false, {}, { eventsFile: 'ev.ndjson', cwd: rig.dir });
  assert.ok(a.sink instanceof FanoutSink);
  await run(a.sink, events);
  assert.ok(a.out.text.includes('✗ b: exit 2'), 'the plain renderer still prints');
  const lines = (await rig.read('ev.ndjson')).trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), events);

  const b = await pick('plain', false, { FABRIC_EVENT_LOG: rig.path('env.ndjson') });
  await run(b.sink, events);
  assert.equal((await rig.read('env.ndjson')).trimEnd().split('\n').length, events.length);

  // An explicit file wins over the environment variable.
  const c = await pick('json', false, { FABRIC_EVENT_LOG: rig.path('not-this.ndjson') }, { eventsFile: rig.path('this.ndjson') });
  await run(c.sink, events);
  assert.ok(rig.exists('this.ndjson') && !rig.exists('not-this.ndjson'));

  // A file that cannot be written is a usage error naming it, before anything runs.
  await assert.rejects(pick('plain', false, {}, { eventsFile: rig.path('no/such/dir/ev.ndjson') }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /cannot write the event log .*no\/such\/dir\/ev\.ndjson \(ENOENT\)/);
    return true;
  });
  const plainSink = await pick('plain', false, {});
  assert.ok(plainSink.sink instanceof PlainRenderer);
  const jsonSink = await pick('json', false, {});
  assert.ok(jsonSink.sink instanceof JsonRenderer);
});

/** listr2 itself, our adapter, or the adapter's esbuild chunk in dist/. */
const LISTR = /\/node_modules\/listr2\/|\/render\/listr\.js$|\/chunks\/listr-[^/]*\.js$/;

/** Writes a module-resolution logger usable with `node --import`: every resolved URL goes to LOAD_LOG. */
function writeLoadLogger(rig: Rig): string {
  writeFileSync(
    rig.path('hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.LOAD_LOG, r.url + '\\n');
  return r;
}
`,
  );
  const register = rig.path('register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(rig.path('hooks.mjs')).href)});\n`);
  return register;
}

rigTest('listr2 is loaded only when the live view is chosen (fabric list and plain output never load it)', async (rig) => {
  const register = writeLoadLogger(rig);
  const pickerUrl = pathToFileURL(fileURLToPath(new URL('../../lib/cli/pick-renderer.js', import.meta.url))).href;
  const child = rig.path('child.mjs');
  writeFileSync(
    child,
    `const { pickRenderer } = await import(${JSON.stringify(pickerUrl)});
const [output, tty] = process.argv.slice(2);
const sink = await pickRenderer({ output, out: { write() {}, isTTY: tty === 'tty' }, env: {} });
process.stdout.write(sink.constructor.name);
`,
  );
  const loaded = (mode: string, tty: string, log: string) => {
    const r = spawnSync(process.execPath, ['--import', register, child, mode, tty], { cwd: rig.dir, env: { ...process.env, LOAD_LOG: rig.path(log) }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return { name: r.stdout, urls: readFileSync(rig.path(log), 'utf8').trim().split('\n') };
  };
  const plain = loaded('plain', 'tty', 'plain.log');
  assert.equal(plain.name, 'PlainRenderer');
  assert.ok(plain.urls.some((u) => u.endsWith('/lib/render/plain.js')), 'the logger sees our modules');
  assert.deepEqual(plain.urls.filter((u) => LISTR.test(u)), []);
  // The same logger does see listr2 when the live view is picked: the check above can fail.
  const live = loaded('tty', 'tty', 'live.log');
  assert.equal(live.name, 'ListrRenderer');
  assert.ok(live.urls.some((u) => LISTR.test(u)), live.urls.join('\n'));

  // The real CLI: `fabric list` and a plain run load neither listr2 nor the listr chunk.
  await rig.write({ 'proj/fabricfile.ts': `import { task } from 'fabric';\ntask('hello', { effect: 'read-only', description: 'says hello', run: 'echo hi' });\n` });
  for (const [args, log] of [
    [['list'], 'cli-list.log'],
    [['run', 'hello', '--output=plain', '--no-evidence', '--no-cache'], 'cli-run.log'],
  ] as const) {
    const r = spawnSync(process.execPath, ['--import', register, FABRIC_BIN, ...args], {
      cwd: rig.path('proj'),
      env: { ...process.env, LOAD_LOG: rig.path(log), CI: undefined, GITHUB_ACTIONS: undefined } as NodeJS.ProcessEnv,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `fabric ${args.join(' ')}: ${r.stderr}`);
    const urls = readFileSync(rig.path(log), 'utf8').trim().split('\n');
    assert.ok(urls.some((u) => u.startsWith(pathToFileURL(join(ROOT, 'dist')).href)), 'the CLI ran from dist/');
    assert.deepEqual(urls.filter((u) => LISTR.test(u)), [], `fabric ${args.join(' ')} loaded listr`);
  }
});

rigTest('the real CLI: plain prefixes, grouped GitHub Actions blocks, summary, --events file', async (rig) => {
  await rig.write({
    'fabricfile.ts': `import { task } from 'fabric';
task('gen', { effect: 'read-only', run: 'printf "line one\\\\nline two"' });
task('check', { effect: 'read-only', deps: ['gen'], run: 'echo checking; echo "it broke" >&2; exit 3' });
task('all', { effect: 'read-only', deps: ['check'], run: 'echo never' });
`,
  });
  const plain = await rig.fabric(['run', 'all', '--output=plain', '--no-evidence', '--no-cache', '--events', 'ev.ndjson']);
  assert.equal(plain.code, 1, plain.stderr);
  const lines = plain.stdout.split('\n');
  for (const want of ['[gen] line one', '[gen] line two', '[check] checking', '[check] it broke', '⊘ all: dependency check failed']) {
    assert.ok(lines.includes(want), `missing ${want}:\n${plain.stdout}`);
  }
  assert.ok(lines.some((l) => /^✓ gen \(ran, \d+ ms\)$/.test(l)), plain.stdout);
  assert.ok(lines.some((l) => /^✗ check: exit 3 \(/.test(l)), plain.stdout);
  assert.match(plain.stdout, /✗ check +failed .* exit 3\n +command: echo checking; echo "it broke" >&2; exit 3\n +last 2 lines of output:\n +│ checking\n +│ it broke\n1 ok, 0 cached, 1 failed, 1 not run in /);
  const events = (await rig.read('ev.ndjson')).trim().split('\n').map((l) => JSON.parse(l) as FabricEvent);
  assert.equal(events[0]?.type, 'run-start');
  assert.equal(events.at(-1)?.type, 'run-end');

  const gha = await rig.fabric(['run', 'all', '--no-evidence', '--no-cache'], { env: { CI: 'true', GITHUB_ACTIONS: 'true' } });
  assert.equal(gha.code, 1, gha.stderr);
  assert.match(gha.stdout, /::group::gen\n\[gen\] \$ printf "line one\\nline two"\n\[gen\] line one\n\[gen\] line two\n::endgroup::\n✓ gen/);
  assert.match(gha.stdout, /::error title=check::exit 3%0Acommand: echo checking/);

  const dry = await rig.fabric(['run', 'all', '--dry-run', '--output=plain', '--no-evidence']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /Plan: 3 nodes for all/);
  assert.match(dry.stdout, /1\. gen {2}\[read-only\][\s\S]*2\. check {2}\[read-only\][\s\S]*3\. all {2}\[read-only\]/);
  assert.match(dry.stdout, /Dry run: nothing was run\.\n$/);
});

test.run();
