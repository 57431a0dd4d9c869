// The benchmark (bench/, issue #7) compares fabric with GNU Make on generated workloads. A ratio means
// something only if both tools are given the same work: the same graph, the same commands, and in W5
// and W6 the same files, with each case (cold, no-op, one leaf changed) making both do the same runs.
// These tests generate the workloads as the bench does and check that, with the real make and fabric.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, rigTest, test, type Rig } from '../helpers/rig.js';

interface ToolRun {
  readonly cwd: string;
  readonly args: readonly string[];
  readonly prepare?: () => void;
}
interface BenchCase {
  readonly label: string;
  readonly fabric: ToolRun;
  readonly make?: ToolRun;
}
interface Workload {
  readonly id: string;
  setup(root: string, ctx: { repo: string; fabric: string }): BenchCase[];
}
const load = async (): Promise<Workload[]> =>
  ((await import(pathToFileURL(join(ROOT, 'bench', 'lib', 'workloads.mjs')).href)) as { WORKLOADS: Workload[] }).WORKLOADS;
const workload = async (id: string): Promise<Workload> => (await load()).find((w) => w.id === id)!;

function make(cwd: string, args: readonly string[]): { code: number | null; stdout: string } {
  const r = spawnSync('make', args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, MAKEFLAGS: '', MFLAGS: '' } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout };
}

/** The commands `make -n` would run, one per line. */
const makePlan = (cwd: string, target = 'all') => make(cwd, ['-r', '-n', target]).stdout.split('\n').filter((l) => l && !/^make(\[\d+\])?: /.test(l));

async function fabric(rig: Rig, cwd: string, args: readonly string[]) {
  const r = await rig.fabric([...args, '--output=json'], { cwd, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** Each node's deps and commands from a dry run's run-start event (nothing runs). */
async function fabricGraph(rig: Rig, cwd: string): Promise<Map<string, { deps: string[]; commands: string[] }>> {
  const r = await fabric(rig, cwd, ['run', 'all', '--dry-run', '--no-evidence']);
  const start = r.events.find((e) => e.type === 'run-start');
  assert.ok(start?.type === 'run-start');
  return new Map(start.nodes.map((n) => [n.id, { deps: [...n.deps].sort(), commands: [...n.commands] }]));
}

/** The Makefile's rules as the generator writes them: `target: deps` and one recipe line. */
function makeRules(dir: string): Map<string, { deps: string[]; commands: string[] }> {
  const rules = new Map<string, { deps: string[]; commands: string[] }>();
  let last: string | undefined;
  for (const line of readFileSync(join(dir, 'Makefile'), 'utf8').split('\n')) {
    if (line.startsWith('\t')) rules.get(last!)!.commands.push(line.slice(1));
    else if (/^[^.\s][^:]*:/.test(line)) {
      const [target, deps] = line.split(/:(.*)/s) as [string, string];
      last = target;
      rules.set(target, { deps: deps.trim().split(/\s+/).filter(Boolean).sort(), commands: [] });
    }
  }
  return rules;
}

for (const id of ['W1', 'W2', 'W3', 'W4']) {
  rigTest(`bench ${id}: make and fabric get the same graph and the same commands`, async (rig) => {
    const [c] = (await workload(id)).setup(rig.dir, { repo: ROOT, fabric: '' });
    assert.ok(c?.make);
    const rules = makeRules(c.make.cwd);
    const graph = await fabricGraph(rig, c.fabric.cwd);
    assert.deepEqual([...graph.keys()].sort(), [...rules.keys()].sort());
    for (const [name, node] of graph) assert.deepEqual(node, rules.get(name), name);
    // What each tool would run: one external program per task, the same commands.
    const planned = [...graph.values()].flatMap((n) => n.commands).sort();
    assert.deepEqual(makePlan(c.make.cwd).sort(), planned);
    assert.equal(planned.length, graph.size - 1, 'every task but the root runs one command');
  }, { ms: 120_000 });
}

rigTest('bench W5: cold, no-op and one-leaf cases give make and fabric the same runs and the same outputs', async (rig) => {
  const cases = (await workload('W5')).setup(rig.dir, { repo: ROOT, fabric: '' });
  const [cold, noop, leaf] = cases as [BenchCase, BenchCase, BenchCase];
  assert.match(noop.label, /no-op/);
  const fdir = cold.fabric.cwd;
  const mdir = cold.make!.cwd;
  const ran = (r: Awaited<ReturnType<typeof fabric>>) => r.events.flatMap((e) => (e.type === 'command-start' ? [e.node] : [])).sort();
  /** The targets whose recipe make would run (each writes out/<task>.txt). */
  const remade = () => makePlan(mdir).map((l) => /^\/usr\/bin\/sort -o out\/(\S+)\.txt /.exec(l)?.[1] ?? `unexpected: ${l}`).sort();
  const outputs = (dir: string) => Object.fromEntries(readdirSync(join(dir, 'out')).sort().map((f) => [f, readFileSync(join(dir, 'out', f), 'utf8')]));

  // Cold: both run every task and write byte-identical outputs.
  cold.fabric.prepare?.();
  cold.make!.prepare?.();
  const tasks = remade();
  assert.equal(tasks.length, 1000);
  const first = await fabric(rig, fdir, [...cold.fabric.args, '--no-evidence']);
  assert.deepEqual(ran(first), tasks);
  assert.equal(make(mdir, cold.make!.args).code, 0);
  assert.deepEqual(outputs(fdir), outputs(mdir));
  assert.equal(Object.keys(outputs(fdir)).length, 1000);

  // No-op: neither runs anything.
  assert.deepEqual(remade(), []);
  const again = await fabric(rig, fdir, [...noop.fabric.args, '--no-evidence']);
  assert.deepEqual(ran(again), []);
  assert.equal(again.events.filter((e) => e.type === 'task-success' && e.reason === 'cached').length, 1000);

  // One leaf changed: both run that leaf and exactly its transitive dependents, as the label says.
  leaf.fabric.prepare?.();
  leaf.make!.prepare?.();
  const dependents = Number(/\((\w+): (\d+) dependents\)/.exec(leaf.label)?.[2]);
  const expected = remade();
  assert.equal(expected.length, dependents + 1);
  const changed = await fabric(rig, fdir, [...leaf.fabric.args, '--no-evidence']);
  assert.deepEqual(ran(changed), expected);
  assert.equal(make(mdir, leaf.make!.args).code, 0);
}, { ms: 180_000 });

rigTest('bench W6: make and fabric run the task once over the same 10,000 files, then neither runs it', async (rig) => {
  const [c] = (await workload('W6')).setup(rig.dir, { repo: ROOT, fabric: '' }) as [BenchCase];
  const files = (dir: string) => readdirSync(join(dir, 'files'), { recursive: true }).filter((f) => String(f).endsWith('.dat')).length;
  assert.equal(files(c.fabric.cwd), 10_000);
  assert.equal(files(c.make!.cwd), 10_000);
  assert.deepEqual(makePlan(c.make!.cwd), ['/usr/bin/touch stamp.txt']);
  const first = await fabric(rig, c.fabric.cwd, [...c.fabric.args, '--no-evidence']);
  assert.deepEqual(first.brief(['task-success']), ['task-success all ran']);
  assert.equal(make(c.make!.cwd, c.make!.args).code, 0);
  assert.deepEqual(makePlan(c.make!.cwd), []);
  const noop = await fabric(rig, c.fabric.cwd, [...c.fabric.args, '--no-evidence']);
  assert.deepEqual(noop.brief(['task-success']), ['task-success all cached']);
}, { ms: 180_000 });

test.run();
