// Doorbells: wake another process's event loop with one hand-off.
//
// A doorbell is a Unix datagram socket bound to an abstract address (Linux:
// a name in the socket namespace, not a file, gone when the socket closes, so
// a crash leaves nothing behind). Its owner polls it with libuv (Poller); a
// ringer sends one byte. The Channel uses them for asynchronous waits, where a
// futex could only wake a thread (docs/channel.md).
#include "common.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

namespace interprocess {

namespace {

// Longest name: sun_path less the leading NUL that makes it abstract.
constexpr size_t kMaxName = sizeof(sockaddr_un::sun_path) - 1;

socklen_t AbstractAddress(const std::string& name, sockaddr_un* a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

// bellBind(name) -> descriptor (non-blocking) or -errno (EADDRINUSE: already bound).
Napi::Value BellBind(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  if (name.empty() || name.size() > kMaxName) return Errno(info.Env(), ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(info.Env(), errno);
  sockaddr_un a;
  socklen_t len = AbstractAddress(name, &a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    int err = errno;
    close(fd);
    return Errno(info.Env(), err);
  }
  return Napi::Number::New(info.Env(), fd);
}

// bellRing(name) -> 0, or -errno: ECONNREFUSED (nobody bound: nobody asleep
// on it), EAGAIN (its queue is full: it has been rung already).
Napi::Value BellRing(const Napi::CallbackInfo& info) {
  static int sender = -1;  // one unbound socket per process to send from
  std::string name = ArgString(info, 0);
  if (name.empty() || name.size() > kMaxName) return Errno(info.Env(), ENAMETOOLONG);
  if (sender < 0) {
    sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sender < 0) return Errno(info.Env(), errno);
  }
  sockaddr_un a;
  socklen_t len = AbstractAddress(name, &a);
  char byte = 1;
  ssize_t r = sendto(sender, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), len);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// bellDrain(fd) -> rings consumed (reads until the socket is empty).
Napi::Value BellDrain(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  char buf[64];
  int n = 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0) return Napi::Number::New(info.Env(), errno == EAGAIN || errno == EWOULDBLOCK ? n : -errno);
    n++;
  }
}

}  // namespace

void RegisterDoorbell(Napi::Env env, Napi::Object exports) {
  exports.Set("bellBind", Napi::Function::New(env, BellBind, "bellBind"));
  exports.Set("bellRing", Napi::Function::New(env, BellRing, "bellRing"));
  exports.Set("bellDrain", Napi::Function::New(env, BellDrain, "bellDrain"));
  exports.Set("BELL_MAX_NAME", Napi::Number::New(env, static_cast<double>(kMaxName)));
}

}  // namespace interprocess
