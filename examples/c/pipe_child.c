// The C child of examples/pipe-c.mjs. A program started by spawnWithPipes
// finds its pipes at descriptors 3 (from the parent) and 4 (to the parent):
// ordinary blocking pipes, as after pipe(), fork() and dup2() in C.
#include <ctype.h>
#include <unistd.h>

int main(void) {
  char buf[256];
  ssize_t n;
  while ((n = read(3, buf, sizeof buf)) > 0) {  // 0: every writer closed its end
    for (ssize_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
    if (write(4, buf, (size_t)n) != n) return 1;
  }
  close(4);  // the parent's reader sees end of file
  return n < 0;
}
