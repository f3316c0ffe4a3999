// Waiting for a descriptor with libuv (uv_poll): readiness of a POSIX queue,
// later eventfds and sockets, without any thread. Also a blocking poll() for
// the Sync forms.
#include "common.h"

#include <poll.h>
#include <sys/socket.h>
#include <uv.h>

#include <cerrno>

namespace interprocess {

namespace {

// new Poller(fd, callback(status, readable, writable), datagrams?); start(readable, writable); stop(); ref(bool); close().
// With `datagrams` (a doorbell's socket), a readable descriptor has one
// datagram taken here, before JavaScript is called, and JavaScript is called
// only if there was one: a wake-up then costs one recv() and one call, as a
// socket's read does (more queued datagrams keep it readable: the poll fires
// again on the next turn of the loop).
// The uv handle lives in its own allocation, freed by uv_close's callback,
// because the JavaScript object may be collected before libuv is done with it.
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start), InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("ref", &Poller::SetRef), InstanceMethod("close", &Poller::Close)});
  }

  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
    int fd = static_cast<int>(ArgInt(info, 0));
    if (!info[1].IsFunction()) throw Napi::TypeError::New(info.Env(), "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop;
    napi_get_uv_event_loop(info.Env(), &loop);
    handle_ = new uv_poll_t;
    int err = uv_poll_init(loop, handle_, fd);
    if (err != 0) {
      delete handle_;
      handle_ = nullptr;
      throw Napi::Error::New(info.Env(), uv_strerror(err));
    }
    handle_->data = this;
    fd_ = fd;
    datagrams_ = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  }

  ~Poller() override { CloseHandle(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) {
    Poller* self = static_cast<Poller*>(h->data);
    if (self->datagrams_ && status == 0 && (events & UV_READABLE)) {
      char byte[8];
      ssize_t r;
      do r = recv(self->fd_, byte, sizeof byte, MSG_DONTWAIT);
      while (r < 0 && errno == EINTR);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // taken already: nothing to tell
      if (r < 0) status = -errno;
    }
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    napi_value argv[] = {Napi::Number::New(env, status), Napi::Boolean::New(env, events & UV_READABLE),
                         Napi::Boolean::New(env, events & UV_WRITABLE)};
    CallFromLoop(env, self->Value(), self->callback_.Value(), 3, argv);
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!handle_) return Errno(info.Env(), EBADF);
    int events = (ArgBool(info, 0) ? UV_READABLE : 0) | (ArgBool(info, 1) ? UV_WRITABLE : 0);
    if (!active_) Ref();  // an active poll keeps this object (and its callback) alive
    active_ = true;
    return Napi::Number::New(info.Env(), uv_poll_start(handle_, events, OnPoll));
  }

  // ref(keepsLoopAlive): an active poll that is not ref'd lets the process
  // exit (as net.Socket#unref); for polls kept running between waits.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (handle_) {
      if (ArgBool(info, 0)) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
      else uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    return info.Env().Undefined();
  }

  void StopPolling() {
    if (handle_) uv_poll_stop(handle_);
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  void CloseHandle() {
    if (!handle_) return;
    StopPolling();
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  uv_poll_t* handle_ = nullptr;
  bool active_ = false;
  int fd_ = -1;
  bool datagrams_ = false;
  Napi::FunctionReference callback_;
};

// pollFd(fd, readable, writable, timeoutMs) -> revents bitmask (1 readable,
// 2 writable, 4 error/hangup), 0 on timeout, or -errno. Blocks this thread:
// for the Sync forms only. timeoutMs < 0 waits forever.
Napi::Value PollFd(const Napi::CallbackInfo& info) {
  struct pollfd p = {};
  p.fd = static_cast<int>(ArgInt(info, 0));
  p.events = static_cast<short>((ArgBool(info, 1) ? POLLIN : 0) | (ArgBool(info, 2) ? POLLOUT : 0));
  int64_t ms = ArgInt(info, 3);
  int timeout = ms < 0 ? -1 : (ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms));
  int r = poll(&p, 1, timeout);
  if (r < 0) return Errno(info.Env(), errno);
  if (r == 0) return Napi::Number::New(info.Env(), 0);
  int out = ((p.revents & POLLIN) ? 1 : 0) | ((p.revents & POLLOUT) ? 2 : 0) |
            ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) ? 4 : 0);
  return Napi::Number::New(info.Env(), out);
}

}  // namespace

void RegisterPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("Poller", Poller::Define(env));
  exports.Set("pollFd", Napi::Function::New(env, PollFd, "pollFd"));
}

}  // namespace interprocess
