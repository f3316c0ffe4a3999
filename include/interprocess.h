/*
 * interprocess.h: share interprocess's locks and channels with C programs.
 *
 * C11 (compile with -std=gnu11, or define _POSIX_C_SOURCE 200809L), Linux.
 * Declarations here, definitions in c/interprocess.c: compile and link that
 * file with your program, e.g.
 *
 *   cc -std=gnu11 -I node_modules/interprocess/include prog.c \
 *      node_modules/interprocess/c/interprocess.c -pthread
 *
 * Layouts: docs/mutex.md (named objects, mutex, condition, rwlock) and
 * docs/channel.md (channel).
 *
 *   Mutex      a pthread_mutex_t initialised PTHREAD_PROCESS_SHARED,
 *              PTHREAD_MUTEX_ROBUST and PTHREAD_MUTEX_ERRORCHECK: use the
 *              pthread calls directly (ipx_mutex_init initialises one).
 *   Condition  struct ipx_cond { seq, waiters }: futex-based, paired with a Mutex.
 *   RwLock     a gate Mutex at offset 0, then reader-slot Mutexes at 64, 128, ...
 *   Channel    a ring of variable-size messages, many senders, one receiver.
 *   Named      shm_open("/name"), mmap: a 64-byte header, the object at offset 64.
 *
 * Functions returning int return 0 or an errno value; none prints anything.
 */
#ifndef INTERPROCESS_H
#define INTERPROCESS_H

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPX_MAGIC 0x786d7069u /* "ipmx" */
#define IPX_LAYOUT_VERSION 1          /* of mutexes, conditions, rwlocks */
#define IPX_CHANNEL_LAYOUT_VERSION 3  /* of channels (docs/channel.md, Versions) */
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
void *ipx_named_object(void *base, enum ipx_kind kind);

/* ---- Mutex ---------------------------------------------------------------- */

/* Initialises a process-shared, robust, error-checking mutex. */
int ipx_mutex_init(pthread_mutex_t *m);

/*
 * pthread_mutex_trylock, repaired for a glibc quirk (2.36 at least): on an
 * unrecoverable mutex it returns ENOTRECOVERABLE but leaves the caller's
 * thread id in the lock word, and every other locker then sleeps forever.
 * Use this instead of pthread_mutex_trylock on mutexes shared with interprocess.
 */
int ipx_mutex_trylock(pthread_mutex_t *m);

/*
 * pthread_mutex_lock in slices of 100 ms, so a sleeper killed right after
 * taking glibc's single unlock wake-up cannot leave the others asleep on a
 * free lock. Use this instead of pthread_mutex_lock on shared mutexes.
 */
int ipx_mutex_lock(pthread_mutex_t *m);

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
int ipx_cond_wait(struct ipx_cond *c, pthread_mutex_t *m, const struct timespec *deadline);

/* Wakes one waiter (all if `all`). */
void ipx_cond_notify(struct ipx_cond *c, int all);

/* ---- RwLock --------------------------------------------------------------- */

#define IPX_RWLOCK_STRIDE 64
#define IPX_RWLOCK_SIZE(slots) (IPX_RWLOCK_STRIDE * (1 + (slots)))

/* The gate mutex and reader slot i of the rwlock at `rw`. */
pthread_mutex_t *ipx_rw_gate(void *rw);
pthread_mutex_t *ipx_rw_slot(void *rw, int i);

/* Initialises the gate and `slots` reader slots. */
int ipx_rwlock_init(void *rw, int slots);

/*
 * Read lock. Returns 0, or EOWNERDEAD: taken, but a writer died holding the
 * lock (the protected data may be half-written), or another error (nothing
 * taken). *slot receives the slot to pass to ipx_rwlock_rdunlock.
 */
int ipx_rwlock_rdlock(void *rw, int slots, int *slot);
int ipx_rwlock_rdunlock(void *rw, int slot);

/*
 * Write lock: holds the gate, waits for every reader slot to be free once.
 * Returns 0, EOWNERDEAD (taken, but the previous writer died holding it: the
 * data may be half-written), or another error (nothing taken).
 */
int ipx_rwlock_wrlock(void *rw, int slots);
int ipx_rwlock_wrunlock(void *rw);

/* ---- Channel (docs/channel.md) ------------------------------------------- */

#define IPX_CHANNEL_SLOTS 64          /* sender slots */
#define IPX_CHANNEL_RING 1024         /* offset of the ring */
#define IPX_CHANNEL_WRAP 0xffffffffu  /* length of a wrap marker */
#define IPX_CHANNEL_RECORD_HEADER 8   /* u32 length, u32 stamp (position | 1): payloads are 8-byte aligned */
#define IPX_CHANNEL_MIN_CAPACITY 4096u

/* The shared bytes of a channel object (the header included), as in docs/channel.md. */
struct ipx_channel_layout {
  struct ipx_header header;          /*    0 */
  uint32_t capacity;                 /*   64  ring bytes, a power of two */
  uint32_t max_message;              /*   68  capacity / 2 - 8 */
  uint32_t sender_slots;             /*   72  64 */
  _Atomic int32_t receiver_pid;      /*   76  0: none attached */
  uint8_t pad0[128 - 80];
  _Atomic uint32_t head;             /*  128  bytes ever published (the senders' count) */
  uint8_t pad1[192 - 132];
  _Atomic uint32_t tail;             /*  192  bytes ever consumed (the receiver's line) */
  uint8_t pad2[256 - 196];
  _Atomic int32_t receiver_waiting;  /*  256  0 awake, 1 futex on head, 2 doorbell (sleepers' line) */
  _Atomic int32_t senders_waiting;   /*  260  senders asleep */
  _Atomic uint32_t sender_seq;       /*  264  bumped to wake senders (their futex word) */
  uint8_t pad3[320 - 268];
  _Atomic int32_t send_lock;         /*  320  0 free, else 1 + slot of the holder (the senders' line) */
  uint8_t pad4[384 - 324];
  struct {
    _Atomic int32_t pid;             /*  0 free, -1 being freed */
    _Atomic int32_t waiting;         /*  0 awake, 1 futex on sender_seq, 2 doorbell */
  } slots[IPX_CHANNEL_SLOTS];        /*  384 */
  uint8_t pad5[IPX_CHANNEL_RING - 384 - 8 * IPX_CHANNEL_SLOTS];
  uint8_t ring[];                    /* 1024 */
};

/*
 * A process's handle on a channel. Fill it with ipx_channel_open or
 * ipx_channel_attach; the fields are the implementation's. One thread at a
 * time per handle; threads that send concurrently take a handle each.
 * A handle sends through a sender slot it takes on its first send or
 * reserve, and receives as the channel's receiver from its first receive.
 * Blocking calls sleep on a futex in 100 ms slices (looking for a dead peer
 * between them); they wake Node's asynchronous waiters through their doorbells.
 */
struct ipx_channel {
  struct ipx_channel_layout *shm;
  uint32_t capacity, max_message, slots;
  int slot;              /* sender slot held, -1 if none */
  int receiving;         /* 1 while this handle is the receiver */
  int32_t pid;
  int bell_fd;           /* socket to ring doorbells from, -1 until needed */
  int shm_fd;            /* ipx_channel_open only: the descriptor, else -1 */
  size_t map_size;       /* ipx_channel_open only: the mapping's size, else 0 */
  int reserved;          /* 1 while a reservation (the send lock) is held */
  uint32_t res_head, res_skip, res_len;
  uint32_t tail_seen;    /* tail when the send lock was taken */
  int viewing;           /* 1 while a received view is out */
  uint32_t view_next;    /* tail once the view is released */
  char bell_prefix[48];  /* "ipx/<dev>:<ino>" */
  int foreign;           /* 1: peers run under another kernel (ipx_channel_set_foreign) */
};

/* Opens the channel `name` (shm_open, mmap) and attaches to it; close unmaps. EINVAL: not a channel. */
int ipx_channel_open(struct ipx_channel *ch, const char *name);

/*
 * Attaches to a channel object mapped (whole) at `base`; fd is its shm_open
 * descriptor, used only now (fstat: size, and dev:ino for doorbell names).
 */
int ipx_channel_attach(struct ipx_channel *ch, void *base, int fd);

/*
 * Detaches: discards a pending reservation, gives back the sender slot and
 * the receiver role (an unreleased view's message stays in the ring), unmaps
 * if opened by ipx_channel_open. The channel itself stays until unlinked.
 */
void ipx_channel_close(struct ipx_channel *ch);

/*
 * Peers under another kernel (a guest VM and its host sharing ivshmem memory):
 * the pids they record mean nothing here, so none is ever taken for dead
 * (no EPIPE, no taking over their slots or lock). Call after attaching.
 */
void ipx_channel_set_foreign(struct ipx_channel *ch, int foreign);

/*
 * Sends len bytes (0 allowed) if the ring has room now. EAGAIN: full, or
 * another sender holds the lock; EMSGSIZE: len > max_message; EBUSY: all
 * sender slots taken; EINVAL: this handle holds a reservation.
 */
int ipx_channel_try_send(struct ipx_channel *ch, const void *data, uint32_t len);

/*
 * Sends, waiting up to timeout_ms (-1: forever) for room and the lock (taken
 * over from a dead holder). ETIMEDOUT; EPIPE: no room and the receiver died
 * (with none attached it waits); else as try_send.
 */
int ipx_channel_send(struct ipx_channel *ch, const void *data, uint32_t len, int timeout_ms);

/*
 * Zero-copy send: reserves room for up to len bytes and points *view at it,
 * holding the send lock (other senders wait) until ipx_channel_commit or
 * ipx_channel_discard. Errors as try_send.
 */
int ipx_channel_try_reserve(struct ipx_channel *ch, uint32_t len, void **view);

/* ipx_channel_try_reserve, waiting as ipx_channel_send does. */
int ipx_channel_reserve(struct ipx_channel *ch, uint32_t len, void **view, int timeout_ms);

/* Publishes the first len bytes of the reservation as one message. EINVAL: no reservation, or len too big. */
int ipx_channel_commit(struct ipx_channel *ch, uint32_t len);

/* Drops the reservation, sending nothing. */
void ipx_channel_discard(struct ipx_channel *ch);

/*
 * Copies the next message into buf, if there is one now: *len its length.
 * EAGAIN: the ring is empty; EMSGSIZE: size < *len (the message stays);
 * EBUSY: another live process is the receiver; EINVAL: a view is out;
 * EBADMSG: the ring holds a damaged record.
 */
int ipx_channel_try_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len);

/*
 * ipx_channel_try_receive, waiting up to timeout_ms (-1: forever) while the
 * ring is empty. ETIMEDOUT; EPIPE: empty, and the senders attached all died
 * (with none attached it waits: senders that close are simply absent).
 */
int ipx_channel_receive(struct ipx_channel *ch, void *buf, uint32_t size, uint32_t *len, int timeout_ms);

/*
 * Zero-copy receive: points *view at the next message in the ring, valid
 * (and the message unconsumed) until ipx_channel_release. Errors as try_receive.
 */
int ipx_channel_try_receive_view(struct ipx_channel *ch, const void **view, uint32_t *len);

/* ipx_channel_try_receive_view, waiting as ipx_channel_receive does. */
int ipx_channel_receive_view(struct ipx_channel *ch, const void **view, uint32_t *len, int timeout_ms);

/* Consumes the message of the view out (no-op if none). */
void ipx_channel_release(struct ipx_channel *ch);

#ifdef __cplusplus
}
#endif

#endif /* INTERPROCESS_H */
