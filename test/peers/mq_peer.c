/*
 * POSIX message queue peer for test/mqueue-posix.test.ts: plain blocking
 * mq_open / mq_send / mq_receive, as a C program written from the man pages
 * would do it.
 *
 *   mq_peer send NAME PRIO:TEXT...   mq_send each TEXT with its priority, in order
 *   mq_peer send-hex NAME PRIO HEX   mq_send the bytes spelled by HEX
 *   mq_peer send-seq NAME COUNT      mq_send "msg-0" .. "msg-<COUNT-1>", priority 0
 *   mq_peer receive NAME COUNT       mq_receive COUNT messages; print "PRIO LEN HEX TEXT" each
 *   mq_peer create NAME MAXMSG MSGSIZE [MODE]  O_CREAT|O_EXCL with these attributes
 *   mq_peer attr NAME                print "maxmsg M msgsize S curmsgs C"
 *
 * Sends and receives block (no O_NONBLOCK): a full queue makes "send" wait for
 * a reader, an empty one makes "receive" wait for a writer. Each completed
 * call is reported on a line of its own ("sent ..." / the message), flushed
 * at once. Errors go to stderr as "<call>: <strerror>" with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

static mqd_t open_queue(const char *name, int oflag) {
  mqd_t q = mq_open(name, oflag);
  if (q == (mqd_t)-1) die("mq_open");
  return q;
}

static void send_one(mqd_t q, const char *data, size_t len, unsigned prio) {
  if (mq_send(q, data, len, prio) != 0) die("mq_send");
  printf("sent %u %.*s\n", prio, (int)len, data);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: %s send|send-hex|send-seq|receive|create|attr NAME ...\n", argv[0]);
    return 2;
  }
  const char *cmd = argv[1];
  const char *name = argv[2];

  if (strcmp(cmd, "send") == 0) {
    mqd_t q = open_queue(name, O_WRONLY);
    for (int i = 3; i < argc; i++) {
      char *end;
      unsigned long prio = strtoul(argv[i], &end, 10);
      if (*end != ':') {
        fprintf(stderr, "expected PRIO:TEXT, got %s\n", argv[i]);
        return 2;
      }
      send_one(q, end + 1, strlen(end + 1), (unsigned)prio);
    }
    mq_close(q);
  } else if (strcmp(cmd, "send-hex") == 0 && argc == 5) {
    mqd_t q = open_queue(name, O_WRONLY);
    const char *hex = argv[4];
    size_t len = strlen(hex) / 2;
    char *data = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
      int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        fprintf(stderr, "bad hex %s\n", hex);
        return 2;
      }
      data[i] = (char)(hi << 4 | lo);
    }
    if (mq_send(q, data, len, (unsigned)atoi(argv[3])) != 0) die("mq_send");
    printf("sent %zu bytes\n", len);
    free(data);
    mq_close(q);
  } else if (strcmp(cmd, "send-seq") == 0 && argc == 4) {
    mqd_t q = open_queue(name, O_WRONLY);
    int count = atoi(argv[3]);
    char text[32];
    for (int i = 0; i < count; i++) {
      int n = snprintf(text, sizeof text, "msg-%d", i);
      if (mq_send(q, text, (size_t)n, 0) != 0) die("mq_send");
    }
    printf("sent %d\n", count);
    mq_close(q);
  } else if (strcmp(cmd, "receive") == 0 && argc == 4) {
    mqd_t q = open_queue(name, O_RDONLY);
    struct mq_attr attr;
    if (mq_getattr(q, &attr) != 0) die("mq_getattr");
    char *buf = malloc((size_t)attr.mq_msgsize);
    int count = atoi(argv[3]);
    for (int i = 0; i < count; i++) {
      unsigned prio;
      ssize_t n = mq_receive(q, buf, (size_t)attr.mq_msgsize, &prio);
      if (n < 0) die("mq_receive");
      printf("%u %zd ", prio, n);
      for (ssize_t j = 0; j < n; j++) printf("%02x", (unsigned char)buf[j]);
      printf(" %.*s\n", (int)n, buf);
    }
    free(buf);
    mq_close(q);
  } else if (strcmp(cmd, "create") == 0 && (argc == 5 || argc == 6)) {
    struct mq_attr attr = {0};
    attr.mq_maxmsg = atol(argv[3]);
    attr.mq_msgsize = atol(argv[4]);
    mode_t mode = argc == 6 ? (mode_t)strtoul(argv[5], NULL, 8) : 0600;
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, mode, &attr);
    if (q == (mqd_t)-1) die("mq_open");
    printf("created\n");
    mq_close(q);
  } else if (strcmp(cmd, "attr") == 0) {
    mqd_t q = open_queue(name, O_RDONLY);
    struct mq_attr attr;
    if (mq_getattr(q, &attr) != 0) die("mq_getattr");
    printf("maxmsg %ld msgsize %ld curmsgs %ld\n", attr.mq_maxmsg, attr.mq_msgsize, attr.mq_curmsgs);
    mq_close(q);
  } else {
    fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
    return 2;
  }
  return 0;
}
