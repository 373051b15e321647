/*
 * mdbench: a small metadata workload for `cudele bench`.
 *
 * W worker processes (fork), each in its own directory under DIR, together
 * make N empty files (open O_CREAT|O_EXCL + close; with --fsync, fsync before
 * the close), then stat them, then unlink them. The phases are timed from the
 * parent: every worker waits at a barrier before each phase, and a phase ends
 * when the last worker has finished it, so ops/s is the aggregate rate of all
 * workers (wall clock).
 *
 *   cc -O2 -o mdbench scripts/bench/mdbench.c
 *   mdbench DIR [--files N] [--workers W] [--dirs D] [--fsync]
 *               [--phases create,stat,unlink] [--tag NAME]
 *
 *   --files N     files in all (default 20000), split evenly over the workers
 *   --workers W   worker processes (default 1)
 *   --dirs D      subdirectories per worker (default 1: files go straight into
 *                 the worker's directory DIR/NAME.wK; otherwise DIR/NAME.wK/dJ,
 *                 files spread round-robin)
 *   --fsync       fsync every file before closing it (the durable case)
 *   --phases P    comma-separated subset of create,stat,unlink, run in that
 *                 order (default all three); a later invocation with the same
 *                 --tag can run the phases an earlier one left out
 *   --tag NAME    prefix of the worker directories (default mdb)
 *
 * Directories are made (mkdir -p) before the first phase and are not timed;
 * after an unlink phase they are removed again (not timed).
 *
 * Prints one line of JSON on stdout:
 *   {"files":N,"workers":W,"dirs":D,"fsync":false,
 *    "phases":{"create":{"ops":N,"seconds":S,"ops_per_s":R},...}}
 * Exits 1 (with a message on stderr) if any call fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CREATE, STAT, UNLINK, NPHASES };
static const char *phase_names[NPHASES] = { "create", "stat", "unlink" };

static const char *root;
static long nfiles = 20000;
static long nworkers = 1;
static long ndirs = 1;
static int do_fsync = 0;
static int phases[NPHASES];
static const char *tag = "mdb";

static double now (void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage (const char *why)
{
  fprintf(stderr, "mdbench: %s\n", why);
  fprintf(stderr, "usage: mdbench DIR [--files N] [--workers W] [--dirs D] [--fsync] [--phases create,stat,unlink] [--tag NAME]\n");
  exit(2);
}

static long number (const char *s, const char *what)
{
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1) {
    fprintf(stderr, "mdbench: %s must be a positive integer, not '%s'\n", what, s);
    exit(2);
  }
  return v;
}

static void parse_phases (const char *s)
{
  char *copy = strdup(s), *save = NULL;
  memset(phases, 0, sizeof(phases));
  for (char *p = strtok_r(copy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
    int found = 0;
    for (int i = 0; i < NPHASES; i++) {
      if (strcmp(p, phase_names[i]) == 0) { phases[i] = 1; found = 1; }
    }
    if (!found) usage("unknown phase (create, stat, unlink)");
  }
  free(copy);
}

/* The files of worker w: indices w, w + W, w + 2W, ... below N. */
static long count_of (long w)
{
  return nfiles / nworkers + (w < nfiles % nworkers ? 1 : 0);
}

static void dir_of (long w, long j, char *buf, size_t len)
{
  if (ndirs == 1) snprintf(buf, len, "%s/%s.w%ld", root, tag, w);
  else snprintf(buf, len, "%s/%s.w%ld/d%ld", root, tag, w, j % ndirs);
}

static void path_of (long w, long j, char *buf, size_t len)
{
  char dir[4000];
  dir_of(w, j, dir, sizeof(dir));
  snprintf(buf, len, "%s/f%ld", dir, j);
}

static void die (const char *what, const char *path)
{
  fprintf(stderr, "mdbench: %s %s: %s\n", what, path, strerror(errno));
  _exit(1);
}

static void mkdir_ok (const char *path)
{
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
}

static void setup (long w)
{
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s.w%ld", root, tag, w);
  mkdir_ok(path);
  if (ndirs > 1) {
    for (long j = 0; j < ndirs; j++) {
      dir_of(w, j, path, sizeof(path));
      mkdir_ok(path);
    }
  }
}

static void teardown (long w)
{
  char path[4096];
  if (ndirs > 1) {
    for (long j = 0; j < ndirs; j++) {
      dir_of(w, j, path, sizeof(path));
      if (rmdir(path) != 0) die("rmdir", path);
    }
  }
  snprintf(path, sizeof(path), "%s/%s.w%ld", root, tag, w);
  if (rmdir(path) != 0) die("rmdir", path);
}

static void run_phase (int phase, long w)
{
  char path[4096];
  long n = count_of(w);
  for (long j = 0; j < n; j++) {
    path_of(w, j, path, sizeof(path));
    if (phase == CREATE) {
      int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) die("open", path);
      if (do_fsync && fsync(fd) != 0) die("fsync", path);
      if (close(fd) != 0) die("close", path);
    } else if (phase == STAT) {
      struct stat st;
      if (stat(path, &st) != 0) die("stat", path);
      if (!S_ISREG(st.st_mode) || st.st_size != 0) {
        fprintf(stderr, "mdbench: %s is not an empty regular file\n", path);
        _exit(1);
      }
    } else {
      if (unlink(path) != 0) die("unlink", path);
    }
  }
}

static pid_t *pids;
static int *exited;

static void kill_workers (void)
{
  for (long w = 0; w < nworkers; w++) {
    if (pids[w] > 0 && !exited[w]) kill(pids[w], SIGKILL);
  }
}

/* Collect workers that have exited; if one failed, stop the others and exit. */
static void reap (int block)
{
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    for (long w = 0; w < nworkers; w++) {
      if (pids[w] == pid) exited[w] = 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      /* The worker has said why on stderr. */
      fprintf(stderr, "mdbench: a worker failed\n");
      kill_workers();
      exit(1);
    }
  }
}

static void on_sigchld (int sig)
{
  (void)sig;
}

static void read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  while (len > 0) {
    /* Poll with a timeout, so that a worker that died between two checks is
       noticed too. */
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int n = poll(&pfd, 1, 200);
    if (n <= 0) { reap(0); continue; }
    ssize_t r = read(fd, p, len);
    if (r < 0 && errno == EINTR) { reap(0); continue; }
    if (r <= 0) {
      fprintf(stderr, "mdbench: the workers went away\n");
      kill_workers();
      exit(1);
    }
    p += r;
    len -= (size_t)r;
  }
}

static void write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t r = write(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { perror("mdbench: write to pipe"); _exit(1); }
    p += r;
    len -= (size_t)r;
  }
}

int main (int argc, char **argv)
{
  parse_phases("create,stat,unlink");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--files") == 0 && i + 1 < argc) nfiles = number(argv[++i], "--files");
    else if (strcmp(a, "--workers") == 0 && i + 1 < argc) nworkers = number(argv[++i], "--workers");
    else if (strcmp(a, "--dirs") == 0 && i + 1 < argc) ndirs = number(argv[++i], "--dirs");
    else if (strcmp(a, "--phases") == 0 && i + 1 < argc) parse_phases(argv[++i]);
    else if (strcmp(a, "--tag") == 0 && i + 1 < argc) tag = argv[++i];
    else if (strcmp(a, "--fsync") == 0) do_fsync = 1;
    else if (a[0] != '-' && root == NULL) root = a;
    else usage("bad arguments");
  }
  if (root == NULL) usage("missing DIR");
  if (nworkers > 1024) usage("at most 1024 workers");

  /* go: the parent writes one byte per worker to start a phase.
     done: each worker writes one byte when it has finished a step. */
  int go[2], done[2];
  if (pipe(go) != 0 || pipe(done) != 0) { perror("mdbench: pipe"); return 1; }
  pids = calloc((size_t)nworkers, sizeof(pid_t));
  exited = calloc((size_t)nworkers, sizeof(int));
  /* No SA_RESTART: a worker's death interrupts the parent's wait at once. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigchld;
  sigaction(SIGCHLD, &sa, NULL);
  for (long w = 0; w < nworkers; w++) {
    pid_t pid = fork();
    if (pid < 0) { perror("mdbench: fork"); kill_workers(); return 1; }
    if (pid == 0) {
      signal(SIGCHLD, SIG_DFL);
      close(go[1]);
      close(done[0]);
      char b = 0;
      setup(w);
      write_all(done[1], &b, 1);
      for (int p = 0; p < NPHASES; p++) {
        if (!phases[p]) continue;
        if (read(go[0], &b, 1) != 1) _exit(1);
        run_phase(p, w);
        write_all(done[1], &b, 1);
      }
      if (phases[UNLINK]) teardown(w);
      _exit(0);
    }
    pids[w] = pid;
  }
  close(go[0]);
  close(done[1]);

  char buf[1024];
  memset(buf, 0, sizeof(buf));
  read_all(done[0], buf, (size_t)nworkers); /* every worker has set up */
  double seconds[NPHASES];
  for (int p = 0; p < NPHASES; p++) {
    if (!phases[p]) continue;
    double t0 = now();
    write_all(go[1], buf, (size_t)nworkers);
    read_all(done[0], buf, (size_t)nworkers);
    seconds[p] = now() - t0;
  }
  close(go[1]); /* workers that ran no phase after setup see EOF and leave */
  reap(1);

  printf("{\"files\":%ld,\"workers\":%ld,\"dirs\":%ld,\"fsync\":%s,\"phases\":{", nfiles, nworkers, ndirs, do_fsync ? "true" : "false");
  int first = 1;
  for (int p = 0; p < NPHASES; p++) {
    if (!phases[p]) continue;
    printf("%s\"%s\":{\"ops\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.1f}", first ? "" : ",", phase_names[p], nfiles, seconds[p], (double)nfiles / seconds[p]);
    first = 0;
  }
  printf("}}\n");
  return 0;
}
