/*
 * Helpers the C test peers share: error exits and small /proc readers.
 * `static inline` so a peer that uses only some of them still compiles with
 * -Wall -Werror.
 */
#ifndef IPX_TEST_PEER_H
#define IPX_TEST_PEER_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<what>: <strerror(errno)>" on stderr, exit status 1. */
static inline void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(1);
}

/* "<what>: <strerror(err)>" on stderr, exit status 1 (for calls that return the error). */
static inline void fail(const char *what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err));
  exit(1);
}

/* Bad command line: exit status 2. */
static inline void usage(void) {
  fprintf(stderr, "bad arguments\n");
  exit(2);
}

/* Whether signal `sig` is pending for the main thread of `pid`. */
static inline int signal_pending(int pid, int sig) {
  char path[128], line[256];
  snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int pending = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long mask;
    if (sscanf(line, "SigPnd: %llx", &mask) == 1) pending = (mask >> (sig - 1)) & 1;
  }
  fclose(f);
  return pending;
}

/* Exits with status 3 if process `pid` is gone or a zombie. */
static inline void check_alive(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "process %d is gone\n", pid);
    exit(3);
  }
  char line[512];
  char state = 0;
  if (fgets(line, sizeof line, f)) {
    char *p = strrchr(line, ')');
    if (p && p[1] == ' ') state = p[2];
  }
  fclose(f);
  if (state == 'Z' || state == 'X') {
    fprintf(stderr, "process %d exited\n", pid);
    exit(3);
  }
}

#endif /* IPX_TEST_PEER_H */
