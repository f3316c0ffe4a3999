// The C side of examples/mutex-c.mjs. The Mutex Node initialised at offset 0
// of the POSIX shared memory object /NAME is a pthread_mutex_t; this program
// locks it, adds 1 to the int at offset 64 and unlocks, N times.
//   mutex_peer /NAME N        then exits
//   mutex_peer /NAME N die    then locks once more and exits holding the lock
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "interprocess.h"

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int fd = shm_open(argv[1], O_RDWR, 0);
  if (fd < 0) {
    perror("shm_open");
    return 1;
  }
  char *base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  pthread_mutex_t *m = (pthread_mutex_t *)base;  // Mutex.init(shm.buffer, 0) in Node
  int *counter = (int *)(base + 64);
  for (int i = 0, n = atoi(argv[2]); i < n; i++) {
    int r = ipx_mutex_lock(m);  // pthread_mutex_lock, safe against waiters killed mid-wake-up
    if (r == EOWNERDEAD) {
      // The previous holder died: repair what the lock protects, then say so.
      pthread_mutex_consistent(m);
    } else if (r != 0) {
      fprintf(stderr, "lock: %s\n", strerror(r));
      return 1;
    }
    ++*counter;
    pthread_mutex_unlock(m);
  }
  if (argc > 3 && ipx_mutex_lock(m) == 0) _exit(0);  // dies holding the lock
  return 0;
}
