/*
 * Guest side of the QEMU FIFO tests: answers the host on a serial or
 * virtio-serial port.
 *
 *   port_echo DEVICE            lines: each line comes back uppercased
 *   port_echo --frames DEVICE   frames (docs/framing.md): each payload comes back reversed
 *
 * A tty is put in raw mode without echo first (otherwise the tty itself would
 * echo the host's bytes and turn "\n" into "\r\n"). Then the program says
 * "READY DEVICE" (a line, or a frame), and answers until the host sends
 * "QUIT", which it answers with "BYE". Exit status: 0 after QUIT, 1 on an
 * error, 2 when the port reached end of file first.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20)

static const char *dev;

static void die(const char *what) {
  fprintf(stderr, "port_echo %s: %s: %s\n", dev, what, strerror(errno));
  exit(1);
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Reads exactly n bytes; 0 on success, -1 at end of file. */
static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void write_frame(int fd, const void *payload, uint32_t len) {
  unsigned char h[4] = {len >> 24, len >> 16, len >> 8, len};
  write_all(fd, h, 4);
  write_all(fd, payload, len);
}

static int frames(int fd) {
  char hello[256];
  int n = snprintf(hello, sizeof hello, "READY %s", dev);
  write_frame(fd, hello, (uint32_t)n);
  char *buf = malloc(MAX_FRAME);
  if (!buf) die("malloc");
  for (;;) {
    unsigned char h[4];
    if (read_all(fd, h, 4) != 0) return 2;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (len > MAX_FRAME) {
      errno = EMSGSIZE;
      die("frame too large");
    }
    if (read_all(fd, buf, len) != 0) return 2;
    if (len == 4 && memcmp(buf, "QUIT", 4) == 0) {
      write_frame(fd, "BYE", 3);
      return 0;
    }
    for (uint32_t i = 0; i < len / 2; i++) {
      char c = buf[i];
      buf[i] = buf[len - 1 - i];
      buf[len - 1 - i] = c;
    }
    write_frame(fd, buf, len);
  }
}

static int lines(int fd) {
  char hello[256];
  int n = snprintf(hello, sizeof hello, "READY %s\n", dev);
  write_all(fd, hello, (size_t)n);
  static char in[1 << 16], out[1 << 16];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, in + have, sizeof in - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) return 2;
    have += (size_t)r;
    /* Answer every complete line received so far with one write. */
    size_t start = 0, o = 0;
    int quit = 0;
    for (size_t i = 0; i < have && !quit; i++) {
      if (in[i] != '\n') continue;
      if (i - start == 4 && memcmp(in + start, "QUIT", 4) == 0) {
        memcpy(out + o, "BYE\n", 4);
        o += 4;
        quit = 1;
      } else {
        for (size_t k = start; k <= i; k++) out[o++] = (char)toupper((unsigned char)in[k]);
      }
      start = i + 1;
    }
    if (o > 0) write_all(fd, out, o);
    if (quit) return 0;
    memmove(in, in + start, have - start);
    have -= start;
    if (have == sizeof in) {
      errno = EMSGSIZE;
      die("line too long");
    }
  }
}

int main(int argc, char **argv) {
  int framed = argc == 3 && strcmp(argv[1], "--frames") == 0;
  if (argc != 2 && !framed) {
    fprintf(stderr, "usage: port_echo [--frames] DEVICE\n");
    return 1;
  }
  dev = argv[argc - 1];
  int fd = open(dev, O_RDWR | O_NOCTTY);
  if (fd < 0) die("open");
  struct termios tio;
  if (tcgetattr(fd, &tio) == 0) {
    cfmakeraw(&tio);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &tio) != 0) die("tcsetattr");
    tcflush(fd, TCIFLUSH);
  }
  int rc = framed ? frames(fd) : lines(fd);
  /* A tty's output may still be in its buffer: send it before the guest powers off. */
  tcdrain(fd);
  return rc;
}
