/*
 * A C program on a Channel (include/interprocess.h + c/interprocess.c), for
 * test/channel-c.test.ts.
 *
 *   channel_peer create NAME CAPACITY   creates the channel object itself, as
 *                                  Channel.create does (docs/channel.md):
 *                                  "created"
 *   channel_peer IN echo N OUT [US]  receives N messages on IN, sends each back
 *                                  reversed on OUT (sleeping US µs before each
 *                                  echo): "echoed N"
 *   channel_peer NAME send N [OPT...]  sends N messages: "<N> <checksum>"
 *       zc          through reserve/commit (every other one reserving 16 bytes
 *                   more than it commits)
 *       id=ID       each message starts with u32 ID, u32 k (lengths >= 8)
 *       seed=S      of the lengths and bytes (default 1)
 *       pause=E:US  sleeps US µs after every E messages
 *       timeout=MS  of each send (default 30000)
 *       hold        then "done", and waits for stdin to end before closing
 *       size=L      every message L bytes long ("max": max_message)
 *       stats       then "p50 <µs> p75 <µs>": how long the calls took
 *   channel_peer NAME recv N [OPT...]  receives N messages (-1: until an error):
 *                                  "<count> <checksum>[ <id>:<checksum>...]",
 *                                  then with -1 "end <ERRNO>"
 *       view        zero-copy (receive_view/release)
 *       probe       each message first with a 0-byte buffer (EMSGSIZE and the
 *                   length, the message staying), then try_receive
 *       ids         also a checksum per sender id (ids 0..7, see send id=),
 *                   checking each sender's k counts up: "order <id> <k>", exit 5
 *       start=S     the checksum continues from S (another receiver's result)
 *       stats       as for send
 *       pause=E:US, timeout=MS  as for send
 *   channel_peer NAME hold-send      sends "from C", "sent", waits to be killed
 *   channel_peer NAME hold-recv      receives one message, "got <len>", waits
 *   channel_peer NAME reserve-die LEN [MS]  reserves LEN bytes, fills them with
 *                                  0xEE, "reserved", sleeps MS ms, SIGKILLs itself
 *   channel_peer NAME publish-die LEN  reserves LEN bytes, fills them with 0xEE,
 *                                  does all that publishing does but count the
 *                                  record in head and unlock (docs/channel.md,
 *                                  Sending), "published", SIGKILLs itself
 *   channel_peer NAME reserve-hold N MS  N times: reserves 100 bytes, "reserved <k>",
 *                                  sleeps MS ms, commits, waits for a line on stdin
 *   channel_peer NAME try-recv       one try_receive: "got <len>" or "<ERRNO>"
 *   channel_peer NAME try-send       one try_send of "x": "OK" or "<ERRNO>"
 *   channel_peer NAME early-send     sends "early", "sent", then for each line
 *                                  on stdin one try_send of an empty message:
 *                                  "OK" or "<ERRNO>"
 *   channel_peer NAME crowd N        takes N sender slots (N handles, an empty
 *                                  message each): "crowd N", then waits for
 *                                  stdin to end and closes them
 *   channel_peer NAME slots          takes every sender slot from one process
 *                                  (one handle each): "slots <taken> <ERRNO of
 *                                  the next> <ERRNO after one closed>"
 *
 * Lengths (send): every 50th message max_message, every 13th empty, every
 * 5th placed at the end of the ring (exactly filling it, or just too long
 * so it wraps, or leaving 8 bytes), else random below 3000. The checksum is
 * FNV-1a (32 bits) over each message's length (u32 LE) and bytes, in order.
 * A failed call prints "failed <ERRNO> at <k>", exit status 4.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interprocess.h"
#include "peer.h"

#define TIMEOUT_MS 30000

static const char *errname(int r) {
  switch (r) {
    case 0: return "OK";
    case EAGAIN: return "EAGAIN";
    case EBUSY: return "EBUSY";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EMSGSIZE: return "EMSGSIZE";
    case EINVAL: return "EINVAL";
    case EBADMSG: return "EBADMSG";
    case ENOENT: return "ENOENT";
    default: return strerror(r);
  }
}

static void failed(int r, long k) {
  printf("failed %s at %ld\n", errname(r), k);
  exit(4);
}

static uint32_t fnv(uint32_t h, const uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static uint32_t checksum(uint32_t h, const uint8_t *p, uint32_t len) {
  uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
  return fnv(fnv(h, le, 4), p, len);
}

static uint32_t rnd(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static void open_channel(struct ipx_channel *ch, const char *name) {
  int r = ipx_channel_open(ch, name);
  if (r) fail("ipx_channel_open", r);
}

static int create(const char *name, uint32_t cap) {
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) die("shm_open");
  size_t size = IPX_CHANNEL_RING + cap;
  if (ftruncate(fd, (off_t)size) != 0) die("ftruncate");
  struct ipx_channel_layout *l = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (l == MAP_FAILED) die("mmap");
  l->capacity = cap;
  l->max_message = cap / 2 - 8;
  l->sender_slots = IPX_CHANNEL_SLOTS;
  l->header.version = IPX_CHANNEL_LAYOUT_VERSION;
  l->header.kind = IPX_CHANNEL;
  l->header.creator_pid = getpid();
  atomic_store(&l->header.magic, IPX_MAGIC); /* last */
  munmap(l, size);
  close(fd);
  printf("created\n");
  return 0;
}

/* The length of message k: see the top of the file. */
static uint32_t length_of(struct ipx_channel *ch, long k, uint32_t *seed, uint32_t min) {
  uint32_t r = rnd(seed), len;
  uint32_t rem = ch->capacity - (atomic_load(&ch->shm->head) & (ch->capacity - 1));
  if (k % 50 == 1) len = ch->max_message;
  else if (k % 13 == 5) len = 0;
  else if (k % 5 == 2 && rem - 7 <= ch->max_message) {
    /* A record takes align8(IPX_CHANNEL_RECORD_HEADER + len) bytes (rem is a multiple of 8). */
    uint32_t variant = (uint32_t)(k / 5) % 3;
    len = variant == 0 ? rem - 8 : variant == 1 ? rem - 7 : rem >= 16 ? rem - 16 : 0;
  } else {
    len = r % (ch->max_message < 3000 ? ch->max_message + 1 : 3000);
  }
  return len < min ? min : len;
}

static void fill(uint8_t *p, uint32_t len, uint32_t seed) {
  for (uint32_t i = 0; i < len; i++) p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* "p50 <µs> p75 <µs>" of the n call durations in d. */
static void print_stats(double *d, long n) {
  if (n <= 0) return;
  qsort(d, (size_t)n, sizeof *d, by_value);
  printf("p50 %.0f p75 %.0f\n", d[n / 2], d[n * 3 / 4]);
}

static void wait_stdin_end(void) {
  char b[64];
  while (read(0, b, sizeof b) > 0) {}
}

static int send_mode(const char *name, long n, int argc, char **argv) {
  int zc = 0, hold = 0, stats = 0;
  long id = -1, every = 0, pause_us = 0, timeout = TIMEOUT_MS, size = -1;
  uint32_t seed = 1;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "zc") == 0) zc = 1;
    else if (strcmp(argv[i], "hold") == 0) hold = 1;
    else if (strcmp(argv[i], "stats") == 0) stats = 1;
    else if (strcmp(argv[i], "size=max") == 0) size = -2;
    else if (strncmp(argv[i], "size=", 5) == 0) size = atol(argv[i] + 5);
    else if (strncmp(argv[i], "id=", 3) == 0) id = atol(argv[i] + 3);
    else if (strncmp(argv[i], "seed=", 5) == 0) seed = (uint32_t)strtoul(argv[i] + 5, NULL, 10);
    else if (strncmp(argv[i], "timeout=", 8) == 0) timeout = atol(argv[i] + 8);
    else if (sscanf(argv[i], "pause=%ld:%ld", &every, &pause_us) == 2) {}
    else usage();
  }
  struct ipx_channel ch;
  open_channel(&ch, name);
  uint8_t *buf = malloc(ch.max_message + 1);
  double *took = calloc((size_t)(n > 0 ? n : 1), sizeof *took);
  uint32_t sum = 2166136261u;
  for (long k = 0; k < n; k++) {
    double t0 = now_us();
    uint32_t len = size == -2 ? ch.max_message : size >= 0 ? (uint32_t)size : length_of(&ch, k, &seed, id >= 0 ? 8 : 0);
    uint32_t fill_seed = rnd(&seed);
    uint8_t *p = buf;
    int r = 0;
    if (zc) {
      void *view;
      uint32_t extra = k % 2 == 0 ? 0 : len + 16 <= ch.max_message ? 16 : ch.max_message - len;
      if ((r = ipx_channel_reserve(&ch, len + extra, &view, (int)timeout))) failed(r, k);
      p = view;
    }
    fill(p, len, fill_seed);
    if (id >= 0) {
      uint32_t stamp[2] = {(uint32_t)id, (uint32_t)k};
      memcpy(p, stamp, 8);
    }
    sum = checksum(sum, p, len);
    r = zc ? ipx_channel_commit(&ch, len) : ipx_channel_send(&ch, p, len, (int)timeout);
    if (r) failed(r, k);
    took[k] = now_us() - t0;
    if (every > 0 && (k + 1) % every == 0) usleep((useconds_t)pause_us);
  }
  printf("%ld %u\n", n, sum);
  if (stats) print_stats(took, n);
  fflush(stdout);
  if (hold) {
    printf("done\n");
    fflush(stdout);
    wait_stdin_end();
  }
  ipx_channel_close(&ch);
  return 0;
}

static int recv_mode(const char *name, long n, int argc, char **argv) {
  int view = 0, probe = 0, ids = 0, stats = 0;
  long every = 0, pause_us = 0, timeout = TIMEOUT_MS;
  uint32_t sum = 2166136261u;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "view") == 0) view = 1;
    else if (strncmp(argv[i], "start=", 6) == 0) sum = (uint32_t)strtoul(argv[i] + 6, NULL, 10);
    else if (strcmp(argv[i], "probe") == 0) probe = 1;
    else if (strcmp(argv[i], "ids") == 0) ids = 1;
    else if (strcmp(argv[i], "stats") == 0) stats = 1;
    else if (strncmp(argv[i], "timeout=", 8) == 0) timeout = atol(argv[i] + 8);
    else if (sscanf(argv[i], "pause=%ld:%ld", &every, &pause_us) == 2) {}
    else usage();
  }
  struct ipx_channel ch;
  open_channel(&ch, name);
  uint8_t *buf = malloc(ch.max_message);
  uint32_t id_sum[8], id_next[8] = {0};
  for (int i = 0; i < 8; i++) id_sum[i] = 2166136261u;
  double *took = calloc((size_t)(n > 0 ? n : 1), sizeof *took);
  long k;
  int r = 0;
  for (k = 0; n < 0 || k < n; k++) {
    uint32_t len;
    const uint8_t *msg = buf;
    double t0 = now_us();
    if (view) {
      const void *v;
      if ((r = ipx_channel_receive_view(&ch, &v, &len, (int)timeout))) break;
      msg = v;
    } else if (probe) {
      uint8_t none;
      r = ipx_channel_receive(&ch, &none, 0, &len, (int)timeout);
      if (r == EMSGSIZE) {
        uint32_t got;
        if ((r = ipx_channel_try_receive(&ch, buf, ch.max_message, &got))) break;
        if (got != len) { printf("probe said %u, got %u\n", len, got); return 5; }
      } else if (r) {
        break;
      }
    } else {
      if ((r = ipx_channel_receive(&ch, buf, ch.max_message, &len, (int)timeout))) break;
    }
    if (n > 0) took[k] = now_us() - t0;
    sum = checksum(sum, msg, len);
    if (ids && len >= 8) {
      uint32_t stamp[2];
      memcpy(stamp, msg, 8);
      if (stamp[0] < 8) {
        if (stamp[1] != id_next[stamp[0]]) { printf("order %u %u\n", stamp[0], stamp[1]); return 5; }
        id_next[stamp[0]]++;
        id_sum[stamp[0]] = checksum(id_sum[stamp[0]], msg, len);
      }
    }
    if (view) ipx_channel_release(&ch);
    if (every > 0 && (k + 1) % every == 0) usleep((useconds_t)pause_us);
  }
  if (r && n >= 0) failed(r, k);
  printf("%ld %u", k, sum);
  for (int i = 0; ids && i < 8; i++)
    if (id_next[i]) printf(" %d:%u", i, id_sum[i]);
  printf("\n");
  if (stats && n > 0) print_stats(took, k);
  if (n < 0) printf("end %s\n", errname(r));
  ipx_channel_close(&ch);
  return 0;
}

static int echo_mode(const char *in_name, long n, const char *out_name, long delay_us) {
  struct ipx_channel in, out;
  open_channel(&in, in_name);
  open_channel(&out, out_name);
  uint8_t *buf = malloc(in.max_message);
  for (long k = 0; k < n; k++) {
    uint32_t len;
    int r = ipx_channel_receive(&in, buf, in.max_message, &len, TIMEOUT_MS);
    if (r) failed(r, k);
    for (uint32_t i = 0; i < len / 2; i++) { uint8_t t = buf[i]; buf[i] = buf[len - 1 - i]; buf[len - 1 - i] = t; }
    if (delay_us > 0) usleep((useconds_t)delay_us);
    if ((r = ipx_channel_send(&out, buf, len, TIMEOUT_MS))) failed(r, k);
  }
  printf("echoed %ld\n", n);
  ipx_channel_close(&in);
  ipx_channel_close(&out);
  return 0;
}

static int crowd_mode(const char *name, int n) {
  static struct ipx_channel ch[IPX_CHANNEL_SLOTS];
  if (n < 0 || n > IPX_CHANNEL_SLOTS) usage();
  for (int i = 0; i < n; i++) {
    open_channel(&ch[i], name);
    int r = ipx_channel_try_send(&ch[i], "", 0);
    if (r) failed(r, i);
  }
  printf("crowd %d\n", n);
  fflush(stdout);
  wait_stdin_end();
  for (int i = 0; i < n; i++) ipx_channel_close(&ch[i]);
  return 0;
}

static int slots_mode(const char *name) {
  static struct ipx_channel ch[IPX_CHANNEL_SLOTS + 1];
  int taken = 0, r = 0;
  for (int i = 0; i <= IPX_CHANNEL_SLOTS; i++) {
    open_channel(&ch[i], name);
    if ((r = ipx_channel_try_send(&ch[i], "", 0))) break;
    taken++;
  }
  int next = r;
  ipx_channel_close(&ch[0]);
  int again = ipx_channel_try_send(&ch[taken], "", 0);
  printf("slots %d %s %s\n", taken, errname(next), errname(again));
  for (int i = 1; i <= taken; i++) ipx_channel_close(&ch[i]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  if (strcmp(argv[1], "create") == 0) {
    if (argc != 4) usage();
    return create(argv[2], (uint32_t)strtoul(argv[3], NULL, 10));
  }
  const char *name = argv[1], *mode = argv[2];
  struct ipx_channel ch;
  int r;
  if (strcmp(mode, "echo") == 0) {
    if (argc != 5 && argc != 6) usage();
    return echo_mode(name, atol(argv[3]), argv[4], argc == 6 ? atol(argv[5]) : 0);
  }
  if (strcmp(mode, "send") == 0 && argc >= 4) return send_mode(name, atol(argv[3]), argc - 4, argv + 4);
  if (strcmp(mode, "recv") == 0 && argc >= 4) return recv_mode(name, atol(argv[3]), argc - 4, argv + 4);
  if (strcmp(mode, "slots") == 0) return slots_mode(name);
  if (strcmp(mode, "crowd") == 0 && argc == 4) return crowd_mode(name, atoi(argv[3]));
  open_channel(&ch, name);
  if (strcmp(mode, "hold-send") == 0) {
    if ((r = ipx_channel_send(&ch, "from C", 6, TIMEOUT_MS))) failed(r, 0);
    printf("sent\n");
    fflush(stdout);
    for (;;) pause();
  }
  if (strcmp(mode, "hold-recv") == 0) {
    uint8_t *buf = malloc(ch.max_message);
    uint32_t len;
    if ((r = ipx_channel_receive(&ch, buf, ch.max_message, &len, TIMEOUT_MS))) failed(r, 0);
    printf("got %u\n", len);
    fflush(stdout);
    for (;;) pause();
  }
  if (strcmp(mode, "reserve-die") == 0 && (argc == 4 || argc == 5)) {
    uint32_t len = (uint32_t)atol(argv[3]);
    void *view;
    if ((r = ipx_channel_reserve(&ch, len, &view, TIMEOUT_MS))) failed(r, 0);
    memset(view, 0xEE, len);
    printf("reserved\n");
    fflush(stdout);
    if (argc == 5) usleep((useconds_t)atol(argv[4]) * 1000);
    raise(SIGKILL);
  }
  if (strcmp(mode, "publish-die") == 0 && argc == 4) {
    uint32_t len = (uint32_t)atol(argv[3]);
    void *view;
    if ((r = ipx_channel_reserve(&ch, len, &view, TIMEOUT_MS))) failed(r, 0);
    memset(view, 0xEE, len);
    struct ipx_channel_layout *l = ch.shm;
    uint32_t cap = ch.capacity, at = ch.res_head & (cap - 1), pos = ch.res_skip ? 0 : at;
    uint32_t start = ch.res_head + ch.res_skip, next = start + ((IPX_CHANNEL_RECORD_HEADER + len + 7) & ~7u);
    if (next - ch.tail_seen != cap) atomic_store((_Atomic uint32_t *)(l->ring + (next & (cap - 1)) + 4), 0);
    memcpy(l->ring + pos, &len, 4);
    atomic_store((_Atomic uint32_t *)(l->ring + pos + 4), start | 1u);
    if (ch.res_skip) {
      const uint32_t wrap = IPX_CHANNEL_WRAP;
      memcpy(l->ring + at, &wrap, 4);
      atomic_store((_Atomic uint32_t *)(l->ring + at + 4), ch.res_head | 1u);
    }
    printf("published\n");
    fflush(stdout);
    raise(SIGKILL);
  }
  if (strcmp(mode, "reserve-hold") == 0 && argc == 5) {
    long n = atol(argv[3]), ms = atol(argv[4]);
    char line[64];
    for (long k = 0; k < n; k++) {
      void *view;
      if ((r = ipx_channel_reserve(&ch, 100, &view, TIMEOUT_MS))) failed(r, k);
      memset(view, (int)k, 100);
      printf("reserved %ld\n", k);
      fflush(stdout);
      usleep((useconds_t)ms * 1000);
      if ((r = ipx_channel_commit(&ch, 100))) failed(r, k);
      if (!fgets(line, sizeof line, stdin)) break;
    }
    ipx_channel_close(&ch);
    return 0;
  }
  if (strcmp(mode, "try-recv") == 0) {
    uint8_t *buf = malloc(ch.max_message);
    uint32_t len;
    r = ipx_channel_try_receive(&ch, buf, ch.max_message, &len);
    if (r == 0) printf("got %u\n", len);
    else printf("%s\n", errname(r));
    ipx_channel_close(&ch);
    return 0;
  }
  if (strcmp(mode, "early-send") == 0) {
    char line[64];
    if ((r = ipx_channel_send(&ch, "early", 5, TIMEOUT_MS))) failed(r, 0);
    printf("sent\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
      printf("%s\n", errname(ipx_channel_try_send(&ch, "", 0)));
      fflush(stdout);
    }
    ipx_channel_close(&ch);
    return 0;
  }
  if (strcmp(mode, "try-send") == 0) {
    printf("%s\n", errname(ipx_channel_try_send(&ch, "x", 1)));
    ipx_channel_close(&ch);
    return 0;
  }
  usage();
  return 2;
}
