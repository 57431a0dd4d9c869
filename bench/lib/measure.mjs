// Timing one command: wall-clock time measured here around a synchronous spawn, and peak RSS and CPU
// time of the command from GNU time (`/usr/bin/time -f '%M %U %S'`: the child's ru_maxrss in KiB, and
// its user and system seconds, including the children it waited for), and on Linux the machine's idle
// CPU time during the run (/proc/stat). Both tools go through the same wrapper, so its own fork/exec
// cost is in every sample alike (and in the floor).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => {
  if (!existsSync(p)) return false;
  const r = spawnSync(p, ['--version'], { encoding: 'utf8' });
  return /GNU/.test(`${r.stdout}${r.stderr}`);
});

/** Clock ticks per second of /proc/stat (USER_HZ), or undefined where there is no /proc/stat. */
const CLK_TCK = (() => {
  if (!existsSync('/proc/stat')) return undefined;
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const hz = Number.parseInt(r.stdout, 10);
  return Number.isFinite(hz) && hz > 0 ? hz : 100;
})();

/** The machine's idle time so far (idle + iowait of every CPU, /proc/stat), in ms; undefined off Linux. */
function idleMsSoFar() {
  if (CLK_TCK === undefined) return undefined;
  const f = readFileSync('/proc/stat', 'utf8');
  const cpu = f.slice(0, f.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  return ((cpu[3] ?? 0) + (cpu[4] ?? 0)) * (1000 / CLK_TCK);
}

const scratch = mkdtempSync(join(tmpdir(), 'fabric-bench-time-'));
const rssFile = join(scratch, 'rss');

/**
 * Runs `file args` in `cwd` with `env`, output piped into this process (as a CI log collector would)
 * and discarded. Returns wall ms, peak RSS in KiB (undefined without GNU time), exit code, output size.
 */
export function timeCommand(file, args, { cwd, env }) {
  const argv = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, file, ...args]] : [file, args];
  const idle0 = idleMsSoFar();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv[1], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const idle1 = idleMsSoFar();
  // CPU time no process used while the command ran (all CPUs; other load on the machine lowers it).
  const idleMs = idle0 === undefined || idle1 === undefined ? undefined : idle1 - idle0;
  let rssKiB;
  let cpuMs;
  if (GNU_TIME) {
    // The last line: GNU time writes "Command exited with non-zero status N" before it on a failure.
    const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
    const [rss, user, sys] = lines[lines.length - 1].split(' ').map(Number);
    rssKiB = Number.isFinite(rss) ? rss : undefined;
    cpuMs = Number.isFinite(user) && Number.isFinite(sys) ? (user + sys) * 1000 : undefined;
  }
  if (r.error) throw r.error;
  return { ms, rssKiB, cpuMs, idleMs, code: r.status, signal: r.signal, outBytes: r.stdout.length, stderr: r.stderr.toString('utf8'), stdout: r.stdout };
}

export function cleanupScratch() {
  rmSync(scratch, { recursive: true, force: true });
}

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The file system's speed at creating small files right now: 500 files of 600 bytes written and
 * renamed into place (as cache entries and evidence records are), in µs per file (median of three
 * rounds). On the shared VM this drifts by several times within an hour; the evidence records make
 * the default configuration's cases follow it, so every run reports it at its start and end.
 */
export function fileCreationMicros(files = 500) {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-bench-fs-'));
  const data = 'x'.repeat(600);
  const rounds = [];
  try {
    for (let r = 0; r < 3; r++) {
      const sub = join(dir, String(r));
      mkdirSync(sub);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < files; i++) {
        writeFileSync(join(sub, `${i}.tmp`), data);
        renameSync(join(sub, `${i}.tmp`), join(sub, String(i)));
      }
      rounds.push(Number(process.hrtime.bigint() - t0) / 1e3 / files);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return median(rounds);
}

/**
 * Microseconds to start and reap one process (`/bin/true`, from a shell loop: fork + exec + wait, what
 * Make pays per recipe line), the median of three rounds. It moves every ratio against Make: where
 * starting a process is dear, Make's own time grows and fabric's overhead weighs less.
 */
export function processStartMicros(n = 200) {
  const rounds = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync('/bin/sh', ['-c', `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`], { stdio: 'ignore' });
    if (res.status !== 0) return NaN;
    rounds.push(Number(process.hrtime.bigint() - t0) / 1e3 / n);
  }
  return median(rounds);
}

