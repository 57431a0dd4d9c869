// The shell-free fast path for string commands (lib/engine/sched-direct.ts): bash itself is the oracle.
// Every command that takes the fast path must give the program exactly the argv, env and cwd that
// `bash -euo pipefail -c` gives it; everything else must be left to bash.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { directExec } from '../../lib/engine/sched-direct.js';
import { groupSpawner, type StreamName } from '../../lib/engine/spawn.js';
import { launchable } from '../../lib/engine/sched-forkserver.js';
import { rigTest, test } from '../helpers/rig.js';

const PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
const ENV: Record<string, string> = { PATH, HOME: '/nonexistent-home', LANG: 'C.UTF-8' };

/** Prints its argv[0] (as the process sees it: $0 of a sh script), its arguments and its environment. */
const SHOW = `#!/bin/sh\nprintf 'argv0=%s\\n' "$0"\nfor a in "$@"; do printf 'arg=%s\\n' "$a"; done\nenv | LC_ALL=C sort\n`;

function viaBash(cmd: string, cwd: string, env: Record<string, string>) {
  // stdin from /dev/null as the spawner gives it (bash reads bashrc files when stdin is a socket).
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', cmd], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function viaDirect(cmd: string, cwd: string, env: Record<string, string>) {
  const d = directExec(cmd, cwd, env);
  assert.ok(d, `expected the fast path for ${JSON.stringify(cmd)}`);
  // The spawner checks only the bash launch for the fork server's protocol: the direct one must pass too.
  assert.ok(launchable({ file: d.file, argv0: d.argv0, args: d.args, cwd, env: d.env }), `the direct launch of ${JSON.stringify(cmd)} can be sent`);
  const r = spawnSync(d.file, [...d.args], { cwd, env: { ...d.env }, argv0: d.argv0, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

rigTest('the fast path gives the program the same argv, env and exit code as bash -c', async (rig) => {
  await rig.write({ 'bin/show': SHOW, 'sub/show.sh': SHOW, 'real/.keep': '' }, 0o755);
  symlinkSync(rig.path('real'), rig.path('link'));
  const env = { ...ENV, PATH: `${rig.path('bin')}:${PATH}` };
  const cases: [cmd: string, cwd: string, env: Record<string, string>][] = [
    ['show', rig.dir, env],
    ['  show  a-b c=d e:f,g@h%i+j ./k  ', rig.dir, env],
    [`${rig.path('bin', 'show')} x`, rig.dir, env],
    ['./sub/show.sh one two', rig.dir, env],
    ['sub/show.sh', rig.dir, env],
    // The physical path as PWD when the cwd is reached through a symlink and no PWD is inherited ...
    ['show', rig.path('link'), env],
    // ... and the inherited PWD when it names the cwd (bash keeps the logical path).
    ['show', rig.path('link'), { ...env, PWD: rig.path('link') }],
    ['show', rig.path('real'), { ...env, PWD: '/tmp' }],
    ['show', rig.dir, { ...env, SHLVL: '3' }],
    ['show', rig.dir, { ...env, SHLVL: '0' }],
    ['show', rig.dir, { ...env, 'weird-name': 'kept' }],
    ['show', rig.dir, { ...env, LC_ALL: 'C', LANG: 'xx_XX.no-such-locale' }], // only LC_ALL makes bash warn
  ];
  for (const [cmd, cwd, e] of cases) {
    const a = viaBash(cmd, cwd, e);
    const b = viaDirect(cmd, cwd, e);
    assert.equal(a.code, 0, `${cmd}: ${a.stderr}`);
    assert.deepEqual(b, a, `${JSON.stringify(cmd)} in ${cwd}`);
  }
  // A real ELF program found in PATH, with its exit status.
  // The order of environment entries is bash's hash order, which is not reproduced (nor meaningful).
  const sorted = (r: ReturnType<typeof viaBash>) => ({ ...r, stdout: r.stdout.split('\n').sort().join('\n') });
  for (const cmd of ['/bin/true', 'env']) assert.deepEqual(sorted(viaDirect(cmd, rig.dir, ENV)), sorted(viaBash(cmd, rig.dir, ENV)), cmd);
  // Without PATH, bash exports none: a path still takes the fast path with the same env.
  assert.deepEqual(sorted(viaDirect('/usr/bin/env', rig.dir, { HOME: '/' })), sorted(viaBash('/usr/bin/env', rig.dir, { HOME: '/' })));
  const f = viaBash('/bin/false', rig.dir, ENV);
  assert.deepEqual(viaDirect('/bin/false', rig.dir, ENV), f);
  assert.equal(f.code, 1);
});

rigTest('everything bash could treat differently is left to bash', async (rig) => {
  await rig.write({ 'noshebang.sh': 'echo hi\n', 'bin/tool': '#!/bin/sh\n' }, 0o755);
  await rig.write({ 'plain.txt': 'x', 'bin/noexec': '#!/bin/sh\n' });
  const env = { ...ENV, PATH: `${rig.path('bin')}:${PATH}` };
  const cases: [string, Record<string, string>?][] = [
    [''],
    ['   '],
    ['echo hi'], // builtins and keywords
    ['true'],
    ['test -f x'],
    ['[ -f x ]'],
    ['cd /'],
    ['exit 3'],
    ['time /bin/true'],
    ['if'],
    ['. ./x'],
    [': x'],
    ['FOO=1 /bin/true'], // an assignment
    ['/bin/true > out'], // redirections and operators
    ['/bin/true 2>&1'],
    ['/bin/true; /bin/false'],
    ['/bin/true && /bin/false'],
    ['/bin/true | /bin/cat'],
    ['/bin/true &'],
    ["/bin/echo 'a b'"], // quoting and expansions
    ['/bin/echo "a"'],
    ['/bin/echo a\\ b'],
    ['/bin/echo $HOME'],
    ['/bin/echo ~'],
    ['/bin/echo *.txt'],
    ['/bin/echo a?'],
    ['/bin/echo [a]'],
    ['/bin/echo {a,b}'],
    ['/bin/echo $(id)'],
    ['/bin/echo `id`'],
    ['/bin/echo a # comment'],
    ['/bin/echo !x'],
    ['/bin/true\n/bin/false'],
    ['%1'],
    ['no-such-program-anywhere'], // lookup failures: bash says why, with its exit code
    ['./plain.txt'],
    ['./noshebang.sh'], // bash runs it as a bash script
    ['noexec'],
    ['bin'], // a directory
    ['/bin/true', { ...env, BASH_ENV: '/dev/null' }], // env that changes what bash does
    ['/bin/true', { ...env, 'BASH_FUNC_f%%': '() { :; }' }],
    ['/bin/true', { ...env, SHELLOPTS: 'xtrace' }],
    ['/bin/true', { ...env, SHLVL: '999' }],
    ['/bin/true', { ...env, SHLVL: 'abc' }],
    ['/bin/true', { ...env, OLDPWD: '/nonexistent' }],
    ['/bin/true', { ...env, SSH_CLIENT: '10.0.0.1 22 22' }], // bash then reads bashrc files
    ['/bin/true', { ...env, LC_ALL: 'xx_XX.no-such-locale' }], // bash warns on stderr
    ['tool', { HOME: '/' }], // no PATH to search
    ['tool', { ...env, PATH: `bin:${PATH}` }], // a relative PATH entry would decide the spelling of $_
    ['tool', { ...env, PATH: `${rig.path('bin')}/:${PATH}` }],
  ];
  for (const [cmd, e] of cases) assert.equal(directExec(cmd, rig.dir, e ?? env), undefined, JSON.stringify(cmd));
  // And the positive control for the same directory: a plain program is taken.
  assert.equal(directExec('tool a', rig.dir, env)?.file, rig.path('bin', 'tool'));
  assert.equal(directExec('/bin/true', rig.path('missing-dir'), env), undefined);
});

rigTest('what is known about a program is dropped as soon as it changes: content, mode, or the file itself', async (rig) => {
  await rig.write({ 'bin/tool': '#!/bin/sh\n', 'bin/later': '#!/bin/sh\n' }, 0o755);
  const env = { ...ENV, PATH: `${rig.path('bin')}:${PATH}` };
  const tool = rig.path('bin', 'tool');
  assert.equal(directExec('tool', rig.dir, env)?.file, tool);
  assert.equal(directExec('./bin/tool', rig.dir, env)?.file, './bin/tool');
  // Rewritten in place without a #! (same inode, same size): bash would run it as a script.
  writeFileSync(tool, 'echo hi!!\n');
  assert.equal(directExec('tool', rig.dir, env), undefined, 'rewritten without #!');
  assert.equal(directExec('./bin/tool', rig.dir, env), undefined, 'rewritten without #! (by path)');
  writeFileSync(tool, '#!/bin/sh\n');
  assert.equal(directExec('tool', rig.dir, env)?.file, tool, 'a #! again');
  chmodSync(tool, 0o644);
  assert.equal(directExec('tool', rig.dir, env)?.file, undefined, 'no longer executable: the lookup goes on along PATH, bash reports it');
  chmodSync(tool, 0o755);
  assert.equal(directExec('tool', rig.dir, env)?.file, tool);
  // Replaced by another file (a new inode), then removed.
  renameSync(rig.path('bin', 'later'), tool);
  assert.equal(directExec('tool', rig.dir, env)?.file, tool);
  rmSync(tool);
  assert.equal(directExec('tool', rig.dir, env), undefined, 'removed');
  // A program that appears earlier in PATH is found there from then on.
  await rig.write({ 'first/.keep': '' });
  const both = { ...ENV, PATH: `${rig.path('first')}:${PATH}` };
  assert.equal(directExec('env', rig.dir, both)?.file?.startsWith(rig.path('first')), false);
  await rig.write({ 'first/env': '#!/bin/sh\n' }, 0o755);
  assert.equal(directExec('env', rig.dir, both)?.file, rig.path('first', 'env'), 'found earlier in PATH once it exists');
});

rigTest('the physical working directory is found again when the directory moves or is replaced', async (rig) => {
  await rig.write({ 'real/.keep': '' });
  symlinkSync(rig.path('real'), rig.path('link'));
  const env = { ...ENV };
  const pwd = (cwd: string) => directExec('/bin/true', cwd, env)?.env['PWD'];
  assert.equal(pwd(rig.path('link')), realpathSync(rig.path('real')));
  assert.equal(pwd(rig.path('link')), realpathSync(rig.path('real')), 'again');
  // The directory moves and the link follows it: the same directory, a new physical path.
  renameSync(rig.path('real'), rig.path('moved'));
  rmSync(rig.path('link'));
  symlinkSync(rig.path('moved'), rig.path('link'));
  assert.equal(pwd(rig.path('link')), realpathSync(rig.path('moved')));
  // Another directory behind the same path.
  rmSync(rig.path('link'));
  await rig.write({ 'other/.keep': '' });
  symlinkSync(rig.path('other'), rig.path('link'));
  assert.equal(pwd(rig.path('link')), realpathSync(rig.path('other')));
  // Bash is the oracle for the last one.
  assert.equal(viaBash('printf %s "$PWD"', rig.path('link'), env).stdout, realpathSync(rig.path('other')));
});

async function spawnOutput(cmd: string, cwd: string, env: Record<string, string>) {
  const out: Record<StreamName, string> = { stdout: '', stderr: '' };
  const h = groupSpawner.spawn({ cmd, cwd, env, graceMs: 1000, onOutput: (s, c) => (out[s] += c) });
  const exit = await h.exited;
  return { code: exit.code, signal: exit.signal, error: exit.error, ...out };
}

rigTest('the default spawner runs plain string commands directly, with bash-identical results', async (rig) => {
  await rig.write({ 'bin/show': SHOW }, 0o755);
  const env = { ...ENV, PATH: `${rig.path('bin')}:${PATH}` };
  for (const cmd of ['show a b', '/bin/false', 'show $HOME', "show 'quoted arg'", 'no-such-program-anywhere']) {
    const a = viaBash(cmd, rig.dir, env);
    const b = await spawnOutput(cmd, rig.dir, env);
    assert.equal(b.code, a.code, cmd);
    assert.equal(b.stdout, a.stdout, cmd);
    assert.equal(b.stderr, a.stderr, cmd);
    assert.equal(b.error, undefined);
  }
});

test.run();
