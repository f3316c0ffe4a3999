// The reading half of the tutorial's fifo_example.c: a blocking
// open(O_RDONLY), which waits for a writer, then read() until end of file and
// "Received: <text>".
//
// usage: fifo_reader PATH
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH\n", argv[0]);
    return 2;
  }
  printf("opening\n");
  fflush(stdout);
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror("open");
    return 1;
  }
  char buffer[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buffer + total, sizeof buffer - 1 - total);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("read");
      return 1;
    }
    total += (size_t)n;
    if (total == sizeof buffer - 1) break;
  }
  buffer[total] = '\0';
  close(fd);
  printf("Received: %s\n", buffer);
  return 0;
}
