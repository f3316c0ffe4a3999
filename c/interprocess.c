/*
 * interprocess.c: the C side of interprocess's locks and channels
 * (declarations and the layouts' structs in include/interprocess.h; the
 * protocols in docs/mutex.md and docs/channel.md). C11, Linux.
 */
#define _GNU_SOURCE
#include "../include/interprocess.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

_Static_assert(offsetof(struct ipx_channel_layout, capacity) == 64, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, receiver_pid) == 76, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, head) == 128, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, send_lock) == 320, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, tail) == 192, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, receiver_waiting) == 256, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, senders_waiting) == 260, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, sender_seq) == 264, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, slots) == 384, "layout");
_Static_assert(offsetof(struct ipx_channel_layout, ring) == IPX_CHANNEL_RING, "layout");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic int32_t) == 4, "layout");

void *ipx_named_object(void *base, enum ipx_kind kind) {
  struct ipx_header *h = (struct ipx_header *)base;
  if (atomic_load_explicit(&h->magic, memory_order_acquire) != IPX_MAGIC) return NULL;
  if (h->version != (kind == IPX_CHANNEL ? IPX_CHANNEL_LAYOUT_VERSION : IPX_LAYOUT_VERSION) || h->kind != kind) return NULL;
  return (char *)base + IPX_HEADER_SIZE;
}

static long ipx__futex(void *word, int op, int val, const struct timespec *rel) {
  return syscall(SYS_futex, word, op, val, rel, NULL, 0);
}

/* ---- Mutex ---------------------------------------------------------------- */

int ipx_mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  int r = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return r;
}

int ipx_mutex_trylock(pthread_mutex_t *m) {
  int r = pthread_mutex_trylock(m);
  if (r == ENOTRECOVERABLE) {
    /* Nobody can hold an unrecoverable mutex: clear the leftover, wake every sleeper to learn it too. */
    _Atomic int32_t *word = (_Atomic int32_t *)m; /* glibc: the futex word comes first */
    int32_t v = atomic_load(word);
    if ((v & FUTEX_TID_MASK) == (int32_t)syscall(SYS_gettid) && atomic_compare_exchange_strong(word, &v, 0))
      ipx__futex(word, FUTEX_WAKE, INT32_MAX, NULL);
  }
  return r;
}

int ipx_mutex_lock(pthread_mutex_t *m) {
  for (;;) {
    /* CLOCK_REALTIME (timedlock is POSIX): a clock jump only stretches one slice. */
    struct timespec slice;
    clock_gettime(CLOCK_REALTIME, &slice);
    slice.tv_nsec += 100 * 1000 * 1000;
    if (slice.tv_nsec >= 1000000000) { slice.tv_sec++; slice.tv_nsec -= 1000000000; }
    int r = pthread_mutex_timedlock(m, &slice);
    if (r != ETIMEDOUT) return r;
  }
}

/* ---- Condition ------------------------------------------------------------ */

int ipx_cond_wait(struct ipx_cond *c, pthread_mutex_t *m, const struct timespec *deadline) {
  int32_t seq = atomic_load(&c->seq);
  atomic_fetch_add(&c->waiters, 1);
  pthread_mutex_unlock(m);
  int timed_out = 0;
  struct timespec rel, *relp = NULL;
  if (deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    rel.tv_sec = deadline->tv_sec - now.tv_sec;
    rel.tv_nsec = deadline->tv_nsec - now.tv_nsec;
    if (rel.tv_nsec < 0) { rel.tv_sec--; rel.tv_nsec += 1000000000; }
    if (rel.tv_sec < 0) { rel.tv_sec = 0; rel.tv_nsec = 0; }
    relp = &rel;
  }
  if (ipx__futex(&c->seq, FUTEX_WAIT, seq, relp) != 0 && errno == ETIMEDOUT) timed_out = 1;
  atomic_fetch_sub(&c->waiters, 1);
  int r = ipx_mutex_lock(m);
  if (r != 0) return r;
  return timed_out ? ETIMEDOUT : 0;
}

void ipx_cond_notify(struct ipx_cond *c, int all) {
  atomic_fetch_add(&c->seq, 1);
  if (atomic_load(&c->waiters) > 0) ipx__futex(&c->seq, FUTEX_WAKE, all ? INT32_MAX : 1, NULL);
}

/* ---- RwLock --------------------------------------------------------------- */

pthread_mutex_t *ipx_rw_gate(void *rw) { return (pthread_mutex_t *)rw; }

pthread_mutex_t *ipx_rw_slot(void *rw, int i) { return (pthread_mutex_t *)((char *)rw + IPX_RWLOCK_STRIDE * (1 + i)); }

/* Locks m; a mutex met in the owner-died state is made consistent at once. Returns 1 if its owner had died. */
static int ipx__take(pthread_mutex_t *m, int try_only, int *err) {
  int r = try_only ? ipx_mutex_trylock(m) : ipx_mutex_lock(m);
  if (r == EOWNERDEAD) { pthread_mutex_consistent(m); *err = 0; return 1; }
  *err = r;
  return 0;
}

int ipx_rwlock_init(void *rw, int slots) {
  int r = ipx_mutex_init(ipx_rw_gate(rw));
  for (int i = 0; r == 0 && i < slots; i++) r = ipx_mutex_init(ipx_rw_slot(rw, i));
  return r;
}

/*
 * Takes a free reader slot, else whichever frees first: a thread can wait on
 * one mutex only, so the slots are watched in turn for a short while each
 * (1 ms doubling to 16), all of them tried between watches. Slots this
 * thread holds itself are skipped (EDEADLK if it holds them all).
 */
static int ipx__any_slot(void *rw, int slots, int *slot) {
  int err;
  *slot = -1;
  for (int round = 0;; round++) {
    int own = 0;
    for (int i = 0; i < slots; i++) {
      ipx__take(ipx_rw_slot(rw, i), 1, &err);
      if (err == 0) { *slot = i; return 0; }
      if (err == EDEADLK) own++;
      else if (err != EBUSY) return err;
    }
    if (own == slots) return EDEADLK;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (1L << (round < 4 ? round : 4)) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    int k = round % slots;
    int r = pthread_mutex_timedlock(ipx_rw_slot(rw, k), &deadline);
    if (r == EOWNERDEAD) { pthread_mutex_consistent(ipx_rw_slot(rw, k)); r = 0; }
    if (r == 0) { *slot = k; return 0; }
    if (r != ETIMEDOUT && r != EDEADLK) return r;
  }
}

int ipx_rwlock_rdlock(void *rw, int slots, int *slot) {
  int err;
  int died = ipx__take(ipx_rw_gate(rw), 0, &err);
  if (err) return err;
  err = ipx__any_slot(rw, slots, slot);
  pthread_mutex_unlock(ipx_rw_gate(rw));
  if (err) return err;
  return died ? EOWNERDEAD : 0;
}

int ipx_rwlock_rdunlock(void *rw, int slot) { return pthread_mutex_unlock(ipx_rw_slot(rw, slot)); }

int ipx_rwlock_wrlock(void *rw, int slots) {
  int err;
  int died = ipx__take(ipx_rw_gate(rw), 0, &err);
  if (err) return err;
  for (int i = 0; i < slots; i++) {
    ipx__take(ipx_rw_slot(rw, i), 0, &err);
    if (err) { pthread_mutex_unlock(ipx_rw_gate(rw)); return err; }
    pthread_mutex_unlock(ipx_rw_slot(rw, i));
  }
  return died ? EOWNERDEAD : 0;
}

int ipx_rwlock_wrunlock(void *rw) { return pthread_mutex_unlock(ipx_rw_gate(rw)); }

/* ---- Channel (docs/channel.md) ------------------------------------------- */
/*
 * Accesses to shared fields are sequentially consistent atomics, but for the
 * store of head (release), the clearing of the next stamp (ordered by the
 * stamp stored after it) and the receiver's read of its own tail: "store my
 * flag, then read your stamp or index" against "store my stamp or index, then
 * read your flag" has a seq_cst store between the two and loses no wake-up.
 * Payload bytes and lengths are plain memory, ordered by the stores of a
 * record's stamp (sender) and tail (receiver).
 */

#define IPX__ALIGN8(n) (((n) + 7u) & ~7u)
/* The stamp word of the record at ring offset pos (8-aligned). */
#define IPX__STAMP(l, pos) ((_Atomic uint32_t *)((l)->ring + (pos) + 4))
#define IPX__SLICE_MS 100   /* a sleeping side looks at its peers this often */
#define IPX__SPIN 2000      /* polls before a blocking call sleeps */

enum { IPX__NOROOM = -1, IPX__BUSY = -2 }; /* why a send attempt failed */

static inline void ipx__relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/*
 * Whether process `pid` lives (pid 0: nobody, so no). A zombie counts as
 * dead: it will never touch the channel again, though kill() still finds it
 * (a parent blocked here, not reaping its dead child, would wait forever).
 * A recycled pid looks alive, which only delays the checks.
 */
static int ipx__alive(int32_t pid) {
  if (pid <= 0) return 0;
  if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
  char path[32], line[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  ssize_t n = read(fd, line, sizeof line - 1);
  close(fd);
  if (n <= 0) return 1;
  line[n] = 0;
  const char *p = strrchr(line, ')'); /* "pid (comm) S ...": comm may hold anything */
  return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* Whether a pid recorded in the channel runs; peers under another kernel (a VM) always do. */
static int ipx__peer_alive(const struct ipx_channel *ch, int32_t pid) {
  return ch->foreign || ipx__alive(pid);
}

struct ipx__deadline { int forever; struct timespec at; };

static void ipx__deadline_init(struct ipx__deadline *d, int timeout_ms) {
  d->forever = timeout_ms < 0;
  if (d->forever) return;
  clock_gettime(CLOCK_MONOTONIC, &d->at);
  d->at.tv_sec += timeout_ms / 1000;
  d->at.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (d->at.tv_nsec >= 1000000000L) { d->at.tv_sec++; d->at.tv_nsec -= 1000000000L; }
}

/* The next sleep: 100 ms, or what is left before the deadline; 0 when it passed. */
static int ipx__slice(const struct ipx__deadline *d, struct timespec *slice) {
  slice->tv_sec = 0;
  slice->tv_nsec = IPX__SLICE_MS * 1000000L;
  if (d->forever) return 1;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long long left = (long long)(d->at.tv_sec - now.tv_sec) * 1000000000LL + (d->at.tv_nsec - now.tv_nsec);
  if (left <= 0) return 0;
  if (left < slice->tv_nsec) slice->tv_nsec = (long)left;
  return 1;
}

/* Rings the doorbell "<prefix>/<side>": one byte, non-blocking; nobody bound or a full queue is fine. */
/* Rings a doorbell; 0 if nobody has it bound (ECONNREFUSED: its owner is gone), else 1. */
static int ipx__ring(struct ipx_channel *ch, const char *side) {
  if (ch->bell_fd < 0) {
    ch->bell_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ch->bell_fd < 0) return 1;
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s/%s", ch->bell_prefix, side);
  if (n < 0 || (size_t)n >= sizeof a.sun_path - 1) return 1;
  char one = 1;
  ssize_t r = sendto(ch->bell_fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n));
  return !(r < 0 && errno == ECONNREFUSED);
}

static void ipx__wake_senders(struct ipx_channel *ch);

/*
 * Moves head past what a sender that died holding the send lock published but
 * did not count: a record (after a wrap marker, perhaps) stamped at head
 * (docs/channel.md, Attaching).
 */
static void ipx__count_uncounted(struct ipx_channel *ch) {
  struct ipx_channel_layout *l = ch->shm;
  uint32_t cap = ch->capacity, counted = atomic_load(&l->head), head = counted;
  for (int k = 0; k < 2; k++) {
    uint32_t pos = head & (cap - 1), n;
    if (atomic_load(IPX__STAMP(l, pos)) != (head | 1u)) break;
    memcpy(&n, l->ring + pos, 4);
    if (n == IPX_CHANNEL_WRAP) head += cap - pos;
    else if (n <= ch->max_message && pos + IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + n) <= cap) head += IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + n);
    else break;
  }
  if (head != counted) atomic_store(&l->head, head);
}

/*
 * The send lock, if the dead owner of slot i holds it: counted what it left
 * (lock takers trust head), then released. Only the caller may do this: it
 * owns the slot now, or marked it -1. 1 if released (then wake the senders).
 */
static int ipx__free_dead_lock(struct ipx_channel *ch, uint32_t i) {
  struct ipx_channel_layout *l = ch->shm;
  int32_t held = 1 + (int32_t)i;
  if (atomic_load(&l->send_lock) != held) return 0;
  ipx__count_uncounted(ch);
  return atomic_compare_exchange_strong(&l->send_lock, &held, 0);
}

/* Undoes what slot i's gone owner may have left: its sleeping mark (and count), the send lock. 1 if the lock was freed (then wake the senders). */
static int ipx__undo_slot(struct ipx_channel *ch, uint32_t i) {
  struct ipx_channel_layout *l = ch->shm;
  if (atomic_exchange(&l->slots[i].waiting, 0) != 0) atomic_fetch_sub(&l->senders_waiting, 1);
  return ipx__free_dead_lock(ch, i);
}

/*
 * Frees slot i if its owner is dead (or it is free but holds the lock):
 * pid -> -1 (so that no new owner's marks are undone with the dead one's),
 * undo its sleeping mark and the send lock, then 0. docs/channel.md, Attaching.
 */
static void ipx__reap(struct ipx_channel *ch, uint32_t i) {
  struct ipx_channel_layout *l = ch->shm;
  int32_t pid = atomic_load(&l->slots[i].pid);
  if (pid < 0 || (pid > 0 && ipx__peer_alive(ch, pid))) return;
  if (!atomic_compare_exchange_strong(&l->slots[i].pid, &pid, -1)) return;
  int unlocked = ipx__undo_slot(ch, i);
  atomic_store(&l->slots[i].pid, 0);
  if (unlocked) ipx__wake_senders(ch);
}

/* Wakes the receiver if it sleeps: on the futex head (1) or its doorbell (2). */
static void ipx__wake_receiver(struct ipx_channel *ch) {
  int32_t how = atomic_load(&ch->shm->receiver_waiting);
  if (how == 1) ipx__futex(&ch->shm->head, FUTEX_WAKE, 1, NULL);
  else if (how == 2) ipx__ring(ch, "receiver");
}

/* Wakes the sleeping senders: bumps sender_seq, rings doorbells of slots waiting on one, wakes the futex. */
static void ipx__wake_senders(struct ipx_channel *ch) {
  struct ipx_channel_layout *l = ch->shm;
  atomic_fetch_add(&l->sender_seq, 1);
  int futex = 0;
  for (uint32_t i = 0; i < ch->slots; i++) {
    int32_t how = atomic_load(&l->slots[i].waiting);
    if (how == 1) {
      futex = 1;
    } else if (how == 2) {
      char side[24];
      snprintf(side, sizeof side, "sender/%u", i);
      if (!ipx__ring(ch, side)) ipx__reap(ch, i); /* its owner died asleep */
    }
  }
  /* Marked asleep on the futex, yet nobody woken: a sender between its mark and its sleep
     (alive: left alone), or one that died asleep (freed, or every wake would cost this). */
  if (futex && ipx__futex(&l->sender_seq, FUTEX_WAKE, INT_MAX, NULL) == 0) {
    for (uint32_t i = 0; i < ch->slots; i++)
      if (atomic_load(&l->slots[i].waiting) == 1 && (int)i != ch->slot) ipx__reap(ch, i);
  }
}

/* Waits (up to 2 s) for a creator still initialising the header; then checks it. */
static int ipx__await_header(void *base) {
  struct ipx_header *h = (struct ipx_header *)base;
  for (int i = 0; atomic_load(&h->magic) == 0 && i < 2000; i++) {
    struct timespec ms = {0, 1000000L};
    nanosleep(&ms, NULL);
  }
  return ipx_named_object(base, IPX_CHANNEL) ? 0 : EINVAL;
}

static int ipx__attach(struct ipx_channel *ch, void *base, const struct stat *st) {
  memset(ch, 0, sizeof *ch);
  ch->slot = -1;
  ch->bell_fd = -1;
  ch->shm_fd = -1;
  if ((size_t)st->st_size < IPX_CHANNEL_RING) return EINVAL;
  int r = ipx__await_header(base);
  if (r) return r;
  struct ipx_channel_layout *l = (struct ipx_channel_layout *)base;
  uint32_t cap = l->capacity;
  if (cap < IPX_CHANNEL_MIN_CAPACITY || (cap & (cap - 1)) != 0 || (uint64_t)st->st_size < (uint64_t)IPX_CHANNEL_RING + cap ||
      l->max_message != cap / 2 - 8 || l->sender_slots < 1 || l->sender_slots > IPX_CHANNEL_SLOTS)
    return EINVAL;
  ch->shm = l;
  ch->capacity = cap;
  ch->max_message = l->max_message;
  ch->slots = l->sender_slots;
  snprintf(ch->bell_prefix, sizeof ch->bell_prefix, "ipx/%lu:%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
  return 0;
}

int ipx_channel_attach(struct ipx_channel *ch, void *base, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    memset(ch, 0, sizeof *ch);
    ch->slot = ch->bell_fd = ch->shm_fd = -1;
    return err;
  }
  return ipx__attach(ch, base, &st);
}

int ipx_channel_open(struct ipx_channel *ch, const char *name) {
  memset(ch, 0, sizeof *ch);
  ch->slot = ch->bell_fd = ch->shm_fd = -1;
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct stat st;
  /* A creator sizes the object right after creating it: wait (2 s at most) for that as for the header. */
  for (int i = 0;; i++) {
    if (fstat(fd, &st) != 0) { int err = errno; close(fd); return err; }
    if (st.st_size != 0 || i >= 2000) break;
    struct timespec ms = {0, 1000000L};
    nanosleep(&ms, NULL);
  }
  if ((size_t)st.st_size < IPX_CHANNEL_RING) { close(fd); return EINVAL; }
  void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) { int err = errno; close(fd); return err; }
  int r = ipx__attach(ch, base, &st);
  if (r) { munmap(base, (size_t)st.st_size); close(fd); return r; }
  ch->shm_fd = fd;
  ch->map_size = (size_t)st.st_size;
  return 0;
}

/*
 * Takes a sender slot: a free one, else one whose process died, undoing what
 * that process left: its sleeping flag (and count) and the send lock if it
 * held it (then the senders are woken).
 */
static int ipx__claim_slot(struct ipx_channel *ch) {
  if (ch->slot >= 0) return 0;
  struct ipx_channel_layout *l = ch->shm;
  int32_t me = (int32_t)getpid();
  int got = -1, dead = 0;
  for (uint32_t i = 0; got < 0 && i < ch->slots; i++) {
    int32_t v = 0;
    if (atomic_compare_exchange_strong(&l->slots[i].pid, &v, me)) got = (int)i;
  }
  for (uint32_t i = 0; got < 0 && i < ch->slots; i++) {
    int32_t v = atomic_load(&l->slots[i].pid);
    if (v > 0 && !ipx__peer_alive(ch, v) && atomic_compare_exchange_strong(&l->slots[i].pid, &v, me)) got = (int)i, dead = 1;
  }
  if (got < 0) return EBUSY;
  ch->slot = got;
  ch->pid = me;
  /* (A free slot may still hold the lock: a Node handle's worker thread ended mid-reservation.) */
  if ((dead || atomic_load(&l->send_lock) == 1 + got) && ipx__undo_slot(ch, (uint32_t)got)) ipx__wake_senders(ch);
  return 0;
}

/* Takes the receiver role: receiver_pid from 0 or a dead pid to ours. EBUSY: another live receiver. */
static int ipx__claim_receiver(struct ipx_channel *ch) {
  if (ch->receiving) return 0;
  struct ipx_channel_layout *l = ch->shm;
  int32_t me = (int32_t)getpid();
  for (;;) {
    int32_t v = 0;
    if (atomic_compare_exchange_strong(&l->receiver_pid, &v, me)) break;
    if (v == me || ipx__peer_alive(ch, v)) return EBUSY;
    if (atomic_compare_exchange_strong(&l->receiver_pid, &v, me)) break;
  }
  atomic_store(&l->receiver_waiting, 0); /* whatever a dead receiver left */
  ch->receiving = 1;
  ch->pid = me;
  return 0;
}

/* Whether a record of len bytes fits after `head` given `tail`; *skip: bytes skipped to wrap. */
static int ipx__fits(const struct ipx_channel *ch, uint32_t head, uint32_t tail, uint32_t len, uint32_t *skip) {
  uint32_t cap = ch->capacity, pos = head & (cap - 1), record = IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + len);
  *skip = record > cap - pos ? cap - pos : 0;
  /* A tail ahead of head: the receiver took a record its sender stamped but has not counted yet (holding the lock, head is exact). */
  int32_t used = (int32_t)(head - tail);
  return *skip + record <= cap - (uint32_t)(used > 0 ? used : 0);
}

/*
 * Lets go of the send lock, then wakes whoever sleeps (the receiver too if a
 * record was published): the lock's seq_cst store is the fence between this
 * sender's stores (stamp, head, lock) and its loads of the sleepers' flags.
 */
static void ipx__unlock(struct ipx_channel *ch, int published) {
  atomic_store(&ch->shm->send_lock, 0);
  if (published) ipx__wake_receiver(ch);
  if (atomic_load(&ch->shm->senders_waiting) > 0) ipx__wake_senders(ch);
}

/*
 * One try at room for len bytes: 0 with the send lock held (*head, *skip
 * set), IPX__NOROOM, or IPX__BUSY (another sender holds the lock). With
 * steal, a lock held by a dead sender is taken over.
 */
static int ipx__try_lock_room(struct ipx_channel *ch, uint32_t len, int steal, uint32_t *head, uint32_t *skip) {
  struct ipx_channel_layout *l = ch->shm;
  /* No room even now: do not touch the lock (releasing it would wake the other senders for nothing). */
  uint32_t h = atomic_load(&l->head), t = atomic_load(&l->tail);
  if (!ipx__fits(ch, h, t, len, skip)) return IPX__NOROOM;
  int32_t mine = 1 + ch->slot, v = 0;
  if (!atomic_compare_exchange_strong(&l->send_lock, &v, mine)) {
    if (!steal || v == 0) return IPX__BUSY;
    /* A record is published by its stamp: a dead holder's unstamped bytes are simply overwritten (its stamped ones are counted by ipx__reap). */
    uint32_t holder = (uint32_t)v - 1;
    if (holder < ch->slots) ipx__reap(ch, holder);
    v = 0;
    if (!atomic_compare_exchange_strong(&l->send_lock, &v, mine)) return IPX__BUSY;
  }
  h = atomic_load(&l->head); /* exact, holding the lock: ipx__free_dead_lock */
  t = atomic_load(&l->tail);
  if (!ipx__fits(ch, h, t, len, skip)) {
    ipx__unlock(ch, 0);
    return IPX__NOROOM;
  }
  *head = h;
  ch->tail_seen = t;
  return 0;
}

/*
 * Publishes the record of len bytes at head (after a wrap marker if skip):
 * clears the next record's stamp, writes the length, stamps the record, then
 * the marker (the receiver sees both or neither), counts it in head, unlocks,
 * wakes the receiver and the senders if they sleep.
 */
static void ipx__publish(struct ipx_channel *ch, uint32_t head, uint32_t skip, uint32_t len) {
  struct ipx_channel_layout *l = ch->shm;
  uint32_t cap = ch->capacity, at = head & (cap - 1), pos = skip ? 0 : at;
  uint32_t start = head + skip, next = start + IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + len);
  /* (Unless the record fills the ring: there is the tail's record, and its stamp.) */
  if (next - ch->tail_seen != cap) atomic_store_explicit(IPX__STAMP(l, next & (cap - 1)), 0, memory_order_relaxed); /* ordered by the stamp below */
  memcpy(l->ring + pos, &len, 4);
  atomic_store(IPX__STAMP(l, pos), start | 1u);
  if (skip) {
    const uint32_t wrap = IPX_CHANNEL_WRAP;
    memcpy(l->ring + at, &wrap, 4);
    atomic_store(IPX__STAMP(l, at), head | 1u);
  }
  atomic_store_explicit(&l->head, next, memory_order_release);
  ipx__unlock(ch, 1);
}

/* Whether the receiver died (with none attached, the next one may come). */
static int ipx__receiver_died(struct ipx_channel *ch) {
  int32_t pid = atomic_load(&ch->shm->receiver_pid);
  return pid != 0 && !ipx__peer_alive(ch, pid);
}

static int ipx__send_check(struct ipx_channel *ch, uint32_t len) {
  if (ch->reserved) return EINVAL;
  if (len > ch->max_message) return EMSGSIZE;
  return ipx__claim_slot(ch);
}

/* Takes the lock with room for len bytes, waiting per docs/channel.md ("Wake-ups"). */
static int ipx__lock_room(struct ipx_channel *ch, uint32_t len, int timeout_ms, uint32_t *head, uint32_t *skip) {
  struct ipx_channel_layout *l = ch->shm;
  for (int i = 0; i < IPX__SPIN; i++) {
    int r = ipx__try_lock_room(ch, len, i == 0, head, skip);
    if (r == 0) return 0;
    ipx__relax();
  }
  struct ipx__deadline d;
  ipx__deadline_init(&d, timeout_ms);
  for (;;) {
    int r = ipx__try_lock_room(ch, len, 1, head, skip);
    if (r == 0) return 0;
    if (r == IPX__NOROOM && ipx__receiver_died(ch)) {
      /* A sender never fails while there is room: look once more. */
      if (ipx__try_lock_room(ch, len, 1, head, skip) == 0) return 0;
      return EPIPE;
    }
    struct timespec slice;
    if (!ipx__slice(&d, &slice)) return ETIMEDOUT;
    atomic_fetch_add(&l->senders_waiting, 1);
    atomic_store(&l->slots[ch->slot].waiting, 1);
    uint32_t seen = atomic_load(&l->sender_seq);
    r = ipx__try_lock_room(ch, len, 1, head, skip);
    if (r != 0) ipx__futex(&l->sender_seq, FUTEX_WAIT, (int)seen, &slice);
    atomic_store(&l->slots[ch->slot].waiting, 0);
    atomic_fetch_sub(&l->senders_waiting, 1);
    if (r == 0) return 0;
  }
}

int ipx_channel_try_send(struct ipx_channel *ch, const void *data, uint32_t len) {
  int r = ipx__send_check(ch, len);
  if (r) return r;
  uint32_t head, skip;
  if (ipx__try_lock_room(ch, len, 1, &head, &skip) != 0) return EAGAIN;
  uint32_t pos = skip ? 0 : head & (ch->capacity - 1);
  if (len) memcpy(ch->shm->ring + pos + IPX_CHANNEL_RECORD_HEADER, data, len);
  ipx__publish(ch, head, skip, len);
  return 0;
}

int ipx_channel_send(struct ipx_channel *ch, const void *data, uint32_t len, int timeout_ms) {
  int r = ipx__send_check(ch, len);
  if (r) return r;
  uint32_t head, skip;
  if ((r = ipx__lock_room(ch, len, timeout_ms, &head, &skip))) return r;
  uint32_t pos = skip ? 0 : head & (ch->capacity - 1);
  if (len) memcpy(ch->shm->ring + pos + IPX_CHANNEL_RECORD_HEADER, data, len);
  ipx__publish(ch, head, skip, len);
  return 0;
}

static void ipx__reserved(struct ipx_channel *ch, uint32_t len, uint32_t head, uint32_t skip, void **view) {
  ch->reserved = 1;
  ch->res_head = head;
  ch->res_skip = skip;
  ch->res_len = len;
  *view = ch->shm->ring + (skip ? 0 : head & (ch->capacity - 1)) + IPX_CHANNEL_RECORD_HEADER;
}

int ipx_channel_try_reserve(struct ipx_channel *ch, uint32_t len, void **view) {
  int r = ipx__send_check(ch, len);
  if (r) return r;
  uint32_t head, skip;
  if (ipx__try_lock_room(ch, len, 1, &head, &skip) != 0) return EAGAIN;
  ipx__reserved(ch, len, head, skip, view);
  return 0;
}

int ipx_channel_reserve(struct ipx_channel *ch, uint32_t len, void **view, int timeout_ms) {
  int r = ipx__send_check(ch, len);
  if (r) return r;
  uint32_t head, skip;
  if ((r = ipx__lock_room(ch, len, timeout_ms, &head, &skip))) return r;
  ipx__reserved(ch, len, head, skip, view);
  return 0;
}

int ipx_channel_commit(struct ipx_channel *ch, uint32_t len) {
  if (!ch->reserved || len > ch->res_len) return EINVAL;
  ch->reserved = 0;
  ipx__publish(ch, ch->res_head, ch->res_skip, len);
  return 0;
}

void ipx_channel_discard(struct ipx_channel *ch) {
  if (!ch->reserved) return;
  ch->reserved = 0;
  ipx__unlock(ch, 0);
}

/* The record at tail, if published (stamped): its payload offset in the ring, length, and the tail after it. */
static int ipx__peek(struct ipx_channel *ch, uint32_t *pos, uint32_t *len, uint32_t *next) {
  struct ipx_channel_layout *l = ch->shm;
  uint32_t cap = ch->capacity;
  uint32_t tail = atomic_load_explicit(&l->tail, memory_order_relaxed); /* only the receiver writes it */
  uint32_t p = tail & (cap - 1), skipped = 0, n;
  if (atomic_load(IPX__STAMP(l, p)) != (tail | 1u)) return EAGAIN;
  memcpy(&n, l->ring + p, 4);
  if (n == IPX_CHANNEL_WRAP) {
    skipped = cap - p;
    p = 0;
    /* A sender stamps the record at 0 before the marker. */
    if (atomic_load(IPX__STAMP(l, 0)) == ((tail + skipped) | 1u)) memcpy(&n, l->ring, 4);
  }
  if (n > ch->max_message || p + IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + n) > cap) return EBADMSG;
  *pos = p + IPX_CHANNEL_RECORD_HEADER;
  *len = n;
  *next = tail + skipped + IPX__ALIGN8(IPX_CHANNEL_RECORD_HEADER + n);
  return 0;
}

/* Consumes up to `next`; wakes the senders if some sleep and half the ring is free. */
static void ipx__consume(struct ipx_channel *ch, uint32_t next) {
  struct ipx_channel_layout *l = ch->shm;
  atomic_store(&l->tail, next);
  /* (The receiver may take a record a moment before its sender counts it in head.) */
  if (atomic_load(&l->senders_waiting) > 0 && (int32_t)(atomic_load(&l->head) - next) <= (int32_t)(ch->capacity / 2))
    ipx__wake_senders(ch);
}

/* Whether the senders died: slots hold only pids of dead processes (none taken: the next may come). */
static int ipx__senders_died(struct ipx_channel *ch) {
  struct ipx_channel_layout *l = ch->shm;
  int dead = 0;
  for (uint32_t i = 0; i < ch->slots; i++) {
    int32_t pid = atomic_load(&l->slots[i].pid);
    if (pid == 0) continue;
    if (ipx__peer_alive(ch, pid)) return 0;
    dead = 1;
  }
  return dead;
}

static int ipx__receive_check(struct ipx_channel *ch) {
  if (ch->viewing) return EINVAL;
  return ipx__claim_receiver(ch);
}

/* Waits for a record, per docs/channel.md ("Wake-ups", "Peer gone"). */
static int ipx__await_record(struct ipx_channel *ch, int timeout_ms, uint32_t *pos, uint32_t *len, uint32_t *next) {
  struct ipx_channel_layout *l = ch->shm;
  for (int i = 0; i < IPX__SPIN; i++) {
    int r = ipx__peek(ch, pos, len, next);
    if (r != EAGAIN) return r;
    ipx__relax();
  }
  struct ipx__deadline d;
  ipx__deadline_init(&d, timeout_ms);
  for (;;) {
    int gone = ipx__senders_died(ch);
    int r = ipx__peek(ch, pos, len, next); /* after the look at the senders: their last messages count */
    if (r != EAGAIN) return r;
    if (gone) return EPIPE;
    struct timespec slice;
    if (!ipx__slice(&d, &slice)) return ETIMEDOUT;
    atomic_store(&l->receiver_waiting, 1);
    uint32_t head = atomic_load(&l->head);
    if (ipx__peek(ch, pos, len, next) == EAGAIN) ipx__futex(&l->head, FUTEX_WAIT, (int)head, &slice);
    atomic_store(&l->receiver_waiting, 0);
  }
}

static int ipx__copy_out(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len, uint32_t pos, uint32_t n, uint32_t next) {
  *len = n;
  if (n > size) return EMSGSIZE;
  if (n) memcpy(buf, ch->shm->ring + pos, n);
  ipx__consume(ch, next);
  return 0;
}

int ipx_channel_try_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len) {
  int r = ipx__receive_check(ch);
  if (r) return r;
  uint32_t pos, n, next;
  if ((r = ipx__peek(ch, &pos, &n, &next))) return r;
  return ipx__copy_out(ch, buf, size, len, pos, n, next);
}

int ipx_channel_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len, int timeout_ms) {
  int r = ipx__receive_check(ch);
  if (r) return r;
  uint32_t pos, n, next;
  if ((r = ipx__await_record(ch, timeout_ms, &pos, &n, &next))) return r;
  return ipx__copy_out(ch, buf, size, len, pos, n, next);
}

int ipx_channel_try_receive_view(struct ipx_channel *ch, const void **view, uint32_t *len) {
  int r = ipx__receive_check(ch);
  if (r) return r;
  uint32_t pos, next;
  if ((r = ipx__peek(ch, &pos, len, &next))) return r;
  *view = ch->shm->ring + pos;
  ch->viewing = 1;
  ch->view_next = next;
  return 0;
}

int ipx_channel_receive_view(struct ipx_channel *ch, const void **view, uint32_t *len, int timeout_ms) {
  int r = ipx__receive_check(ch);
  if (r) return r;
  uint32_t pos, next;
  if ((r = ipx__await_record(ch, timeout_ms, &pos, len, &next))) return r;
  *view = ch->shm->ring + pos;
  ch->viewing = 1;
  ch->view_next = next;
  return 0;
}

void ipx_channel_release(struct ipx_channel *ch) {
  if (!ch->viewing) return;
  ch->viewing = 0;
  ipx__consume(ch, ch->view_next);
}

void ipx_channel_close(struct ipx_channel *ch) {
  struct ipx_channel_layout *l = ch->shm;
  if (l) {
    ipx_channel_discard(ch);
    if (ch->slot >= 0) {
      int32_t me = ch->pid;
      atomic_compare_exchange_strong(&l->slots[ch->slot].pid, &me, 0);
    }
    if (ch->receiving) {
      int32_t me = ch->pid;
      atomic_compare_exchange_strong(&l->receiver_pid, &me, 0);
    }
  }
  if (ch->bell_fd >= 0) close(ch->bell_fd);
  if (ch->map_size) munmap((void *)l, ch->map_size);
  if (ch->shm_fd >= 0) close(ch->shm_fd);
  memset(ch, 0, sizeof *ch);
  ch->slot = ch->bell_fd = ch->shm_fd = -1;
}

void ipx_channel_set_foreign(struct ipx_channel *ch, int foreign) {
  ch->foreign = foreign != 0;
}
