/*
 * The C side of bench/channel.mjs: the same protocol as the Node sides, over
 * a Channel through the C API (include/interprocess.h, c/interprocess.c),
 * with the copying calls (ipx_channel_send / ipx_channel_receive into a
 * reused buffer), which spin briefly and then sleep as sendSync/receiveSync do.
 *
 *   channel_bench A|B WARMUP WARMUP_S ROUNDS SECONDS A2B B2A
 *
 * A sends on A2B and receives on B2A; B the other way round.
 *   1. round trips of a 64-byte message (B echoes): WARMUP of them and for at
 *      least WARMUP_S seconds, then ROUNDS timed one by one, then a 4-byte
 *      end marker;
 *   2. for 64 bytes, then 1 MiB: A sends for SECONDS, then a 4-byte end
 *      marker holding the count; B checks each message (its sequence number,
 *      u32 LE, at offset 0, at (size / 2) & ~3 and in its last 4 bytes) and
 *      answers 16 bytes: u32 count, u32 bad, u64 CLOCK_MONOTONIC ns of the
 *      last receive.
 * A prints one JSON line, as bench/channel.mjs's Node side A does.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interprocess.h"

#define MIB (1u << 20)

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what, int err) {
  fprintf(stderr, "channel_bench: %s: %s\n", what, strerror(err));
  exit(1);
}

static void put32(uint8_t *m, uint32_t o, uint32_t v) { memcpy(m + o, &v, 4); }
static uint32_t get32(const uint8_t *m, uint32_t o) { uint32_t v; memcpy(&v, m + o, 4); return v; }
static uint32_t mid(uint32_t size) { return (size >> 1) & ~3u; }

static void make(uint8_t *m, uint32_t seq, uint32_t size) {
  put32(m, 0, seq);
  put32(m, mid(size), seq);
  put32(m, size - 4, seq);
}

/* The sequence number of a well-formed message of `size` bytes, else -1. */
static int64_t seq_of(const uint8_t *m, uint32_t len, uint32_t size) {
  if (len != size) return -1;
  uint32_t s = get32(m, 0);
  return get32(m, mid(size)) == s && get32(m, size - 4) == s ? (int64_t)s : -1;
}

static void send_msg(struct ipx_channel *ch, const void *m, uint32_t len) {
  int r = ipx_channel_send(ch, m, len, -1);
  if (r) die("send", r);
}

static uint32_t recv_msg(struct ipx_channel *ch, uint8_t *buf, uint32_t size) {
  uint32_t len;
  int r = ipx_channel_receive(ch, buf, size, &len, -1);
  if (r) die("receive", r);
  return len;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 8 || (strcmp(argv[1], "A") && strcmp(argv[1], "B"))) {
    fprintf(stderr, "usage: channel_bench A|B WARMUP WARMUP_S ROUNDS SECONDS A2B B2A\n");
    return 2;
  }
  int is_a = argv[1][0] == 'A';
  long warmup = atol(argv[2]), rounds = atol(argv[4]);
  double warmup_s = atof(argv[3]), seconds = atof(argv[5]);
  struct ipx_channel out, in;
  int r;
  if ((r = ipx_channel_open(&out, is_a ? argv[6] : argv[7]))) die("open", r);
  if ((r = ipx_channel_open(&in, is_a ? argv[7] : argv[6]))) die("open", r);
  uint32_t sizes[2] = {64, MIB};
  uint8_t *msg = malloc(MIB), *buf = malloc(MIB);
  memset(msg, 0xa5, MIB);

  if (is_a) {
    double *t = malloc(sizeof(double) * (rounds + 1));
    uint64_t warm = now_ns() + (uint64_t)(warmup_s * 1e9);
    for (long i = 0, first = -1;; i++) {
      make(msg, (uint32_t)i, 64);
      send_msg(&out, msg, 64);
      uint64_t at = now_ns(); /* read while the message travels, as the Node side does */
      if (first < 0 && i >= warmup && at >= warm) first = i; /* warmed up: time the next ROUNDS */
      if (first >= 0) t[i - first] = (double)at;
      uint32_t len = recv_msg(&in, buf, MIB);
      if (seq_of(buf, len, 64) != (uint32_t)i) { fprintf(stderr, "channel_bench: round trip %ld: wrong echo\n", i); return 1; }
      if (first >= 0 && i - first == rounds) break;
    }
    uint8_t over[4] = {0};
    send_msg(&out, over, 4);
    double *s = malloc(sizeof(double) * rounds);
    for (long i = 0; i < rounds; i++) s[i] = t[i + 1] - t[i];
    qsort(s, rounds, sizeof *s, cmp);
    printf("{\"rtt\":{\"median\":%.4f,\"p99\":%.4f}", s[rounds / 2] / 1000, s[(long)(rounds * 0.99)] / 1000);
    for (int k = 0; k < 2; k++) {
      uint32_t size = sizes[k], batch = size <= 4096 ? 256 : 1, seq = 0;
      uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
      do {
        for (uint32_t j = 0; j < batch; j++) {
          make(msg, seq++, size);
          send_msg(&out, msg, size);
        }
      } while (now_ns() < deadline);
      uint8_t end[4];
      put32(end, 0, seq);
      send_msg(&out, end, 4);
      uint32_t len = recv_msg(&in, buf, MIB);
      if (len != 16) { fprintf(stderr, "channel_bench: expected the 16-byte answer, got %u bytes\n", len); return 1; }
      uint32_t count = get32(buf, 0), bad = get32(buf, 4);
      uint64_t last;
      memcpy(&last, buf + 8, 8);
      double secs = (double)(last - t0) / 1e9;
      printf(",\"%u\":{\"size\":%u,\"sent\":%u,\"received\":%u,\"bad\":%u,\"seconds\":%.6f,\"msgsPerSec\":%.1f,\"GBps\":%.4f}",
             size, size, seq, count, bad, secs, count / secs, (double)count * size / secs / 1e9);
    }
    printf("}\n");
  } else {
    for (uint32_t len; (len = recv_msg(&in, buf, MIB)) != 4;) send_msg(&out, buf, len);
    for (int k = 0; k < 2; k++) {
      uint32_t size = sizes[k], count = 0, bad = 0, len;
      for (;;) {
        len = recv_msg(&in, buf, MIB);
        if (len == 4) break;
        if (seq_of(buf, len, size) != count) bad++;
        count++;
      }
      uint64_t last = now_ns();
      if (get32(buf, 0) != count) bad++;
      uint8_t done[16];
      put32(done, 0, count);
      put32(done, 4, bad);
      memcpy(done + 8, &last, 8);
      send_msg(&out, done, 16);
    }
  }
  ipx_channel_close(&out);
  ipx_channel_close(&in);
  return 0;
}
