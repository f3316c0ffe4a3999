/*
 * Byte-exact shared memory peer for test/cli-shm-sem.test.ts: fills an object
 * with a known pattern, or copies all of it to stdout, with nothing but
 * shm_open/mmap or shmat, so the test sees exactly what a C program sees.
 *
 *   shm_bytes_peer fill posix NAME SEED   every byte of the object from xorshift32(SEED)
 *   shm_bytes_peer fill sysv ID SEED
 *   shm_bytes_peer dump posix NAME        the whole object, raw, on stdout
 *   shm_bytes_peer dump sysv ID
 *
 * The pattern: x = SEED; for each byte { x ^= x << 13; x ^= x >> 17;
 * x ^= x << 5; byte = x & 0xff } (uint32_t arithmetic).
 *
 * Errors go to stderr as "<call>: <strerror>" with exit status 1.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"

static unsigned char *map_posix(const char *name, size_t *size) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) die("shm_open");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  *size = (size_t)st.st_size;
  void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("mmap");
  close(fd);
  return p;
}

static unsigned char *attach_sysv(const char *id_text, size_t *size) {
  int id = atoi(id_text);
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) die("shmctl");
  *size = ds.shm_segsz;
  void *p = shmat(id, NULL, 0);
  if (p == (void *)-1) die("shmat");
  return p;
}

int main(int argc, char **argv) {
  if (argc < 4) usage();
  const char *cmd = argv[1], *kind = argv[2], *target = argv[3];
  size_t size;
  unsigned char *data;
  if (strcmp(kind, "posix") == 0) data = map_posix(target, &size);
  else if (strcmp(kind, "sysv") == 0) data = attach_sysv(target, &size);
  else usage();

  if (strcmp(cmd, "fill") == 0 && argc == 5) {
    uint32_t x = (uint32_t)strtoul(argv[4], NULL, 0);
    for (size_t i = 0; i < size; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      data[i] = (unsigned char)x;
    }
    printf("filled %zu\n", size);
  } else if (strcmp(cmd, "dump") == 0 && argc == 4) {
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(1, data + done, size - done);
      if (n < 0) die("write");
      done += (size_t)n;
    }
  } else {
    usage();
  }
  return 0;
}
