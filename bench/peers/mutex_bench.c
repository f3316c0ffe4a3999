/*
 * The C baseline for bench/mutex.mjs: a robust, process-shared pthread mutex
 * (the same initialisation as interprocess's Mutex, and as
 * Boost.Interprocess's interprocess_mutex on Linux: a PTHREAD_PROCESS_SHARED
 * pthread mutex), measured the same way as the Node side.
 *
 *   mutex_bench uncontended N            -> ns per lock+unlock
 *   mutex_bench contend SHM OFFSET N ID  -> lock, count, unlock N times on the
 *                                           mutex at OFFSET of the POSIX shm
 *                                           object SHM (layout in mutex.mjs)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../include/interprocess.h"

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "uncontended") == 0) {
    long n = atol(argv[2]);
    static pthread_mutex_t m;
    ipx_mutex_init(&m);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
      pthread_mutex_lock(&m);
      pthread_mutex_unlock(&m);
    }
    printf("%.2f\n", (now_ns() - t0) / n);
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "contend") == 0) {
    int fd = shm_open(argv[2], O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 1; }
    char *base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) { perror("mmap"); return 1; }
    pthread_mutex_t *m = (pthread_mutex_t *)(base + atoi(argv[3]));
    long n = atol(argv[4]);
    int32_t id = atoi(argv[5]);
    /* int32 words after the mutex: [0] start flag, [1] counter, [2] last owner, [3] handoffs */
    volatile int32_t *w = (volatile int32_t *)(base + atoi(argv[3]) + 64);
    while (__atomic_load_n(&w[0], __ATOMIC_ACQUIRE) == 0) { }
    for (long i = 0; i < n; i++) {
      pthread_mutex_lock(m);
      if (w[2] != id) { w[2] = id; w[3]++; }
      w[1]++;
      pthread_mutex_unlock(m);
    }
    return 0;
  }
  fprintf(stderr, "usage: mutex_bench uncontended N | contend SHM OFFSET N ID\n");
  return 2;
}
