// POSIX message queues. On Linux a queue descriptor is a file descriptor, so
// queues are always opened O_NONBLOCK and waiting is done by polling the
// descriptor (native/poll.cc for async, pollFd for the Sync forms): a pending
// receive or a send on a full queue costs no thread at all.
#include "common.h"

#include <fcntl.h>
#include <mqueue.h>

#include <vector>

namespace interprocess {

namespace {

// mqOpen(name, oflag, mode, maxmsg, msgsize): attributes apply when creating
// and maxmsg > 0; otherwise the system defaults (/proc/sys/fs/mqueue) apply.
Napi::Value MqOpen(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  int oflag = static_cast<int>(ArgInt(info, 1)) | O_NONBLOCK | O_CLOEXEC;
  mode_t mode = static_cast<mode_t>(ArgInt(info, 2));
  long maxmsg = static_cast<long>(ArgInt(info, 3));
  long msgsize = static_cast<long>(ArgInt(info, 4));
  struct mq_attr attr = {};
  attr.mq_maxmsg = maxmsg;
  attr.mq_msgsize = msgsize;
  bool with_attr = (oflag & O_CREAT) && maxmsg > 0 && msgsize > 0;
  mqd_t q = mq_open(name.c_str(), oflag, mode, with_attr ? &attr : nullptr);
  return SyscallResult(info.Env(), q);
}

Napi::Value MqClose(const Napi::CallbackInfo& info) {
  return SyscallResult(info.Env(), mq_close(static_cast<mqd_t>(ArgInt(info, 0))));
}

Napi::Value MqUnlink(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  return SyscallResult(info.Env(), mq_unlink(name.c_str()));
}

Napi::Value MqGetattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct mq_attr attr;
  if (mq_getattr(static_cast<mqd_t>(ArgInt(info, 0)), &attr) != 0) return Errno(env, errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("flags", Napi::Number::New(env, static_cast<double>(attr.mq_flags)));
  o.Set("maxmsg", Napi::Number::New(env, static_cast<double>(attr.mq_maxmsg)));
  o.Set("msgsize", Napi::Number::New(env, static_cast<double>(attr.mq_msgsize)));
  o.Set("curmsgs", Napi::Number::New(env, static_cast<double>(attr.mq_curmsgs)));
  return o;
}

// mqSend(q, data, priority): never blocks (EAGAIN when full).
Napi::Value MqSend(const Napi::CallbackInfo& info) {
  mqd_t q = static_cast<mqd_t>(ArgInt(info, 0));
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "message data must be a Uint8Array");
  auto data = info[1].As<Napi::Uint8Array>();
  unsigned prio = static_cast<unsigned>(ArgInt(info, 2));
  return SyscallResult(info.Env(), mq_send(q, reinterpret_cast<const char*>(data.Data()), data.ByteLength(), prio));
}

// mqReceive(q, bufferSize) -> { data, priority } or -errno; never blocks
// (EAGAIN when empty). bufferSize must be at least the queue's msgsize.
Napi::Value MqReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  mqd_t q = static_cast<mqd_t>(ArgInt(info, 0));
  int64_t size = ArgInt(info, 1);
  if (size < 0) return Errno(env, EINVAL);
  std::vector<char> buf(static_cast<size_t>(size));
  unsigned prio = 0;
  ssize_t n = mq_receive(q, buf.data(), buf.size(), &prio);
  if (n < 0) return Errno(env, errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n)));
  o.Set("priority", Napi::Number::New(env, prio));
  return o;
}

}  // namespace

void RegisterMqueue(Napi::Env env, Napi::Object exports) {
  exports.Set("mqOpen", Napi::Function::New(env, MqOpen, "mqOpen"));
  exports.Set("mqClose", Napi::Function::New(env, MqClose, "mqClose"));
  exports.Set("mqUnlink", Napi::Function::New(env, MqUnlink, "mqUnlink"));
  exports.Set("mqGetattr", Napi::Function::New(env, MqGetattr, "mqGetattr"));
  exports.Set("mqSend", Napi::Function::New(env, MqSend, "mqSend"));
  exports.Set("mqReceive", Napi::Function::New(env, MqReceive, "mqReceive"));
}

}  // namespace interprocess
