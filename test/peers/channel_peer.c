/*
 * A C program on a Channel (include/interprocess.h): `channel_peer IN echo N OUT`
 * receives N messages on IN and sends each back reversed on OUT; `channel_peer NAME send N`
 * sends N messages of varied sizes (byte i of message k is (k + i) & 255) and
 * prints a checksum of what it sent.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "interprocess.h"

static int attach(const char *name, struct ipx_channel *ch) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) { perror("shm_open"); return -1; }
  struct stat st;
  fstat(fd, &st);
  void *base = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) { perror("mmap"); return -1; }
  if (ipx_channel_attach(ch, base, fd) != 0) { fprintf(stderr, "not a channel\n"); return -1; }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: channel_peer IN echo N OUT | NAME send N\n"); return 2; }
  struct ipx_channel ch, out;
  if (attach(argv[1], &ch) != 0) return 1;
  if (strcmp(argv[2], "echo") == 0 && (argc != 5 || attach(argv[4], &out) != 0)) return 1;
  long n = atol(argv[3]);
  uint8_t *buf = malloc(ch.max_message);
  if (strcmp(argv[2], "echo") == 0) {
    for (long k = 0; k < n; k++) {
      uint32_t len;
      int r = ipx_channel_receive(&ch, buf, ch.max_message, &len);
      if (r) { fprintf(stderr, "receive: %d\n", r); return 1; }
      for (uint32_t i = 0; i < len / 2; i++) { uint8_t t = buf[i]; buf[i] = buf[len - 1 - i]; buf[len - 1 - i] = t; }
      if ((r = ipx_channel_send(&out, buf, len))) { fprintf(stderr, "send: %d\n", r); return 1; }
    }
    printf("echoed %ld\n", n);
  } else {
    uint64_t sum = 0;
    for (long k = 0; k < n; k++) {
      uint32_t len = k % 50 == 0 ? ch.max_message : (uint32_t)((k * 7919) % 3000);
      for (uint32_t i = 0; i < len; i++) { buf[i] = (uint8_t)((k + i) & 255); sum = sum * 31 + buf[i]; }
      int r = ipx_channel_send(&ch, buf, len);
      if (r) { fprintf(stderr, "send: %d\n", r); return 1; }
    }
    printf("%llu\n", (unsigned long long)sum);
  }
  return 0;
}
