/*
 * An ivshmem client as QEMU's hw/misc/ivshmem.c (ivshmem-doorbell) is one:
 * plain socket()/connect() to the server's Unix socket, then recvmsg() of
 * little-endian int64 messages, each with at most one descriptor
 * (SCM_RIGHTS). No Node, no code of the package: it checks the server's
 * protocol from the outside.
 *
 *   ivshmem_client SOCKET VECTORS
 *
 * Prints every message as "msg VALUE fd" or "msg VALUE nofd" and checks the
 * connect sequence (exit status 1 with the reason on stderr if it is wrong):
 *   0 without fd (version); the client's id without fd; -1 with the memory's
 *   fd; for every existing peer VECTORS messages "id + eventfd" in a row; the
 *   client's own id with VECTORS eventfds last.
 * It maps the memory ("memory size=N link=/dev/shm/..."), prints the string
 * the server side put at offset 0 ("read TEXT") and writes
 * "C client ID was here" at offset 256. Then "ready id=ID peers=P1,P2".
 *
 * Afterwards it polls stdin, the socket and its own eventfds:
 *   stdin "ring P V"   writes 1 to peer P's eventfd V   -> "rang P V"
 *   stdin "quit" / EOF exits 0
 *   own eventfd V rung                                   -> "rung V COUNT"
 *   socket "P + fd" (VECTORS of them)                    -> "join P"
 *   socket "P" without fd                                -> "leave P"
 *   socket end of file                                   -> "eof", exit 0
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer.h"

#define MAX_VECTORS 1024
#define MAX_PEERS 64

struct peer {
  long long id;
  int n;
  int fds[MAX_VECTORS];
};

static struct peer peers[MAX_PEERS];
static int npeers;
static int vectors;
static long long own_id = -1;
static int own_fds[MAX_VECTORS];
static int own_n;

static void bad(const char *why, long long value) {
  fprintf(stderr, "protocol violation: %s (value %lld)\n", why, value);
  exit(1);
}

/* One message: 8 bytes, possibly in several reads (a stream), and at most
 * one descriptor. Returns 0 at end of file before a message, 1 otherwise. */
static int recv_msg(int sock, long long *value, int *fd) {
  unsigned char buf[8];
  size_t got = 0;
  *fd = -1;
  while (got < sizeof buf) {
    struct iovec iov = {buf + got, sizeof buf - got};
    union {
      char b[CMSG_SPACE(sizeof(int) * 4)];
      struct cmsghdr align;
    } control;
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.b;
    m.msg_controllen = sizeof control.b;
    ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("recvmsg");
    }
    if (r == 0) {
      if (got == 0) return 0;
      bad("end of file inside a message", (long long)got);
    }
    if (m.msg_flags & MSG_CTRUNC) bad("control data truncated", 0);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) bad("unexpected control message", c->cmsg_type);
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (k != 1 || *fd >= 0) bad("more than one descriptor with a message", (long long)k);
      memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
    got += (size_t)r;
  }
  int64_t v;
  memcpy(&v, buf, sizeof v); /* little-endian host */
  *value = v;
  printf("msg %lld %s\n", *value, *fd >= 0 ? "fd" : "nofd");
  return 1;
}

static void fd_link(int fd, char *out, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, out, size - 1);
  if (n < 0) die("readlink");
  out[n] = '\0';
}

static void check_eventfd(int fd, long long value) {
  char link[256];
  fd_link(fd, link, sizeof link);
  if (strcmp(link, "anon_inode:[eventfd]") != 0) {
    fprintf(stderr, "descriptor for peer %lld is %s, not an eventfd\n", value, link);
    exit(1);
  }
}

static struct peer *find_peer(long long id) {
  for (int i = 0; i < npeers; i++)
    if (peers[i].id == id) return &peers[i];
  return NULL;
}

/* A peer's eventfd: "join" once it has all of them. */
static void add_peer_fd(long long id, int fd) {
  struct peer *p = find_peer(id);
  if (!p) {
    if (npeers == MAX_PEERS) bad("too many peers", id);
    p = &peers[npeers++];
    p->id = id;
    p->n = 0;
  }
  if (p->n == vectors) bad("more eventfds than vectors for a peer", id);
  p->fds[p->n++] = fd;
  if (p->n == vectors) printf("join %lld\n", id);
}

static void remove_peer(long long id) {
  struct peer *p = find_peer(id);
  if (!p) bad("leave of an unknown peer", id);
  for (int i = 0; i < p->n; i++) close(p->fds[i]);
  *p = peers[--npeers];
  printf("leave %lld\n", id);
}

int main(int argc, char **argv) {
  if (argc != 3) usage();
  setvbuf(stdout, NULL, _IOLBF, 0);
  vectors = atoi(argv[2]);
  if (vectors < 1 || vectors > MAX_VECTORS) usage();

  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket");
  struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof a.sun_path) usage();
  strcpy(a.sun_path, argv[1]);
  if (connect(sock, (struct sockaddr *)&a, sizeof a) != 0) die("connect");

  long long value;
  int fd;
  if (!recv_msg(sock, &value, &fd)) bad("end of file before the version", 0);
  if (value != 0 || fd >= 0) bad("first message must be version 0 without a descriptor", value);
  if (!recv_msg(sock, &value, &fd)) bad("end of file before the id", 0);
  if (value < 0 || value > 65535 || fd >= 0) bad("second message must be an id (0..65535) without a descriptor", value);
  own_id = value;
  printf("id %lld\n", own_id);
  if (!recv_msg(sock, &value, &fd)) bad("end of file before the memory", 0);
  if (value != -1 || fd < 0) bad("third message must be -1 with the shared memory descriptor", value);

  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  char link[256];
  fd_link(fd, link, sizeof link);
  printf("memory size=%lld link=%s\n", (long long)st.st_size, link);
  char *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) die("mmap");
  close(fd);
  printf("read %.*s\n", (int)strnlen(mem, 255), mem);
  snprintf(mem + 256, 64, "C client %lld was here", own_id);

  /* Existing peers, `vectors` each in a row, then our own eventfds last. */
  long long current = -1;
  while (own_n < vectors) {
    if (!recv_msg(sock, &value, &fd)) bad("end of file before our own eventfds", own_n);
    if (value < 0 || value > 65535) bad("bad peer id", value);
    if (fd < 0) {
      /* A peer leaving meanwhile (not with this server, which is synchronous). */
      if (own_n > 0) bad("a message without descriptor among our own eventfds", value);
      remove_peer(value);
      continue;
    }
    check_eventfd(fd, value);
    if (value == own_id) {
      own_fds[own_n++] = fd;
      continue;
    }
    if (own_n > 0) bad("another peer's eventfd after our own (they must come last)", value);
    if (value != current) {
      struct peer *prev = find_peer(current);
      if (prev && prev->n != vectors) bad("a peer's eventfds are not in a row", current);
      if (find_peer(value)) bad("a peer's eventfds are not in a row", value);
      current = value;
    }
    add_peer_fd(value, fd);
  }
  struct peer *prev = find_peer(current);
  if (prev && prev->n != vectors) bad("a peer with fewer eventfds than vectors", current);
  printf("ready id=%lld peers=", own_id);
  for (int i = 0; i < npeers; i++) printf("%s%lld", i ? "," : "", peers[i].id);
  printf("\n");

  struct pollfd pf[2 + MAX_VECTORS];
  pf[0].fd = 0;
  pf[0].events = POLLIN;
  pf[1].fd = sock;
  pf[1].events = POLLIN;
  for (int v = 0; v < vectors; v++) {
    pf[2 + v].fd = own_fds[v];
    pf[2 + v].events = POLLIN;
  }
  char line[256];
  size_t len = 0;
  for (;;) {
    int r = poll(pf, (nfds_t)(2 + vectors), -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (int v = 0; v < vectors; v++) {
      if (!(pf[2 + v].revents & POLLIN)) continue;
      uint64_t count;
      if (read(own_fds[v], &count, sizeof count) != sizeof count) die("read eventfd");
      printf("rung %d %llu\n", v, (unsigned long long)count);
    }
    if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!recv_msg(sock, &value, &fd)) {
        printf("eof\n");
        return 0;
      }
      if (value < 0 || value > 65535 || value == own_id) bad("bad peer id after setup", value);
      if (fd >= 0) {
        check_eventfd(fd, value);
        add_peer_fd(value, fd);
      } else {
        remove_peer(value);
      }
    }
    if (pf[0].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, line + len, sizeof line - 1 - len);
      if (n < 0) die("read stdin");
      if (n == 0) return 0;
      len += (size_t)n;
      char *nl;
      while ((nl = memchr(line, '\n', len))) {
        *nl = '\0';
        long long p;
        int v;
        if (strcmp(line, "quit") == 0) return 0;
        if (sscanf(line, "ring %lld %d", &p, &v) == 2) {
          struct peer *q = find_peer(p);
          if (!q || v < 0 || v >= q->n) {
            fprintf(stderr, "no peer %lld vector %d\n", p, v);
            exit(1);
          }
          uint64_t one = 1;
          if (write(q->fds[v], &one, sizeof one) != sizeof one) die("write eventfd");
          printf("rang %lld %d\n", p, v);
        } else {
          fprintf(stderr, "unknown command '%s'\n", line);
          exit(2);
        }
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, nl + 1, len - used);
        len -= used;
      }
    }
  }
}
