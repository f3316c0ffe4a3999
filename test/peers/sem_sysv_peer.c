/*
 * System V semaphore set peer for test/sem-sysv.test.ts: plain semget, semop
 * and semctl, as a C program written from the man pages would do it.
 *
 * Operations are written SPEC = NUM:OP[:FLAGS][,NUM:OP[:FLAGS]...], FLAGS made
 * of 'u' (SEM_UNDO) and 'n' (IPC_NOWAIT); one SPEC is one semop call.
 *
 * Arguments are a sequence of steps, run in order; each prints one line:
 *   get ID                  semctl(GETALL)                        "values <v0> <v1> ..."
 *   set ID NUM VALUE        semctl(SETVAL)                        "set"
 *   op ID SPEC              semop                                 "done", or "EAGAIN"
 *   hold ID SPEC            semop, then keep running until stdin ends, never undoing
 *                           anything itself (SEM_UNDO is the kernel's business)
 *                                                                 "holding"
 *   ncnt ID NUM N           until GETNCNT of NUM is at least N    "ncnt <n>"
 *   zcnt ID NUM N           until GETZCNT of NUM is at least N    "zcnt <n>"
 *   transfer ID FROM TO N   N times semop({FROM,-1},{TO,+1}) as one call
 *                                                                 "transferred <n>"
 *   watch ID SUM            GETALL in a loop until stdin ends, counting the reads,
 *                           those where semaphore 0 or 1 holds the token, and those
 *                           whose values do not add up to SUM
 *                           "watching" first, then "reads <r> first <a> second <b> bad <x>"
 *   rm ID                   semctl(IPC_RMID)                      "removed"
 *   interrupt PID ID        once PID's main thread is in semop/semtimedop on ID,
 *                           tgkill(SIGUSR2) it; wait until the signal was taken and
 *                           the thread is back in the call        "interrupted"
 *
 * Errors go to stderr as "<what>: <strerror>" with exit status 1; 3 if the
 * watched process went away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "peer.h"

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

static size_t parse_spec(const char *spec, struct sembuf *ops, size_t max) {
  size_t n = 0;
  const char *p = spec;
  while (*p) {
    if (n == max) usage();
    char *end;
    ops[n].sem_num = (unsigned short)strtoul(p, &end, 10);
    if (*end != ':') usage();
    ops[n].sem_op = (short)strtol(end + 1, &end, 10);
    ops[n].sem_flg = 0;
    if (*end == ':') {
      for (end++; *end && *end != ','; end++) {
        if (*end == 'u') ops[n].sem_flg |= SEM_UNDO;
        else if (*end == 'n') ops[n].sem_flg |= IPC_NOWAIT;
        else usage();
      }
    }
    n++;
    if (*end == ',') end++;
    else if (*end) usage();
    p = end;
  }
  return n;
}

static int nsems(int id) {
  struct semid_ds ds;
  union semun arg = {.buf = &ds};
  if (semctl(id, 0, IPC_STAT, arg) != 0) die("semctl IPC_STAT");
  return (int)ds.sem_nsems;
}

/* 1 once stdin has ended (EOF or hangup), without blocking. */
static int stdin_ended(void) {
  struct pollfd p = {.fd = 0, .events = POLLIN};
  if (poll(&p, 1, 0) <= 0) return 0;
  char buf[64];
  return read(0, buf, sizeof buf) <= 0;
}

/* 1 if PID's main thread is in semop or semtimedop on set ID. */
static int main_thread_in_semop(int pid, int id) {
  char path[128], line[256];
  snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int in = 0;
  long nr;
  unsigned long arg;
  if (fgets(line, sizeof line, f) && sscanf(line, "%ld %lx", &nr, &arg) == 2)
    in = (nr == SYS_semop || nr == SYS_semtimedop) && (long)arg == id;
  fclose(f);
  return in;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int i = 1;
#define ARG() (i < argc ? argv[i++] : (usage(), ""))
  while (i < argc) {
    const char *cmd = ARG();
    if (strcmp(cmd, "get") == 0) {
      int id = atoi(ARG());
      int n = nsems(id);
      unsigned short values[n];
      union semun arg = {.array = values};
      if (semctl(id, 0, GETALL, arg) != 0) die("semctl GETALL");
      printf("values");
      for (int k = 0; k < n; k++) printf(" %u", values[k]);
      printf("\n");
    } else if (strcmp(cmd, "set") == 0) {
      int id = atoi(ARG());
      int num = atoi(ARG());
      union semun arg = {.val = atoi(ARG())};
      if (semctl(id, num, SETVAL, arg) != 0) die("semctl SETVAL");
      printf("set\n");
    } else if (strcmp(cmd, "op") == 0 || strcmp(cmd, "hold") == 0) {
      int id = atoi(ARG());
      struct sembuf ops[64];
      size_t n = parse_spec(ARG(), ops, 64);
      int r;
      while ((r = semop(id, ops, n)) != 0 && errno == EINTR) {
      }
      if (r != 0 && errno == EAGAIN && cmd[0] == 'o') {
        printf("EAGAIN\n");
        continue;
      }
      if (r != 0) die("semop");
      if (cmd[0] == 'o') {
        printf("done\n");
      } else {
        printf("holding\n");
        char buf[64];
        while (read(0, buf, sizeof buf) > 0) {
        }
      }
    } else if (strcmp(cmd, "ncnt") == 0 || strcmp(cmd, "zcnt") == 0) {
      int id = atoi(ARG());
      int num = atoi(ARG());
      int want = atoi(ARG());
      int n;
      while ((n = semctl(id, num, cmd[0] == 'n' ? GETNCNT : GETZCNT)) < want) {
        if (n < 0) die("semctl");
        usleep(200);
      }
      printf("%s %d\n", cmd, n);
    } else if (strcmp(cmd, "transfer") == 0) {
      int id = atoi(ARG());
      unsigned short from = (unsigned short)atoi(ARG()), to = (unsigned short)atoi(ARG());
      long n = atol(ARG());
      struct sembuf ops[2] = {{from, -1, 0}, {to, 1, 0}};
      for (long k = 0; k < n; k++)
        while (semop(id, ops, 2) != 0)
          if (errno != EINTR) die("semop");
      printf("transferred %ld\n", n);
    } else if (strcmp(cmd, "watch") == 0) {
      int id = atoi(ARG());
      long sum = atol(ARG());
      int n = nsems(id);
      if (n < 2) usage();
      unsigned short values[n];
      union semun arg = {.array = values};
      long reads = 0, first = 0, second = 0, bad = 0;
      printf("watching\n");
      while (!stdin_ended()) {
        if (semctl(id, 0, GETALL, arg) != 0) die("semctl GETALL");
        long total = 0;
        for (int k = 0; k < n; k++) total += values[k];
        reads++;
        if (total != sum) bad++;
        if (values[0] == 1 && values[1] == 0) first++;
        if (values[0] == 0 && values[1] == 1) second++;
      }
      printf("reads %ld first %ld second %ld bad %ld\n", reads, first, second, bad);
    } else if (strcmp(cmd, "rm") == 0) {
      if (semctl(atoi(ARG()), 0, IPC_RMID) != 0) die("semctl IPC_RMID");
      printf("removed\n");
    } else if (strcmp(cmd, "interrupt") == 0) {
      int pid = atoi(ARG());
      int id = atoi(ARG());
      while (!main_thread_in_semop(pid, id)) {
        check_alive(pid);
        usleep(200);
      }
      if (syscall(SYS_tgkill, pid, pid, SIGUSR2) != 0) die("tgkill");
      /* Taken means the first call has returned (EINTR); then wait for the retry. */
      while (signal_pending(pid, SIGUSR2) || !main_thread_in_semop(pid, id)) {
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
