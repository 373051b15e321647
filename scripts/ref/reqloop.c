/*
 * reqloop: time a loop of metadata calls that each cost the filesystem
 * server one or more requests, to compare per-request overhead.
 *
 *   gcc -O2 -o reqloop scripts/ref/reqloop.c
 *   reqloop stat DIR N     stat N distinct names that do not exist (1 lookup each)
 *   reqloop create DIR N   create and close N new files (lookup, create, flush, release)
 *   reqloop unlink DIR N   unlink the N files made by create
 *
 * Prints: mode, N, seconds, microseconds per call, calls per second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now (void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main (int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: %s stat|create|unlink DIR N\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1], *dir = argv[2];
  long n = atol(argv[3]);
  char path[4096];
  /* Names differ per run so that no negative entry is cached from before. */
  long tag = (long)getpid();
  double t0 = now();
  for (long i = 0; i < n; i++) {
    if (strcmp(mode, "stat") == 0) {
      struct stat st;
      snprintf(path, sizeof(path), "%s/missing-%ld-%ld", dir, tag, i);
      if (stat(path, &st) == 0 || errno != ENOENT) {
        perror(path);
        return 1;
      }
    } else if (strcmp(mode, "create") == 0) {
      snprintf(path, sizeof(path), "%s/f%ld", dir, i);
      int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd < 0 || close(fd) != 0) {
        perror(path);
        return 1;
      }
    } else if (strcmp(mode, "unlink") == 0) {
      snprintf(path, sizeof(path), "%s/f%ld", dir, i);
      if (unlink(path) != 0) {
        perror(path);
        return 1;
      }
    } else {
      fprintf(stderr, "unknown mode %s\n", mode);
      return 2;
    }
  }
  double dt = now() - t0;
  printf("%s %ld %.3f s %.2f us/call %.0f calls/s\n", mode, n, dt, dt / (double)n * 1e6, (double)n / dt);
  return 0;
}
