import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskDef, TaskSpec } from '../../lib/api/types.js';
import { analyze, matchTargets, validateDefinitions } from '../../lib/engine/analyze.js';
import { shellQuote, expand, parseDuration } from '../../lib/engine/template.js';
import { timedTest, test } from '../helpers/rig.js';

const def = (name: string, spec: TaskSpec = {}): TaskDef => ({ name, spec, site: () => undefined, __fabricTask: true });
const run = (tasks: TaskDef[], targets: string[], vars: Record<string, string> = {}, env: Record<string, string> = {}) =>
  analyze({ tasks, targets, vars, env: { PATH: '/usr/bin', ...env }, repoRoot: '/repo', fabricfile: '/repo/fabricfile.ts', secretPatterns: ['TOKEN', 'SECRET'] });
const ok = (r: ReturnType<typeof run>) => {
  if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
  return r.value;
};
const errors = (r: ReturnType<typeof run>) => (r.ok ? [] : r.error.map((d) => d.message));

const CYCLES: [string, Record<string, string[]>, string, string | null][] = [
  ['no cycle', { a: ['b'], b: [] }, 'a', null],
  ['self loop', { a: ['a'] }, 'a', 'Dependency cycle: a -> a'],
  ['three', { a: ['b'], b: ['c'], c: ['a'] }, 'a', 'Dependency cycle: a -> b -> c -> a'],
  ['cycle below a root', { r: ['a'], a: ['b'], b: ['a'] }, 'r', 'Dependency cycle: a -> b -> a'],
  ['diamond is no cycle', { a: ['b', 'c'], b: ['d'], c: ['d'], d: [] }, 'a', null],
];
for (const [title, edges, target, cycle] of CYCLES) {
  timedTest(`cycle detection: ${title}`, () => {
    const r = run(Object.entries(edges).map(([n, deps]) => def(n, { deps })), [target]);
    if (cycle === null) assert.ok(r.ok);
    else assert.deepEqual(errors(r), [cycle]);
  });
}

timedTest('a diamond has one node for the shared dependency, in topological order', () => {
  const g = ok(run([def('a', { deps: ['b', 'c'] }), def('b', { deps: ['d'] }), def('c', { deps: ['d'] }), def('d')], ['a']));
  assert.deepEqual(g.order, ['d', 'b', 'c', 'a']);
  assert.deepEqual(g.nodes.get('a')!.deps, ['b', 'c']);
});

timedTest('params: dependency edge > CLI > env > default, and a node per distinct param set', () => {
  const tasks = [
    def('check', { params: { ENV: { default: 'samakia-prod' } } }),
    def('smoke', { deps: ['check'], params: { ENV: { default: 'samakia-prod' } } }),
    def('up', { deps: ['check', { task: 'smoke', params: { ENV: 'samakia-minio' } }], params: { ENV: { default: 'samakia-prod' } } }),
  ];
  const g = ok(run(tasks, ['up'], { ENV: 'samakia-dns' }));
  assert.deepEqual([...g.nodes.keys()].sort(), ['check[ENV=samakia-dns]', 'check[ENV=samakia-minio]', 'smoke[ENV=samakia-minio]', 'up[ENV=samakia-dns]']);
  const env = ok(run(tasks, ['check'], {}, { ENV: 'from-env' }));
  assert.deepEqual([...env.nodes.keys()], ['check[ENV=from-env]']);
  const dflt = ok(run(tasks, ['check']));
  assert.deepEqual([...dflt.nodes.keys()], ['check']);
  assert.equal(dflt.nodes.get('check')!.params['ENV'], 'samakia-prod');
});

timedTest('the same task reached with the same params along two paths is one node', () => {
  const tasks = [
    def('runner.env.check', { params: { ENV: { default: 'p' } } }),
    def('tf.plan', { deps: ['runner.env.check'], params: { ENV: { default: 'p' } } }),
    def('tf.apply', { deps: ['runner.env.check', 'tf.plan'], params: { ENV: { default: 'p' } } }),
    def('up', { deps: ['runner.env.check', 'tf.plan', 'tf.apply'], params: { ENV: { default: 'p' } } }),
  ];
  const g = ok(run(tasks, ['up'], { ENV: 'x' }));
  assert.equal([...g.nodes.keys()].filter((k) => k.startsWith('runner.env.check')).length, 1);
});

timedTest('invalid and missing params are all reported, with the source of the value', () => {
  const tasks = [
    def('a', { params: { ENV: { enum: ['dev', 'prod'] } } }),
    def('b', { params: { NAME: { pattern: '[a-z]+' } } }),
    def('c', { params: { REQ: { required: true } } }),
  ];
  const r = run(tasks, ['a', 'b', 'c'], { ENV: 'staging', NAME: 'Bad1' });
  assert.deepEqual(errors(r), [
    'Task "a": ENV="staging" (on the command line) is not one of "dev", "prod".',
    'Task "b": NAME="Bad1" (on the command line) does not match /[a-z]+/.',
    'Task "c" needs REQ: pass REQ=<value>.',
  ]);
});

timedTest('unknown targets suggest the nearest name; globs select several', () => {
  const tasks = [def('dns.up'), def('dns.down'), def('minio.up')];
  const r = run(tasks, ['dns.upp']);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error[0]!.hint, 'did you mean "dns.up"?');
  assert.deepEqual(matchTargets('dns.*', tasks.map((t) => t.name)), ['dns.up', 'dns.down']);
  assert.deepEqual(ok(run(tasks, ['dns.*'])).targets, ['dns.up', 'dns.down']);
});

timedTest('conditional dependencies are dropped when false and recorded for the plan', () => {
  const tasks = [
    def('bootstrap'),
    def('up', { params: { X: { default: '0' } }, deps: [{ task: 'bootstrap', when: { param: 'X', equals: '1' } }] }),
  ];
  const off = ok(run(tasks, ['up']));
  assert.deepEqual(off.nodes.get('up')!.deps, []);
  assert.deepEqual(off.nodes.get('up')!.skippedDeps, [{ task: 'bootstrap', condition: 'X == "1"' }]);
  const on = ok(run(tasks, ['up'], { X: '1' }));
  assert.deepEqual(on.nodes.get('up[X=1]')!.deps, ['bootstrap']);
});

timedTest('templates are shell-quoted in command strings, verbatim in argv, and secrets are redacted in displays', () => {
  const tasks = [
    def('t', {
      params: { NAME: { default: "it's; rm -rf /" }, API_TOKEN: { default: 'sekrit-value', secret: true } },
      run: ['echo {{NAME}}', ['printf', '%s', '{{NAME}}'], { cmd: 'curl -H {{API_TOKEN}}', env: { A: '{{NAME}}' } }],
    }),
  ];
  const n = ok(run(tasks, ['t'])).nodes.get('t')!;
  const [s0, s1, s2] = n.steps;
  assert.ok(s0?.kind === 'command' && s1?.kind === 'command' && s2?.kind === 'command');
  assert.equal(s0.cmd, `echo 'it'\\''s; rm -rf /'`);
  assert.deepEqual(s1.cmd, ['printf', '%s', "it's; rm -rf /"]);
  assert.equal(s2.cmd, 'curl -H sekrit-value');
  assert.ok(!s2.display.includes('sekrit-value') && s2.display.includes('[REDACTED]'));
  assert.ok(n.secrets.includes('sekrit-value'));
  assert.equal(n.env['A'], undefined, 'step env is per step');
  assert.equal(s2.env['A'], "it's; rm -rf /");
});

timedTest('env is scrubbed to the base set plus declared passthrough and params', () => {
  const tasks = [def('t', { env: ['MY_TOKEN', 'KEEP'], params: { P: { default: 'v' } } })];
  const n = ok(run(tasks, ['t'], {}, { MY_TOKEN: 'abcdef', KEEP: 'k', DROP: 'd', HOME: '/h' })).nodes.get('t')!;
  assert.equal(n.env['KEEP'], 'k');
  assert.equal(n.env['DROP'], undefined);
  assert.equal(n.env['HOME'], '/h');
  assert.equal(n.env['P'], 'v');
  assert.deepEqual(n.secrets, ['abcdef']);
});

timedTest('effect defaults to mutating; variants select run and effect; cacheable rule', () => {
  const tasks = [
    def('m'),
    def('r', { effect: 'read-only', inputs: ['src/**'] }),
    def('r2', { effect: 'read-only' }),
    def('v', {
      params: { X_EXECUTE: { default: '' } },
      variants: { param: 'X_EXECUTE', fallback: 'dry-run', cases: { '1': { run: 'apply', effect: 'mutating' }, 'dry-run': { run: 'plan', effect: 'read-only' } } },
    }),
  ];
  const g = ok(run(tasks, ['m', 'r', 'r2', 'v']));
  assert.equal(g.nodes.get('m')!.effect, 'mutating');
  assert.equal(g.nodes.get('r')!.cacheable, true);
  assert.equal(g.nodes.get('r2')!.cacheable, false);
  assert.equal(g.nodes.get('m')!.cacheable, false);
  assert.equal(g.nodes.get('v')!.variant, 'dry-run');
  assert.equal(g.nodes.get('v')!.effect, 'read-only');
  const ex = ok(run(tasks, ['v'], { X_EXECUTE: '1' })).nodes.get('v[X_EXECUTE=1]')!;
  assert.equal(ex.effect, 'mutating');
  assert.equal(ex.steps[0]!.display, 'apply');
});

timedTest('computed defaults are computed once per analysis memo', () => {
  let calls = 0;
  const id = () => `incident-${++calls}`;
  const tasks = [def('a', { params: { INCIDENT_ID: { default: id } } }), def('b', { deps: ['a'], params: { INCIDENT_ID: { default: id } } })];
  const g = ok(run(tasks, ['b']));
  assert.equal(calls, 1);
  assert.equal(g.nodes.get('a')!.params['INCIDENT_ID'], g.nodes.get('b')!.params['INCIDENT_ID']);
});

timedTest('the environment is read as it is when each node is analysed (a computed default may set a variable)', () => {
  const env: Record<string, string | undefined> = { PATH: '/usr/bin' };
  const tasks = [
    def('setup', { params: { ID: { default: () => ((env['STAMP'] = 'set-by-default'), 'id-1') } } }),
    def('use', { deps: ['setup'], env: ['STAMP'] }),
    def('later', { params: { STAMP: {} } }),
  ];
  const g = ok(analyze({ tasks, targets: ['use', 'later'], vars: {}, env, repoRoot: '/repo', fabricfile: '/repo/fabricfile.ts', secretPatterns: [] }));
  assert.equal(g.nodes.get('use')!.env['STAMP'], 'set-by-default');
  assert.deepEqual(g.targets, ['use', 'later[STAMP=set-by-default]']);
});

timedTest('templates: quoting and durations', () => {
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote('a b'), "'a b'");
  assert.equal(shellQuote('plain-1.2/x'), 'plain-1.2/x');
  assert.deepEqual(expand('{{A}}-{{B}}', (n) => (n === 'A' ? '1' : undefined)), { text: '1-', missing: ['B'] });
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration('soon'), undefined);
});

timedTest('secret param values never appear in node ids; nodes differing only in a secret are numbered', () => {
  const tasks = [
    def('use', { params: { TOKEN: { secret: true, required: true } } }),
    def('both', { deps: [{ task: 'use', params: { TOKEN: 'first-secret' } }, { task: 'use', params: { TOKEN: 'second-secret' } }] }),
  ];
  const g = ok(run(tasks, ['both']));
  assert.deepEqual(g.nodes.get('both')!.deps, ['use[TOKEN=<secret>]', 'use[TOKEN=<secret>]#2']);
  for (const id of g.nodes.keys()) assert.ok(!id.includes('first') && !id.includes('second'), id);
});

timedTest('a plain param that holds a secret (its own, or another node\'s) is <secret> in the id, and a secret of the node', () => {
  const ids = (g: ReturnType<typeof ok>) => [...g.nodes.keys()].sort();
  // Its own: the value of a secret env var it declares, or of a secret-named step env var it templates.
  const own = def('own', { params: { K: {} }, env: ['API_TOKEN'], run: 'echo {{K}}' });
  assert.deepEqual(ids(ok(run([own], ['own'], { K: 'tok-abcdef' }, { API_TOKEN: 'tok-abcdef' }))), ['own[K=<secret>]']);
  const step = def('step', { params: { K: {} }, run: { cmd: 'true', env: { X_SECRET: '{{K}}' } } });
  assert.deepEqual(ids(ok(run([step], ['step'], { K: 'tok-abcdef' }))), ['step[K=<secret>]']);
  // Another node's: a dependency's secret param fed from a plain one, and a secret env var only `own` declares.
  let calls = 0;
  const tasks = [
    own,
    def('sp', { params: { P: { secret: true } } }),
    def('feed', { params: { V: {}, WHEN: { default: () => String(++calls) } }, deps: [{ task: 'sp', params: { P: '{{V}}' } }], run: 'echo value {{V}} at {{WHEN}}' }),
    def('other', { params: { K: {} }, run: 'echo {{K}}' }),
  ];
  const g = ok(run(tasks, ['own', 'feed', 'other'], { K: 'tok-abcdef', V: 'hush-hush' }, { API_TOKEN: 'tok-abcdef' }));
  assert.deepEqual(ids(g), ['feed[V=<secret>]', 'other[K=<secret>]', 'own[K=<secret>]', 'sp[P=<secret>]']);
  const feed = g.nodes.get('feed[V=<secret>]')!;
  assert.ok(feed.secrets.includes('hush-hush'), 'a value secret for a dependency is a secret of the node that passes it');
  assert.deepEqual(feed.steps.map((s) => s.kind === 'command' && s.display), ['echo value [REDACTED] at 1']);
  assert.equal(feed.env['FABRIC_NODE'], 'feed[V=<secret>]');
  assert.equal(calls, 1, 'a computed default runs once, though the graph is analyzed twice');
  const other = g.nodes.get('other[K=<secret>]')!;
  // V reaches every node as a command-line variable (a template could use it): a secret of each.
  assert.deepEqual(other.secrets, ['tok-abcdef', 'hush-hush']);
  assert.deepEqual(other.steps.map((s) => s.kind === 'command' && s.display), ['echo [REDACTED]']);
  // Without a secret anywhere in the run, plain values show.
  assert.deepEqual(ids(ok(run([def('other', { params: { K: {} } })], ['other'], { K: 'tok-abcdef' }))), ['other[K=tok-abcdef]']);
});

timedTest('a secret that reaches a node only as a variable is its secret too; no diagnostic shows a secret', () => {
  // `feed` declares no param: {{V}} is the command-line variable, which `sp` takes as a secret param.
  const sp = def('sp', { params: { P: { secret: true }, Q: { default: 'a', enum: ['a', 'b'] } } });
  const feed = (q: string) => def('feed', { deps: [{ task: 'sp', params: { P: '{{V}}', Q: q } }], run: 'echo {{V}}' });
  const g = ok(run([sp, feed('a')], ['feed'], { V: 'hush-hush' }));
  const n = g.nodes.get('feed')!;
  assert.deepEqual(n.secrets, ['hush-hush']);
  assert.deepEqual(n.steps.map((s) => s.kind === 'command' && s.display), ['echo [REDACTED]']);
  // A failed analysis: the dependency edge, the value and a cycle's path name no secret.
  const bad = errors(run([sp, feed('c')], ['feed'], { V: 'hush-hush', K: 'hush-hush' }));
  assert.equal(bad.length, 1);
  assert.match(bad[0]!, /Q="c"/);
  const looped = errors(run([def('x', { params: { K: {} }, deps: [{ task: 'y', params: { T: '{{K}}' } }] }), def('y', { params: { T: { secret: true } }, deps: [{ task: 'x', params: { K: '{{T}}' } }] })], ['x'], { K: 'loop-secret' }));
  assert.match(looped.join('\n'), /Dependency cycle/);
  const named = errors(run([def('t', { params: { API_TOKEN: { enum: ['x'] } } })], ['t'], { API_TOKEN: 'Hush-1234' }));
  assert.match(named.join('\n'), /API_TOKEN=\[REDACTED\]/);
  for (const text of [...bad, ...looped, ...named]) assert.ok(!/hush-hush|loop-secret|Hush-1234/.test(text), text);
});

timedTest('a command display is redacted longest secret first (one secret inside another is not left half shown)', () => {
  const t = def('t', { params: { A: { secret: true }, B: { secret: true } }, run: 'echo {{B}} {{A}}' });
  const g = ok(run([t], ['t'], { A: 'abcd', B: 'zz-abcd-zz' }));
  assert.deepEqual([...g.nodes.values()][0]!.steps.map((s) => s.kind === 'command' && s.display), ['echo [REDACTED] [REDACTED]']);
});

timedTest('the second pass reads the environment as the first did, though a computed default changed it', () => {
  const env: Record<string, string> = { PATH: '/usr/bin' };
  const tasks = [
    def('early', { params: { X: { default: 'd' } } }),
    def('setter', { params: { W: { default: () => ((env['X'] = 'late'), 'w') } } }),
    def('late', { params: { X: { default: 'd' } } }),
    def('sp', { params: { P: { secret: true } } }),
    def('feed', { params: { V: {} }, deps: [{ task: 'sp', params: { P: '{{V}}' } }] }),
  ];
  const g = ok(analyze({ tasks, targets: ['early', 'setter', 'late', 'feed'], vars: { V: 'hush-hush' }, env, repoRoot: '/repo', fabricfile: '/repo/fabricfile.ts', secretPatterns: ['TOKEN'] }));
  assert.ok(g.nodes.has('feed[V=<secret>]'), 'analyzed twice');
  assert.deepEqual([...g.nodes.keys()].filter((id) => /^(early|late)/.test(id)).sort(), ['early', 'late[X=late]']);
});

// Call sites: formatting one is a source-mapped stack, so analysis asks only when it has a diagnostic to place.
const SITED = `task('smoke', { params: { ENV: { enum: ['a', 'b'] } } });
task('up', { deps: [{ task: 'smoke', params: { ENV: '{{TARGET}}' } }], params: { TARGET: { default: 'a' } } });
task('top', { deps: ['up'] });
`;
function sited(file: string, reads: string[]) {
  const at = (name: string, line: number, spec: TaskSpec): TaskDef => ({ name, spec, site: () => (reads.push(name), { file, line, column: 1 }), __fabricTask: true });
  return [
    at('smoke', 1, { params: { ENV: { enum: ['a', 'b'] } } }),
    at('up', 2, { deps: [{ task: 'smoke', params: { ENV: '{{TARGET}}' } }], params: { TARGET: { default: 'a' } } }),
    at('top', 3, { deps: ['up'] }),
  ];
}

timedTest('call sites are read only when a diagnostic needs one, and then placed exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-analyze-sites-'));
  try {
    const file = join(dir, 'fabricfile.ts');
    writeFileSync(file, SITED);
    const reads: string[] = [];
    const tasks = sited(file, reads);
    assert.deepEqual(validateDefinitions(tasks), []);
    ok(run(tasks, ['top']));
    ok(run(tasks, ['top'], { TARGET: 'b' }));
    assert.deepEqual(reads, [], 'no call site read without a diagnostic');

    // A bad value set along an edge points at the edge (the dependency literal in "up"), and at the declaration.
    const r = run(tasks, ['top'], { TARGET: 'c' });
    assert.ok(!r.ok);
    const [d] = r.error;
    assert.equal(d!.message, 'Task "smoke": ENV="c" (from the dependency edge up[TARGET=c] -> smoke) is not one of "a", "b".');
    assert.deepEqual(d!.location, { file, offset: SITED.indexOf("'smoke'", SITED.indexOf("task('up'")), length: 7 });
    assert.deepEqual(d!.related, [{ message: '"smoke" declares ENV here.', location: { file, offset: 0, length: 4 } }]);
    // The same value from the command line points at the param's task.
    const cli = run(tasks, ['smoke'], { ENV: 'c' });
    assert.ok(!cli.ok);
    assert.equal(cli.error[0]!.message, 'Task "smoke": ENV="c" (on the command line) is not one of "a", "b".');
    assert.deepEqual(cli.error[0]!.location, { file, offset: 0, length: 4 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
