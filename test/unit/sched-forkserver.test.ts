// The fork server (lib/engine/sched-forkserver.ts) must be indistinguishable from child_process.spawn:
// the same commands through both spawners give the same output, exit codes, signals, start errors,
// process attributes (session, group, stdio kinds, signal dispositions, open fds) and kill behaviour.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Command } from '../../lib/api/types.js';
import { groupAlive, nodeSpawner, processAlive, startForkServerSpawner, type ExitInfo, type Spawner, type StreamName } from '../../lib/engine/spawn.js';
import { ForkServer, type ForkServerKind } from '../../lib/engine/sched-forkserver.js';
import { rigTest, test, timedTest } from '../helpers/rig.js';

const ENV: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' };

interface Result {
  exit: ExitInfo;
  pid: number | undefined;
  stdout: string;
  stderr: string;
  /** Output chunks as delivered (to check that decoding never splits a character). */
  chunks: string[];
}

async function runWith(spawner: Spawner, cmd: Command, opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Result> {
  const out: Record<StreamName, string> = { stdout: '', stderr: '' };
  const chunks: string[] = [];
  const h = spawner.spawn({
    cmd,
    cwd: opts.cwd ?? '/tmp',
    env: opts.env ?? ENV,
    graceMs: 1000,
    onOutput: (s, c) => {
      out[s] += c;
      chunks.push(c);
    },
  });
  await h.started;
  const pid = h.pid;
  const exit = await h.exited;
  return { exit, pid, ...out, chunks };
}

/** Programs that report facts about themselves (exec'd directly, so /proc/self is the command as started). */
const SELF: Record<string, string[]> = {
  group: ['awk', '{ print "pgrp-is-self=" ($5 == $1 ? "yes" : "no") " session-is-self=" ($6 == $1 ? "yes" : "no") }', '/proc/self/stat'],
  signals: ['grep', '-E', '^Sig(Ign|Blk):', '/proc/self/status'],
  stdio: ['readlink', '/proc/self/fd/0', '/proc/self/fd/1', '/proc/self/fd/2'],
  fds: ['ls', '/proc/self/fd'],
  argv0: ['bash', '-c', 'echo "$0 $(pwd -P)"', 'the-argv0'],
};
/** Socket inode numbers differ from run to run. */
const normalize = (s: string) => s.replace(/\[\d+\]/g, '[]');

/** The same tests for both servers: the native one (built with the package when a C compiler is present) and Perl's. */
for (const kind of ['native', 'perl'] as ForkServerKind[]) {
  rigTest(`${kind}: the fork server and child_process.spawn give identical results`, async (rig) => {
    const server = await startForkServerSpawner(kind);
    if (!server) {
      console.log(`  (no ${kind} fork server here)`);
      return;
    }
    try {
      await rig.write({ 'file.txt': 'x', 'show.sh': '#!/bin/sh\nprintf "%s|" "$0" "$@"; echo; env | LC_ALL=C sort\n' });
      await rig.write({ 'show.sh': '#!/bin/sh\nprintf "%s|" "$0" "$@"; echo; env | LC_ALL=C sort\n', 'noshebang': 'echo "no shebang: $0 $*"\n', 'bin/tool': '#!/bin/sh\necho "tool from $0"\n' }, 0o755);
      await rig.write({ 'notexec/tool': '#!/bin/sh\necho wrong\n' });
      const big = `process.stdout.write(Buffer.from('é€😀'.repeat(40000))); process.stderr.write('x'.repeat(70000));`;
      const cases: [Command, { cwd?: string; env?: Record<string, string> }?][] = [
        ...Object.values(SELF).map((argv): [Command] => [argv]),
        [['/bin/sh', '-c', 'echo out; echo err >&2; exit 3']],
        [['/bin/sh', '-c', 'kill -TERM $$']],
        [['/bin/sh', '-c', 'kill -KILL $$']],
        [[process.execPath, '-e', big]],
        [['./show.sh', 'a b', '', 'c'], { cwd: rig.dir, env: { ...ENV, 'weird-name': 'v', EMPTY: '' } }],
        ['./show.sh plain words', { cwd: rig.dir }], // the shell-free fast path
        ["./show.sh 'quoted' $HOME", { cwd: rig.dir }], // through bash
        ['exit 7'],
        ['no-such-command-anywhere'],
        [['/no/such/binary']], // ENOENT at exec
        [['/bin/true'], { cwd: '/no/such/dir' }], // ENOENT at chdir
        [['/bin/true'], { cwd: rig.path('file.txt') }], // ENOTDIR: Node throws `spawn ENOTDIR`
        [[rig.path('file.txt')]], // EACCES
        [['/bin/true']],
        [['./noshebang', 'x'], { cwd: rig.dir }], // ENOEXEC: run by /bin/sh, as execvp does
        // PATH search in the command's own PATH: a non-executable match is skipped, an empty entry is the cwd
        [['tool'], { cwd: rig.dir, env: { ...ENV, PATH: `${rig.path('notexec')}:${rig.path('bin')}` } }],
        [['noshebang'], { cwd: rig.dir, env: { ...ENV, PATH: `/nonexistent::/bin` } }],
        [['tool'], { cwd: rig.dir, env: { ...ENV, PATH: rig.path('notexec') } }], // only a non-executable match: EACCES
      ];
      for (const [cmd, opts] of cases) {
        const a = await runWith(nodeSpawner, cmd, opts);
        const b = await runWith(server, cmd, opts);
        const label = JSON.stringify(cmd).slice(0, 120);
        assert.deepEqual({ ...b.exit, stdout: normalize(b.stdout), stderr: b.stderr }, { ...a.exit, stdout: normalize(a.stdout), stderr: a.stderr }, label);
        assert.equal(a.pid === undefined, b.pid === undefined, label);
        if (b.pid !== undefined) assert.equal(processAlive(b.pid), false, `${label}: leader still alive`);
        for (const c of b.chunks) assert.ok(!c.includes('\ufffd'), `${label}: a chunk split a character`);
      }
      // And what they report is what a detached libuv spawn gives, not only the same on both paths.
      const self = async (k: string) => normalize((await runWith(server, SELF[k]!)).stdout);
      assert.equal(await self('group'), 'pgrp-is-self=yes session-is-self=yes\n');
      assert.match(await self('signals'), /^SigBlk:\s+0+\nSigIgn:\s+0+\n$/);
      assert.equal(await self('stdio'), '/dev/null\nsocket:[]\nsocket:[]\n');
      // Open fds: exactly those a child of this process gets from Node (fds inherited without
      // close-on-exec pass to both), so nothing of the server or of other commands leaks.
      assert.equal(await self('fds'), (await runWith(nodeSpawner, SELF['fds']!)).stdout);
      assert.equal(await self('argv0'), 'the-argv0 /tmp\n');
    } finally {
      server.close();
    }
  });

  rigTest(`${kind}: many commands at once through the fork server: each gets its own output, status and start error`, async () => {
    const server = await startForkServerSpawner(kind);
    if (!server) return;
    try {
      const cmds: Command[] = [];
      for (let i = 0; i < 40; i++) {
        if (i % 10 === 3) cmds.push([`/no/such/binary-${i}`]);
        else if (i % 10 === 7) cmds.push(['/bin/sh', '-c', `kill -TERM $$`]);
        else cmds.push(['/bin/sh', '-c', `i=0; while [ $i -lt ${(i % 5) * 200} ]; do echo "${i}:$i"; i=$((i+1)); done; echo err-${i} >&2; exit ${i % 4}`]);
      }
      const [a, b] = await Promise.all([Promise.all(cmds.map((c) => runWith(nodeSpawner, c))), Promise.all(cmds.map((c) => runWith(server, c)))]);
      for (let i = 0; i < cmds.length; i++) {
        assert.deepEqual({ ...b[i]!.exit, stdout: b[i]!.stdout, stderr: b[i]!.stderr }, { ...a[i]!.exit, stdout: a[i]!.stdout, stderr: a[i]!.stderr }, JSON.stringify(cmds[i]));
      }
    } finally {
      server.close();
    }
  });

  rigTest(`${kind}: 600 commands at once through the fork server (1200+ fds in its select loop): all complete`, async () => {
    const server = await startForkServerSpawner(kind);
    if (!server) return;
    try {
      // 2 fds per running command in the server: past FD_SETSIZE (1024), which Perl's select vectors and
      // Linux's select() allow; Node raises its open-files limit at start-up and the server inherits it.
      const n = 600;
      const runs = Array.from({ length: n }, (_, i) => runWith(server, ['/bin/sh', '-c', `sleep 1; echo ${i}`]));
      const results = await Promise.all(runs);
      results.forEach((r, i) => {
        assert.equal(r.exit.code, 0, `${i}: ${r.stderr} ${r.exit.error ?? ''}`);
        assert.equal(r.stdout, `${i}\n`);
      });
      assert.equal(server.server.lost, undefined);
    } finally {
      server.close();
    }
  }, { ms: 120_000 });

  timedTest(`${kind}: whenReady says true once the server answered, false once it is lost`, async () => {
    const server = ForkServer.start(kind);
    if (!server) return;
    assert.equal(await server.whenReady(), true);
    assert.equal(await server.whenReady(), true, 'again, at once');
    process.kill(server.pid!, 'SIGKILL');
    for (let i = 0; i < 500 && server.lost === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.notEqual(server.lost, undefined);
    assert.equal(await server.whenReady(), false);
  });

  timedTest(`${kind}: the server sends what a command wrote before it exited ahead of its exit`, async () => {
    const server = ForkServer.start(kind);
    if (!server) return;
    try {
      for (let i = 0; i < 200 && !server.ready; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(server.ready);
      for (let i = 0; i < 30; i++) {
        const order: string[] = [];
        await new Promise<void>((resolve, reject) => {
          let exited = false;
          let closed = false;
          server.launch(
            { file: '/bin/sh', argv0: '/bin/sh', args: ['-c', `echo out-${i}; echo err-${i} >&2`], cwd: '/', env: { PATH: ENV['PATH']! } },
            {
              started: () => undefined,
              failed: (errno) => reject(new Error(`failed ${errno}`)),
              data: (stream, chunk) => order.push(`${stream}:${chunk.toString('utf8').trim()}`),
              exit: (code) => {
                order.push(`exit:${code}`);
                exited = true;
                if (closed) resolve();
              },
              closed: () => {
                closed = true;
                if (exited) resolve();
              },
              lost: (reason) => reject(new Error(reason)),
            },
          );
        });
        assert.equal(order.at(-1), 'exit:0', order.join(' '));
        assert.deepEqual(order.slice(0, -1).sort(), [`stderr:err-${i}`, `stdout:out-${i}`]);
      }
    } finally {
      server.close();
    }
  });

  timedTest(`${kind}: the exit report says whether the leader's process group still had members`, async () => {
    const server = ForkServer.start(kind);
    if (!server) return;
    try {
      for (let i = 0; i < 200 && !server.ready; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(server.ready);
      const members = (script: string) =>
        new Promise<{ members: boolean; pid: number }>((resolve, reject) => {
          let pid = 0;
          server.launch(
            { file: '/bin/sh', argv0: '/bin/sh', args: ['-c', script], cwd: '/', env: { PATH: ENV['PATH']! } },
            { started: (p) => (pid = p), failed: (e) => reject(new Error(`failed ${e}`)), data: () => undefined, exit: (_c, _s, m) => resolve({ members: m, pid }), closed: () => undefined, lost: (r) => reject(new Error(r)) },
          );
        });
      assert.equal((await members('exit 0')).members, false);
      const left = await members('sleep 30 >/dev/null 2>&1 & exit 0');
      assert.equal(left.members, true);
      process.kill(-left.pid, 'SIGKILL');
    } finally {
      server.close();
    }
  });

  rigTest(`${kind}: through the fork server: leftovers in the group are killed and reported; terminate kills the group`, async (rig) => {
    const server = await startForkServerSpawner(kind);
    if (!server) return;
    try {
      const pids = rig.path('pids');
      // The leader exits while a member of its group still runs.
      const left = await runWith(server, ['bash', '-c', `sleep 30 & echo $! > ${pids}; exit 0`]);
      assert.equal(left.exit.code, 0);
      assert.equal(left.exit.leftovers, true);
      const member = Number(readFileSync(pids, 'utf8'));
      assert.equal(processAlive(member), false, 'the leftover member survived');

      // terminate(): SIGTERM to the whole group, SIGKILL after the grace period for a member ignoring it.
      const h = server.spawn({ cmd: ['bash', '-c', `trap '' TERM; sleep 30 & echo $! > ${pids}; wait`], cwd: rig.dir, env: ENV, graceMs: 300, onOutput: () => undefined });
      await h.started;
      for (let i = 0; i < 200 && readFileSync(pids, 'utf8').trim() === String(member); i++) await new Promise((r) => setTimeout(r, 10));
      const child = Number(readFileSync(pids, 'utf8'));
      await h.terminate(300);
      const exit = await h.exited;
      assert.equal(exit.signal, 'SIGKILL');
      assert.equal(groupAlive(h.pid!), false);
      assert.equal(processAlive(child), false);
    } finally {
      server.close();
    }
  });

  rigTest(`${kind}: a fork server that dies: running commands end with an error and their groups are killed; later commands still run`, async (rig) => {
    const server = await startForkServerSpawner(kind);
    if (!server) return;
    try {
      const h = server.spawn({ cmd: ['sleep', '30'], cwd: rig.dir, env: ENV, graceMs: 300, onOutput: () => undefined });
      await h.started;
      process.kill(server.server.pid!, 'SIGKILL');
      const exit = await h.exited;
      assert.match(exit.error ?? '', /fork server exited .*while the command ran/);
      assert.equal(processAlive(h.pid!), false);
      // The next command goes through child_process.spawn.
      const r = await runWith(server, ['/bin/sh', '-c', 'echo still works']);
      assert.equal(r.stdout, 'still works\n');
    } finally {
      server.close();
    }
  });
}

timedTest('the native fork server is built whenever a C compiler is present, and is the default', async () => {
  const { spawnSync } = await import('node:child_process');
  const cc = ['cc', 'gcc', 'clang'].some((c) => !spawnSync(c, ['--version']).error);
  const server = ForkServer.start();
  try {
    if (!cc) {
      console.log('  (no C compiler here: the Perl server is the default)');
      assert.notEqual(server?.kind, 'native');
      return;
    }
    assert.equal(server?.kind, 'native');
  } finally {
    server?.close();
  }
});

timedTest('native: silent long commands are reported started at once, also while more start (a started frame is never held until the exit)', async () => {
  const server = ForkServer.start('native');
  if (!server) return; // no C compiler here (the test above says whether that is so)
  try {
    assert.ok(await server.whenReady());
    const t0 = Date.now();
    const started: number[] = [];
    const exited: Promise<void>[] = [];
    // Twenty `sleep 2` started 1 ms apart: each start adds a 'started' frame while earlier ones are held.
    for (let i = 0; i < 20; i++) {
      exited.push(
        new Promise<void>((resolve, reject) => {
          server.launch({ file: '/bin/sleep', argv0: 'sleep', args: ['2'], cwd: '/', env: ENV }, {
            started: () => started.push(Date.now() - t0),
            failed: (errno) => reject(new Error(`failed: ${errno}`)),
            data: () => undefined,
            exit: () => undefined,
            closed: () => resolve(),
            lost: (r) => reject(new Error(r)),
          });
        }),
      );
      await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(started.length, 20, 'every command reported started within a second of a two-second run');
    await Promise.all(exited);
  } finally {
    server.close();
  }
}, { ms: 20_000 });

/** A spawn spec whose output is collected. */
function collecting(cmd: Command, out: { text: string }): Parameters<Spawner['spawn']>[0] {
  return { cmd, cwd: '/tmp', env: ENV, graceMs: 1000, onOutput: (_s, c) => (out.text += c) };
}

rigTest('native: a held command starts when the one it waits for exits 0, reported before that exit', async (rig) => {
  const sp = await startForkServerSpawner('native');
  if (!sp) return; // no C compiler here
  try {
    const a = sp.spawn(collecting(['/bin/sh', '-c', 'sleep 0.2; echo a'], { text: '' }));
    await a.started;
    const out = { text: '' };
    const held = sp.after!(a, collecting(['/bin/sh', '-c', `echo b; touch ${rig.path('b-ran')}`], out));
    assert.ok(held && held.waiting && !held.sent);
    let sentAtExit: boolean | undefined;
    const exit = await a.exited.then((e) => ((sentAtExit = held.sent), e));
    assert.equal(exit.code, 0);
    assert.equal(sentAtExit, true, "the held command's start came before the exit of the one it waited for");
    await held.settled;
    assert.equal((await held.handle.exited).code, 0);
    assert.equal(out.text, 'b\n');
    assert.ok(rig.exists('b-ran'));
    // The Perl server holds nothing: the scheduler starts the next node itself there.
    const perl = await startForkServerSpawner('perl');
    if (perl) {
      try {
        const p = perl.spawn(collecting(['/bin/sleep', '0.1'], { text: '' }));
        await p.started;
        assert.equal(perl.after!(p, collecting(['/bin/true'], { text: '' })), undefined);
        await p.exited;
      } finally {
        perl.close();
      }
    }
  } finally {
    sp.close();
  }
});

rigTest('native: a held command is dropped, never started, when the one it waits for fails, leaves its group, when another command fails, or when cancelled', async (rig) => {
  const sp = await startForkServerSpawner('native');
  if (!sp) return;
  try {
    const cases: [string, Command, (a: ReturnType<Spawner['spawn']>) => Promise<void>][] = [
      ['exit 3', ['/bin/sh', '-c', 'sleep 0.1; exit 3'], async () => undefined],
      ['killed', ['/bin/sleep', '5'], async (a) => void (await a.terminate(100))],
      ['group left', ['/bin/sh', '-c', 'sleep 1 & sleep 0.1'], async () => undefined],
      ['output left open', ['/bin/sh', '-c', 'setsid sleep 1 & sleep 0.1'], async () => undefined],
      ['another command failed', ['/bin/sleep', '0.4'], async () => void (await sp.spawn(collecting(['/bin/sh', '-c', 'exit 1'], { text: '' })).exited)],
      ['cancelled', ['/bin/sleep', '0.2'], async () => undefined],
    ];
    for (const [name, cmd, meanwhile] of cases) {
      const a = sp.spawn(collecting(cmd, { text: '' }));
      await a.started;
      const marker = rig.path(`ran-${name.replace(/ /g, '-')}`);
      const held = sp.after!(a, collecting(['/bin/sh', '-c', `touch '${marker}'`], { text: '' }));
      assert.ok(held?.waiting, name);
      if (name === 'cancelled') held.cancel();
      await meanwhile(a);
      await held.settled;
      await a.exited;
      assert.equal(held.sent, false, name);
      assert.equal(held.waiting, false, name);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(rig.exists(`ran-${name.replace(/ /g, '-')}`), false, `${name}: the held command ran`);
    }
  } finally {
    sp.close();
  }
}, { ms: 30_000 });

rigTest('native: a command that leaves its output open drops only what waits for it; a failure drops what waits for any', async (rig) => {
  const sp = await startForkServerSpawner('native');
  if (!sp) return;
  try {
    const open = sp.spawn(collecting(['/bin/sh', '-c', 'setsid sleep 1 & sleep 0.1'], { text: '' }));
    const other = sp.spawn(collecting(['/bin/sleep', '0.4'], { text: '' }));
    await Promise.all([open.started, other.started]);
    const behindOpen = sp.after!(open, collecting(['/bin/true'], { text: '' }))!;
    const behindOther = sp.after!(other, collecting(['/bin/sh', '-c', `touch '${rig.path('ran')}'`], { text: '' }))!;
    await behindOpen.settled;
    assert.equal(behindOpen.sent, false, 'started behind a command whose output stayed open');
    assert.equal(behindOther.waiting, true, 'dropped although its own command is still running cleanly');
    await behindOther.settled;
    assert.equal(behindOther.sent, true);
    assert.equal((await behindOther.handle.exited).code, 0);
    assert.ok(rig.exists('ran'));
    await open.exited;
    // A non-zero exit anywhere drops what waits behind every other command.
    const slow = sp.spawn(collecting(['/bin/sleep', '0.4'], { text: '' }));
    await slow.started;
    const behindSlow = sp.after!(slow, collecting(['/bin/true'], { text: '' }))!;
    await sp.spawn(collecting(['/bin/sh', '-c', 'exit 2'], { text: '' })).exited;
    await behindSlow.settled;
    assert.equal(behindSlow.sent, false);
    await slow.exited;
  } finally {
    sp.close();
  }
}, { ms: 20_000 });

timedTest('an idle fork server does not keep the process alive', async () => {
  const { spawnSync } = await import('node:child_process');
  const url = new URL('../../lib/engine/spawn.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(url)}); const s = await m.startForkServerSpawner(); if (s) { const h = s.spawn({ cmd: ['/bin/true'], cwd: '/', env: {}, graceMs: 100, onOutput() {} }); await h.exited; } console.log('done');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'done\n');
});

test.run();
