// Unix stream sockets that carry descriptors (SCM_RIGHTS), and eventfds: what
// QEMU's ivshmem server protocol is made of (one little-endian int64 per
// message, optionally with one descriptor). Node's net module cannot pass
// descriptors, and has no eventfd. Every descriptor here is non-blocking and
// close-on-exec; libuv polls them (Poller) and TypeScript speaks the protocol.
#include "common.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace interprocess {

namespace {

bool UnixAddress(const std::string& path, sockaddr_un* a, socklen_t* len) {
  if (path.empty() || path.size() >= sizeof a->sun_path) return false;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// unixListen(path, backlog) -> listening descriptor or -errno (EADDRINUSE: the
// path exists; removing a stale socket file is the caller's decision).
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  int backlog = static_cast<int>(ArgInt(info, 1));
  sockaddr_un a;
  socklen_t len;
  if (!UnixAddress(path, &a, &len)) return Errno(info.Env(), ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(info.Env(), errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    return Errno(info.Env(), err);
  }
  return Napi::Number::New(info.Env(), fd);
}

// unixAccept(listenFd) -> connected descriptor, or -EAGAIN when none is waiting.
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  return SyscallResult(info.Env(), accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

// unixConnect(path) -> connected descriptor or -errno. A Unix stream connect
// completes at once or fails (EAGAIN: the listener's backlog is full).
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  sockaddr_un a;
  socklen_t len;
  if (!UnixAddress(path, &a, &len)) return Errno(info.Env(), ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(info.Env(), errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    int err = errno;
    close(fd);
    return Errno(info.Env(), err);
  }
  return Napi::Number::New(info.Env(), fd);
}

// sendWithFd(fd, bytes, passFd) -> bytes sent or -errno: one sendmsg, with
// passFd (if >= 0) as SCM_RIGHTS. The receiver gets its own copy of passFd.
Napi::Value SendWithFd(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "argument 1 must be a Uint8Array");
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  int pass = static_cast<int>(ArgInt(info, 2));
  iovec iov = {data.Data(), data.ByteLength()};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (pass >= 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass, sizeof(int));
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return SyscallResult(info.Env(), r);
}

// recvWithFd(fd, size) -> { data: Buffer (empty: end of stream), fd: -1 or a
// received descriptor (close-on-exec) }, or -errno (EAGAIN: nothing yet).
// Descriptors beyond the first in one message are closed (the protocols here
// pass at most one per message).
Napi::Value RecvWithFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0));
  size_t size = static_cast<size_t>(ArgInt(info, 1));
  std::string buf(size, '\0');
  iovec iov = {buf.data(), size};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t r;
  do r = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return Errno(env, errno);
  int received = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (received < 0) received = got;
      else close(got);
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(r)));
  out.Set("fd", Napi::Number::New(env, received));
  return out;
}

// eventfd(initial) -> non-blocking, close-on-exec eventfd or -errno.
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  unsigned int initial = static_cast<unsigned int>(ArgInt(info, 0));
  return SyscallResult(info.Env(), eventfd(initial, EFD_NONBLOCK | EFD_CLOEXEC));
}

// eventfdWrite(fd, n) -> 0 or -errno: adds n (1 rings an ivshmem vector).
// EAGAIN only if the counter would overflow, i.e. it is rung already.
Napi::Value EventFdWrite(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  uint64_t n = static_cast<uint64_t>(ArgInt(info, 1));
  ssize_t r;
  do r = write(fd, &n, sizeof n);
  while (r < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// eventfdRead(fd) -> the counter (then reset to 0), or -EAGAIN if it is 0.
Napi::Value EventFdRead(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  uint64_t n = 0;
  ssize_t r;
  do r = read(fd, &n, sizeof n);
  while (r < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : static_cast<double>(n));
}

// closeFd(fd) -> 0 or -errno. For descriptors Node's fs did not open (worker
// threads warn when fs.closeSync closes those).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  // After close() fails with EINTR on Linux the descriptor is gone: never retry.
  return SyscallResult(info.Env(), close(fd));
}

}  // namespace

void RegisterSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept, "unixAccept"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("sendWithFd", Napi::Function::New(env, SendWithFd, "sendWithFd"));
  exports.Set("recvWithFd", Napi::Function::New(env, RecvWithFd, "recvWithFd"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventFdWrite, "eventfdWrite"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventFdRead, "eventfdRead"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace interprocess
