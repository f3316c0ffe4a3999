/*
 * Condition peer for test/condition.test.ts: a C program sharing a Mutex and
 * Conditions with Node through include/interprocess.h, as its users would.
 *
 *   cond_peer MUTEX COND_A COND_B DATA STEP [ARG...]
 *
 * Each object is given as NAME (a named object: its 64-byte header is checked
 * with ipx_named_object, the object follows it) or NAME+OFFSET (raw bytes at
 * OFFSET of the POSIX shared memory object NAME). DATA is a run of int32 words:
 *
 *   0 full   1 value   2 go   3 turn   4 woken   5 ready
 *
 * Steps (one line of output each, unless said otherwise):
 *   produce N       N times: lock; while full: wait B; value = i (1..N); full = 1;
 *                   notify A; unlock                              "produced N"
 *   consume N       N times: lock; while !full: wait A; take value; full = 0;
 *                   notify B; unlock; values must be 1..N in order
 *                                                                 "consumed N bad X"
 *   wait-go         lock; ready += 1; while !go: wait A; woken += 1; unlock
 *                                                                 "woken"
 *   go              lock; go = 1; notify-all A; unlock            "notified"
 *   pingpong ME N   N times: lock; while turn != ME: wait A; turn = !ME; notify A
 *                   (one waiter); unlock                          "pingpong N"
 *   timedwait MS    lock; ipx_cond_wait with a deadline MS from now; whether the
 *                   mutex is held again                           "<result> held"
 *   lock-notify-die lock; go = 1; notify A; stay holding the mutex until killed
 *                                                                 "holding"
 *   hold            lock; "holding"; wait for stdin to end; unlock "released"
 *   hold-after-line "ready"; read a line from stdin; then as hold
 *   trylock         pthread_mutex_trylock                         "busy" / "free"
 *
 * Errors go to stderr, exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interprocess.h"

#include "peer.h"

/* Maps NAME or NAME+OFFSET; each object name is mapped once. */
static void *object(const char *spec, enum ipx_kind kind) {
  static struct { char name[256]; void *base; } maps[8];
  static int nmaps;
  char name[256];
  const char *plus = strchr(spec, '+');
  size_t len = plus ? (size_t)(plus - spec) : strlen(spec);
  if (len >= sizeof name) fail("name", ENAMETOOLONG);
  memcpy(name, spec, len);
  name[len] = 0;
  void *base = NULL;
  for (int i = 0; i < nmaps; i++)
    if (strcmp(maps[i].name, name) == 0) base = maps[i].base;
  if (!base) {
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) fail("shm_open", errno);
    struct stat st;
    if (fstat(fd, &st) != 0) fail("fstat", errno);
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) fail("mmap", errno);
    close(fd);
    if (nmaps == 8) fail("too many objects", E2BIG);
    strcpy(maps[nmaps].name, name);
    maps[nmaps++].base = base;
  }
  if (plus) return (char *)base + strtoul(plus + 1, NULL, 10);
  if (!kind) fail("raw data needs NAME+OFFSET", EINVAL);
  void *obj = ipx_named_object(base, kind);
  if (!obj) fail("ipx_named_object: not an interprocess object of that kind", EINVAL);
  return obj;
}

static pthread_mutex_t *m;
static struct ipx_cond *ca, *cb;
static _Atomic int32_t *d;

static void lock(void) {
  int r = pthread_mutex_lock(m);
  if (r == EOWNERDEAD) r = pthread_mutex_consistent(m);
  if (r) fail("pthread_mutex_lock", r);
}

static void unlock(void) {
  int r = pthread_mutex_unlock(m);
  if (r) fail("pthread_mutex_unlock", r);
}

static void wait_on(struct ipx_cond *c) {
  int r = ipx_cond_wait(c, m, NULL);
  if (r == EOWNERDEAD) r = pthread_mutex_consistent(m);
  if (r) fail("ipx_cond_wait", r);
}

enum { FULL, VALUE, GO, TURN, WOKEN, READY };

int main(int argc, char **argv) {
  if (argc < 6) fail("usage", EINVAL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  m = object(argv[1], IPX_MUTEX);
  ca = object(argv[2], IPX_CONDITION);
  cb = object(argv[3], IPX_CONDITION);
  d = object(argv[4], (enum ipx_kind)0);
  const char *step = argv[5];
  long n = argc > 6 ? strtol(argv[6], NULL, 10) : 0;

  if (strcmp(step, "produce") == 0) {
    for (long i = 1; i <= n; i++) {
      lock();
      while (d[FULL]) wait_on(cb);
      d[VALUE] = (int32_t)i;
      d[FULL] = 1;
      ipx_cond_notify(ca, 0);
      unlock();
    }
    printf("produced %ld\n", n);
  } else if (strcmp(step, "consume") == 0) {
    long bad = 0;
    for (long i = 1; i <= n; i++) {
      lock();
      while (!d[FULL]) wait_on(ca);
      if (d[VALUE] != i) bad++;
      d[FULL] = 0;
      ipx_cond_notify(cb, 0);
      unlock();
    }
    printf("consumed %ld bad %ld\n", n, bad);
  } else if (strcmp(step, "wait-go") == 0) {
    lock();
    d[READY]++;
    while (!d[GO]) wait_on(ca);
    d[WOKEN]++;
    unlock();
    printf("woken\n");
  } else if (strcmp(step, "go") == 0) {
    lock();
    d[GO] = 1;
    ipx_cond_notify(ca, 1);
    unlock();
    printf("notified\n");
  } else if (strcmp(step, "pingpong") == 0) {
    long me = n;
    long rounds = argc > 7 ? strtol(argv[7], NULL, 10) : 0;
    for (long i = 0; i < rounds; i++) {
      lock();
      while (d[TURN] != me) wait_on(ca);
      d[TURN] = (int32_t)!me;
      ipx_cond_notify(ca, 0);
      unlock();
    }
    printf("pingpong %ld\n", rounds);
  } else if (strcmp(step, "timedwait") == 0) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += n / 1000;
    dl.tv_nsec += (n % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) { dl.tv_sec++; dl.tv_nsec -= 1000000000; }
    lock();
    int r = ipx_cond_wait(ca, m, &dl);
    /* A robust error-checking mutex held by this thread: trylock says EDEADLK. */
    int t = pthread_mutex_trylock(m);
    printf("%s %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : r == 0 ? "0" : strerror(r), t == EDEADLK ? "held" : "not-held");
    if (t == EDEADLK) unlock();
  } else if (strcmp(step, "lock-notify-die") == 0) {
    lock();
    d[GO] = 1;
    ipx_cond_notify(ca, 0);
    printf("holding\n");
    for (;;) pause();
  } else if (strcmp(step, "hold") == 0 || strcmp(step, "hold-after-line") == 0) {
    if (strcmp(step, "hold-after-line") == 0) {
      printf("ready\n");
      char c;
      while (read(0, &c, 1) == 1 && c != '\n') {}
    }
    lock();
    printf("holding\n");
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {}
    unlock();
    printf("released\n");
  } else if (strcmp(step, "trylock") == 0) {
    int r = pthread_mutex_trylock(m);
    if (r == 0 || r == EOWNERDEAD) {
      if (r == EOWNERDEAD) pthread_mutex_consistent(m);
      unlock();
      printf("free\n");
    } else if (r == EBUSY) {
      printf("busy\n");
    } else {
      fail("pthread_mutex_trylock", r);
    }
  } else {
    fail("unknown step", EINVAL);
  }
  return 0;
}
