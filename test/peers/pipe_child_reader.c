// The child half of the tutorial's pipe_example.c, started by spawnWithPipes:
// it finds the read end of the pipe at descriptor 3 and reads it with plain
// blocking read() calls, as a C child after fork() does.
//
// It checks that descriptor 3 is in blocking mode, says "ready" (the parent
// writes only after that, so the first read() really has to wait), reads until
// end of file and prints "Received: <text>". With a fourth descriptor (a pipe
// back to the parent) it also answers there with the number of bytes read.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  int flags = fcntl(3, F_GETFL);
  if (flags < 0) {
    perror("fcntl(3)");
    return 2;
  }
  if (flags & O_NONBLOCK) {
    fprintf(stderr, "descriptor 3 is non-blocking\n");
    return 3;
  }
  printf("ready\n");
  fflush(stdout);

  char buffer[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(3, buffer + total, sizeof buffer - 1 - total);
    if (n == 0) break;  // every writer has closed: end of file
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("read(3)");  // EAGAIN here would mean a non-blocking descriptor
      return 4;
    }
    total += (size_t)n;
    if (total == sizeof buffer - 1) break;
  }
  buffer[total] = '\0';
  printf("Received: %s\n", buffer);
  printf("end of file after %zu bytes\n", total);
  fflush(stdout);
  close(3);

  if (fcntl(4, F_GETFL) >= 0) {
    char reply[64];
    int len = snprintf(reply, sizeof reply, "read %zu bytes", total);
    if (write(4, reply, (size_t)len) != len) {
      perror("write(4)");
      return 5;
    }
    close(4);
  }
  return 0;
}
