/*
 * System V message queue peer for test/msgqueue-sysv.test.ts: plain msgsnd,
 * msgrcv and msgctl on C's struct { long mtype; char mtext[]; }, plus steps
 * that wait until another process is blocked in msgrcv/msgsnd (read from
 * /proc/PID/task/TID/syscall), so tests act at that moment without sleeping.
 *
 * Arguments are a sequence of steps, run in order; each prints one line:
 *   sysno                          "msgsnd=<nr> msgrcv=<nr>"
 *   send ID TYPE TEXT              msgsnd TEXT (no NUL)           "sent"
 *   send-pattern ID TYPE LEN       msgsnd bytes (i * 7 + i / 256) & 0xff, NULs included
 *                                                                 "sent len=<n> fnv=<hash>"
 *   send-many ID FIRST LAST        one "message <t>" for each type t in FIRST..LAST
 *                                                                 "sent <count>"
 *   send-lines ID TYPE             msgsnd each stdin line's text until EOF
 *                                                                 "total <count>"
 *   recv ID TYPE MAXSIZE           msgrcv(TYPE, 0)                "type=<t> len=<n> fnv=<hash> head=<hex of 16 bytes>"
 *   echo ID INTYPE OUTTYPE MAXSIZE msgrcv INTYPE, msgsnd the same bytes as OUTTYPE
 *                                                                 "echoed type=<t> len=<n> fnv=<hash>"
 *   rm ID                          msgctl(IPC_RMID)               "removed"
 *   wait-blocked PID CALL QID N    until N threads of PID are in CALL (msgrcv or
 *                                  msgsnd) on queue QID           "blocked <n>"
 *   interrupt PID CALL QID         once PID's main thread is in CALL on QID,
 *                                  tgkill(SIGUSR2) it; wait until the signal was
 *                                  taken and the thread is back in CALL
 *                                                                 "interrupted"
 * fnv is FNV-1a 32 of the mtext bytes, in 8 hex digits.
 *
 * Errors go to stderr as "<what>: <strerror>" with exit status 1; 3 if the
 * watched process went away.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "peer.h"

static uint32_t fnv(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 16777619u;
  }
  return h;
}

struct msg {
  long mtype;
  char mtext[];
};

static struct msg *alloc_msg(size_t size) {
  struct msg *m = malloc(sizeof(struct msg) + size + 1);
  if (!m) die("malloc");
  return m;
}

static void send_bytes(int id, long type, const char *data, size_t len) {
  struct msg *m = alloc_msg(len);
  m->mtype = type;
  memcpy(m->mtext, data, len);
  if (msgsnd(id, m, len, 0) != 0) die("msgsnd");
  free(m);
}

static int syscall_nr(const char *name) {
  if (strcmp(name, "msgrcv") == 0) return SYS_msgrcv;
  if (strcmp(name, "msgsnd") == 0) return SYS_msgsnd;
  usage();
  return -1;
}

/* 1 if thread TID of PID is in syscall NR with first argument QID. */
static int thread_in(int pid, const char *tid, long nr, long qid) {
  char path[128], line[256];
  snprintf(path, sizeof path, "/proc/%d/task/%s/syscall", pid, tid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int in = 0;
  long got;
  unsigned long arg;
  if (fgets(line, sizeof line, f) && sscanf(line, "%ld %lx", &got, &arg) == 2) in = got == nr && (long)arg == qid;
  fclose(f);
  return in;
}

static int threads_in(int pid, long nr, long qid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    n += thread_in(pid, e->d_name, nr, qid);
  }
  closedir(d);
  return n;
}

static void pause_briefly(void) { usleep(200); }

/* The signal is pending on the thread until the thread takes it. */
int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int i = 1;
#define ARG() (i < argc ? argv[i++] : (usage(), ""))
  while (i < argc) {
    const char *cmd = ARG();
    if (strcmp(cmd, "sysno") == 0) {
      printf("msgsnd=%d msgrcv=%d\n", (int)SYS_msgsnd, (int)SYS_msgrcv);
    } else if (strcmp(cmd, "send") == 0) {
      int id = atoi(ARG());
      long type = atol(ARG());
      const char *text = ARG();
      send_bytes(id, type, text, strlen(text));
      printf("sent\n");
    } else if (strcmp(cmd, "send-pattern") == 0) {
      int id = atoi(ARG());
      long type = atol(ARG());
      size_t len = strtoul(ARG(), NULL, 0);
      char *data = malloc(len + 1);
      if (!data) die("malloc");
      for (size_t k = 0; k < len; k++) data[k] = (char)((k * 7 + k / 256) & 0xff);
      send_bytes(id, type, data, len);
      printf("sent len=%zu fnv=%08x\n", len, fnv(data, len));
      free(data);
    } else if (strcmp(cmd, "send-many") == 0) {
      int id = atoi(ARG());
      long first = atol(ARG()), last = atol(ARG());
      char text[64];
      for (long t = first; t <= last; t++) {
        int n = snprintf(text, sizeof text, "message %ld", t);
        send_bytes(id, t, text, (size_t)n);
      }
      printf("sent %ld\n", last - first + 1);
    } else if (strcmp(cmd, "send-lines") == 0) {
      int id = atoi(ARG());
      long type = atol(ARG());
      char line[256];
      long count = 0;
      while (fgets(line, sizeof line, stdin)) {
        size_t n = strcspn(line, "\n");
        send_bytes(id, type, line, n);
        count++;
      }
      printf("total %ld\n", count);
    } else if (strcmp(cmd, "recv") == 0 || strcmp(cmd, "echo") == 0) {
      int echo = cmd[0] == 'e';
      int id = atoi(ARG());
      long type = atol(ARG());
      long out_type = echo ? atol(ARG()) : 0;
      size_t max = strtoul(ARG(), NULL, 0);
      struct msg *m = alloc_msg(max);
      ssize_t n = msgrcv(id, m, max, type, 0);
      if (n < 0) die("msgrcv");
      if (echo) {
        long got = m->mtype;
        m->mtype = out_type;
        if (msgsnd(id, m, (size_t)n, 0) != 0) die("msgsnd");
        printf("echoed type=%ld len=%zd fnv=%08x\n", got, n, fnv(m->mtext, (size_t)n));
      } else {
        printf("type=%ld len=%zd fnv=%08x head=", m->mtype, n, fnv(m->mtext, (size_t)n));
        for (ssize_t k = 0; k < n && k < 16; k++) printf("%02x", (unsigned char)m->mtext[k]);
        printf("\n");
      }
      free(m);
    } else if (strcmp(cmd, "rm") == 0) {
      if (msgctl(atoi(ARG()), IPC_RMID, NULL) != 0) die("msgctl");
      printf("removed\n");
    } else if (strcmp(cmd, "wait-blocked") == 0) {
      int pid = atoi(ARG());
      long nr = syscall_nr(ARG());
      long qid = atol(ARG());
      int want = atoi(ARG());
      int n;
      while ((n = threads_in(pid, nr, qid)) < want) {
        check_alive(pid);
        pause_briefly();
      }
      printf("blocked %d\n", n);
    } else if (strcmp(cmd, "interrupt") == 0) {
      int pid = atoi(ARG());
      long nr = syscall_nr(ARG());
      long qid = atol(ARG());
      char tid[32];
      snprintf(tid, sizeof tid, "%d", pid);
      while (!thread_in(pid, tid, nr, qid)) {
        check_alive(pid);
        pause_briefly();
      }
      if (syscall(SYS_tgkill, pid, pid, SIGUSR2) != 0) die("tgkill");
      /* Taken means the first call has returned (EINTR); then wait for the retry. */
      while (signal_pending(pid, SIGUSR2) || !thread_in(pid, tid, nr, qid)) {
        check_alive(pid);
        pause_briefly();
      }
      printf("interrupted\n");
    } else {
      usage();
    }
  }
  return 0;
}
