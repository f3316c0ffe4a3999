// Waiting without libuv's threadpool.
//
// Calls that can block for as long as another process decides, and have no
// descriptor to poll (System V msgrcv/msgsnd/semop, POSIX sem_wait), run on a
// thread of their own, never one of libuv's four pool threads, so a hundred
// pending receives starve no fs call. A wait is cancelled (abort, timeout,
// close) by signalling its thread: these calls are never restarted after a
// signal handler runs, so the call returns EINTR having taken nothing.
#pragma once

#include "common.h"

#include <memory>

namespace interprocess {

class BlockingCall {
 public:
  virtual ~BlockingCall() = default;
  // On the waiter thread: the blocking call. Returns >= 0 or -errno; -EINTR
  // is retried unless the wait was cancelled.
  virtual long long Run() = 0;
  // On the JavaScript thread, after Run returned `result` >= 0.
  virtual Napi::Value Result(Napi::Env env, long long result) { return Napi::Number::New(env, static_cast<double>(result)); }
};

// Starts `call` on a new thread and returns its wait id. When the call ends,
// `callback(value)` runs on the JavaScript thread, where value is
// call->Result(...), a negative errno, or -ECANCELED if it was cancelled
// before taking effect. `keepAlive` objects stay referenced until then.
uint32_t StartBlocking(Napi::Env env, std::unique_ptr<BlockingCall> call, Napi::Function callback,
                       Napi::Value keepAlive);

void RegisterWaiter(Napi::Env env, Napi::Object exports);

}  // namespace interprocess
