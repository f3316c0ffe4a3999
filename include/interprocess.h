/*
 * interprocess.h: share interprocess's locks with C programs.
 *
 * Header-only, C11, Linux. See docs/mutex.md for the layouts.
 *
 *   Mutex      a pthread_mutex_t initialised PTHREAD_PROCESS_SHARED,
 *              PTHREAD_MUTEX_ROBUST and PTHREAD_MUTEX_ERRORCHECK: use the
 *              pthread calls directly (ipx_mutex_init initialises one).
 *   Condition  struct ipx_cond { seq, waiters }: futex-based, paired with a Mutex.
 *   RwLock     a gate Mutex at offset 0, then reader-slot Mutexes at 64, 128, ...
 *   Named      shm_open("/name"), mmap: a 64-byte header, the object at offset 64.
 */
#ifndef INTERPROCESS_H
#define INTERPROCESS_H

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define IPX_MAGIC 0x786d7069u /* "ipmx" */
#define IPX_LAYOUT_VERSION 1
#define IPX_HEADER_SIZE 64
enum ipx_kind { IPX_MUTEX = 1, IPX_CONDITION = 2, IPX_RWLOCK = 3, IPX_CHANNEL = 4 };

struct ipx_header {
  _Atomic uint32_t magic;  /* written last by the creator */
  uint16_t version;
  uint16_t kind;           /* enum ipx_kind */
  int32_t creator_pid;
  uint32_t extra;          /* rwlock: number of reader slots */
  uint8_t reserved[48];
};

/* The object inside a mapped named object, or NULL if it is not (yet) one of `kind`. */
static inline void *ipx_named_object(void *base, enum ipx_kind kind) {
  struct ipx_header *h = (struct ipx_header *)base;
  if (atomic_load_explicit(&h->magic, memory_order_acquire) != IPX_MAGIC) return NULL;
  if (h->version != IPX_LAYOUT_VERSION || h->kind != kind) return NULL;
  return (char *)base + IPX_HEADER_SIZE;
}

/* ---- Mutex ---------------------------------------------------------------- */

static inline int ipx_mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  int r = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return r;
}

/*
 * pthread_mutex_trylock, repaired for a glibc quirk (2.36 at least): on an
 * unrecoverable mutex it returns ENOTRECOVERABLE but leaves the caller's thread
 * id in the lock word, and every other locker then sleeps forever. Nobody can
 * hold an unrecoverable mutex, so such a leftover is cleared and every sleeper
 * woken to learn ENOTRECOVERABLE too. Use this instead of
 * pthread_mutex_trylock on mutexes shared with interprocess.
 */
static inline int ipx_mutex_trylock(pthread_mutex_t *m) {
  int r = pthread_mutex_trylock(m);
  if (r == ENOTRECOVERABLE) {
    _Atomic int32_t *word = (_Atomic int32_t *)m; /* glibc: the futex word comes first */
    int32_t v = atomic_load(word);
    if ((v & FUTEX_TID_MASK) == (int32_t)syscall(SYS_gettid) && atomic_compare_exchange_strong(word, &v, 0))
      syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
  }
  return r;
}

/*
 * pthread_mutex_lock in slices of 100 ms: glibc's unlock wakes one sleeper,
 * and a sleeper killed right after that wake takes the wake-up with it; the
 * others would sleep forever on a free lock (robust mutexes cover a dying
 * owner, not a dying waiter). Use this instead of pthread_mutex_lock on
 * mutexes shared with processes that may be killed while waiting.
 */
static inline int ipx_mutex_lock(pthread_mutex_t *m) {
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

struct ipx_cond {
  _Atomic int32_t seq;      /* incremented by every notify */
  _Atomic int32_t waiters;  /* threads inside ipx_cond_wait */
};

/*
 * Releases m, sleeps until notified (or until the CLOCK_MONOTONIC deadline,
 * if not NULL), takes m again. Returns 0, ETIMEDOUT, or what
 * pthread_mutex_lock returned (EOWNERDEAD: m taken, its owner died).
 * May return without a notify: re-check the condition in a loop.
 */
static inline int ipx_cond_wait(struct ipx_cond *c, pthread_mutex_t *m, const struct timespec *deadline) {
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
  if (syscall(SYS_futex, &c->seq, FUTEX_WAIT, seq, relp, NULL, 0) != 0 && errno == ETIMEDOUT) timed_out = 1;
  atomic_fetch_sub(&c->waiters, 1);
  int r = ipx_mutex_lock(m);
  if (r != 0) return r;
  return timed_out ? ETIMEDOUT : 0;
}

static inline void ipx_cond_notify(struct ipx_cond *c, int all) {
  atomic_fetch_add(&c->seq, 1);
  if (atomic_load(&c->waiters) > 0) syscall(SYS_futex, &c->seq, FUTEX_WAKE, all ? INT32_MAX : 1, NULL, NULL, 0);
}

/* ---- RwLock --------------------------------------------------------------- */

#define IPX_RWLOCK_STRIDE 64
#define IPX_RWLOCK_SIZE(slots) (IPX_RWLOCK_STRIDE * (1 + (slots)))

static inline pthread_mutex_t *ipx_rw_gate(void *rw) { return (pthread_mutex_t *)rw; }
static inline pthread_mutex_t *ipx_rw_slot(void *rw, int i) {
  return (pthread_mutex_t *)((char *)rw + IPX_RWLOCK_STRIDE * (1 + i));
}

/* Locks m; a mutex met in the owner-died state is made consistent at once. Returns 1 if its owner had died. */
static inline int ipx__take(pthread_mutex_t *m, int try_only, int *err) {
  int r = try_only ? ipx_mutex_trylock(m) : ipx_mutex_lock(m);
  if (r == EOWNERDEAD) { pthread_mutex_consistent(m); *err = 0; return 1; }
  *err = r;
  return 0;
}

static inline int ipx_rwlock_init(void *rw, int slots) {
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
static inline int ipx__any_slot(void *rw, int slots, int *slot) {
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

/*
 * Read lock. Returns 0, or EOWNERDEAD: taken, but a writer died holding the
 * lock (the protected data may be half-written), or another error (nothing
 * taken). *slot receives the slot to pass to ipx_rwlock_rdunlock.
 */
static inline int ipx_rwlock_rdlock(void *rw, int slots, int *slot) {
  int err;
  int died = ipx__take(ipx_rw_gate(rw), 0, &err);
  if (err) return err;
  err = ipx__any_slot(rw, slots, slot);
  pthread_mutex_unlock(ipx_rw_gate(rw));
  if (err) return err;
  return died ? EOWNERDEAD : 0;
}

static inline int ipx_rwlock_rdunlock(void *rw, int slot) { return pthread_mutex_unlock(ipx_rw_slot(rw, slot)); }

/*
 * Write lock: holds the gate, waits for every reader slot to be free once.
 * Returns 0, EOWNERDEAD (taken, but the previous writer died holding it: the
 * data may be half-written), or another error (nothing taken).
 */
static inline int ipx_rwlock_wrlock(void *rw, int slots) {
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

static inline int ipx_rwlock_wrunlock(void *rw) { return pthread_mutex_unlock(ipx_rw_gate(rw)); }

/* ---- Channel (docs/channel.md) ------------------------------------------- */

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

struct ipx_channel {
  uint32_t capacity, max_message;
  _Atomic int32_t *sender_pid, *receiver_pid, *head, *sender_waiting, *tail, *receiver_waiting;
  uint8_t *ring;
  char bell_prefix[64]; /* "ipx/<dev>:<ino>": the doorbells of asynchronous waiters */
};

#define IPX__ALIGN8(n) (((n) + 7u) & ~7u)
#define IPX__WRAP 0xffffffffu

/* Attaches to a mapped channel object (fd: its shm_open descriptor, for the doorbell names). */
static inline int ipx_channel_attach(struct ipx_channel *ch, void *base, int fd) {
  char *b = (char *)ipx_named_object(base, IPX_CHANNEL);
  if (!b) return EINVAL;
  b = (char *)base;
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  ch->capacity = *(uint32_t *)(b + 64);
  ch->max_message = *(uint32_t *)(b + 68);
  ch->sender_pid = (_Atomic int32_t *)(b + 72);
  ch->receiver_pid = (_Atomic int32_t *)(b + 76);
  ch->head = (_Atomic int32_t *)(b + 128);
  ch->sender_waiting = (_Atomic int32_t *)(b + 132);
  ch->tail = (_Atomic int32_t *)(b + 192);
  ch->receiver_waiting = (_Atomic int32_t *)(b + 196);
  ch->ring = (uint8_t *)(b + 256);
  snprintf(ch->bell_prefix, sizeof ch->bell_prefix, "ipx/%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
  return 0;
}

/* Wakes the other side if it sleeps: 1 on the futex word, 2 on its doorbell. */
static inline void ipx__channel_wake(struct ipx_channel *ch, _Atomic int32_t *flag, _Atomic int32_t *word, const char *side) {
  int32_t how = atomic_load(flag);
  if (how == 1) {
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
  } else if (how == 2) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s/%s", ch->bell_prefix, side);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
      char one = 1;
      sendto(s, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
      close(s);
    }
  }
}

/* 0: sent; EAGAIN: the ring is full; EMSGSIZE: longer than max_message. */
static inline int ipx_channel_try_send(struct ipx_channel *ch, const void *data, uint32_t len) {
  if (len > ch->max_message) return EMSGSIZE;
  atomic_store(ch->sender_pid, (int32_t)getpid());
  uint32_t cap = ch->capacity;
  uint32_t head = (uint32_t)atomic_load(ch->head), tail = (uint32_t)atomic_load(ch->tail);
  uint32_t free_bytes = cap - (head - tail), pos = head & (cap - 1);
  uint32_t record = IPX__ALIGN8(4 + len), skip = record > cap - pos ? cap - pos : 0;
  if (skip + record > free_bytes) return EAGAIN;
  if (skip) { memcpy(ch->ring + pos, &(uint32_t){IPX__WRAP}, 4); pos = 0; }
  memcpy(ch->ring + pos, &len, 4);
  memcpy(ch->ring + pos + 4, data, len);
  atomic_store(ch->head, (int32_t)(head + skip + record));
  ipx__channel_wake(ch, ch->receiver_waiting, ch->head, "receiver");
  return 0;
}

/* 0: a message of *len bytes copied into buf; EAGAIN: empty; EMSGSIZE: buf too small (*len: needed). */
static inline int ipx_channel_try_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len) {
  atomic_store(ch->receiver_pid, (int32_t)getpid());
  uint32_t cap = ch->capacity;
  uint32_t tail = (uint32_t)atomic_load(ch->tail), head = (uint32_t)atomic_load(ch->head);
  if (head == tail) return EAGAIN;
  uint32_t pos = tail & (cap - 1), n;
  memcpy(&n, ch->ring + pos, 4);
  if (n == IPX__WRAP) { tail += cap - pos; pos = 0; memcpy(&n, ch->ring, 4); }
  *len = n;
  if (n > size) return EMSGSIZE;
  memcpy(buf, ch->ring + pos + 4, n);
  atomic_store(ch->tail, (int32_t)(tail + IPX__ALIGN8(4 + n)));
  ipx__channel_wake(ch, ch->sender_waiting, ch->tail, "sender");
  return 0;
}

/* Sleeps (futex, 100 ms slices) until `word` moves from `seen`, flagging `flag` meanwhile. */
static inline void ipx__channel_sleep(_Atomic int32_t *flag, _Atomic int32_t *word, int32_t seen) {
  struct timespec slice = {0, 100 * 1000 * 1000};
  syscall(SYS_futex, word, FUTEX_WAIT, seen, &slice, NULL, 0);
  atomic_store(flag, 0);
}

/* Blocking send: waits while the ring is full. */
static inline int ipx_channel_send(struct ipx_channel *ch, const void *data, uint32_t len) {
  for (;;) {
    int32_t seen = atomic_load(ch->tail);
    atomic_store(ch->sender_waiting, 1);
    int r = ipx_channel_try_send(ch, data, len);
    if (r != EAGAIN) { atomic_store(ch->sender_waiting, 0); return r; }
    ipx__channel_sleep(ch->sender_waiting, ch->tail, seen);
  }
}

/* Blocking receive: waits while the ring is empty. */
static inline int ipx_channel_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len) {
  for (;;) {
    int32_t seen = atomic_load(ch->head);
    atomic_store(ch->receiver_waiting, 1);
    int r = ipx_channel_try_receive(ch, buf, size, len);
    if (r != EAGAIN) { atomic_store(ch->receiver_waiting, 0); return r; }
    ipx__channel_sleep(ch->receiver_waiting, ch->head, seen);
  }
}

#endif /* INTERPROCESS_H */
