/**
 * The shell-free fast path for string commands. A string command runs as `bash -euo pipefail -c <cmd>`;
 * when `<cmd>` is one simple command made only of plain words naming an external program, bash does
 * nothing but look the program up in PATH and exec it in place (its one-command exec optimisation),
 * after adding PWD, SHLVL and `_` to the environment. `directExec` computes exactly that exec, so the
 * scheduler can skip starting bash (GNU Make has the same fast path for recipe lines without shell
 * syntax). Whenever bash could do anything else (a builtin or keyword, quoting or expansion, an
 * assignment, a redirection, a startup file from BASH_ENV, exported functions, a script without `#!`,
 * a program that is not found or not executable, an unusual SHLVL, an LC_ALL that makes bash warn),
 * it returns undefined and bash
 * runs the command as before, with its own messages and exit codes.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, realpathSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** What to exec instead of bash: `file` with `argv` (argv[0] as bash would pass it) and `env`. */
export interface DirectExec {
  readonly file: string;
  readonly argv0: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Bash 5 builtins and reserved words (`compgen -b`, `compgen -k`): a command starting with one needs bash. */
const BASH_WORDS = new Set(
  (
    '. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo enable eval exec exit ' +
    'export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return ' +
    'set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait ' +
    'if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc'
  ).split(' '),
);

/**
 * Variables with which bash does more than exec the command (startup files: BASH_ENV, and bashrc when
 * SSH_CLIENT says it runs under sshd; options; tracing; search rules), or changes the env it passes on.
 * (The spawner's stdin is /dev/null, never a socket, so bash's other sshd test does not apply.)
 */
const BASH_SENSITIVE_ENV = new Set(['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'POSIXLY_CORRECT', 'PS4', 'BASH_XTRACEFD', 'EXECIGNORE', 'OLDPWD', 'IFS', 'CDPATH', 'GLOBIGNORE', 'SSH_CLIENT', 'SSH2_CLIENT']);

/** Words bash passes through unchanged: no quoting, expansion, globbing, comment, operator or tilde. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** The command word: additionally no `=` (an assignment) and no leading `%` (a job spec). */
const PLAIN_COMMAND = /^[A-Za-z0-9_@+:,./-][A-Za-z0-9_@%+:,./-]*$/;

/**
 * What a file is to the lookup: missing, not an executable regular file, or executable and run by
 * the kernel itself (ELF or `#!`: bash runs other executables as bash scripts). The answer for a
 * file is kept with its stat and reused while size, times, mode and inode are unchanged (ctime moves
 * on any chmod, chown or ACL change, mtime on any write): one stat per command instead of stat,
 * access, open, read and close (a thousand `/bin/true` tasks ask about the same file a thousand times).
 */
type Probe = 'missing' | 'not-executable' | 'kernel' | 'script';
interface KnownProbe {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly mode: number;
  readonly probe: Probe;
}
const probes = new Map<string, KnownProbe>();

function probe(path: string): Probe {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {
    return 'missing';
  }
  if (!st) return 'missing';
  if (!st.isFile()) return 'not-executable';
  // The identity is compared field by field: a key string of it cost more than the stat (two
  // fractional milliseconds turned into text for every command).
  const known = probes.get(path);
  if (known && known.dev === st.dev && known.ino === st.ino && known.size === st.size && known.mtimeMs === st.mtimeMs && known.ctimeMs === st.ctimeMs && known.mode === st.mode) {
    return known.probe;
  }
  let result: Probe;
  try {
    accessSync(path, fsConstants.X_OK);
    result = kernelExecutable(path) ? 'kernel' : 'script';
  } catch {
    result = 'not-executable';
  }
  probes.set(path, { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, mode: st.mode, probe: result });
  return result;
}

const executable = (p: Probe): boolean => p === 'kernel' || p === 'script';

/** Whether the kernel execs the file itself (ELF or `#!`). */
function kernelExecutable(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(4);
    const n = readSync(fd, head, 0, 4, 0);
    return (n >= 2 && head[0] === 0x23 && head[1] === 0x21) || (n === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const silentLocales = new Map<string, boolean>();

/**
 * bash prints `warning: setlocale: LC_ALL: cannot change locale` on stderr when LC_ALL names a locale
 * that is not installed (LANG and the other LC_* do not make it warn). Whether it does is asked of
 * bash itself, once per value.
 */
function lcAllIsSilent(value: string, path: string | undefined): boolean {
  if (value === '' || value === 'C' || value === 'POSIX') return true;
  let silent = silentLocales.get(value);
  if (silent === undefined) {
    const r = spawnSync('bash', ['-c', ':'], { env: { LC_ALL: value, ...(path !== undefined ? { PATH: path } : {}) }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    silent = r.status === 0 && r.stderr.length === 0;
    silentLocales.set(value, silent);
  }
  return silent;
}

/** SHLVL as the exec'd program sees it after `bash -c` (bash adds one, then takes it back before exec). */
function childShlvl(value: string | undefined): string | undefined {
  if (value === undefined) return '0';
  // Other values (negative, non-numeric, >= 999 with a warning on stderr) are left to bash itself.
  const m = /^(0|[1-9][0-9]{0,2})$/.exec(value);
  return m && Number(value) <= 998 ? value : undefined;
}

/**
 * The physical path found for a working directory, kept with the directory's identity: reused while
 * the path still names that directory and the physical path still names it too (two stats instead of
 * realpath's readlink of every component, for every command). Only a directory on the physical path
 * replaced by a link to itself while fabric runs would go unnoticed.
 */
const physical = new Map<string, { readonly dev: number; readonly ino: number; readonly path: string }>();

/** PWD as bash exports it: the inherited PWD if it names the working directory, else the physical path. */
function childPwd(cwd: string, inherited: string | undefined): string | undefined {
  try {
    const here = statSync(cwd);
    // The same path names the same directory (the usual case: the task runs where fabric was started).
    if (inherited === cwd) return inherited;
    if (inherited !== undefined && isAbsolute(inherited)) {
      try {
        const there = statSync(inherited);
        if (there.dev === here.dev && there.ino === here.ino) return inherited;
      } catch {
        /* not a directory: bash uses the physical path */
      }
    }
    const known = physical.get(cwd);
    if (known && known.dev === here.dev && known.ino === here.ino) {
      const still = statSync(known.path, { throwIfNoEntry: false });
      if (still && still.dev === here.dev && still.ino === here.ino) return known.path;
    }
    const path = realpathSync.native(cwd);
    physical.set(cwd, { dev: here.dev, ino: here.ino, path });
    return path;
  } catch {
    return undefined; // the cwd is missing: let the normal path report it
  }
}

/**
 * The exec that `bash -euo pipefail -c cmd` would do in `cwd` with `env`, or undefined when bash must
 * run the command itself. Reads the file system (PATH search, one 4-byte read), so call it right
 * before spawning.
 */
export function directExec(cmd: string, cwd: string, env: Readonly<Record<string, string>>): DirectExec | undefined {
  const words = cmd.split(/[ \t]+/);
  if (words[0] === '') words.shift();
  if (words.at(-1) === '') words.pop();
  const word = words[0];
  if (word === undefined || !PLAIN_COMMAND.test(word) || BASH_WORDS.has(word)) return undefined;
  for (let i = 1; i < words.length; i++) if (!PLAIN_WORD.test(words[i]!)) return undefined;
  for (const name of Object.keys(env)) {
    if (BASH_SENSITIVE_ENV.has(name) || name.startsWith('BASH_FUNC_')) return undefined;
  }
  const shlvl = childShlvl(env['SHLVL']);
  if (shlvl === undefined) return undefined;
  const lcAll = env['LC_ALL'];
  if (lcAll !== undefined && !lcAllIsSilent(lcAll, env['PATH'])) return undefined;

  // bash's lookup: a word with a slash is a path (relative to the cwd); otherwise the first
  // executable regular file in PATH. `_` is the path as bash composed it.
  let path: string;
  let kind: Probe;
  if (word.includes('/')) {
    path = word;
    kind = probe(resolve(cwd, word));
  } else {
    const searchPath = env['PATH'];
    if (searchPath === undefined) return undefined;
    let found: string | undefined;
    kind = 'missing';
    for (const dir of searchPath.split(':')) {
      // Relative entries ('' means '.') and trailing slashes change how bash spells `_`: leave them to bash.
      if (!dir.startsWith('/') || (dir.length > 1 && dir.endsWith('/'))) {
        if (executable(probe(resolve(cwd, dir || '.', word)))) return undefined;
        continue;
      }
      const candidate = dir === '/' ? `/${word}` : `${dir}/${word}`;
      kind = probe(candidate);
      if (executable(kind)) {
        found = candidate;
        break;
      }
    }
    if (found === undefined) return undefined;
    path = found;
  }
  // Not found, not executable, or a script without `#!` (bash runs it itself): bash's own path.
  if (kind !== 'kernel') return undefined;
  const pwd = childPwd(cwd, env['PWD']);
  if (pwd === undefined) return undefined;
  return { file: path, argv0: word, args: words.slice(1), env: { ...env, PWD: pwd, SHLVL: shlvl, _: path } };
}
