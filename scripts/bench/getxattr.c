/*
 * getxattr: print the value of one extended attribute (for `cudele bench`,
 * which reads the request counters of scripts/ref/memfs-lowlevel.js).
 *
 *   cc -O2 -o getxattr scripts/bench/getxattr.c
 *   getxattr PATH NAME
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>

int main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: getxattr PATH NAME\n");
    return 2;
  }
  static char buf[1 << 20];
  ssize_t n = getxattr(argv[1], argv[2], buf, sizeof(buf));
  if (n < 0) {
    perror(argv[1]);
    return 1;
  }
  fwrite(buf, 1, (size_t)n, stdout);
  return 0;
}
