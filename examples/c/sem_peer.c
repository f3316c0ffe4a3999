// The C side of examples/sem-c.mjs.
//   sem_peer posix /NAME  sem_post on the POSIX named semaphore /NAME
//   sem_peer sysv ID      takes semaphore 0 of System V set ID with SEM_UNDO,
//                         then exits without giving it back
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>

static int posix_peer(const char *name) {
  sem_t *sem = sem_open(name, 0);
  if (sem == SEM_FAILED) {
    perror("sem_open");
    return 1;
  }
  if (sem_post(sem) != 0) {
    perror("sem_post");
    return 1;
  }
  sem_close(sem);
  return 0;
}

static int sysv_peer(int id) {
  struct sembuf p = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};
  if (semop(id, &p, 1) != 0) {
    perror("semop");
    return 1;
  }
  printf("C took semaphore 0 (value now %d) and exits without giving it back\n", semctl(id, 0, GETVAL));
  return 0;  // the kernel undoes the -1: SEM_UNDO
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  return strcmp(argv[1], "posix") == 0 ? posix_peer(argv[2]) : sysv_peer(atoi(argv[2]));
}
