/*
 * RwLock peer for test/rwlock.test.ts: a C program sharing a read-write lock
 * with Node through include/interprocess.h (ipx_rwlock_*), as its users would.
 *
 *   rwlock_peer LOCK DATA STEP [ARG...]
 *
 * LOCK is NAME (a named RwLock: header checked with ipx_named_object, slots
 * from the header) or NAME+OFFSET+SLOTS (a lock placed at OFFSET of the POSIX
 * shared memory object NAME). DATA is NAME+OFFSET: int32 words, the same in
 * every process of a test (see W_* below).
 *
 * Steps:
 *   read-hold         rdlock; "reading[ owner-died]"; wait for stdin to end;
 *                     rdunlock; "released"
 *   write-hold        wrlock; "writing[ owner-died]"; wait for stdin to end;
 *                     wrunlock; "released"
 *   read-once         rdlock; "read A B[ owner-died]"; rdunlock
 *   write-once V      wrlock; A = B = V; "wrote[ owner-died]"; wrunlock
 *   overlap N         rdlock; readers += 1; wait (10 s at most) until N readers
 *                     were inside at once; "overlapped N" or "alone"; rdunlock
 *   mix ID N EVERY    N times: every EVERY-th a write (A, then B, the same value,
 *                     checking nobody else is inside), else a read checking
 *                     A == B and no writer inside        "mix N bad X"
 *   stream ID         until STOP: rdlock; stay until another reader entered or
 *                     30 ms passed; rdunlock              "streamed K"
 *   robust ID         forever: a write, then a read, tracking PHASE[ID] and
 *                     INSIDE[ID] for the test to check after killing it.
 *                     "running" after the first round
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

enum {
  W_A = 0,
  W_B = 1,
  W_DIRTY = 2,       /* a write is under way (A and B may differ) */
  W_READERS = 3,     /* readers inside (overlap, stream) */
  W_MAX_READERS = 4, /* most readers seen inside at once */
  W_BAD = 5,         /* exclusion violations seen */
  W_OWNER_DIED = 6,  /* lockers told owner-died */
  W_STOP = 7,
  W_ENTRIES = 8, /* read entries (stream) */
  W_WRITERS = 9, /* writers inside (stream, mix) */
  W_PHASE = 16,  /* + id */
  W_PROGRESS = 32,
  W_INSIDE = 48, /* + id: 1 reading, 2 writing */
  W_DEAD = 64,   /* + id: set by the test before it kills id */
  W_IDS = 16,
};

enum { P_IDLE, P_WANT_WRITE, P_WRITING, P_WANT_READ, P_READING, P_END_WRITE, P_END_READ };

static void *map(const char *name) {
  static struct { char name[256]; void *base; } maps[4];
  static int nmaps;
  for (int i = 0; i < nmaps; i++)
    if (strcmp(maps[i].name, name) == 0) return maps[i].base;
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) fail("shm_open", errno);
  struct stat st;
  if (fstat(fd, &st) != 0) fail("fstat", errno);
  void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) fail("mmap", errno);
  close(fd);
  if (nmaps == 4 || strlen(name) >= 256) fail("map", E2BIG);
  strcpy(maps[nmaps].name, name);
  maps[nmaps++].base = base;
  return base;
}

static void *rw;
static int slots;
static _Atomic int32_t *d;

static void spin(int n) {
  for (volatile int i = 0; i < n; i++) {}
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* rdlock/wrlock: 0, or EOWNERDEAD (taken; a writer died holding the lock). */
static int rdlock(int *slot) {
  int r = ipx_rwlock_rdlock(rw, slots, slot);
  if (r == EOWNERDEAD) d[W_OWNER_DIED]++;
  else if (r) fail("ipx_rwlock_rdlock", r);
  return r;
}

static int wrlock(void) {
  int r = ipx_rwlock_wrlock(rw, slots);
  if (r == EOWNERDEAD) d[W_OWNER_DIED]++;
  else if (r) fail("ipx_rwlock_wrlock", r);
  return r;
}

static void rdunlock(int slot) {
  int r = ipx_rwlock_rdunlock(rw, slot);
  if (r) fail("ipx_rwlock_rdunlock", r);
}

static void wrunlock(void) {
  int r = ipx_rwlock_wrunlock(rw);
  if (r) fail("ipx_rwlock_wrunlock", r);
}

static const char *died(int r) { return r == EOWNERDEAD ? " owner-died" : ""; }

static void wait_stdin_end(void) {
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {}
}

/* Whether anyone but `me` (and processes marked dead) is inside in a way `want` excludes. */
static int conflict(int me, int want) {
  for (int i = 0; i < W_IDS; i++) {
    if (i == me || d[W_DEAD + i]) continue;
    int in = d[W_INSIDE + i];
    if (in == 2 || (in == 1 && want == 2)) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) fail("usage", EINVAL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  char name[256];
  const char *plus = strchr(argv[1], '+');
  if (plus) {
    snprintf(name, sizeof name, "%.*s", (int)(plus - argv[1]), argv[1]);
    char *end;
    rw = (char *)map(name) + strtoul(plus + 1, &end, 10);
    if (*end != '+') fail("LOCK is NAME+OFFSET+SLOTS", EINVAL);
    slots = (int)strtol(end + 1, NULL, 10);
  } else {
    void *base = map(argv[1]);
    rw = ipx_named_object(base, IPX_RWLOCK);
    if (!rw) fail("ipx_named_object: not an interprocess rwlock", EINVAL);
    slots = (int)((struct ipx_header *)base)->extra;
  }
  plus = strchr(argv[2], '+');
  if (!plus) fail("DATA is NAME+OFFSET", EINVAL);
  snprintf(name, sizeof name, "%.*s", (int)(plus - argv[2]), argv[2]);
  d = (_Atomic int32_t *)((char *)map(name) + strtoul(plus + 1, NULL, 10));

  const char *step = argv[3];
  long a1 = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
  long a2 = argc > 5 ? strtol(argv[5], NULL, 10) : 0;
  long a3 = argc > 6 ? strtol(argv[6], NULL, 10) : 0;
  int slot;

  if (strcmp(step, "read-hold") == 0) {
    int r = rdlock(&slot);
    d[W_READERS]++;
    printf("reading%s\n", died(r));
    wait_stdin_end();
    d[W_READERS]--;
    rdunlock(slot);
    printf("released\n");
  } else if (strcmp(step, "write-hold") == 0) {
    int r = wrlock();
    d[W_WRITERS]++;
    printf("writing%s\n", died(r));
    wait_stdin_end();
    d[W_WRITERS]--;
    wrunlock();
    printf("released\n");
  } else if (strcmp(step, "read-once") == 0) {
    int r = rdlock(&slot);
    printf("read %d %d%s\n", (int)d[W_A], (int)d[W_B], died(r));
    rdunlock(slot);
  } else if (strcmp(step, "write-once") == 0) {
    int r = wrlock();
    d[W_A] = (int32_t)a1;
    d[W_B] = (int32_t)a1;
    printf("wrote%s\n", died(r));
    wrunlock();
  } else if (strcmp(step, "overlap") == 0) {
    rdlock(&slot);
    int32_t in = ++d[W_READERS];
    for (int32_t max = d[W_MAX_READERS]; in > max && !atomic_compare_exchange_weak(&d[W_MAX_READERS], &max, in);) {}
    double end = now_ms() + 10000;
    while (d[W_MAX_READERS] < a1 && now_ms() < end) sleep_us(200);
    if (d[W_MAX_READERS] >= a1) printf("overlapped %ld\n", a1);
    else printf("alone\n");
    d[W_READERS]--;
    rdunlock(slot);
  } else if (strcmp(step, "mix") == 0) {
    int id = (int)a1;
    long bad = 0;
    for (long i = 0; i < a2; i++) {
      if (i % a3 == 0) {
        wrlock();
        if (conflict(id, 2)) bad++;
        d[W_INSIDE + id] = 2;
        int32_t v = d[W_A] + 1;
        d[W_A] = v;
        spin(20000);
        d[W_B] = v;
        if (conflict(id, 2)) bad++;
        d[W_INSIDE + id] = 0;
        wrunlock();
      } else {
        rdlock(&slot);
        d[W_INSIDE + id] = 1;
        if (conflict(id, 1)) bad++;
        int32_t a = d[W_A];
        spin(20000);
        if (d[W_B] != a || conflict(id, 1)) bad++;
        d[W_INSIDE + id] = 0;
        rdunlock(slot);
      }
      d[W_PROGRESS + id]++;
    }
    d[W_BAD] += (int32_t)bad;
    printf("mix %ld bad %ld\n", a2, bad);
  } else if (strcmp(step, "stream") == 0) {
    int id = (int)a1;
    long k = 0;
    while (!d[W_STOP]) {
      rdlock(&slot);
      d[W_READERS]++;
      if (d[W_WRITERS]) d[W_BAD]++;
      int32_t mine = ++d[W_ENTRIES];
      double end = now_ms() + 30;
      while (d[W_ENTRIES] == mine && now_ms() < end && !d[W_STOP]) sleep_us(100);
      if (d[W_WRITERS]) d[W_BAD]++;
      d[W_READERS]--;
      rdunlock(slot);
      d[W_PROGRESS + id]++;
      k++;
    }
    printf("streamed %ld\n", k);
  } else if (strcmp(step, "robust") == 0) {
    int id = (int)a1;
    for (long round = 0;; round++) {
      d[W_PHASE + id] = P_WANT_WRITE;
      wrlock();
      d[W_PHASE + id] = P_WRITING;
      if (conflict(id, 2)) d[W_BAD]++;
      d[W_INSIDE + id] = 2;
      d[W_DIRTY] = 1;
      int32_t v = d[W_A] + 1;
      d[W_A] = v;
      spin(1000);
      d[W_B] = v;
      d[W_DIRTY] = 0;
      d[W_INSIDE + id] = 0;
      d[W_PHASE + id] = P_END_WRITE;
      wrunlock();
      d[W_PHASE + id] = P_WANT_READ;
      rdlock(&slot);
      d[W_PHASE + id] = P_READING;
      d[W_INSIDE + id] = 1;
      if (conflict(id, 1)) d[W_BAD]++;
      int32_t a = d[W_A];
      spin(1000);
      if (!d[W_DIRTY] && d[W_B] != a) d[W_BAD]++;
      d[W_INSIDE + id] = 0;
      d[W_PHASE + id] = P_END_READ;
      rdunlock(slot);
      d[W_PHASE + id] = P_IDLE;
      d[W_PROGRESS + id]++;
      if (round == 0) printf("running\n");
      if (d[W_STOP]) break;
    }
    printf("stopped\n");
  } else {
    fail("unknown step", EINVAL);
  }
  return 0;
}
