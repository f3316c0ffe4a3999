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
#include <string>
#include <unordered_map>

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
//
// The socket rung from is connected to the doorbell and kept (one per name,
// a handful per process), so a ring is one send() without an address lookup.
// A doorbell re-bound by a new owner is a new socket: the old connection then
// fails (ECONNREFUSED) and one fresh connect tells whether anyone has it now.
// The sockets are the calling thread's own (worker threads ring at the same
// time as the main thread), closed when the thread ends.
struct BellSockets {
  std::unordered_map<std::string, int> map;
  ~BellSockets() {
    for (auto& e : map) close(e.second);
  }
};

Napi::Value BellRing(const Napi::CallbackInfo& info) {
  static thread_local BellSockets sockets;
  auto& connected = sockets.map;
  std::string name = ArgString(info, 0);
  if (name.empty() || name.size() > kMaxName) return Errno(info.Env(), ENAMETOOLONG);
  char byte = 1;
  auto it = connected.find(name);
  if (it != connected.end()) {
    if (send(it->second, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) return Napi::Number::New(info.Env(), 0);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Errno(info.Env(), EAGAIN);
    close(it->second);
    connected.erase(it);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(info.Env(), errno);
  sockaddr_un a;
  socklen_t len = AbstractAddress(name, &a);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    int err = errno;
    close(fd);
    return Errno(info.Env(), err);
  }
  if (connected.size() >= 64) {  // bound the cache: forget the others
    for (auto& e : connected) close(e.second);
    connected.clear();
  }
  connected.emplace(name, fd);
  ssize_t r = send(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// bellDrain(fd) -> rings consumed (0: none), or -errno. One recvmmsg takes
// up to 32 rings, so a wake-up costs one system call, not a read per ring
// plus one that finds nothing.
Napi::Value BellDrain(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  constexpr unsigned kBatch = 32;
  char bufs[kBatch][8];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  memset(msgs, 0, sizeof msgs);
  for (unsigned i = 0; i < kBatch; i++) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = 0;
  for (;;) {
    int r = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Napi::Number::New(info.Env(), errno == EAGAIN || errno == EWOULDBLOCK ? n : -errno);
    }
    n += r;
    if (static_cast<unsigned>(r) < kBatch) return Napi::Number::New(info.Env(), n);
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
