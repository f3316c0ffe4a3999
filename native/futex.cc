// Futexes on shared memory: wait and wake on a 32-bit word of a
// SharedArrayBuffer, across processes (no FUTEX_PRIVATE_FLAG). V8's
// Atomics.wait/notify cannot do this: their wait queues live inside the
// process. Waits that can last run on a waiter thread (native/waiter.cc).
#include "waiter.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

namespace interprocess {

namespace {

long Futex(int32_t* addr, int op, int32_t val, const struct timespec* timeout) {
  return syscall(SYS_futex, addr, op, val, timeout, nullptr, 0);
}

// The word at element `index` of an Int32Array (over a SharedArrayBuffer).
int32_t* ArgWord(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(env, "expected an Int32Array");
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, info[i], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_int32_array)
    throw Napi::TypeError::New(env, "expected an Int32Array");
  int64_t index = ArgInt(info, i + 1);
  if (index < 0 || static_cast<uint64_t>(index) >= length) throw Napi::RangeError::New(env, "index out of range");
  return static_cast<int32_t*>(data) + index;
}

// futexWake(i32, index, count) -> number of waiters woken
Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  int32_t* word = ArgWord(info, 0);
  int64_t count = ArgInt(info, 2);
  int n = count <= 0 ? 0 : (count > INT_MAX ? INT_MAX : static_cast<int>(count));
  return SyscallResult(info.Env(), Futex(word, FUTEX_WAKE, n, nullptr));
}

// futexWaitSync(i32, index, expected, timeoutMs) -> 0 woken, -EAGAIN value
// differed, -ETIMEDOUT, -EINTR. Blocks this thread; timeoutMs < 0 = forever.
Napi::Value FutexWaitSync(const Napi::CallbackInfo& info) {
  int32_t* word = ArgWord(info, 0);
  int32_t expected = static_cast<int32_t>(ArgInt(info, 2));
  int64_t ms = ArgInt(info, 3);
  struct timespec t = {static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  return SyscallResult(info.Env(), Futex(word, FUTEX_WAIT, expected, ms < 0 ? nullptr : &t));
}

class FutexWaitCall : public BlockingCall {
 public:
  FutexWaitCall(int32_t* word, int32_t expected) : word_(word), expected_(expected) {}
  long long Run() override { return Futex(word_, FUTEX_WAIT, expected_, nullptr) == 0 ? 0 : -errno; }

 private:
  int32_t* word_;
  int32_t expected_;
};

// futexWait(i32, index, expected, callback) -> wait id. The typed array is
// kept alive (so the memory stays mapped) until the callback runs.
Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  int32_t* word = ArgWord(info, 0);
  int32_t expected = static_cast<int32_t>(ArgInt(info, 2));
  uint32_t id = StartBlocking(info.Env(), std::make_unique<FutexWaitCall>(word, expected), info[3].As<Napi::Function>(), info[0]);
  return Napi::Number::New(info.Env(), id);
}

}  // namespace

void RegisterFutex(Napi::Env env, Napi::Object exports) {
  exports.Set("futexWake", Napi::Function::New(env, FutexWake, "futexWake"));
  exports.Set("futexWaitSync", Napi::Function::New(env, FutexWaitSync, "futexWaitSync"));
  exports.Set("futexWait", Napi::Function::New(env, FutexWait, "futexWait"));
}

}  // namespace interprocess
