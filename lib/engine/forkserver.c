/*
 * fabric's native fork server: the same protocol and the same per-command behaviour as the Perl
 * server in sched-forkserver.ts, compiled by the build when a C compiler is present (the Perl server
 * stays the fallback). Commands are started with vfork + execve: the server is suspended only until
 * the child has exec'd (or failed to), so a failure is known at once and no page tables are copied.
 *
 * Per command, what libuv does for spawn(file, args, { detached: true, stdio: ['ignore', 'pipe',
 * 'pipe'], cwd, env, argv0 }): two socketpairs for stdout/stderr, then in the child setsid() (its own
 * session and process group), stdin from /dev/null, the sockets on fds 1 and 2, chdir, every signal
 * to its default disposition and an empty signal mask, then execve along PATH as execvp does (the PATH
 * of the command's own environment; an executable that is not a binary or a script with a shebang
 * is run by /bin/sh, as glibc's execvp does). Errors are reported with the errno of the step that failed.
 *
 * Protocol (both directions): frames of u32le length + payload; payload = op byte + u32le id + body.
 * In: 'S' start (body: NUL-separated file, argv0, cwd, argc, args..., then key, value pairs of the
 * env), 'C' stop reading a command's output, 'Q' start later (body: the id of a running command in
 * decimal, a NUL, then a start body), 'K' drop a command held by 'Q'. Out: 'R' ready (body: u32le pid
 * of the server), 'P' started (u32le pid), 'F' failed (i32le errno), 'O'/'E' output bytes, 'X' exited
 * (i32le code, -1 when signalled; i32le signal; i32le 1 if its process group still had members when
 * it was reaped, else 0), 'D' both outputs closed, 'N' a held command was dropped (never started). It
 * exits when its stdin ends.
 *
 * A held command ('Q') starts when the command it waits for is reaped with exit 0, an empty process
 * group and both outputs closed: right then, before that command's 'X' goes out, so fabric sees the
 * held command's 'P' (or 'F') first. A command that ends otherwise (members left in its group, output
 * still open) has what waits for it dropped ('N'); a non-zero exit, a signal or a start that fails
 * drops every held command, and 'K' drops one: a held command never starts after a failure the
 * server has seen. The job slot goes from one command
 * to the next without a round trip through fabric (bench/RESULTS.md, twelfth pass).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct kid {
  uint32_t id;
  pid_t pid; /* 0 once reaped */
  int fd[2]; /* stdout, stderr sockets; -1 once closed */
  int used;
};

static struct kid *kids;
static size_t nkids, capkids;
static int sigpipe_r = -1, sigpipe_w = -1;

static char *obuf;
static size_t olen, ocap;

/* Commands held by 'Q' until the command `after` ends. */
struct held {
  uint32_t id, after;
  char *body; /* the start body, NUL-terminated */
  size_t len;
};
static struct held *helds;
static size_t nhelds, caphelds;
static void drop_all_held(void);

static void die(const char *what) {
  fprintf(stderr, "fabric fork server: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) die("out of memory");
  return q;
}

static void flush_out(void) {
  size_t off = 0;
  while (off < olen) {
    ssize_t n = write(1, obuf + off, olen - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      exit(0); /* fabric went away */
    }
    off += (size_t)n;
  }
  olen = 0;
}

static void put32(char *p, uint32_t v) {
  p[0] = (char)(v & 255); p[1] = (char)((v >> 8) & 255); p[2] = (char)((v >> 16) & 255); p[3] = (char)((v >> 24) & 255);
}

static uint32_t get32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] | ((uint32_t)u[1] << 8) | ((uint32_t)u[2] << 16) | ((uint32_t)u[3] << 24);
}

static void out(char op, uint32_t id, const void *data, size_t len) {
  size_t need = olen + 9 + len;
  if (need > ocap) {
    while (ocap < need) ocap = ocap ? ocap * 2 : 65536;
    obuf = xrealloc(obuf, ocap);
  }
  put32(obuf + olen, (uint32_t)(5 + len));
  obuf[olen + 4] = op;
  put32(obuf + olen + 5, id);
  if (len) memcpy(obuf + olen + 9, data, len);
  olen += 9 + len;
  if (olen > 262144) flush_out();
}

static void out_i32(char op, uint32_t id, int32_t a) {
  char b[4];
  put32(b, (uint32_t)a);
  out(op, id, b, 4);
}

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  ssize_t r = write(sigpipe_w, "c", 1);
  (void)r;
  errno = saved;
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static struct kid *find_id(uint32_t id) {
  for (size_t i = 0; i < nkids; i++) if (kids[i].used && kids[i].id == id) return &kids[i];
  return NULL;
}

static struct kid *new_kid(void) {
  for (size_t i = 0; i < nkids; i++) if (!kids[i].used) return &kids[i];
  if (nkids == capkids) {
    capkids = capkids ? capkids * 2 : 16;
    kids = xrealloc(kids, capkids * sizeof *kids);
  }
  return &kids[nkids++];
}

/* The kid is forgotten once it is reaped and both outputs are closed ('D' was sent then). */
static void close_stream(struct kid *k, int s) {
  if (k->fd[s] < 0) return;
  close(k->fd[s]);
  k->fd[s] = -1;
  if (k->fd[0] < 0 && k->fd[1] < 0) {
    out('D', k->id, NULL, 0);
    if (k->pid == 0) k->used = 0;
  }
}

/* Reads what is there (up to `rounds` reads of 64 KiB); closes the stream at EOF or on an error. */
static void read_stream(struct kid *k, int s, int rounds) {
  static char buf[65536];
  while (rounds-- > 0 && k->fd[s] >= 0) {
    ssize_t n = read(k->fd[s], buf, sizeof buf);
    if (n > 0) {
      out(s == 0 ? 'O' : 'E', k->id, buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) { rounds++; continue; }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_stream(k, s);
  }
}

/* What the vfork'd child leaves for the parent: the errno of the step that failed (0: it exec'd). */
static volatile int child_errno;

struct launch {
  char **paths;   /* candidate files to execve, in PATH order */
  size_t npaths;
  char **argv;    /* argv0, args..., NULL */
  char **shargv;  /* /bin/sh, file, args..., NULL: for ENOEXEC */
  char **envp;
  const char *cwd;
  int out_w, err_w;
};

/* Runs in the vfork'd child: only system calls, no allocation, nothing written but child_errno. */
static void child(const struct launch *l) {
  sigset_t none;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  /* The only dispositions that are not the default: main() reset all the others at start-up. */
  sigaction(SIGPIPE, &dfl, NULL);
  sigaction(SIGCHLD, &dfl, NULL);
  if (setsid() < 0) goto fail;
  int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nul < 0) goto fail;
  if (dup2(nul, 0) < 0 || dup2(l->out_w, 1) < 0 || dup2(l->err_w, 2) < 0) goto fail;
  if (chdir(l->cwd) < 0) goto fail;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int saw_eacces = 0, last = ENOENT;
  for (size_t i = 0; i < l->npaths; i++) {
    execve(l->paths[i], l->argv, l->envp);
    last = errno;
    if (errno == ENOEXEC) {
      l->shargv[1] = l->paths[i];
      execve("/bin/sh", l->shargv, l->envp);
      last = errno;
      break;
    }
    if (errno == EACCES) { saw_eacces = 1; continue; }
    if (errno == ENOENT || errno == ENOTDIR || errno == ESTALE || errno == ENODEV || errno == ETIMEDOUT) continue;
    break; /* any other error ends the search, as execvp does */
  }
  errno = saw_eacces && (last == ENOENT || last == ENOTDIR || last == ESTALE || last == ENODEV || last == ETIMEDOUT) ? EACCES : last;
fail:
  child_errno = errno ? errno : EINVAL;
  _exit(127);
}

/* vfork in a frame of its own: the child shares this stack until it execs. Returns the pid, or
   -errno when vfork failed; child_errno says whether the child exec'd. */
static pid_t __attribute__((noinline)) spawn_child(const struct launch *l) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  child_errno = 0;
  pid_t pid = vfork();
  if (pid == 0) child(l);
  int verr = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  return pid < 0 ? -verr : pid;
}

static void start(uint32_t id, char *body, size_t len) {
  /* Split the NUL-separated fields (the body is followed by a NUL added by the reader). */
  size_t nf = 0, capf = 16;
  char **f = xrealloc(NULL, capf * sizeof *f);
  char *p = body, *end = body + len;
  for (;;) {
    if (nf == capf) f = xrealloc(f, (capf *= 2) * sizeof *f);
    f[nf++] = p;
    char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) break;
    p = z + 1;
    if (p > end) break;
  }
  int32_t err = 0;
  struct launch l;
  memset(&l, 0, sizeof l);
  int o[2] = {-1, -1}, e[2] = {-1, -1};
  char *pathbuf = NULL;
  if (nf < 4) { err = EINVAL; goto done; }
  const char *file = f[0];
  long argc = strtol(f[3], NULL, 10);
  if (argc < 0 || (size_t)argc > nf - 4 || ((nf - 4 - (size_t)argc) % 2) != 0) { err = EINVAL; goto done; }
  l.cwd = f[2];
  l.argv = xrealloc(NULL, ((size_t)argc + 2) * sizeof(char *));
  l.argv[0] = f[1];
  for (long i = 0; i < argc; i++) l.argv[i + 1] = f[4 + i];
  l.argv[argc + 1] = NULL;
  l.shargv = xrealloc(NULL, ((size_t)argc + 3) * sizeof(char *));
  l.shargv[0] = "/bin/sh";
  l.shargv[1] = (char *)file;
  for (long i = 0; i < argc; i++) l.shargv[i + 2] = f[4 + i];
  l.shargv[argc + 2] = NULL;
  size_t nenv = (nf - 4 - (size_t)argc) / 2;
  l.envp = xrealloc(NULL, (nenv + 1) * sizeof(char *));
  const char *path = NULL;
  for (size_t i = 0; i < nenv; i++) {
    const char *k = f[4 + argc + 2 * i], *v = f[4 + argc + 2 * i + 1];
    size_t kl = strlen(k), vl = strlen(v);
    char *kv = xrealloc(NULL, kl + vl + 2);
    memcpy(kv, k, kl);
    kv[kl] = '=';
    memcpy(kv + kl + 1, v, vl + 1);
    l.envp[i] = kv;
    if (strcmp(k, "PATH") == 0) path = v;
  }
  l.envp[nenv] = NULL;
  /* The candidates execvp would try: the file itself when it has a slash, else each PATH entry. */
  if (file[0] == 0) { err = ENOENT; goto done; }
  if (strchr(file, '/')) {
    l.paths = xrealloc(NULL, sizeof(char *));
    l.paths[0] = (char *)file;
    l.npaths = 1;
  } else {
    if (!path) path = "/bin:/usr/bin";
    size_t fl = strlen(file), n = 1;
    for (const char *c = path; *c; c++) n += *c == ':';
    l.paths = xrealloc(NULL, n * sizeof(char *));
    pathbuf = xrealloc(NULL, strlen(path) + n * (fl + 2) + 1);
    char *w = pathbuf;
    const char *s = path;
    for (;;) {
      const char *c = strchr(s, ':');
      size_t dl = c ? (size_t)(c - s) : strlen(s);
      l.paths[l.npaths++] = w;
      if (dl) { memcpy(w, s, dl); w += dl; *w++ = '/'; } /* an empty entry is the current directory */
      memcpy(w, file, fl + 1);
      w += fl + 1;
      if (!c) break;
      s = c + 1;
    }
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, o) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e) < 0) {
    err = errno;
    goto done;
  }
  l.out_w = o[1];
  l.err_w = e[1];
  pid_t pid = spawn_child(&l);
  if (pid < 0) { err = -pid; goto done; }
  if (child_errno) {
    err = child_errno;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    goto done;
  }
  close(o[1]);
  close(e[1]);
  o[1] = e[1] = -1;
  set_nonblock(o[0]);
  set_nonblock(e[0]);
  struct kid *k = new_kid();
  k->id = id;
  k->pid = pid;
  k->fd[0] = o[0];
  k->fd[1] = e[0];
  k->used = 1;
  o[0] = e[0] = -1;
  char b[4];
  put32(b, (uint32_t)pid);
  out('P', id, b, 4);
done:
  if (err) {
    out_i32('F', id, err);
    drop_all_held();
  }
  for (int i = 0; i < 2; i++) {
    if (o[i] >= 0) close(o[i]);
    if (e[i] >= 0) close(e[i]);
  }
  if (l.envp) for (char **v = l.envp; *v; v++) free(*v);
  free(l.envp);
  free(l.argv);
  free(l.shargv);
  free(l.paths);
  free(pathbuf);
  free(f);
}

/* Drops held command i ('N'). */
static void drop_held(size_t i) {
  out('N', helds[i].id, NULL, 0);
  free(helds[i].body);
  helds[i] = helds[--nhelds];
}

static void drop_all_held(void) {
  while (nhelds > 0) drop_held(nhelds - 1);
}

/* Holds a start until the running command `after` ends; dropped at once when there is no such command. */
static void hold(uint32_t id, const char *body, size_t len) {
  const char *z = memchr(body, 0, len);
  struct kid *k = NULL;
  uint32_t after = 0;
  if (z) {
    after = (uint32_t)strtoul(body, NULL, 10);
    k = find_id(after);
  }
  if (nhelds == caphelds) {
    caphelds = caphelds ? caphelds * 2 : 8;
    helds = xrealloc(helds, caphelds * sizeof *helds);
  }
  struct held *h = &helds[nhelds++];
  h->id = id;
  h->after = after;
  h->len = z ? len - (size_t)(z + 1 - body) : 0;
  h->body = xrealloc(NULL, h->len + 1);
  if (h->len) memcpy(h->body, z + 1, h->len);
  h->body[h->len] = 0;
  if (!k || k->pid == 0) drop_held(nhelds - 1);
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (pid < 0 && errno == EINTR) continue;
      return;
    }
    struct kid *k = NULL;
    for (size_t i = 0; i < nkids; i++) if (kids[i].used && kids[i].pid == pid) { k = &kids[i]; break; }
    if (!k) continue;
    /* Output the command wrote before it exited is already in its sockets: send it before the exit
       (bounded: a process left in its group may keep writing). */
    read_stream(k, 0, 16);
    read_stream(k, 1, 16);
    char b[12];
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    put32(b, (uint32_t)(sig ? -1 : WEXITSTATUS(status)));
    put32(b + 4, (uint32_t)sig);
    /* Whether anything (a zombie included) is left in the leader's group; an empty group stays empty,
       so fabric need not look for leftovers. */
    int members = kill(-pid, 0) == 0 || errno == EPERM;
    put32(b + 8, (uint32_t)members);
    k->pid = 0;
    uint32_t id = k->id;
    int closed = k->fd[0] < 0 && k->fd[1] < 0;
    if (closed) k->used = 0;
    /* A command that may have failed (non-zero exit, signal): nothing held starts at all. One that
       left members in its group or its output open: what waits for it is dropped (fabric decides).
       Otherwise what waits for it starts now, its 'P' before this 'X'. */
    if (sig || WEXITSTATUS(status) != 0) {
      drop_all_held();
    } else {
      for (size_t i = 0; i < nhelds; i++) {
        if (helds[i].after != id) continue;
        if (members || !closed) {
          drop_held(i);
          break;
        }
        struct held h = helds[i];
        helds[i] = helds[--nhelds];
        start(h.id, h.body, h.len);
        free(h.body);
        break;
      }
    }
    out('X', id, b, 12);
  }
}

int main(void) {
  int sp[2];
  if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe");
  sigpipe_r = sp[0];
  sigpipe_w = sp[1];
  /* Every signal to its default disposition and an empty mask (as whoever started us should have
     left them), so that a command inherits only what child() resets: SIGPIPE and SIGCHLD. */
  {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGCHLD, &sa, NULL) < 0) die("sigaction");
  /* Nothing of the server's own reaches a command: stdin, stdout and stderr are close-on-exec too
     (the child's 0, 1 and 2 are dup2'd over them, which clears the flag on the copies). */
  for (int fd = 0; fd <= 2; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  set_nonblock(0);

  char *in = NULL;
  size_t inlen = 0, incap = 0;
  struct pollfd *pfd = NULL;
  /* By index: reap() may start a held command, and a new kid may move the array. */
  struct { size_t k; int s; } *who = NULL;
  size_t pcap = 0;

  char b[4];
  put32(b, (uint32_t)getpid());
  out('R', 0, b, 4);
  for (;;) {
    flush_out();
    size_t need = 2 + 2 * nkids;
    if (need > pcap) {
      pcap = need * 2;
      pfd = xrealloc(pfd, pcap * sizeof *pfd);
      who = xrealloc(who, pcap * sizeof *who);
    }
    size_t np = 0;
    pfd[np].fd = 0; pfd[np].events = POLLIN; np++;
    pfd[np].fd = sigpipe_r; pfd[np].events = POLLIN; np++;
    for (size_t i = 0; i < nkids; i++) {
      if (!kids[i].used) continue;
      for (int s = 0; s < 2; s++) {
        if (kids[i].fd[s] < 0) continue;
        pfd[np].fd = kids[i].fd[s];
        pfd[np].events = POLLIN;
        who[np].k = i;
        who[np].s = s;
        np++;
      }
    }
    int n = poll(pfd, np, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pfd[1].revents) {
      char junk[512];
      while (read(sigpipe_r, junk, sizeof junk) > 0) {}
    }
    reap();
    /* kids may have been reused by reap(): match by fd, which stays valid until close_stream(). */
    for (size_t i = 2; i < np; i++) {
      if (!pfd[i].revents || who[i].k >= nkids) continue;
      struct kid *k = &kids[who[i].k];
      int s = who[i].s;
      if (!k->used || k->fd[s] != pfd[i].fd) continue;
      read_stream(k, s, 1);
    }
    if (pfd[0].revents) {
      if (inlen + 65536 + 1 > incap) {
        incap = (inlen + 65536 + 1) * 2;
        in = xrealloc(in, incap);
      }
      ssize_t r = read(0, in + inlen, 65536);
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return 0;
      }
      if (r == 0) return 0;
      inlen += (size_t)r;
      size_t off = 0;
      while (inlen - off >= 4) {
        uint32_t len = get32(in + off);
        if (inlen - off - 4 < len) break;
        if (len >= 5) {
          char op = in[off + 4];
          uint32_t id = get32(in + off + 5);
          if (op == 'S') {
            /* NUL-terminate the body in place: move the next frame's first byte aside. */
            size_t bodyoff = off + 9, bodylen = len - 5;
            char saved = in[bodyoff + bodylen];
            in[bodyoff + bodylen] = 0;
            start(id, in + bodyoff, bodylen);
            in[bodyoff + bodylen] = saved;
          } else if (op == 'C') {
            struct kid *k = find_id(id);
            if (k) { close_stream(k, 0); close_stream(k, 1); }
          } else if (op == 'Q') {
            hold(id, in + off + 9, len - 5);
          } else if (op == 'K') {
            for (size_t i = 0; i < nhelds; i++) if (helds[i].id == id) { drop_held(i); break; }
          }
        }
        off += 4 + len;
      }
      memmove(in, in + off, inlen - off);
      inlen -= off;
    }
  }
}
