// The benchmark workloads (issue #7): each one is generated into its own temp directory, with a
// separate directory per tool so that neither sees the other's outputs. Every command is an external
// program (/bin/true, /bin/sleep, sort, touch), so both tools really spawn one process per task.
//
// A workload is a list of cases; a case names what is timed for each tool and what must be done
// (untimed) before each timed run. Commands are [file, ...args] run with `cwd`.
import { mkdirSync, writeFileSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** mulberry32, so that W3/W5 are the same graph on every run and machine. */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FF_HEAD = `import { task } from 'fabric';\n\n`;
const q = JSON.stringify;

function write(dir, files) {
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text);
  }
}

/** Make's listing of phony targets, wrapped so the line stays manageable. */
function phony(names) {
  const out = [];
  for (let i = 0; i < names.length; i += 20) out.push(`.PHONY: ${names.slice(i, i + 20).join(' ')}`);
  return out.join('\n') + '\n';
}

/** The layered graph of W3/W5: `layers` x `width`, each task of layer L>0 depends on 1-3 random tasks of layer L-1. */
export function layeredGraph(layers, width, seed) {
  const random = seeded(seed);
  const tasks = [];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const name = `l${l}t${i}`;
      const deps = new Set();
      if (l > 0) {
        const n = 1 + Math.floor(random() * 3);
        while (deps.size < n) deps.add(`l${l - 1}t${Math.floor(random() * width)}`);
      }
      tasks.push({ name, deps: [...deps].sort() });
    }
  }
  return tasks;
}

/** Transitive dependents of each task (to pick the W5 leaf that most tasks depend on). */
export function dependentCounts(tasks) {
  const rdeps = new Map(tasks.map((t) => [t.name, []]));
  for (const t of tasks) for (const d of t.deps) rdeps.get(d).push(t.name);
  const counts = new Map();
  for (const t of tasks) {
    const seen = new Set();
    const stack = [t.name];
    while (stack.length) for (const r of rdeps.get(stack.pop())) if (!seen.has(r)) (seen.add(r), stack.push(r));
    counts.set(t.name, seen.size);
  }
  return counts;
}

/** Fabric and Make over the same phony graph, every task running `cmd` (argv words). */
function phonyGraph(root, tasks, cmd, rootName = 'all') {
  const fdir = join(root, 'fabric');
  const mdir = join(root, 'make');
  const text = cmd.join(' ');
  let ff = FF_HEAD;
  // The string form is what a user writes (`run: '/bin/true'`); fabric decides whether it needs bash.
  for (const t of tasks) ff += `task(${q(t.name)}, { deps: ${q(t.deps)}, run: ${q(text)} });\n`;
  ff += `task(${q(rootName)}, { deps: ${q(tasks.map((t) => t.name))} });\n`;
  let mk = `${rootName}: ${tasks.map((t) => t.name).join(' ')}\n`;
  for (const t of tasks) mk += `${t.name}:${t.deps.length ? ' ' + t.deps.join(' ') : ''}\n\t${text}\n`;
  mk += phony([rootName, ...tasks.map((t) => t.name)]);
  write(fdir, { 'fabricfile.ts': ff });
  write(mdir, { Makefile: mk });
  return { fdir, mdir };
}

const runCase = (label, dirs, extra = {}) => ({
  label,
  // Also timed with --no-evidence (a separate column), since the evidence packet dominates today.
  noEvidence: true,
  // Evidence packets accumulate between runs, as they do in a repository (fabric never reads old
  // packets). Deleting the previous packets before each run (what this bench did before) made creating
  // the next packet's files several times slower on ext4 (W5 no-op: 3.3 s against 0.55 s with the
  // packets kept; bench/RESULTS.md): that measured the file system digesting the bench's deletions.
  fabric: { cwd: dirs.fdir, args: ['run', 'all', '-j', '2'] },
  make: { cwd: dirs.mdir, args: ['-r', '-j2', 'all'] },
  ...extra,
});

export const WORKLOADS = [
  {
    id: 'W1',
    title: '1000 independent tasks + root (/bin/true)',
    setup(root) {
      const tasks = Array.from({ length: 1000 }, (_, i) => ({ name: `t${i}`, deps: [] }));
      const dirs = phonyGraph(root, tasks, ['/bin/true']);
      return [runCase('W1', dirs, { target: { kind: 'make', max: 1.25 }, rss: true })];
    },
  },
  {
    id: 'W2',
    title: 'chain of 300 (/bin/true)',
    setup(root) {
      const tasks = Array.from({ length: 300 }, (_, i) => ({ name: `c${i}`, deps: i ? [`c${i - 1}`] : [] }));
      return [runCase('W2', phonyGraph(root, tasks, ['/bin/true']))];
    },
  },
  {
    id: 'W3',
    title: 'layered 10 x 100, 1-3 random deps (seed 7)',
    setup(root) {
      return [runCase('W3', phonyGraph(root, layeredGraph(10, 100, 7), ['/bin/true']), { target: { kind: 'make', max: 1.25 } })];
    },
  },
  {
    id: 'W4',
    title: '40 x sleep 0.1, layered 4 x 10 (each layer after the whole previous one)',
    setup(root) {
      const tasks = [];
      for (let l = 0; l < 4; l++) {
        for (let i = 0; i < 10; i++) tasks.push({ name: `s${l}x${i}`, deps: l ? Array.from({ length: 10 }, (_, j) => `s${l - 1}x${j}`) : [] });
      }
      // Ideal with 2 workers: 40 x 0.1 s / 2 = 2.00 s.
      return [runCase('W4', phonyGraph(root, tasks, ['/bin/sleep', '0.1']), { target: { kind: 'ideal', ms: 2000, max: 1.03 } })];
    },
  },
  {
    id: 'W5',
    title: 'the W3 graph with files: each task reads its input and its deps\' outputs, writes one output (sort -o)',
    setup(root) {
      const tasks = layeredGraph(10, 100, 7);
      const counts = dependentCounts(tasks);
      const leaf = tasks.filter((t) => t.deps.length === 0).sort((a, b) => counts.get(b.name) - counts.get(a.name) || (a.name < b.name ? -1 : 1))[0];
      const fdir = join(root, 'fabric');
      const mdir = join(root, 'make');
      const cmd = (t) => `/usr/bin/sort -o out/${t.name}.txt in/${t.name}.txt${t.deps.map((d) => ` out/${d}.txt`).join('')}`;
      let ff = FF_HEAD;
      for (const t of tasks) {
        const inputs = [`in/${t.name}.txt`, ...t.deps.map((d) => `out/${d}.txt`)];
        ff += `task(${q(t.name)}, { effect: 'read-only', deps: ${q(t.deps)}, inputs: ${q(inputs)}, outputs: ${q([`out/${t.name}.txt`])}, run: ${q(cmd(t))} });\n`;
      }
      ff += `task('all', { effect: 'read-only', deps: ${q(tasks.map((t) => t.name))} });\n`;
      let mk = `all: ${tasks.map((t) => `out/${t.name}.txt`).join(' ')}\n.PHONY: all\n`;
      for (const t of tasks) mk += `out/${t.name}.txt: in/${t.name}.txt${t.deps.map((d) => ` out/${d}.txt`).join('')}\n\t${cmd(t)}\n`;
      const inputs = {};
      for (const t of tasks) inputs[`in/${t.name}.txt`] = `${t.name} ${'x'.repeat(32)}\n`;
      write(fdir, { 'fabricfile.ts': ff, ...inputs });
      write(mdir, { Makefile: mk, ...inputs });
      for (const d of [fdir, mdir]) mkdirSync(join(d, 'out'), { recursive: true });
      let serial = 0;
      // A cold start moves out/ and the cache aside instead of deleting them: on ext4, files created in
      // the minutes after a mass deletion cost up to ten times more (the inode allocator skips recently
      // deleted inodes: `recently_deleted` in a kernel profile; bench/RESULTS.md, sixth pass), which
      // measured the file system digesting the previous repetition, more so for the tool that creates
      // more files. The moved directories go with the workload's temp directory at the end.
      let trashed = 0;
      const cold = (dir) => () => {
        const trash = join(dir, '..', `trash-${++trashed}`);
        mkdirSync(trash);
        for (const sub of ['out', join('.fabric', 'cache')]) {
          if (existsSync(join(dir, sub))) renameSync(join(dir, sub), join(trash, sub.replace(/[\\/]/g, '-')));
        }
        mkdirSync(join(dir, 'out'));
      };
      // A new content every time (never one seen before: fabric's cache would restore it instead of running).
      const touchLeaf = (dir) => () => {
        serial++;
        writeFileSync(join(dir, 'in', `${leaf.name}.txt`), `${leaf.name} changed ${serial} ${process.hrtime.bigint()}\n`);
      };
      const base = runCase('W5', { fdir, mdir });
      const fabricCold = { ...base.fabric, prepare: cold(fdir) };
      return [
        { ...base, label: 'W5 cold', fabric: fabricCold, make: { ...base.make, prepare: cold(mdir) }, target: { kind: 'make', max: 1.1 } },
        { ...base, label: 'W5 no-op', settle: true, target: { kind: 'floor', max: 1.6 } },
        {
          ...base,
          label: `W5 one leaf changed (${leaf.name}: ${counts.get(leaf.name)} dependents)`,
          fabric: { ...base.fabric, prepare: touchLeaf(fdir) },
          make: { ...base.make, prepare: touchLeaf(mdir) },
          target: { kind: 'make', max: 1.1 },
        },
      ];
    },
  },
  {
    id: 'W6',
    title: 'one task over 10,000 input files of 4 KiB (100 dirs x 100), no-op',
    setup(root) {
      const fdir = join(root, 'fabric');
      const mdir = join(root, 'make');
      const block = Buffer.alloc(4096);
      for (const dir of [fdir, mdir]) {
        for (let d = 0; d < 100; d++) {
          mkdirSync(join(dir, 'files', `d${d}`), { recursive: true });
          for (let f = 0; f < 100; f++) {
            block.write(`d${d}/f${f} `.padEnd(16, '.'), 0);
            writeFileSync(join(dir, 'files', `d${d}`, `f${f}.dat`), block);
          }
        }
      }
      write(fdir, {
        'fabricfile.ts': FF_HEAD + `task('all', { effect: 'read-only', inputs: ['files/**'], outputs: ['stamp.txt'], run: '/usr/bin/touch stamp.txt' });\n`,
      });
      write(mdir, { Makefile: `all: stamp.txt\n.PHONY: all\nstamp.txt: $(wildcard files/*/*.dat)\n\t/usr/bin/touch stamp.txt\n` });
      const c = runCase('W6', { fdir, mdir });
      return [{ ...c, label: 'W6 no-op', settle: true, target: { kind: 'floor', max: 1.6 } }];
    },
  },
  {
    id: 'W7',
    title: 'listing the Samakia catalogue (318 tasks) and --version',
    setup(root, { repo, fabric }) {
      const fdir = join(root, 'fabric');
      const mdir = join(root, 'make');
      const cat = samakiaCatalogue(repo);
      let listDir = fdir;
      let source = cat.source;
      let fallback = '';
      let listed;
      if (cat.repoFabricfile) {
        // Use the real catalogue only if it loads (it may be mid-edit in a shared checkout).
        const r = spawnSync(process.execPath, [fabric, 'list'], { cwd: repo, encoding: 'utf8', env: { ...process.env, CI: '' } });
        if (r.status === 0) {
          listDir = repo;
          listed = Number((r.stdout.match(/^(\d+) tasks/m) ?? [])[1]) || undefined;
          source = `this repository's fabricfile.ts (${listed ?? '?'} tasks listed)`;
        } else fallback = `; ${repo}/fabricfile.ts did not load (exit ${r.status}: ${(r.stderr.split('\n')[0] ?? '').trim()}), so `;
      }
      if (listDir === fdir) {
        source = fallback ? fallback.slice(2) + source : source;
        let ff = FF_HEAD;
        for (const t of cat.targets) {
          const params = Object.fromEntries(t.params.map((p) => [p.name, { default: p.default }]));
          ff += `task(${q(t.name)}, { description: ${q(t.summary)}, section: ${q(t.section)}, deps: ${q(t.deps)}, params: ${q(params)}, run: ${q(`scripts/${t.name}.sh`)} });\n`;
        }
        write(fdir, { 'fabricfile.ts': ff });
      }
      // The Samakia Makefile's `help` prints a hand-written table of targets; here: the same names and summaries.
      let mk = `.DEFAULT_GOAL := help\nhelp:\n\t@printf '%s\\n' \\\n`;
      mk += cat.targets.map((t) => `\t  ${shq(`  ${t.name.padEnd(40)} ${t.summary}`).replace(/\$/g, '$$$$')}`).join(' \\\n') + '\n';
      for (const t of cat.targets) if (t.name !== 'help') mk += `${t.name}:${t.deps.length ? ' ' + t.deps.join(' ') : ''}\n\t@bash scripts/${t.name}.sh\n`;
      mk += phony(cat.targets.map((t) => t.name));
      write(mdir, { Makefile: mk });
      return [
        // Start-up cases take ~0.1 s a run and are the most sensitive to a busy machine: four times the repetitions.
        { label: `W7 list (${listed ?? cat.targets.length} tasks)`, note: source, fabric: { cwd: listDir, args: ['list'] }, make: { cwd: mdir, args: ['-r', '-j2', 'help'] }, target: { kind: 'floor', max: 1.6 }, repsFactor: 4 },
        { label: 'W7 --version', fabric: { cwd: root, args: ['--version'] }, target: { kind: 'floor', max: 1.6 }, repsFactor: 4 },
      ];
    },
  },
];

function shq(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The 318 Samakia targets: this repo's fabricfile.ts once the catalogue has landed (names from
 * `fabric list --json` are read by the caller), else the shared catalogue facts, else generated names.
 */
function samakiaCatalogue(repo) {
  const repoFabricfile = existsSync(join(repo, 'fabricfile.ts')) && existsSync(join(repo, 'tasks')) && readFileSync(join(repo, 'fabricfile.ts'), 'utf8').includes('tasks/');
  const shared = '/work/shared/samakia/catalogue.json';
  let targets;
  let source;
  if (existsSync(shared)) {
    const raw = JSON.parse(readFileSync(shared, 'utf8'));
    const names = new Set(raw.map((t) => t.name));
    targets = raw.map((t) => ({
      name: t.name,
      summary: String(t.summary ?? '').split(/(?<=\.)\s/)[0].slice(0, 100),
      section: String(t.section ?? t.group ?? 'misc'),
      params: (t.params ?? []).filter((p) => /^[A-Z_][A-Z0-9_]*$/.test(p.name)).map((p) => ({ name: p.name, default: String(p.default ?? '') })),
      deps: [...new Set((t.deps ?? []).filter((d) => d.kind === 'make' && names.has(d.target) && d.target !== t.name).map((d) => d.target))],
    }));
    source = 'generated from the shared Samakia catalogue facts (318 names, summaries, sections, params, deps)';
    // Drop edges that would form a cycle (the Makefile recurses through sub-makes, not prerequisites).
    const byName = new Map(targets.map((t) => [t.name, t]));
    const state = new Map();
    const visit = (t) => {
      state.set(t.name, 1);
      t.deps = t.deps.filter((d) => {
        if (state.get(d) === 1) return false;
        if (!state.has(d)) visit(byName.get(d));
        return true;
      });
      state.set(t.name, 2);
    };
    for (const t of targets) if (!state.has(t.name)) visit(t);
  } else {
    const sections = ['image', 'tf', 'dns', 'minio', 'proxmox', 'ansible', 'ssh', 'evidence', 'policy', 'runner'];
    targets = Array.from({ length: 318 }, (_, i) => {
      const section = sections[i % sections.length];
      return { name: `${section}.op${i}`, summary: `operation ${i} of ${section}`, section, params: [{ name: 'ENV', default: 'samakia-dev' }], deps: [] };
    });
    source = 'generated (318 synthetic names; the shared catalogue was not found)';
  }
  return { targets, source, repoFabricfile };
}
