/*
 * POSIX shared memory peer for test/shm-posix.test.ts: plain shm_open + mmap,
 * as a C program written from the man pages would do it.
 *
 *   shm_posix_peer read NAME            print "read: <string at offset 0>"
 *   shm_posix_peer read-at NAME OFFSET  print "read: <string at OFFSET>"
 *   shm_posix_peer write NAME TEXT      store TEXT (and its NUL) at offset 0
 *   shm_posix_peer write-at NAME OFFSET TEXT
 *   shm_posix_peer exchange NAME TEXT   print what is at offset 0, then store TEXT there
 *   shm_posix_peer create NAME SIZE [TEXT]  O_CREAT|O_EXCL, 0600, ftruncate(SIZE)
 *
 * Errors go to stderr as "<call>: <strerror>" with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"

static char *map_object(const char *name, int oflag, size_t *size) {
  int fd = shm_open(name, oflag, 0);
  if (fd < 0) die("shm_open");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  *size = (size_t)st.st_size;
  int prot = (oflag & O_ACCMODE) == O_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE;
  void *p = mmap(NULL, *size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("mmap");
  close(fd);
  return p;
}

static void print_at(const char *data, size_t size, size_t off) {
  if (off >= size) {
    fprintf(stderr, "offset %zu is past the end (%zu)\n", off, size);
    exit(1);
  }
  printf("read: %.*s\n", (int)strnlen(data + off, size - off), data + off);
}

static void store_at(char *data, size_t size, size_t off, const char *text) {
  size_t n = strlen(text) + 1;
  if (off > size || n > size - off) {
    fprintf(stderr, "text does not fit\n");
    exit(1);
  }
  memcpy(data + off, text, n);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: %s read|read-at|write|write-at|exchange|create NAME ...\n", argv[0]);
    return 2;
  }
  const char *cmd = argv[1], *name = argv[2];
  size_t size;
  if (strcmp(cmd, "read") == 0) {
    char *data = map_object(name, O_RDONLY, &size);
    print_at(data, size, 0);
  } else if (strcmp(cmd, "read-at") == 0 && argc == 4) {
    char *data = map_object(name, O_RDONLY, &size);
    print_at(data, size, strtoul(argv[3], NULL, 0));
  } else if (strcmp(cmd, "write") == 0 && argc == 4) {
    char *data = map_object(name, O_RDWR, &size);
    store_at(data, size, 0, argv[3]);
    printf("wrote: %s\n", argv[3]);
  } else if (strcmp(cmd, "write-at") == 0 && argc == 5) {
    char *data = map_object(name, O_RDWR, &size);
    store_at(data, size, strtoul(argv[3], NULL, 0), argv[4]);
    printf("wrote: %s\n", argv[4]);
  } else if (strcmp(cmd, "exchange") == 0 && argc == 4) {
    char *data = map_object(name, O_RDWR, &size);
    print_at(data, size, 0);
    store_at(data, size, 0, argv[3]);
    printf("wrote: %s\n", argv[3]);
  } else if (strcmp(cmd, "create") == 0 && (argc == 4 || argc == 5)) {
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) die("shm_open");
    off_t len = (off_t)strtoll(argv[3], NULL, 0);
    if (ftruncate(fd, len) != 0) die("ftruncate");
    if (argc == 5) {
      char *data = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (data == MAP_FAILED) die("mmap");
      store_at(data, (size_t)len, 0, argv[4]);
    }
    close(fd);
    printf("created %s\n", name);
  } else {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  return 0;
}
