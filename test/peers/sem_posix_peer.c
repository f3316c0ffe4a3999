/*
 * POSIX named semaphore peer for test/sem-posix.test.ts: plain sem_open,
 * sem_wait, sem_post and sem_getvalue, as a C program written from the man
 * pages would do it.
 *
 * Arguments are a sequence of steps, run in order; each prints one line:
 *   sysno                     "futex=<nr>"
 *   create NAME MODE VALUE    sem_open(O_CREAT | O_EXCL)                 "created"
 *   post NAME [COUNT]         sem_post COUNT (default 1) times           "posted <count>"
 *   wait NAME                 sem_wait                                   "acquired"
 *   trywait NAME              sem_trywait                                "took" or "EAGAIN"
 *   value NAME                sem_getvalue                               "value=<v>"
 *   pingpong PING PONG N      N times: sem_wait(PING), sem_post(PONG)    "rounds <n>"
 *   try-open NAME             sem_open(O_CREAT | O_EXCL, 0600, 0), then close and unlink
 *                                                                        "ok" or "<ERRNO NAME>"
 *   unlink NAME               sem_unlink                                 "unlinked"
 *   interrupt PID NAME        once PID's main thread waits on NAME (a futex call on
 *                             the semaphore as PID mapped it), tgkill(SIGUSR2) it; wait until
 *                             the signal was taken and the thread waits again
 *                                                                        "interrupted"
 *
 * Errors go to stderr as "<what>: <strerror>" with exit status 1; 3 if the
 * watched process went away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "peer.h"

static sem_t *open_sem(const char *name) {
  sem_t *s = sem_open(name, 0);
  if (s == SEM_FAILED) die("sem_open");
  return s;
}

static const char *errno_name(int e) {
  switch (e) {
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return strerror(e);
  }
}

/*
 * Where PID mapped the semaphore NAME; its futex word is the mapping's first.
 * Found by inode: the process that created it mapped glibc's temporary file,
 * /dev/shm/sem.XXXXXX (deleted), before linking it under its name.
 */
static unsigned long sem_address(int pid, const char *name) {
  char path[512], line[1024];
  snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
  struct stat st;
  if (stat(path, &st) != 0) die("stat");
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  unsigned long addr = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, inode;
    char file[512] = "";
    if (sscanf(line, "%lx-%*x %*s %*s %*s %lu %511s", &start, &inode, file) == 3 && inode == st.st_ino &&
        strncmp(file, "/dev/shm/", 9) == 0) {
      addr = start;
      break;
    }
  }
  fclose(f);
  return addr;
}

/* 1 if PID's main thread is in a futex call on ADDR. */
static int main_thread_waits(int pid, unsigned long addr) {
  char path[128], line[256];
  snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int in = 0;
  long nr;
  unsigned long arg;
  if (addr && fgets(line, sizeof line, f) && sscanf(line, "%ld %lx", &nr, &arg) == 2) in = nr == SYS_futex && arg == addr;
  fclose(f);
  return in;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int i = 1;
#define ARG() (i < argc ? argv[i++] : (usage(), ""))
  while (i < argc) {
    const char *cmd = ARG();
    if (strcmp(cmd, "sysno") == 0) {
      printf("futex=%d\n", (int)SYS_futex);
    } else if (strcmp(cmd, "create") == 0) {
      const char *name = ARG();
      mode_t mode = (mode_t)strtoul(ARG(), NULL, 8);
      unsigned value = (unsigned)strtoul(ARG(), NULL, 10);
      if (sem_open(name, O_CREAT | O_EXCL, mode, value) == SEM_FAILED) die("sem_open");
      printf("created\n");
    } else if (strcmp(cmd, "post") == 0) {
      sem_t *s = open_sem(ARG());
      long count = 1;
      if (i < argc && argv[i][0] >= '0' && argv[i][0] <= '9') count = atol(ARG());
      for (long k = 0; k < count; k++)
        if (sem_post(s) != 0) die("sem_post");
      printf("posted %ld\n", count);
    } else if (strcmp(cmd, "wait") == 0) {
      sem_t *s = open_sem(ARG());
      while (sem_wait(s) != 0)
        if (errno != EINTR) die("sem_wait");
      printf("acquired\n");
    } else if (strcmp(cmd, "trywait") == 0) {
      sem_t *s = open_sem(ARG());
      if (sem_trywait(s) == 0) printf("took\n");
      else if (errno == EAGAIN) printf("EAGAIN\n");
      else die("sem_trywait");
    } else if (strcmp(cmd, "value") == 0) {
      sem_t *s = open_sem(ARG());
      int v;
      if (sem_getvalue(s, &v) != 0) die("sem_getvalue");
      printf("value=%d\n", v);
    } else if (strcmp(cmd, "pingpong") == 0) {
      sem_t *ping = open_sem(ARG());
      sem_t *pong = open_sem(ARG());
      long n = atol(ARG());
      for (long k = 0; k < n; k++) {
        while (sem_wait(ping) != 0)
          if (errno != EINTR) die("sem_wait");
        if (sem_post(pong) != 0) die("sem_post");
      }
      printf("rounds %ld\n", n);
    } else if (strcmp(cmd, "try-open") == 0) {
      const char *name = ARG();
      sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
      if (s == SEM_FAILED) {
        printf("%s\n", errno_name(errno));
      } else {
        sem_close(s);
        if (sem_unlink(name) != 0) die("sem_unlink");
        printf("ok\n");
      }
    } else if (strcmp(cmd, "unlink") == 0) {
      if (sem_unlink(ARG()) != 0) die("sem_unlink");
      printf("unlinked\n");
    } else if (strcmp(cmd, "interrupt") == 0) {
      int pid = atoi(ARG());
      const char *name = ARG();
      unsigned long addr;
      while (!main_thread_waits(pid, addr = sem_address(pid, name))) {
        check_alive(pid);
        usleep(200);
      }
      if (syscall(SYS_tgkill, pid, pid, SIGUSR2) != 0) die("tgkill");
      /* Taken means the first call has returned (EINTR); then wait for the retry. */
      while (signal_pending(pid, SIGUSR2) || !main_thread_waits(pid, addr)) {
        check_alive(pid);
        usleep(200);
      }
      printf("interrupted\n");
    } else {
      usage();
    }
  }
  return 0;
}
