/*
 * System V message queue peer for test/cli-queue.test.ts: a C program on the
 * other end of `interprocess queue send/recv`, opening the queue by key as a
 * script's C partner would, with message bytes given and shown in hex so
 * NUL bytes and newlines are checked exactly.
 *
 * Arguments are a sequence of steps, run in order; each prints one line:
 *   send KEY TYPE HEX    msgget(KEY, 0), msgsnd the bytes HEX ("" = empty)   "sent"
 *   recv KEY TYPE        msgget(KEY, 0), msgrcv(TYPE, 0), waiting            "type=<t> hex=<bytes>"
 * KEY is read with strtoul(..., 0): 0x1234abcd as ipcs prints it.
 *
 * Errors go to stderr as "<what>: <strerror>" with exit status 1.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "peer.h"

struct msg {
  long mtype;
  char mtext[8192];
};

static int queue(const char *key) {
  int id = msgget((key_t)strtoul(key, NULL, 0), 0);
  if (id < 0) die("msgget");
  return id;
}

static size_t unhex(const char *hex, char *out, size_t max) {
  size_t n = strlen(hex);
  if (n % 2 != 0 || n / 2 > max) usage();
  for (size_t k = 0; k < n / 2; k++) {
    unsigned byte;
    if (sscanf(hex + 2 * k, "%2x", &byte) != 1) usage();
    out[k] = (char)byte;
  }
  return n / 2;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  static struct msg m;
  int i = 1;
#define ARG() (i < argc ? argv[i++] : (usage(), ""))
  while (i < argc) {
    const char *cmd = ARG();
    if (strcmp(cmd, "send") == 0) {
      int id = queue(ARG());
      m.mtype = atol(ARG());
      size_t len = unhex(ARG(), m.mtext, sizeof m.mtext);
      if (msgsnd(id, &m, len, 0) != 0) die("msgsnd");
      printf("sent\n");
    } else if (strcmp(cmd, "recv") == 0) {
      int id = queue(ARG());
      long type = atol(ARG());
      ssize_t n = msgrcv(id, &m, sizeof m.mtext, type, 0);
      if (n < 0) die("msgrcv");
      printf("type=%ld hex=", m.mtype);
      for (ssize_t k = 0; k < n; k++) printf("%02x", (unsigned char)m.mtext[k]);
      printf("\n");
    } else {
      usage();
    }
  }
  return 0;
}
