/*
 * ftok_peer PATH ID...: prints "<id> <key>" per id, the key as C's signed
 * key_t in decimal, or "<id> error <errno name text>" when ftok fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PATH ID...\n", argv[0]);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    int id = (int)strtol(argv[i], NULL, 0);
    errno = 0;
    key_t key = ftok(argv[1], id);
    if (key == -1 && errno != 0)
      printf("%d error %s\n", id, strerror(errno));
    else
      printf("%d %d\n", id, (int)key);
  }
  return 0;
}
