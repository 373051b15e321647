/* Fast directory churn for test/fs/bigdir.test.ts (compiled by the test into a temp dir).
 *
 *   mk DIR PREFIX START COUNT             create empty files PREFIX%06d, START..START+COUNT-1
 *   rm DIR PREFIX START COUNT STEP        unlink PREFIX%06d for START, START+STEP, ... (COUNT names)
 *   churn DIR NEW COUNT OLD START STEP STOPFILE
 *                                         COUNT times: create NEW%06d (i), unlink OLD%06d
 *                                         (START + i*STEP); then create STOPFILE
 *   list DIR STOPFILE MAXPASSES           list DIR again and again until STOPFILE exists
 *                                         (at least one pass): "PASS r" with r = 1 if the
 *                                         churn was running when the pass started, the names,
 *                                         then "END r" likewise at its end
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void name(char *buf, size_t n, const char *dir, const char *prefix, long i) {
  snprintf(buf, n, "%s/%s%06ld", dir, prefix, i);
}

static int running(const char *stop) { return access(stop, F_OK) != 0; }

int main(int argc, char **argv) {
  char buf[4096];
  if (argc < 2) return 0;
  if (!strcmp(argv[1], "mk") && argc == 6) {
    long start = atol(argv[4]), count = atol(argv[5]);
    for (long i = start; i < start + count; i++) {
      name(buf, sizeof buf, argv[2], argv[3], i);
      if (mknod(buf, S_IFREG | 0644, 0) != 0) { perror(buf); return 1; }
    }
    return 0;
  }
  if (!strcmp(argv[1], "rm") && argc == 7) {
    long start = atol(argv[4]), count = atol(argv[5]), step = atol(argv[6]);
    for (long k = 0; k < count; k++) {
      name(buf, sizeof buf, argv[2], argv[3], start + k * step);
      if (unlink(buf) != 0) { perror(buf); return 1; }
    }
    return 0;
  }
  if (!strcmp(argv[1], "churn") && argc == 9) {
    long count = atol(argv[4]), start = atol(argv[6]), step = atol(argv[7]);
    for (long i = 0; i < count; i++) {
      name(buf, sizeof buf, argv[2], argv[3], i);
      if (mknod(buf, S_IFREG | 0644, 0) != 0) { perror(buf); return 1; }
      name(buf, sizeof buf, argv[2], argv[5], start + i * step);
      if (unlink(buf) != 0) { perror(buf); return 1; }
    }
    int fd = open(argv[8], O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { perror(argv[8]); return 1; }
    close(fd);
    return 0;
  }
  if (!strcmp(argv[1], "list") && argc == 5) {
    int max = atoi(argv[4]);
    for (int pass = 0; pass < max && (pass == 0 || running(argv[3])); pass++) {
      printf("PASS %d\n", running(argv[3]));
      DIR *d = opendir(argv[2]);
      if (!d) { perror(argv[2]); return 1; }
      struct dirent *e;
      errno = 0;
      while ((e = readdir(d)) != NULL) printf("%s\n", e->d_name);
      if (errno != 0) { perror("readdir"); return 1; }
      closedir(d);
      printf("END %d\n", running(argv[3]));
    }
    return 0;
  }
  fprintf(stderr, "bigdir: bad arguments\n");
  return 2;
}
