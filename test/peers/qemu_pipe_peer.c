/*
 * Stands in for QEMU's `-chardev pipe,path=P` (char-pipe.c): opens P.in and
 * P.out O_RDWR, as QEMU does; then echoes each line read from P.in to P.out
 * upper-cased, and exits after "quit" (closing both, as QEMU exiting would).
 * `qemu_pipe_peer P hold` opens them and waits for SIGTERM without echoing.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

int main(int argc, char **argv) {
  if (argc < 2) usage();
  char in[4096], out[4096];
  snprintf(in, sizeof in, "%s.in", argv[1]);
  snprintf(out, sizeof out, "%s.out", argv[1]);
  int fin = open(in, O_RDWR), fout = open(out, O_RDWR);
  if (fin < 0 || fout < 0) die("open");
  printf("open\n");
  fflush(stdout);
  if (argc > 2 && strcmp(argv[2], "hold") == 0) {
    pause();
    return 0;
  }
  char line[4096];
  size_t n = 0;
  for (;;) {
    char c;
    ssize_t r = read(fin, &c, 1);
    if (r <= 0) die("read");
    if (c != '\n' && n < sizeof line - 1) { line[n++] = (char)toupper((unsigned char)c); continue; }
    line[n] = 0;
    if (strcmp(line, "QUIT") == 0) return 0;
    line[n++] = '\n';
    if (write(fout, line, n) != (ssize_t)n) die("write");
    n = 0;
  }
}
