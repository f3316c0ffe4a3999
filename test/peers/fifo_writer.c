// The writing half of the tutorial's fifo_example.c: a blocking
// open(O_WRONLY), which waits for a reader, then "Hello, FIFO" and close().
//
// usage: fifo_writer PATH [TEXT]
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PATH [TEXT]\n", argv[0]);
    return 2;
  }
  const char *text = argc > 2 ? argv[2] : "Hello, FIFO";
  printf("opening\n");
  fflush(stdout);
  int fd = open(argv[1], O_WRONLY);
  if (fd < 0) {
    perror("open");
    return 1;
  }
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) {
    perror("write");
    return 1;
  }
  close(fd);
  printf("wrote %zu bytes\n", len);
  return 0;
}
