// The C side of examples/msg-queue-c.mjs.
//   msg_peer sysv PATH    System V queue with key ftok(PATH, 65): receives a
//                         message of type 1, answers with a message of type 2
//   msg_peer posix /NAME  POSIX queue /NAME: sends two messages, priorities 1 and 9
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

struct message {
  long mtype;       // > 0: the type Node's send(type, data) gives and receive({ type }) selects
  char mtext[256];  // exactly the bytes of data: Node adds no NUL terminator
};

static int sysv_peer(const char *path) {
  int id = msgget(ftok(path, 65), 0);
  if (id < 0) {
    perror("msgget");
    return 1;
  }
  struct message m;
  ssize_t n = msgrcv(id, &m, sizeof m.mtext, 1, 0);  // the first message of type 1
  if (n < 0) {
    perror("msgrcv");
    return 1;
  }
  printf("C received type %ld: %.*s\n", m.mtype, (int)n, m.mtext);
  struct message reply = {.mtype = 2};
  int len = snprintf(reply.mtext, sizeof reply.mtext, "%zd bytes received", n);
  if (msgsnd(id, &reply, (size_t)len, 0) != 0) {  // the size of mtext only
    perror("msgsnd");
    return 1;
  }
  return 0;
}

static int posix_peer(const char *name) {
  mqd_t q = mq_open(name, O_WRONLY);
  if (q == (mqd_t)-1) {
    perror("mq_open");
    return 1;
  }
  if (mq_send(q, "routine", 7, 1) != 0 || mq_send(q, "urgent", 6, 9) != 0) {
    perror("mq_send");
    return 1;
  }
  mq_close(q);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  return strcmp(argv[1], "sysv") == 0 ? sysv_peer(argv[2]) : posix_peer(argv[2]);
}
