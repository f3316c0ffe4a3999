/*
 * The machine's core-to-core hand-off, for reading bench/channel.mjs's figures:
 * two processes on CPUs 0 and 1 pass one cache line there and back (each
 * spins on a word the other stores), the least any shared-memory round trip
 * can cost. On a VM it drifts with where the host places the virtual CPUs;
 * the Channel's round trips follow it, a socket's barely do.
 *
 *   handoff [MILLISECONDS]
 *
 * Prints one JSON line: {"rttNs": median over batches of 1000 round trips}.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000
#define MAX_BATCHES 4096

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set); /* best effort, as taskset in the benchmark */
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  double ms = argc > 1 ? atof(argv[1]) : 300;
  /* ping and pong on separate cache lines; ping < 0 tells the child to stop */
  _Atomic int *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return perror("mmap"), 1;
  _Atomic int *ping = &w[0], *pong = &w[16];
  pid_t child = fork();
  if (child < 0) return perror("fork"), 1;
  if (child == 0) {
    pin(1);
    for (int seen = 0;;) {
      int v;
      while ((v = atomic_load(ping)) == seen) {}
      if (v < 0) _exit(0);
      atomic_store(pong, v);
      seen = v;
    }
  }
  pin(0);
  static double batches[MAX_BATCHES];
  int n = 0, i = 0;
  double end = now_ns() + ms * 1e6;
  while (n < MAX_BATCHES && (n < 10 || now_ns() < end)) {
    double t0 = now_ns();
    for (int k = 0; k < BATCH; k++) {
      i++;
      atomic_store(ping, i);
      while (atomic_load(pong) != i) {}
    }
    batches[n++] = (now_ns() - t0) / BATCH;
  }
  atomic_store(ping, -1);
  waitpid(child, NULL, 0);
  qsort(batches, n, sizeof batches[0], cmp);
  printf("{\"rttNs\":%.1f}\n", batches[n / 2]);
  return 0;
}
