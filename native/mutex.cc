// Process-shared robust mutexes: glibc's pthread_mutex_t, initialised
// PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST + PTHREAD_MUTEX_ERRORCHECK,
// placed in shared memory so a C program using the same pthread calls at the
// same place shares the lock.
//
// The owner of a robust mutex is a thread: the kernel marks the lock
// owner-died when that thread ends while holding it. So the lock is always
// taken by the JavaScript thread itself (trylock / timed lock). An async lock
// that must wait parks a waiter thread that only watches the lock word until
// it is free or its owner died (futex wait, exactly as glibc's own waiters
// do), then the JavaScript thread tries again. The waiter thread never holds
// the lock, so cancelling it can never leave the lock taken.
#include "waiter.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

namespace interprocess {

namespace {

#ifdef __GLIBC__
// glibc keeps the futex word (owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED)
// first in pthread_mutex_t; the watcher below relies on it.
static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "glibc pthread_mutex_t layout");
#endif

pthread_mutex_t* ArgMutex(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(env, "expected a typed array over the mutex");
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, info[i], &type, &length, &data, &buffer, &offset) != napi_ok)
    throw Napi::TypeError::New(env, "expected a typed array over the mutex");
  size_t bytes = length * (type == napi_uint8_array || type == napi_int8_array ? 1 : 4);
  if (bytes < sizeof(pthread_mutex_t) || reinterpret_cast<uintptr_t>(data) % alignof(pthread_mutex_t) != 0)
    throw Napi::RangeError::New(env, "the view must cover an aligned pthread_mutex_t");
  return static_cast<pthread_mutex_t*>(data);
}

std::atomic<int32_t>* LockWord(pthread_mutex_t* m) { return reinterpret_cast<std::atomic<int32_t>*>(m); }

Napi::Value MutexInit(const Napi::CallbackInfo& info) {
  pthread_mutex_t* m = ArgMutex(info, 0);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  int err = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return Napi::Number::New(info.Env(), -err);
}

int32_t ThisTid() {
  static thread_local int32_t tid = static_cast<int32_t>(syscall(SYS_gettid));
  return tid;
}

void WakeOne(std::atomic<int32_t>* word) { syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0); }

// The pthread calls return the error number itself (not -1 and errno).
Napi::Value MutexTryLock(const Napi::CallbackInfo& info) {
  pthread_mutex_t* m = ArgMutex(info, 0);
  int r = pthread_mutex_trylock(m);
  if (r == ENOTRECOVERABLE) {
    // glibc (2.36 at least) takes the lock word before it notices the mutex is
    // unrecoverable, then releases it only if the word was already ours: after
    // a successful trylock the word keeps our tid, so every later lock by
    // another thread sleeps forever and ours report EDEADLK. Nobody can hold
    // an unrecoverable mutex, so a word naming us here is that leftover: clear
    // it and wake every sleeper, so each learns ENOTRECOVERABLE too.
    std::atomic<int32_t>* word = LockWord(m);
    int32_t v = word->load();
    if ((v & FUTEX_TID_MASK) == ThisTid() && word->compare_exchange_strong(v, 0))
      syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  }
  return Napi::Number::New(info.Env(), -r);
}

// glibc's unlock clears the lock word and wakes *one* sleeper. If that sleeper
// is killed after the wake and before it takes the lock, the wake-up dies with
// it, and every other sleeper would sleep forever on a free lock: robust
// mutexes cover a dying owner, not a dying waiter. So no wait here sleeps
// longer than a slice; each slice ends by looking at the lock again.
constexpr long kSliceNs = 100 * 1000 * 1000;

bool Before(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

// mutexLockSync(view, timeoutMs): blocks this thread; timeoutMs < 0 = forever.
Napi::Value MutexLockSync(const Napi::CallbackInfo& info) {
  pthread_mutex_t* m = ArgMutex(info, 0);
  int64_t ms = ArgInt(info, 1);
  struct timespec deadline = TimespecAfter(CLOCK_MONOTONIC, ms < 0 ? 0 : ms * 1000000LL);
  for (;;) {
    struct timespec slice = TimespecAfter(CLOCK_MONOTONIC, kSliceNs);
    if (ms >= 0 && Before(deadline, slice)) slice = deadline;
    int r = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &slice);
    if (r != ETIMEDOUT) return Napi::Number::New(info.Env(), -r);
    if (ms >= 0 && !Before(TimespecAfter(CLOCK_MONOTONIC, 0), deadline)) return Napi::Number::New(info.Env(), -ETIMEDOUT);
  }
}

Napi::Value MutexUnlock(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), -pthread_mutex_unlock(ArgMutex(info, 0)));
}

Napi::Value MutexConsistent(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), -pthread_mutex_consistent(ArgMutex(info, 0)));
}

// Called once a watcher of ours has returned and the lock() it served has
// either taken the lock or given up: the unlock that ended the watch woke only
// one sleeper (ours), and another waiter (a C thread, another process) may
// still sleep. Holding the lock, keep FUTEX_WAITERS set so our unlock wakes
// the next one, as glibc's own slow path does; not holding it (a timeout, an
// abort, close()), hand the wake-up on now, or that waiter could sleep on a
// free lock forever. A spurious wake-up costs a waiter one more look.
Napi::Value MutexMarkWaiters(const Napi::CallbackInfo& info) {
  std::atomic<int32_t>* word = LockWord(ArgMutex(info, 0));
  if ((word->load() & FUTEX_TID_MASK) == ThisTid())
    word->fetch_or(static_cast<int32_t>(FUTEX_WAITERS));
  else
    WakeOne(word);
  return info.Env().Undefined();
}

class WatchCall : public BlockingCall {
 public:
  explicit WatchCall(pthread_mutex_t* m) : word_(LockWord(m)) {}
  long long Run() override {
    for (;;) {
      int32_t v = word_->load();
      if (v == 0 || (v & FUTEX_OWNER_DIED)) return 0;  // worth a try now
      if (!(v & static_cast<int32_t>(FUTEX_WAITERS))) {
        // Ask the owner to wake a waiter on unlock, as glibc's waiters do.
        if (!word_->compare_exchange_weak(v, v | static_cast<int32_t>(FUTEX_WAITERS))) continue;
        v |= static_cast<int32_t>(FUTEX_WAITERS);
      }
      // In slices (see kSliceNs): a wake-up a killed waiter took is not waited for forever.
      struct timespec slice = {0, kSliceNs};
      if (syscall(SYS_futex, word_, FUTEX_WAIT, v, &slice, nullptr, 0) != 0 && errno == EINTR) return -EINTR;
    }
  }

 private:
  std::atomic<int32_t>* word_;
};

// mutexWatch(view, callback) -> wait id: completes (0) when the lock looks
// free or its owner died. Takes nothing.
Napi::Value MutexWatch(const Napi::CallbackInfo& info) {
  pthread_mutex_t* m = ArgMutex(info, 0);
  uint32_t id = StartBlocking(info.Env(), std::make_unique<WatchCall>(m), info[1].As<Napi::Function>(), info[0]);
  return Napi::Number::New(info.Env(), id);
}

// The calling thread's id, as the kernel and glibc record owners.
Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// The owner tid recorded in the lock word (0 if free).
Napi::Value MutexOwner(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), LockWord(ArgMutex(info, 0))->load() & FUTEX_TID_MASK);
}

}  // namespace

void RegisterMutex(Napi::Env env, Napi::Object exports) {
  exports.Set("mutexInit", Napi::Function::New(env, MutexInit, "mutexInit"));
  exports.Set("mutexTryLock", Napi::Function::New(env, MutexTryLock, "mutexTryLock"));
  exports.Set("mutexLockSync", Napi::Function::New(env, MutexLockSync, "mutexLockSync"));
  exports.Set("mutexUnlock", Napi::Function::New(env, MutexUnlock, "mutexUnlock"));
  exports.Set("mutexConsistent", Napi::Function::New(env, MutexConsistent, "mutexConsistent"));
  exports.Set("mutexMarkWaiters", Napi::Function::New(env, MutexMarkWaiters, "mutexMarkWaiters"));
  exports.Set("mutexWatch", Napi::Function::New(env, MutexWatch, "mutexWatch"));
  exports.Set("mutexOwner", Napi::Function::New(env, MutexOwner, "mutexOwner"));
  exports.Set("gettid", Napi::Function::New(env, Gettid, "gettid"));
  exports.Set("MUTEX_SIZE", Napi::Number::New(env, sizeof(pthread_mutex_t)));
  exports.Set("MUTEX_ALIGN", Napi::Number::New(env, alignof(pthread_mutex_t)));
  Napi::Object e = Napi::Object::New(env);
  e.Set("EOWNERDEAD", Napi::Number::New(env, EOWNERDEAD));
  e.Set("ENOTRECOVERABLE", Napi::Number::New(env, ENOTRECOVERABLE));
  exports.Set("lockErrno", e);
}

}  // namespace interprocess
