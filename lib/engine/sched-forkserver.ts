/**
 * A fork server: one small process that starts the scheduler's commands on its behalf: the native
 * server (forkserver.c, built with the package when a C compiler is present) or, failing that, the
 * Perl server below. Both speak the same protocol and start commands the same way.
 *
 * Why: `child_process.spawn` forks the whole Node process, and the main thread blocks until the child
 * has exec'd. The cost grows with the parent's size (page tables) and with CPU contention; with a
 * large graph it dominates the run (bench/RESULTS.md). Starting a command from a small process is a
 * fraction of that (the native server vforks: ~0.6 ms per /bin/true here, against ~1.3 ms for Perl's
 * fork), and the main thread only writes a request and reads replies.
 *
 * What the server does per command is what libuv does for `spawn(file, args, { detached: true,
 * stdio: ['ignore', 'pipe', 'pipe'], cwd, env, argv0 })`: two socketpairs for stdout/stderr (libuv's
 * stdio pipes are socketpairs too), fork, then in the child setsid() (a new session and process
 * group), stdin from /dev/null, the socketpairs on fds 1 and 2, chdir, the exact environment, default
 * signal dispositions, execvp; an exec failure is reported with its errno (Perl: through a
 * close-on-exec pipe, as libuv does; native: the vfork'd child leaves it in memory before it exits). The server reports the pid, output, the wait status and end-of-output. It never
 * blocks on one command: exec status, exits (SIGCHLD through a self-pipe), output and requests all go
 * through one select loop, and the replies of one loop iteration go out in one write.
 *
 * This module is only the transport (protocol and lifetime); spawn.ts decides what to launch and owns
 * the exit policy (groups, leftovers, kills), so both spawn paths behave the same.
 *
 * Protocol: frames of `u32le length` + payload, both directions. To the server: `S id` + NUL-separated
 * fields (file, argv0, cwd, argc, args..., then key/value pairs of the env) to start a command, `C id`
 * to stop reading its output; the native server also takes `Q id` + the id of a running command in
 * decimal + NUL + the fields of `S` (start it when that command ends cleanly, see `launchAfter`) and
 * `K id` (drop it). From the server: `R 0 pid` ready, `P id pid` started, `F id errno` could not
 * start, `O id bytes` / `E id bytes` output, `X id code signal members` exited (code -1 when
 * signalled; members: whether its process group still had members when it was reaped), `D id` output
 * closed, `N id` a held command dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { executable, nativeHelper } from '../util/native.js';

const PERL_CANDIDATES = ['/usr/bin/perl', '/bin/perl'];
/** The native server (forkserver.c), compiled by scripts/build.mjs into dist/ when a C compiler is present. */
export const NATIVE_SERVER_NAME = 'fabric-forkserver';

const SERVER = String.raw`
use strict; use warnings;
require POSIX; require Socket;
my ($AF_UNIX, $SOCK_STREAM, $PF_UNSPEC) = (Socket::AF_UNIX(), Socket::SOCK_STREAM(), Socket::PF_UNSPEC());
my $WNOHANG = POSIX::WNOHANG();
$SIG{PIPE} = 'IGNORE';
binmode STDIN; binmode STDOUT;
sub nonblock { my ($fh) = @_; my $fl = fcntl($fh, POSIX::F_GETFL(), 0); fcntl($fh, POSIX::F_SETFL(), $fl | POSIX::O_NONBLOCK()); }
pipe(my $sigr, my $sigw) or die "pipe: $!";
nonblock($_) for ($sigr, $sigw, \*STDIN);
$SIG{CHLD} = sub { syswrite($sigw, 'c') };
# kid: id => { pid, xr (exec status pipe, until known), fhs => [out, err], open }
my (%kid, %bypid, %byfd, %byxr);
my ($in, $obuf) = ('', '');
sub flush_out {
  while (length $obuf) {
    my $n = syswrite(STDOUT, $obuf);
    if (!defined $n) { next if $!{EINTR}; exit 0; }
    substr($obuf, 0, $n, '');
  }
}
sub out {
  my ($op, $id, $data) = @_;
  my $p = pack('a1 V', $op, $id) . (defined $data ? $data : '');
  $obuf .= pack('V', length $p) . $p;
  flush_out() if length($obuf) > 262144;
}
sub child_fail { my ($xw) = @_; syswrite($xw, pack('l<', $! + 0)); POSIX::_exit(127); }
sub start {
  my ($id, $file, $argv0, $cwd, $argc, @rest) = @_;
  my @args = splice(@rest, 0, $argc);
  my %env = @rest;
  my ($or, $ow, $er, $ew, $xr, $xw);
  socketpair($or, $ow, $AF_UNIX, $SOCK_STREAM, $PF_UNSPEC) or return out('F', $id, pack('l<', $! + 0));
  socketpair($er, $ew, $AF_UNIX, $SOCK_STREAM, $PF_UNSPEC) or do { my $e = $! + 0; close $or; close $ow; return out('F', $id, pack('l<', $e)); };
  pipe($xr, $xw) or do { my $e = $! + 0; close $_ for ($or, $ow, $er, $ew); return out('F', $id, pack('l<', $e)); };
  my $pid = fork();
  if (!defined $pid) { my $e = $! + 0; close $_ for ($or, $ow, $er, $ew, $xr, $xw); return out('F', $id, pack('l<', $e)); }
  if ($pid == 0) {
    close $_ for ($or, $er, $xr, $sigr, $sigw);
    $SIG{CHLD} = 'DEFAULT'; $SIG{PIPE} = 'DEFAULT';
    POSIX::setsid();
    open(STDIN, '<', '/dev/null') or child_fail($xw);
    open(STDOUT, '>&', $ow) or child_fail($xw);
    open(STDERR, '>&', $ew) or child_fail($xw);
    close $ow; close $ew;
    chdir($cwd) or child_fail($xw);
    %ENV = %env;
    { no warnings 'exec'; exec { $file } $argv0, @args; }
    child_fail($xw);
  }
  close $_ for ($ow, $ew, $xw);
  nonblock($xr);
  $kid{$id} = { pid => $pid, xr => $xr, fhs => [$or, $er], open => 2 };
  $bypid{$pid} = $id;
  $byxr{fileno($xr)} = $id;
}
# The exec status pipe is readable: EOF means the command exec'd, bytes are the errno of a failure.
# Called from reap() too, once the child is gone (then it never blocks). Returns whether it started.
sub exec_status {
  my ($id, $reaped) = @_;
  my $k = $kid{$id};
  my $xr = delete $k->{xr};
  delete $byxr{fileno($xr)};
  my ($st, $n) = ('', undef);
  do { $n = sysread($xr, $st, 16); } while (!defined $n && $!{EINTR});
  if (!defined $n && $!{EAGAIN} && !$reaped) { $k->{xr} = $xr; $byxr{fileno($xr)} = $id; return 2; }
  close $xr;
  if (defined $n && $n > 0) {
    waitpid($k->{pid}, 0) unless $reaped;
    delete $bypid{$k->{pid}};
    close $_ for @{$k->{fhs}};
    delete $kid{$id};
    out('F', $id, $st);
    return 0;
  }
  my ($or, $er) = @{$k->{fhs}};
  nonblock($_) for ($or, $er);
  $byfd{fileno($or)} = [$id, 'O', $or];
  $byfd{fileno($er)} = [$id, 'E', $er];
  out('P', $id, pack('V', $k->{pid}));
  return 1;
}
sub closed_one {
  my ($fd) = @_;
  my $e = delete $byfd{$fd} or return;
  close $e->[2];
  my $k = $kid{$e->[0]} or return;
  if (--$k->{open} == 0) { delete $kid{$e->[0]}; out('D', $e->[0]); }
}
sub stop_reading {
  my ($id) = @_;
  my $k = $kid{$id} or return;
  return if $k->{xr};
  for my $fh (@{$k->{fhs}}) { my $fd = fileno($fh); closed_one($fd) if defined $fd && $byfd{$fd}; }
}
# Output the command wrote before it exited is already in its sockets: send it before the exit, so
# fabric has it when it handles the exit (bounded: a process left in the group may keep writing).
sub drain {
  my ($id) = @_;
  my $k = $kid{$id} or return;
  for my $fh (@{$k->{fhs}}) {
    for (1 .. 16) {
      my $fd = fileno($fh);
      last unless defined $fd && $byfd{$fd};
      my $buf;
      my $r = sysread($fh, $buf, 65536);
      if (!defined $r) { last if $!{EAGAIN}; redo if $!{EINTR}; $r = 0; }
      if ($r > 0) { out($byfd{$fd}[1], $id, $buf); } else { closed_one($fd); last; }
    }
  }
}
sub reap {
  while ((my $pid = waitpid(-1, $WNOHANG)) > 0) {
    my $status = $?;
    my $id = delete $bypid{$pid};
    next unless defined $id;
    next if $kid{$id} && $kid{$id}{xr} && !exec_status($id, 1);
    drain($id);
    my $sig = $status & 127;
    my $members = (kill(0, -$pid) || $!{EPERM}) ? 1 : 0;
    out('X', $id, pack('l< l< l<', $sig ? -1 : ($status >> 8) & 255, $sig, $members));
  }
}
out('R', 0, pack('V', $$));
while (1) {
  flush_out();
  my $rin = '';
  vec($rin, fileno(STDIN), 1) = 1;
  vec($rin, fileno($sigr), 1) = 1;
  vec($rin, $_, 1) = 1 for (keys %byfd, keys %byxr);
  my $n = select(my $rout = $rin, undef, undef, undef);
  if ($n < 0) { next if $!{EINTR}; die "select: $!"; }
  if (vec($rout, fileno($sigr), 1)) { my $junk; sysread($sigr, $junk, 512); }
  for my $fd (keys %byxr) { exec_status($byxr{$fd}, 0) if vec($rout, $fd, 1) && $byxr{$fd}; }
  reap();
  for my $fd (keys %byfd) {
    next unless vec($rout, $fd, 1) && $byfd{$fd};
    my $e = $byfd{$fd};
    my $buf;
    my $r = sysread($e->[2], $buf, 65536);
    if (!defined $r) { next if $!{EINTR} || $!{EAGAIN}; $r = 0; }
    if ($r > 0) { out($e->[1], $e->[0], $buf); } else { closed_one($fd); }
  }
  if (vec($rout, fileno(STDIN), 1)) {
    my $r = sysread(STDIN, $in, 65536, length $in);
    if (!defined $r) { next if $!{EINTR} || $!{EAGAIN}; exit 0; }
    exit 0 if $r == 0;
    while (length($in) >= 4) {
      my $len = unpack('V', $in);
      last if length($in) < 4 + $len;
      my $msg = substr($in, 4, $len);
      substr($in, 0, 4 + $len, '');
      my ($op, $id) = unpack('a1 V', $msg);
      if ($op eq 'S') { start($id, split(/\0/, substr($msg, 5), -1)); }
      elsif ($op eq 'C') { stop_reading($id); }
    }
  }
}
`;

/** One command for the server: exactly the arguments of a detached libuv spawn. */
export interface Launch {
  readonly file: string;
  readonly argv0: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

export interface LaunchEvents {
  /** The command runs (it has exec'd) with this pid, which is also its process group id. */
  started(pid: number): void;
  /** It could not be started (setsid/chdir/exec failed, or no fork); `errno` as the OS gave it. */
  failed(errno: number): void;
  data(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /**
   * The leader was reaped: its exit code, or the signal that ended it, and whether its process group
   * still had members then (false: it was empty, and an empty group stays empty).
   */
  exit(code: number | null, signal: NodeJS.Signals | null, groupMembers: boolean): void;
  /** Both output streams ended (or, after `stopReading`, the output read so far was delivered). */
  closed(): void;
  /** The server itself went away; no more events come for this command. */
  lost(reason: string): void;
  /** A held command ('Q') was dropped: it never started and no more events come for it. */
  dropped?(): void;
}

export interface RemoteCommand {
  /** The command's id on the server. */
  readonly id: number;
  /** Stop reading the command's output; `closed` follows once what the server already read was sent. */
  stopReading(): void;
}

/**
 * A command the server holds until another one ends (`ForkServer.launchAfter`). The server starts it
 * itself when that command is reaped with exit 0, an empty process group and its output closed, and
 * reports its start ('P' or 'F') before that command's exit; in any other case, or after `cancel()`,
 * it drops it ('N'). Only the native server holds commands.
 */
export interface HeldCommand extends RemoteCommand {
  /** The server started it (or tried to: 'P' or 'F' came). */
  readonly sent: boolean;
  /** Neither started nor dropped yet: the server may still start it. */
  readonly waiting: boolean;
  /** Asks the server to drop it if it still holds it; its answer ('N', or the start) comes later. */
  cancel(): void;
}

interface Held {
  state: 'held' | 'sent' | 'dropped';
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Fields that cannot travel in the NUL-separated protocol (Node itself rejects them with its own error). */
export function launchable(l: Launch): boolean {
  const ok = (s: string) => !s.includes('\0');
  if (l.file === '' || !ok(l.file) || !ok(l.argv0) || !ok(l.cwd) || !l.args.every(ok)) return false;
  const env = l.env;
  for (const k in env) if (k === '' || k.includes('=') || !ok(k) || !ok(env[k]!)) return false;
  return true;
}

/** The body of a start request: NUL-separated file, argv0, cwd, argc, args..., then env key/value pairs. */
function startBody(l: Launch): string {
  let body = `${l.file}\0${l.argv0}\0${l.cwd}\0${l.args.length}`;
  for (const a of l.args) body += '\0' + a;
  const env = l.env;
  for (const k in env) body += '\0' + k + '\0' + env[k];
  return body;
}

function findPerl(): string | undefined {
  return PERL_CANDIDATES.find(executable);
}

/** Which server runs the commands: the native one when it was built, else Perl's. */
export type ForkServerKind = 'native' | 'perl';

export class ForkServer {
  private readonly child: ChildProcess;
  private isReady = false;
  private readonly readyWaiters: ((ready: boolean) => void)[] = [];
  private lostReason: string | undefined;
  private nextId = 1;
  private readonly commands = new Map<number, LaunchEvents>();
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private stderrTail = '';
  private refed = true;
  private readonly exitSeen = new Set<number>();
  private readonly closedSeen = new Set<number>();
  /** Commands the server holds ('Q'), by their own id, until it starts or drops them. */
  private readonly held = new Map<number, Held>();

  /**
   * Starts a server: `kind` when given, else the native one when it was built, else Perl's. Returns
   * undefined when there is none to run.
   */
  static start(kind?: ForkServerKind): ForkServer | undefined {
    const native = kind === 'perl' ? undefined : nativeHelper(NATIVE_SERVER_NAME);
    const perl = native || kind === 'native' ? undefined : findPerl();
    if (!native && !perl) return undefined;
    try {
      return native ? new ForkServer('native', native, []) : new ForkServer('perl', perl!, ['-e', SERVER]);
    } catch {
      return undefined;
    }
  }

  private constructor(
    readonly kind: ForkServerKind,
    file: string,
    args: string[],
  ) {
    // Its own session (terminal signals are fabric's to handle), no inherited environment (PERL5OPT,
    // PERL5LIB), cwd '/' so that it pins no directory. It exits when fabric closes its stdin.
    this.child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: {}, cwd: '/' });
    this.child.on('error', (e) => this.lose(`the fork server could not start: ${e.message}`));
    this.child.on('exit', (code, signal) => this.lose(`the fork server exited (${signal ?? `code ${code}`})${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`));
    this.child.stdin!.on('error', () => undefined);
    this.child.stdout!.on('data', (b: Buffer) => this.receive(b));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => (this.stderrTail = (this.stderrTail + s).slice(-1000)));
    this.setRef(false);
  }

  /** Resolves with `ready` once the server answered (true) or was lost (false), whichever comes first. */
  whenReady(): Promise<boolean> {
    if (this.isReady || this.lostReason !== undefined) return Promise.resolve(this.ready);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Whether launches go to the server (it answered and has not gone away). */
  get ready(): boolean {
    return this.isReady && this.lostReason === undefined;
  }

  /** The server's own pid. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get lost(): string | undefined {
    return this.lostReason;
  }

  launch(l: Launch, events: LaunchEvents): RemoteCommand {
    const id = this.nextId++;
    this.commands.set(id, events);
    this.setRef(true);
    this.send('S', id, startBody(l));
    return { id, stopReading: () => this.send('C', id) };
  }

  /**
   * Asks the server to start `l` by itself when the running command `after` ends cleanly (see
   * `HeldCommand`). Only the native server does; undefined for the Perl one.
   */
  launchAfter(after: number, l: Launch, events: LaunchEvents): HeldCommand | undefined {
    if (this.kind !== 'native' || this.lostReason !== undefined || !this.commands.has(after)) return undefined;
    const id = this.nextId++;
    const h: Held = { state: 'held' };
    this.held.set(id, h);
    this.commands.set(id, events);
    this.setRef(true);
    this.send('Q', id, `${after}\0${startBody(l)}`);
    let cancelled = false;
    return {
      id,
      get sent() {
        return h.state === 'sent';
      },
      get waiting() {
        return h.state === 'held';
      },
      cancel: () => {
        if (h.state !== 'held' || cancelled) return;
        cancelled = true;
        this.send('K', id);
      },
      stopReading: () => this.send('C', id),
    };
  }

  /** Ends the server (tests; normally it ends with the process). */
  close(): void {
    this.child.stdin!.end();
  }

  /** One frame: length (LE u32, of what follows), the op, the command id (LE u32), the body (UTF-8). */
  private send(op: 'S' | 'C' | 'Q' | 'K', id: number, body = ''): void {
    if (this.lostReason !== undefined) return;
    const size = Buffer.byteLength(body, 'utf8');
    const frame = Buffer.allocUnsafe(9 + size);
    frame.writeUInt32LE(5 + size, 0);
    frame[4] = op.charCodeAt(0);
    frame.writeUInt32LE(id, 5);
    if (size > 0) frame.write(body, 9, 'utf8');
    this.child.stdin!.write(frame);
  }

  /** Keeps the event loop alive only while commands are running, so an idle server never holds fabric. */
  private setRef(on: boolean): void {
    if (on === this.refed) return;
    this.refed = on;
    const handles = [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as unknown as ({ ref?(): void; unref?(): void } | null)[];
    for (const h of handles) (on ? h?.ref?.() : h?.unref?.());
  }

  private receive(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    if (this.pendingLength < 4) return;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLength);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      this.frame(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    buf = buf.subarray(off);
    this.pending = buf.length ? [buf] : [];
    this.pendingLength = buf.length;
  }

  private frame(f: Buffer): void {
    const op = String.fromCharCode(f[0]!);
    const id = f.readUInt32LE(1);
    const body = f.subarray(5);
    if (op === 'R') {
      this.isReady = true;
      for (const w of this.readyWaiters.splice(0)) w(true);
      return;
    }
    const ev = this.commands.get(id);
    if (!ev) return;
    const held = this.held.get(id);
    if (held) {
      this.held.delete(id);
      held.state = op === 'N' ? 'dropped' : 'sent';
    }
    switch (op) {
      case 'N':
        this.done(id);
        return ev.dropped?.();
      case 'P':
        return ev.started(body.readUInt32LE(0));
      case 'F':
        this.done(id);
        return ev.failed(body.readInt32LE(0));
      case 'O':
        return ev.data('stdout', Buffer.from(body));
      case 'E':
        return ev.data('stderr', Buffer.from(body));
      case 'X': {
        const code = body.readInt32LE(0);
        const sig = body.readInt32LE(4);
        const members = body.length >= 12 ? body.readInt32LE(8) !== 0 : true;
        this.exitSeen.add(id);
        ev.exit(sig ? null : code, sig ? (SIGNAL_NAMES.get(sig) ?? (`SIG${sig}` as NodeJS.Signals)) : null, members);
        if (this.closedSeen.has(id)) this.done(id);
        return;
      }
      case 'D':
        this.closedSeen.add(id);
        ev.closed();
        if (this.exitSeen.has(id)) this.done(id);
        return;
      default:
        return;
    }
  }

  private done(id: number): void {
    this.commands.delete(id);
    this.exitSeen.delete(id);
    this.closedSeen.delete(id);
    if (this.commands.size === 0) this.setRef(false);
  }

  private lose(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    for (const w of this.readyWaiters.splice(0)) w(false);
    const all = [...this.commands.values()];
    this.commands.clear();
    for (const h of this.held.values()) h.state = 'dropped';
    this.held.clear();
    this.setRef(false);
    for (const ev of all) ev.lost(reason);
  }
}
