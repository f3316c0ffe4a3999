// Pipes and FIFOs. Everything else about descriptors (open with O_NONBLOCK,
// fstat, close) Node's fs module already does.
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace interprocess {

namespace {

// pipe2(O_CLOEXEC) -> [readFd, writeFd] or -errno. Both ends stay blocking:
// an end handed to a child must look exactly like C's pipe() to it; the end a
// Node stream wraps is made non-blocking by libuv (a separate open file
// description per end, so the flag never leaks to the child's end).
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  mode_t mode = static_cast<mode_t>(ArgInt(info, 1));
  return SyscallResult(info.Env(), mkfifo(path.c_str(), mode));
}

Napi::Value MkfifoAsync(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  mode_t mode = static_cast<mode_t>(ArgInt(info, 1));
  return RunAsync(info.Env(), [path, mode]() -> long long { return mkfifo(path.c_str(), mode); });
}

// Clears or sets O_NONBLOCK on a descriptor: a descriptor handed to another
// program (a C child) must be in blocking mode, as C's own pipe() gives it.
Napi::Value SetBlocking(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  bool blocking = ArgBool(info, 1);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return Errno(info.Env(), errno);
  int next = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  if (next != flags && fcntl(fd, F_SETFL, next) < 0) return Errno(info.Env(), errno);
  return Napi::Number::New(info.Env(), 0);
}

// fcntl(F_GETFL): access mode and status flags of an inherited descriptor.
Napi::Value GetFlags(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  return SyscallResult(info.Env(), fcntl(fd, F_GETFL));
}

}  // namespace

void RegisterFd(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("mkfifoAsync", Napi::Function::New(env, MkfifoAsync, "mkfifoAsync"));
  exports.Set("setBlocking", Napi::Function::New(env, SetBlocking, "setBlocking"));
  exports.Set("getFlags", Napi::Function::New(env, GetFlags, "getFlags"));
}

}  // namespace interprocess
