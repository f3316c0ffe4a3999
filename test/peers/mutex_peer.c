/*
 * Robust mutex peer for test/mutex.test.ts: the pthread calls a C program
 * makes on an interprocess Mutex, on the same bytes (include/interprocess.h).
 *
 *   mutex_peer WHERE       then reads commands from stdin, one a line
 *   mutex_peer create NAME the slow creator of a named mutex (see below)
 *
 * WHERE names the mutex:
 *   named:/NAME            a named mutex: shm_open, mmap, ipx_named_object
 *   posix:/NAME:OFFSET     at OFFSET of a POSIX shared memory object
 *   sysv:ID:OFFSET         at OFFSET of a System V segment (shmat)
 *
 * Commands (each answers one line, the pthread result as an errno name:
 * OK, EBUSY, EOWNERDEAD, ENOTRECOVERABLE, EDEADLK, EPERM, ETIMEDOUT...):
 *   init                   ipx_mutex_init            -> "init OK"
 *   lock                   pthread_mutex_lock        -> "lock OK"
 *   trylock                pthread_mutex_trylock     -> "trylock EBUSY"
 *   ipx_trylock            ipx_mutex_trylock (interprocess.h) -> "ipx_trylock EBUSY"
 *   timedlock MS           pthread_mutex_clocklock   -> "timedlock ETIMEDOUT"
 *   unlock                 pthread_mutex_unlock      -> "unlock OK"
 *   consistent             pthread_mutex_consistent  -> "consistent OK"
 *   handoff                waits until someone sleeps on the lock (FUTEX_WAITERS
 *                          in the lock word), then unlocks -> "handoff OK"
 *   count N OFFSET         N times: lock, ++ the int at OFFSET of the mapping
 *                          (non-atomically), unlock; an owner-died lock is made
 *                          consistent -> "count done <owner-died locks>"
 *   quit                   exits 0
 *
 * create NAME: shm_open(O_CREAT|O_EXCL), size 128, print "sized"; wait for a
 * line on stdin; ipx_mutex_init at 64, fill the header, store the magic last;
 * print "created"; exit at the end of stdin.
 *
 * Errors of the setup go to stderr as "<call>: <strerror>" with exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interprocess.h"

#include "peer.h"

static const char *name_of(int r) {
  switch (r) {
    case 0: return "OK";
    case EBUSY: return "EBUSY";
    case EOWNERDEAD: return "EOWNERDEAD";
    case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
    case EDEADLK: return "EDEADLK";
    case EPERM: return "EPERM";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINVAL: return "EINVAL";
    default: {
      static char buf[32];
      snprintf(buf, sizeof buf, "E%d", r);
      return buf;
    }
  }
}

static char *map_posix(const char *name, size_t *size) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) die("shm_open");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  *size = (size_t)st.st_size;
  char *base = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) die("mmap");
  close(fd);
  return base;
}

static int create(const char *name) {
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) die("shm_open");
  if (ftruncate(fd, 128) != 0) die("ftruncate");
  char *base = mmap(NULL, 128, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) die("mmap");
  printf("sized\n");
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  struct ipx_header *h = (struct ipx_header *)base;
  int r = ipx_mutex_init((pthread_mutex_t *)(base + IPX_HEADER_SIZE));
  if (r != 0) {
    fprintf(stderr, "ipx_mutex_init: %s\n", strerror(r));
    return 1;
  }
  h->version = IPX_LAYOUT_VERSION;
  h->kind = IPX_MUTEX;
  h->creator_pid = getpid();
  atomic_store_explicit(&h->magic, IPX_MAGIC, memory_order_release);
  printf("created\n");
  while (fgets(line, sizeof line, stdin)) {
  }
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp(argv[1], "create") == 0) return create(argv[2]);
  if (argc != 2) {
    fprintf(stderr, "usage: %s named:/NAME | posix:/NAME:OFFSET | sysv:ID:OFFSET | create /NAME\n", argv[0]);
    return 2;
  }
  char *base;
  pthread_mutex_t *m;
  char where[256];
  snprintf(where, sizeof where, "%s", argv[1]);
  if (strncmp(where, "named:", 6) == 0) {
    size_t size;
    base = map_posix(where + 6, &size);
    m = ipx_named_object(base, IPX_MUTEX);
    if (!m) {
      fprintf(stderr, "%s is not a named mutex\n", where + 6);
      return 1;
    }
  } else if (strncmp(where, "posix:", 6) == 0) {
    char *colon = strrchr(where, ':');
    *colon = 0;
    size_t size;
    base = map_posix(where + 6, &size);
    m = (pthread_mutex_t *)(base + strtoul(colon + 1, NULL, 0));
  } else if (strncmp(where, "sysv:", 5) == 0) {
    char *colon = strrchr(where, ':');
    *colon = 0;
    base = shmat((int)strtol(where + 5, NULL, 0), NULL, 0);
    if (base == (char *)-1) die("shmat");
    m = (pthread_mutex_t *)(base + strtoul(colon + 1, NULL, 0));
  } else {
    fprintf(stderr, "bad WHERE %s\n", where);
    return 2;
  }

  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32];
    long a = 0, b = 0;
    if (sscanf(line, "%31s %ld %ld", cmd, &a, &b) < 1) continue;
    if (strcmp(cmd, "init") == 0) {
      printf("init %s\n", name_of(ipx_mutex_init(m)));
    } else if (strcmp(cmd, "lock") == 0) {
      printf("lock %s\n", name_of(pthread_mutex_lock(m)));
    } else if (strcmp(cmd, "trylock") == 0) {
      printf("trylock %s\n", name_of(pthread_mutex_trylock(m)));
    } else if (strcmp(cmd, "ipx_trylock") == 0) {
      printf("ipx_trylock %s\n", name_of(ipx_mutex_trylock(m)));
    } else if (strcmp(cmd, "timedlock") == 0) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += a / 1000;
      ts.tv_nsec += (a % 1000) * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      printf("timedlock %s\n", name_of(pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts)));
    } else if (strcmp(cmd, "unlock") == 0) {
      printf("unlock %s\n", name_of(pthread_mutex_unlock(m)));
    } else if (strcmp(cmd, "handoff") == 0) {
      _Atomic int32_t *word = (_Atomic int32_t *)m;
      for (int i = 0; i < 20000 && !(atomic_load(word) & FUTEX_WAITERS); i++) usleep(1000);
      printf("handoff %s\n", name_of(pthread_mutex_unlock(m)));
    } else if (strcmp(cmd, "consistent") == 0) {
      printf("consistent %s\n", name_of(pthread_mutex_consistent(m)));
    } else if (strcmp(cmd, "count") == 0) {
      volatile int32_t *counter = (volatile int32_t *)(base + b);
      long died = 0;
      for (long i = 0; i < a; i++) {
        int r = pthread_mutex_lock(m);
        if (r == EOWNERDEAD) {
          died++;
          r = pthread_mutex_consistent(m);
        }
        if (r != 0) {
          printf("count failed %s at %ld\n", name_of(r), i);
          return 1;
        }
        *counter = *counter + 1;
        r = pthread_mutex_unlock(m);
        if (r != 0) {
          printf("count failed unlock %s at %ld\n", name_of(r), i);
          return 1;
        }
      }
      printf("count done %ld\n", died);
    } else if (strcmp(cmd, "quit") == 0) {
      return 0;
    } else {
      printf("unknown %s\n", cmd);
    }
  }
  return 0;
}
