// The C side of examples/shm-c.mjs: maps memory a Node process created, prints
// the text at its start and adds 1 to the 32-bit counter at offset 64.
//   shm_peer posix /NAME   POSIX: shm_open + mmap
//   shm_peer sysv PATH     System V: ftok(PATH, 65) + shmget + shmat
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

static char *map_posix(const char *name) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) return NULL;
  struct stat st;
  char *base = MAP_FAILED;
  if (fstat(fd, &st) == 0) base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);  // the mapping stays
  return base == MAP_FAILED ? NULL : base;
}

static char *attach_sysv(const char *path) {
  int id = shmget(ftok(path, 65), 0, 0);  // the key sysv.ftok(path, 65) gives in Node
  if (id < 0) return NULL;
  char *base = shmat(id, NULL, 0);
  return base == (void *)-1 ? NULL : base;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  char *base = strcmp(argv[1], "posix") == 0 ? map_posix(argv[2]) : attach_sysv(argv[2]);
  if (!base) {
    perror(argv[1]);
    return 1;
  }
  printf("C read: %s\n", base);                       // Node wrote a NUL-terminated string
  int32_t *counter = (int32_t *)(base + 64);          // new Int32Array(buffer, 64, 1) in Node
  __atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST);   // what Atomics.add(counter, 0, 1) does
  return 0;
}
