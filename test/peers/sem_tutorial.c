/*
 * The tutorial's semaphore_example.c, for test/sem-sysv.test.ts: ftok(FILE,
 * 65), semget(key, 1, 0666 | IPC_CREAT), SETVAL 1, then parent and child take
 * turns in a critical section with P/V operations carrying SEM_UNDO.
 *
 *   sem_tutorial SEMFILE ROUNDS LOG
 *
 * Differences from the tutorial, so a test can check it: the file is an
 * argument instead of "semfile"; it prints "semid=<id> key=0x<key>" and waits
 * for a line on stdin before forking (so other processes can join); each
 * process enters ROUNDS times instead of once; the critical section lasts
 * 2 ms instead of 2 s; and each line is also appended to LOG (O_APPEND), the
 * one record every participant writes to.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

static int log_fd;

static void say(const char *line) {
  printf("%s\n", line);
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%s\n", line);
  if (write(log_fd, buf, (size_t)n) != n) {
    perror("write");
    exit(1);
  }
}

void sem_lock(int semid) {
  struct sembuf p = {0, -1, SEM_UNDO};
  if (semop(semid, &p, 1) != 0) {
    perror("semop P");
    exit(1);
  }
}

void sem_unlock(int semid) {
  struct sembuf v = {0, 1, SEM_UNDO};
  if (semop(semid, &v, 1) != 0) {
    perror("semop V");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: sem_tutorial SEMFILE ROUNDS LOG\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  int rounds = atoi(argv[2]);
  log_fd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (log_fd < 0) {
    perror("open");
    return 1;
  }

  key_t key = ftok(argv[1], 65);
  if (key == -1) {
    perror("ftok");
    return 1;
  }
  int semid = semget(key, 1, 0666 | IPC_CREAT);
  if (semid < 0) {
    perror("semget");
    return 1;
  }
  if (semctl(semid, 0, SETVAL, 1) != 0) {
    perror("semctl");
    return 1;
  }
  printf("semid=%d key=0x%08x\n", semid, (unsigned)key);
  char go[16];
  if (!fgets(go, sizeof go, stdin)) return 1;

  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  const char *who = child > 0 ? "Parent" : "Child";
  char enter[64], leave[64];
  snprintf(enter, sizeof enter, "%s entering critical section", who);
  snprintf(leave, sizeof leave, "%s leaving critical section", who);
  for (int r = 0; r < rounds; r++) {
    sem_lock(semid);
    say(enter);
    usleep(2000);
    say(leave);
    sem_unlock(semid);
  }
  if (child > 0) {
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    printf("done\n");
  }
  return 0;
}
