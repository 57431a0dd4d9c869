// `npm run bench [-- options]`: fabric against GNU Make on the workloads of issue #7, side by side in
// one run (the tools alternate within each repetition), with `node -e 0` as the floor. Prints a
// markdown table and writes it, with the machine description, into bench/RESULTS.md (between the
// generated-section markers; the hand-written analysis around them is kept).
//
// Options:
//   --reps N          timed repetitions per case and tool (default 5)
//   --only W1,W5      run only these workloads
//   --fabric FILE     the fabric CLI to bench (default: this repo's bin/fabric.js, built first)
//   --no-build        do not run scripts/build.mjs first
//   --no-extra        skip the extra `fabric --no-evidence` column
//   --out FILE        results file (default bench/RESULTS.md); --no-write: print only
//   --keep            keep the generated temp directories
//   --json FILE       also write every sample as JSON (for comparing two runs)
//   --baseline FILE   also time another fabric CLI (e.g. a build of the previous commit) as `baseline`
//                     (its table adds CPU time, user + system from GNU time, for cases over 200 ms)
//   --fabric-arg ARG  pass ARG to every fabric run command (repeatable; e.g. --fabric-arg=--no-evidence)
//   --no-settle       start at once, even while creating a file is slow (see settleFileSystem below)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GNU_TIME, cleanupScratch, fileCreationMicros, median, processStartMicros, timeCommand } from './lib/measure.mjs';
import { WORKLOADS } from './lib/workloads.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));

function parseOptions(argv) {
  const o = { settle: true, baseline: undefined, fabricArgs: [], reps: 5, only: undefined, fabric: join(REPO, 'bin', 'fabric.js'), build: true, extra: true, out: join(REPO, 'bench', 'RESULTS.md'), write: true, keep: false, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--reps') o.reps = Math.max(1, Number.parseInt(value(), 10) || 1);
    else if (a === '--only') o.only = value().split(',').map((s) => s.trim().toUpperCase());
    else if (a === '--fabric') (o.fabric = resolve(value())), (o.build = false);
    else if (a === '--no-build') o.build = false;
    else if (a === '--no-extra') o.extra = false;
    else if (a === '--out') o.out = resolve(value());
    else if (a === '--no-write') o.write = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--json') o.json = resolve(value());
    else if (a === '--baseline') o.baseline = resolve(value());
    else if (a === '--no-settle') o.settle = false;
    else if (a === '--fabric-arg') o.fabricArgs.push(value());
    else if (a.startsWith('--fabric-arg=')) o.fabricArgs.push(a.slice('--fabric-arg='.length));
    else throw new Error(`unknown option ${a} (see the comment at the top of bench/run.mjs)`);
  }
  return o;
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error ? 'not found' : `${r.stdout}${r.stderr}`.split('\n')[0].trim();
}

function machine() {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1].trim();
  } catch {
    /* not Linux */
  }
  return {
    date: new Date().toISOString(),
    nproc: firstLine('nproc', []),
    cpu: model,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    make: firstLine('make', ['--version']),
    loadStart: loadavg().map((x) => x.toFixed(2)).join(' '),
    fsStart: fileCreationMicros(),
    procStart: processStartMicros(),
    unset: WITHOUT.filter((k) => process.env[k] !== undefined),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Variables the tools run without: what would change their behaviour (CI mode, event logs, node
 * flags), and what adds a cost to every Node start that is neither Node's own start-up nor fabric's.
 * NODE_EXTRA_CA_CERTS makes Node 20 read and parse the named certificate bundle before any script
 * runs: with a system bundle (~200 KB), `node -e 0` took 140 ms instead of 77 ms on the ninth pass's
 * machine. It would be in the floor and in fabric alike, so every ratio against `node -e 0` would
 * shrink towards 1 by a cost neither tool chose (and no run here needs TLS).
 */
const WITHOUT = ['CI', 'GITHUB_ACTIONS', 'FABRIC_EVENT_LOG', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'FORCE_COLOR', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL'];

/** The environment the tools get: ours, minus WITHOUT. */
function toolEnv() {
  const env = { ...process.env };
  for (const k of WITHOUT) delete env[k];
  return env;
}

function tools(c, opts) {
  const env = toolEnv();
  const node = process.execPath;
  const out = [];
  const isRun = c.fabric.args[0] === 'run';
  const fabricTool = (name, extraArgs, cli = opts.fabric) => ({
    name,
    cwd: c.fabric.cwd,
    prepare: () => {
      c.fabric.prepare?.();
      for (const d of c.fabric.clean ?? []) rmSync(join(c.fabric.cwd, d), { recursive: true, force: true });
    },
    argv: [node, [cli, ...c.fabric.args, ...(isRun ? opts.fabricArgs : []), ...extraArgs]],
    env,
  });
  out.push(fabricTool('fabric', []));
  if (opts.baseline) out.push(fabricTool('baseline', [], opts.baseline));
  if (c.make) out.push({ name: 'make', cwd: c.make.cwd, prepare: () => c.make.prepare?.(), argv: ['make', c.make.args], env });
  if (c.target?.kind === 'floor' || c.fabric.args[0] === '--version') out.push({ name: 'node', cwd: c.fabric.cwd, prepare: () => {}, argv: [node, ['-e', '0']], env });
  if (opts.extra && c.noEvidence && !opts.fabricArgs.includes('--no-evidence')) out.push(fabricTool('fabric-noev', ['--no-evidence']));
  return out;
}

function runOnce(tool, label) {
  tool.prepare();
  const r = timeCommand(tool.argv[0], tool.argv[1], { cwd: tool.cwd, env: tool.env });
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout.toString('utf8')).split('\n').slice(-15).join('\n');
    throw new Error(`${label}: ${tool.name} exited with ${r.code ?? r.signal}\n${tail}`);
  }
  return r;
}

async function runCase(c, opts, log) {
  const ts = tools(c, opts);
  // Warm-up (untimed): fabric bundles the fabricfile on its first run; both fill their outputs.
  for (const t of ts) runOnce(t, c.label);
  if (c.settle) {
    // Files written less than 2 s ago are re-hashed by fabric's stat cache (the racy-timestamp rule,
    // lib/cache/stat-cache.ts); a no-op is measured on a settled tree, as it would be in real use.
    await sleep(2100);
    for (const t of ts) runOnce(t, c.label);
  }
  const samples = Object.fromEntries(ts.map((t) => [t.name, []]));
  const reps = opts.reps * (c.repsFactor ?? 1);
  for (let rep = 0; rep < reps; rep++) {
    // Rotate the order so that no tool always runs first (or always after the same one).
    const order = ts.map((_, i) => ts[(i + rep) % ts.length]);
    for (const t of order) {
      const r = runOnce(t, c.label);
      samples[t.name].push({ ms: r.ms, rssKiB: r.rssKiB, cpuMs: r.cpuMs, idleMs: r.idleMs });
    }
    log(`  ${c.label} rep ${rep + 1}/${reps}: ${ts.map((t) => `${t.name} ${samples[t.name].at(-1).ms.toFixed(0)} ms`).join(', ')}`);
  }
  return samples;
}

const fmtMs = (x) => (x >= 10_000 ? x.toFixed(0) : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
function fmtRss(xs) {
  const v = xs.map((s) => s.rssKiB).filter((x) => x !== undefined);
  return v.length ? `${(Math.max(...v) / 1024).toFixed(0)} MiB` : 'n/a';
}

/** Median of paired ratios a_i / b_i (same repetition) of `field` (wall ms unless told). */
function pairedRatio(a, b, field = 'ms') {
  const n = Math.min(a.length, b.length);
  return median(Array.from({ length: n }, (_, i) => a[i][field] / b[i][field]));
}

/**
 * CPU time (GNU time: user + system, with the children the process waited for) of a tool, or
 * undefined: GNU time counts in 10 ms steps, too coarse below a few hundred milliseconds.
 */
function cpuSpan(xs) {
  const v = xs.map((s) => s.cpuMs).filter((x) => x !== undefined);
  if (v.length !== xs.length || v.length === 0 || median(v) < 200) return undefined;
  return `${fmtMs(median(v))} (${fmtMs(Math.min(...v))}–${fmtMs(Math.max(...v))})`;
}

/** Median (min–max) of the machine's idle CPU time during a tool's runs, in ms; undefined off Linux. */
function idleSpan(xs) {
  const v = xs.map((s) => s.idleMs).filter((x) => x !== undefined);
  if (v.length !== xs.length || v.length === 0) return undefined;
  return `${fmtMs(median(v))} (${fmtMs(Math.min(...v))}–${fmtMs(Math.max(...v))})`;
}

function summarize(c, samples) {
  const ms = (name) => (samples[name] ? samples[name].map((s) => s.ms) : []);
  const span = (name) => {
    const v = ms(name);
    return v.length ? `${fmtMs(median(v))} (${fmtMs(Math.min(...v))}–${fmtMs(Math.max(...v))})` : '–';
  };
  const row = {
    label: c.label,
    fabric: span('fabric'),
    make: span('make'),
    node: span('node'),
    vsMake: samples.make ? pairedRatio(samples.fabric, samples.make) : NaN,
    vsNode: samples.node ? pairedRatio(samples.fabric, samples.node) : NaN,
    rssFabric: fmtRss(samples.fabric),
    rssMake: samples.make ? fmtRss(samples.make) : '–',
    baseline: samples.baseline ? `${span('baseline')}; fabric / baseline ${fmtRatio(pairedRatio(samples.fabric, samples.baseline))}` : undefined,
    // CPU compares two fabric builds better than wall time on a shared machine (less sensitive to
    // waiting for a CPU). It is not comparable with Make's: the commands are children of fabric's fork
    // server, which fabric does not wait for, and of make itself.
    baselineCpu:
      samples.baseline && cpuSpan(samples.fabric) && cpuSpan(samples.baseline)
        ? `${cpuSpan(samples.fabric)} against ${cpuSpan(samples.baseline)}; ${fmtRatio(pairedRatio(samples.fabric, samples.baseline, 'cpuMs'))}`
        : undefined,
    noev: samples['fabric-noev']
      ? [
          span('fabric-noev'),
          samples.make ? `${fmtRatio(pairedRatio(samples['fabric-noev'], samples.make))} of make` : '',
          samples.node ? `${fmtRatio(pairedRatio(samples['fabric-noev'], samples.node))} of node -e 0` : '',
          `peak RSS ${fmtRss(samples['fabric-noev'])}`,
        ]
          .filter(Boolean)
          .join('; ')
      : undefined,
    // Idle CPU during the run: whether a tool keeps the CPUs busy (bound by CPU) or leaves them waiting
    // on its own round trips (bound by latency). Only for runs of commands against Make, over a second.
    idle:
      samples.make && median(ms('make')) >= 1000 && idleSpan(samples.make) && idleSpan(samples.fabric)
        ? [idleSpan(samples.make), idleSpan(samples.fabric), samples['fabric-noev'] ? idleSpan(samples['fabric-noev']) : undefined]
        : undefined,
    target: '',
    met: '',
  };
  const t = c.target;
  if (t?.kind === 'make') {
    row.target = `≤ ${t.max}x make`;
    row.met = row.vsMake <= t.max ? 'yes' : 'NO';
  } else if (t?.kind === 'floor') {
    row.target = `≤ ${t.max}x node -e 0`;
    row.met = row.vsNode <= t.max ? 'yes' : 'NO';
  } else if (t?.kind === 'ideal') {
    const f = median(ms('fabric')) / t.ms;
    const m = median(ms('make')) / t.ms;
    row.target = `≤ ${t.max}x ideal ${t.ms} ms (fabric ${fmtRatio(f)}, make ${fmtRatio(m)})`;
    row.met = f <= t.max ? 'yes' : 'NO';
  }
  if (c.rss) {
    const peak = Math.max(...samples.fabric.map((s) => s.rssKiB ?? 0)) / 1024;
    row.target += `${row.target ? '; ' : ''}RSS ≤ 100 MiB`;
    row.met += GNU_TIME ? (peak <= 100 ? ' / yes' : ' / NO') : ' / n/a';
  }
  return row;
}

function table(rows) {
  const lines = [
    '| case | make ms | fabric ms | fabric / make | node -e 0 ms | fabric / node | target | met | peak RSS make | peak RSS fabric |',
    '|---|---:|---:|---:|---:|---:|---|---|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.label} | ${r.make} | ${r.fabric} | ${fmtRatio(r.vsMake)} | ${r.node} | ${fmtRatio(r.vsNode)} | ${r.target} | ${r.met} | ${r.rssMake} | ${r.rssFabric} |`);
  }
  const base = rows.filter((r) => r.baseline);
  if (base.length) {
    const cpu = base.some((r) => r.baselineCpu);
    lines.push(
      '',
      'Baseline (another fabric build, same arguments; CPU is user + system time of fabric and the processes it waited for, not of the commands):',
      '',
      `| case | baseline ms; ratio |${cpu ? ' CPU ms, fabric against baseline; ratio |' : ''}`,
      `|---|---|${cpu ? '---|' : ''}`,
    );
    for (const r of base) lines.push(`| ${r.label} | ${r.baseline} |${cpu ? ` ${r.baselineCpu ?? 'n/a (under 200 ms: GNU time counts 10 ms steps)'} |` : ''}`);
  }
  const extra = rows.filter((r) => r.noev);
  if (extra.length) {
    lines.push('', 'Without the evidence packet (`fabric run --no-evidence`; the table above is the default, evidence on):', '', '| case | fabric --no-evidence ms |', '|---|---|');
    for (const r of extra) lines.push(`| ${r.label} | ${r.noev} |`);
  }
  const idle = rows.filter((r) => r.idle);
  if (idle.length) {
    lines.push(
      '',
      "Idle CPU time while each tool ran (ms, summed over all CPUs, from /proc/stat; other load on the machine lowers it). A run bound by CPU leaves little idle; the rest is time in which fewer commands ran than CPUs were free, waiting on the tool's own round trips (and, for fabric, Node's single-threaded start-up):",
      '',
      '| case | make | fabric | fabric --no-evidence |',
      '|---|---|---|---|',
    );
    for (const r of idle) lines.push(`| ${r.label} | ${r.idle[0]} | ${r.idle[1]} | ${r.idle[2] ?? '–'} |`);
  }
  return lines.join('\n');
}

function report(m, opts, rows, notes) {
  return `<!-- bench:begin (generated by \`npm run bench\`; edit outside these markers) -->
## Latest run

- date: ${m.date}
- machine: ${m.nproc} CPUs (nproc), ${m.cpu}, ${m.memory} RAM, Linux ${m.kernel}
- node ${m.node}, ${m.make}; peak RSS from ${GNU_TIME ? `GNU time (\`${GNU_TIME} -f %M\`)` : 'n/a (GNU time not installed)'}
- load average (1/5/15 min) at start ${m.loadStart}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}
- creating a small file (write + rename, what cache entries and evidence records cost): ${m.fsStart.toFixed(0)} µs at start, ${fileCreationMicros().toFixed(0)} µs at end
- starting a process (\`/bin/true\` from a shell loop: fork, exec, wait; what Make pays per command): ${m.procStart.toFixed(0)} µs at start, ${processStartMicros().toFixed(0)} µs at end
- the tools run without CI, NODE_OPTIONS, NODE_EXTRA_CA_CERTS, MAKEFLAGS and the like (bench/run.mjs \`WITHOUT\`); ${m.unset.length ? `set in the bench's environment and so removed: ${m.unset.map((k) => `\`${k}\``).join(', ')}` : 'none of them was set'}
- ${opts.reps} timed repetitions per case and tool (start-up cases: ${opts.reps * 4}) after an untimed warm-up, order rotated each repetition;
  times are medians (min–max) in ms; ratios are medians of the per-repetition ratios
- fabric: \`node ${opts.fabric === join(REPO, 'bin', 'fabric.js') ? 'bin/fabric.js' : opts.fabric} run all -j 2\` with the default configuration
  ${opts.fabricArgs.length ? `plus \`${opts.fabricArgs.join(' ')}\`` : '(plain renderer, content cache and evidence packet on)'}; make: \`make -r -j2 all\`; both write to a pipe read by the bench

${table(rows)}
${notes.length ? '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n' : ''}<!-- bench:end -->`;
}

/**
 * Waits (up to five minutes) while creating a small file costs over SETTLED_US: after mass deletions
 * (a test suite's temp directories, a previous bench) ext4 skips the recently freed inodes and creating
 * files costs up to ten times more for minutes (RESULTS.md, sixth pass). The cases that create many
 * files (evidence on, W5 cold) would measure that instead of the tools. The probe itself creates and
 * removes 600 files a time, too few to keep the state going.
 */
const SETTLED_US = 150;
async function settleFileSystem(log) {
  const deadline = Date.now() + 5 * 60_000;
  let us = fileCreationMicros(200);
  while (us > SETTLED_US && Date.now() < deadline) {
    log(`  creating a file costs ${us.toFixed(0)} µs (over ${SETTLED_US}): waiting for the file system to settle`);
    await sleep(15_000);
    us = fileCreationMicros(200);
  }
  return us;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const log = (s) => process.stderr.write(s + '\n');
  if (opts.build) {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'build.mjs')], { cwd: REPO, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('build failed');
  }
  if (!existsSync(opts.fabric)) throw new Error(`no fabric CLI at ${opts.fabric}`);
  if (opts.settle) await settleFileSystem(log);
  const m = machine();
  log(`fabric bench: ${m.nproc} CPUs, ${m.cpu}, node ${m.node}, ${m.make}, load ${m.loadStart}, file creation ${m.fsStart.toFixed(0)} µs, process start ${m.procStart.toFixed(0)} µs${m.unset.length ? `, run without ${m.unset.join(' ')}` : ''}`);
  const rows = [];
  const notes = [];
  const all = [];
  const dirs = [];
  try {
    for (const w of WORKLOADS) {
      if (opts.only && !opts.only.includes(w.id)) continue;
      const root = mkdtempSync(join(tmpdir(), `fabric-bench-${w.id}-`));
      dirs.push(root);
      log(`${w.id}: ${w.title} (${root})`);
      const cases = w.setup(root, { repo: REPO, fabric: opts.fabric });
      for (const c of cases) {
        if (c.note) notes.push(`${c.label}: ${c.note}`);
        const samples = await runCase(c, opts, log);
        rows.push(summarize(c, samples));
        all.push({ workload: w.id, case: c.label, samples });
      }
    }
  } finally {
    cleanupScratch();
    if (!opts.keep) for (const d of dirs) rmSync(d, { recursive: true, force: true });
    else log(`kept ${dirs.join(' ')}`);
  }
  const md = report(m, opts, rows, notes);
  process.stdout.write(table(rows) + '\n');
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ machine: m, opts, results: all }, null, 1));
  if (opts.write) {
    const begin = '<!-- bench:begin';
    const end = '<!-- bench:end -->';
    let text = existsSync(opts.out) ? readFileSync(opts.out, 'utf8') : '# fabric vs GNU Make: benchmark results\n\n';
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i !== -1 && j > i) text = text.slice(0, i) + md + text.slice(j + end.length);
    else text = text.trimEnd() + '\n\n' + md + '\n';
    writeFileSync(opts.out, text);
    log(`wrote ${opts.out}`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
