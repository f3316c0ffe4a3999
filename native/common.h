// Shared helpers for the interprocess addon.
//
// Convention (after libuv): every wrapper returns its result, or a negative errno
// as a JavaScript number. TypeScript turns negative numbers into errors in one
// place (src/errors.ts), so no system error is ever thrown from C++. C++ throws
// only TypeErrors for arguments of the wrong JavaScript type, which the
// TypeScript layer already rules out; they guard against direct misuse.
#pragma once

#include <napi.h>
#include <sys/ipc.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>

namespace interprocess {

inline Napi::Number Errno(Napi::Env env, int err) {
  return Napi::Number::New(env, -err);
}

// The result of a call that returns -1 and sets errno.
inline Napi::Number SyscallResult(Napi::Env env, long long r) {
  return Napi::Number::New(env, r < 0 ? -errno : static_cast<double>(r));
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline int64_t ArgInt(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

inline bool ArgBool(const Napi::CallbackInfo& info, size_t i) {
  return info[i].ToBoolean().Value();
}

// Runs `fn` on the libuv threadpool and resolves a promise with its return
// value (>= 0, or a negative errno). Only for calls that finish quickly (a
// filesystem call); anything that can wait for another process must not use it.
class SyscallWorker : public Napi::AsyncWorker {
 public:
  SyscallWorker(Napi::Env env, std::function<long long()> fn)
      : Napi::AsyncWorker(env), fn_(std::move(fn)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    result_ = fn_();
    if (result_ < 0) result_ = -errno;
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(result_))); }

 private:
  std::function<long long()> fn_;
  Napi::Promise::Deferred deferred_;
  long long result_ = 0;
};

inline Napi::Promise RunAsync(Napi::Env env, std::function<long long()> fn) {
  auto* w = new SyscallWorker(env, std::move(fn));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// Calls a JavaScript callback from a libuv callback (no JavaScript on the
// stack): napi_make_callback runs the microtask queue afterwards; an exception
// the callback throws is reported as uncaught, as Node does for its own
// callbacks, instead of being silently kept as the pending N-API exception.
inline void CallFromLoop(napi_env env, napi_value recv, napi_value fn, size_t argc, const napi_value* argv) {
  napi_value ignored;
  if (napi_make_callback(env, nullptr, recv, fn, argc, argv, &ignored) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// The time `ns` nanoseconds from now on `clock`: the deadline of a timed wait.
inline struct timespec TimespecAfter(clockid_t clock, long long ns) {
  struct timespec t;
  clock_gettime(clock, &t);
  t.tv_sec += ns / 1000000000;
  t.tv_nsec += ns % 1000000000;
  if (t.tv_nsec >= 1000000000) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000;
  }
  return t;
}

// The ipc_perm fields every System V *_ds structure starts with, under the
// names the TypeScript layer uses (IpcPerm in src/sysv/key.ts).
inline void SetIpcPerm(Napi::Object o, const struct ipc_perm& p) {
  Napi::Env env = o.Env();
  o.Set("key", Napi::Number::New(env, p.__key));
  o.Set("uid", Napi::Number::New(env, p.uid));
  o.Set("gid", Napi::Number::New(env, p.gid));
  o.Set("cuid", Napi::Number::New(env, p.cuid));
  o.Set("cgid", Napi::Number::New(env, p.cgid));
  o.Set("mode", Napi::Number::New(env, p.mode));
}

enum class MappingKind : intptr_t { kMmap = 0, kShmat = 1 };

// Wraps mapped memory in a SharedArrayBuffer that owns it: the memory is
// unmapped (munmap or shmdt) only when V8 frees the last reference to the
// backing store, i.e. when no view in any thread can reach it any more.
Napi::Value WrapMapping(Napi::Env env, void* addr, size_t length, MappingKind kind);

// Largest mapping we hand to JavaScript (V8's limit for an ArrayBuffer).
size_t MaxMappingLength();

// The memory of a SharedArrayBuffer (and its length), or null if `value` is none.
void* SharedBufferData(Napi::Value value, size_t* length);

// Called before a mapping made by WrapMapping is unmapped (release.cc).
void MappingReleased(void* data);

void RegisterFd(Napi::Env env, Napi::Object exports);
void RegisterShm(Napi::Env env, Napi::Object exports);
void RegisterIpcKey(Napi::Env env, Napi::Object exports);
void RegisterWaiter(Napi::Env env, Napi::Object exports);
void RegisterMsg(Napi::Env env, Napi::Object exports);
void RegisterMqueue(Napi::Env env, Napi::Object exports);
void RegisterSem(Napi::Env env, Napi::Object exports);
void RegisterPoll(Napi::Env env, Napi::Object exports);
void RegisterFutex(Napi::Env env, Napi::Object exports);
void RegisterMutex(Napi::Env env, Napi::Object exports);
void RegisterDoorbell(Napi::Env env, Napi::Object exports);
void RegisterSocket(Napi::Env env, Napi::Object exports);
void RegisterRelease(Napi::Env env, Napi::Object exports);

}  // namespace interprocess
