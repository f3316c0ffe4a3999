/*
 * The tutorial's msg_queue_example.c as one side of a conversation with Node
 * (test/msgqueue-sysv.test.ts): ftok(PATH, 65), msgget(0666 | IPC_CREAT), send
 * "Hello, Message Queue" with type 1, then receive the message of type 2 and
 * print it. Two changes from the tutorial: the size given to msgsnd/msgrcv
 * is the size of mtext (the tutorial passes sizeof(msg), which also counts
 * mtype and so overstates the message by sizeof(long)), and the other side is
 * a Node process instead of a fork, which removes the queue afterwards.
 *
 *   msg_tutorial PATH    prints "id=<msqid>", then "Received: <text>"
 *
 * Errors go to stderr as "<call>: <strerror>" with exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "peer.h"

struct message {
  long msg_type;
  char msg_text[100];
};

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *path = argc > 1 ? argv[1] : "progfile";
  key_t key;
  int msgid;
  struct message msg;

  key = ftok(path, 65);
  if (key == -1) die("ftok");
  msgid = msgget(key, 0666 | IPC_CREAT);
  if (msgid < 0) die("msgget");
  printf("id=%d\n", msgid);

  memset(&msg, 0, sizeof msg);
  msg.msg_type = 1;
  strcpy(msg.msg_text, "Hello, Message Queue");
  if (msgsnd(msgid, &msg, sizeof(msg.msg_text), 0) != 0) die("msgsnd");

  memset(&msg, 0, sizeof msg);
  ssize_t n = msgrcv(msgid, &msg, sizeof(msg.msg_text), 2, 0);
  if (n < 0) die("msgrcv");
  printf("Received: %.*s\n", (int)strnlen(msg.msg_text, (size_t)n), msg.msg_text);
  return 0;
}
