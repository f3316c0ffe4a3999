// The C reader of examples/fifo-c.mjs: a plain blocking open(O_RDONLY) of the
// FIFO, which waits for a writer, then read() until every writer has closed.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int fd = open(argv[1], O_RDONLY);  // blocks until a writer opens the FIFO
  if (fd < 0) {
    perror("open");
    return 1;
  }
  char text[256];
  size_t total = 0;
  ssize_t n;
  while (total < sizeof text && (n = read(fd, text + total, sizeof text - total)) > 0) total += (size_t)n;
  close(fd);
  printf("C reader got: %.*s\n", (int)total, text);
  return 0;
}
