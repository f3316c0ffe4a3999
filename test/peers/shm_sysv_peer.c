/*
 * System V shared memory peer for test/shm-sysv.test.ts, after the tutorial's
 * shm_example.c: ftok + shmget + shmat, nothing else.
 *
 *   shm_sysv_peer attach-write PATH PROJ TEXT
 *       key = ftok(PATH, PROJ); shmget(key, 1024, 0666 | IPC_CREAT) as the
 *       tutorial does; strcpy TEXT; print "wrote id=<shmid> key=0x<key>"
 *   shm_sysv_peer create-write PATH PROJ SIZE TEXT
 *       shmget(key, SIZE, 0600 | IPC_CREAT | IPC_EXCL); strcpy TEXT; detach;
 *       print "created id=<shmid> key=0x<key>" (the segment stays)
 *   shm_sysv_peer read ID      attach read-only, print "read: <string>"
 *   shm_sysv_peer hold ID      attach, print "attached", stay until stdin closes
 *
 * Errors go to stderr as "<call>: <strerror>" with exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "peer.h"

static key_t key_of(const char *path, const char *proj) {
  key_t key = ftok(path, (int)strtol(proj, NULL, 0));
  if (key == -1) die("ftok");
  return key;
}

static char *attach(int shmid, int flags) {
  char *data = shmat(shmid, NULL, flags);
  if (data == (char *)-1) die("shmat");
  return data;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: %s attach-write|create-write|read|hold ...\n", argv[0]);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "attach-write") == 0 && argc == 5) {
    key_t key = key_of(argv[2], argv[3]);
    int shmid = shmget(key, 1024, 0666 | IPC_CREAT);
    if (shmid < 0) die("shmget");
    char *data = attach(shmid, 0);
    strcpy(data, argv[4]);
    if (shmdt(data) != 0) die("shmdt");
    printf("wrote id=%d key=0x%08x\n", shmid, (unsigned)key);
  } else if (strcmp(cmd, "create-write") == 0 && argc == 6) {
    key_t key = key_of(argv[2], argv[3]);
    size_t size = strtoul(argv[4], NULL, 0);
    if (strlen(argv[5]) + 1 > size) {
      fprintf(stderr, "text does not fit\n");
      return 1;
    }
    int shmid = shmget(key, size, 0600 | IPC_CREAT | IPC_EXCL);
    if (shmid < 0) die("shmget");
    char *data = attach(shmid, 0);
    strcpy(data, argv[5]);
    if (shmdt(data) != 0) die("shmdt");
    printf("created id=%d key=0x%08x\n", shmid, (unsigned)key);
  } else if (strcmp(cmd, "read") == 0) {
    int shmid = atoi(argv[2]);
    struct shmid_ds ds;
    if (shmctl(shmid, IPC_STAT, &ds) != 0) die("shmctl");
    char *data = attach(shmid, SHM_RDONLY);
    printf("read: %.*s\n", (int)strnlen(data, ds.shm_segsz), data);
    shmdt(data);
  } else if (strcmp(cmd, "hold") == 0) {
    char *data = attach(atoi(argv[2]), 0);
    printf("attached\n");
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    shmdt(data);
  } else {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  return 0;
}
