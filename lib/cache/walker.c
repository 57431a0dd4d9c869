/*
 * fabric's native tree walker: lists the regular files under a directory with their stats, for the
 * input patterns that name a large tree (a directory, or `dir/` + `**`). It does in one process what
 * the JavaScript walk in files.ts does with a readdir per directory and a stat per file, without
 * building a Node `Stats` object (and four `Date`s) per file. The JavaScript walk stays the reference: the caller uses this
 * only for what that walk would accept, and test/unit/cache-walker.test.ts compares the two.
 *
 * Usage: fabric-walk ROOT [SKIP...]
 *   ROOT  absolute path of a directory; SKIP: absolute paths that are neither entered nor listed.
 *   Entries named `.git` are skipped too. Directories that cannot be opened are skipped (as the
 *   JavaScript walk skips directories it cannot read); files, directories and unknown entries are told
 *   apart by d_type, else by lstat; other file types are skipped.
 *
 * Output on stdout, in the machine's byte order, written once at the end:
 *   "FWK1", a uint32 count N, then N records of 8 doubles
 *     (size, mtime seconds, mtime nanoseconds, ctime seconds, ctime nanoseconds, inode, mode, 0),
 *   then N NUL-terminated paths relative to ROOT with `/` between segments, in the records' order.
 *   A file whose lstat failed, or that is no longer a regular file, has mode -1: the caller stats it
 *   itself. The raw seconds and nanoseconds are given so that the caller computes milliseconds with
 *   exactly Node's formula.
 *
 * Exit status: 0 listed; 3 a symbolic link was found (the caller hands the pattern to fast-glob, which
 * follows links); 2 anything else (usage, ROOT not a directory, out of memory or descriptors, a write
 * error): the caller walks in JavaScript.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { EXIT_LINK = 3, EXIT_FAIL = 2, FIELDS = 8 };

static double *nums;
static size_t nums_len, nums_cap;
static char *names;
static size_t names_len, names_cap;
static uint32_t count;

static char **skips;
static int nskips;

/* The absolute path of the entry being looked at: ROOT, then the relative path; `rel_at` is where the
   relative part starts in it. */
static char *path;
static size_t path_cap, rel_at;

static void fail(void) { exit(EXIT_FAIL); }

static void *grow(void *p, size_t *cap, size_t need, size_t unit) {
  if (need <= *cap) return p;
  size_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  void *q = realloc(p, n * unit);
  if (!q) fail();
  *cap = n;
  return q;
}

static void add_file(size_t path_len, const struct stat *st) {
  nums = grow(nums, &nums_cap, nums_len + FIELDS, sizeof *nums);
  double *r = nums + nums_len;
  if (st) {
    r[0] = (double)st->st_size;
    r[1] = (double)st->st_mtim.tv_sec;
    r[2] = (double)st->st_mtim.tv_nsec;
    r[3] = (double)st->st_ctim.tv_sec;
    r[4] = (double)st->st_ctim.tv_nsec;
    r[5] = (double)st->st_ino;
    r[6] = (double)st->st_mode;
  } else {
    memset(r, 0, 6 * sizeof *r);
    r[6] = -1;
  }
  r[7] = 0;
  nums_len += FIELDS;
  size_t rel_len = path_len - rel_at;
  names = grow(names, &names_cap, names_len + rel_len + 1, 1);
  memcpy(names + names_len, path + rel_at, rel_len + 1);
  names_len += rel_len + 1;
  if (++count == UINT32_MAX) fail();
}

static int skipped(void) {
  for (int i = 0; i < nskips; i++)
    if (strcmp(path, skips[i]) == 0) return 1;
  return 0;
}

/* Walks the directory open as `dfd`, whose absolute path is path[0..len). Closes dfd. */
static void walk(int dfd, size_t len) {
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    fail();
  }
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno) fail();
      break;
    }
    const char *name = e->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    if (strcmp(name, ".git") == 0) continue;
    size_t nlen = strlen(name);
    path = grow(path, &path_cap, len + 1 + nlen + 1, 1);
    path[len] = '/';
    memcpy(path + len + 1, name, nlen + 1);
    size_t child_len = len + 1 + nlen;
    if (nskips && skipped()) continue;
    unsigned char type = e->d_type;
    struct stat st;
    int have_stat = 0;
    if (type == DT_UNKNOWN) {
      if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue; /* vanished: the JavaScript walk would not list it either */
        fail();
      }
      have_stat = 1;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
    }
    if (type == DT_LNK) exit(EXIT_LINK);
    if (type == DT_DIR) {
      int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) fail();
        if (errno == ELOOP) exit(EXIT_LINK); /* replaced by a link meanwhile */
        continue; /* unreadable or vanished: skipped, as the JavaScript walk does */
      }
      walk(sub, child_len);
      path[child_len] = 0;
      continue;
    }
    if (type != DT_REG) continue;
    if (!have_stat && fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0) have_stat = 1;
    add_file(child_len, have_stat && S_ISREG(st.st_mode) ? &st : NULL);
  }
  closedir(d);
}

static void write_all(const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(1, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail();
    }
    c += w;
    n -= (size_t)w;
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] != '/') return EXIT_FAIL;
  skips = argv + 2;
  nskips = argc - 2;
  size_t root_len = strlen(argv[1]);
  while (root_len > 1 && argv[1][root_len - 1] == '/') root_len--;
  path = grow(path, &path_cap, root_len + 256, 1);
  memcpy(path, argv[1], root_len);
  path[root_len] = 0;
  /* "/" as the root: children are "/name", and their relative part starts after the slash. */
  if (root_len == 1) root_len = 0;
  rel_at = root_len + 1;
  int fd = open(root_len ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return EXIT_FAIL;
  walk(fd, root_len);
  uint32_t header[2];
  memcpy(header, "FWK1", 4);
  header[1] = count;
  write_all(header, sizeof header);
  write_all(nums, nums_len * sizeof *nums);
  write_all(names, names_len);
  return 0;
}
