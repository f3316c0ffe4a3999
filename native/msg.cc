// System V message queues: msgget, msgsnd, msgrcv, msgctl.
//
// The message buffer is C's `struct { long mtype; char mtext[]; }`, so what a
// C program sends is exactly what arrives here, and back. Non-blocking forms
// (IPC_NOWAIT) run on the calling thread; blocking forms on a waiter thread.
#include "waiter.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace interprocess {

namespace {

// A heap buffer laid out as C's struct msgbuf, `size` bytes of mtext. Left
// uninitialised: a receive's maxSize may be far larger than the message, and
// the kernel writes only what it copies, so untouched pages cost nothing
// (zero-filling a 2 GiB maxSize took seconds per receive).
struct MsgBuf {
  explicit MsgBuf(size_t size) : size_(sizeof(long) + size), bytes_(static_cast<char*>(malloc(size_))) {}
  bool ok() const { return bytes_ != nullptr; }
  char* data() { return bytes_.get(); }
  size_t size() const { return size_; }
  long* mtype() { return reinterpret_cast<long*>(bytes_.get()); }
  char* mtext() { return bytes_.get() + sizeof(long); }

 private:
  struct Free {
    void operator()(char* p) const { free(p); }
  };
  size_t size_;
  std::unique_ptr<char, Free> bytes_;
};

Napi::Value ReceivedMessage(Napi::Env env, MsgBuf& buf, size_t length) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, static_cast<double>(*buf.mtype())));
  o.Set("data", Napi::Buffer<char>::Copy(env, buf.mtext(), length));
  return o;
}

std::unique_ptr<MsgBuf> OutgoingMessage(const Napi::CallbackInfo& info, size_t type_arg, size_t data_arg) {
  long type = static_cast<long>(ArgInt(info, type_arg));
  if (!info[data_arg].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "message data must be a Uint8Array");
  auto data = info[data_arg].As<Napi::Uint8Array>();
  auto buf = std::make_unique<MsgBuf>(data.ByteLength());
  if (!buf->ok()) throw Napi::Error::New(info.Env(), "out of memory for a message");
  *buf->mtype() = type;
  if (data.ByteLength() > 0) memcpy(buf->mtext(), data.Data(), data.ByteLength());
  return buf;
}

class MsgsndCall : public BlockingCall {
 public:
  MsgsndCall(int id, std::unique_ptr<MsgBuf> buf, int flags) : id_(id), buf_(std::move(buf)), flags_(flags) {}
  long long Run() override {
    int r = msgsnd(id_, buf_->data(), buf_->size() - sizeof(long), flags_);
    return r < 0 ? -errno : 0;
  }

 private:
  int id_;
  std::unique_ptr<MsgBuf> buf_;
  int flags_;
};

class MsgrcvCall : public BlockingCall {
 public:
  MsgrcvCall(int id, size_t size, long type, int flags) : id_(id), buf_(size), size_(size), type_(type), flags_(flags) {}
  long long Run() override {
    if (!buf_.ok()) return -ENOMEM;
    ssize_t n = msgrcv(id_, buf_.data(), size_, type_, flags_);
    return n < 0 ? -errno : n;
  }
  Napi::Value Result(Napi::Env env, long long n) override { return ReceivedMessage(env, buf_, static_cast<size_t>(n)); }

 private:
  int id_;
  MsgBuf buf_;
  size_t size_;
  long type_;
  int flags_;
};

Napi::Value Msgget(const Napi::CallbackInfo& info) {
  key_t key = static_cast<key_t>(ArgInt(info, 0));
  int flags = static_cast<int>(ArgInt(info, 1));
  return SyscallResult(info.Env(), msgget(key, flags));
}

// msgsnd(id, type, data, flags) on this thread (flags include IPC_NOWAIT for try forms).
Napi::Value Msgsnd(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  auto buf = OutgoingMessage(info, 1, 2);
  int flags = static_cast<int>(ArgInt(info, 3));
  return SyscallResult(info.Env(), msgsnd(id, buf->data(), buf->size() - sizeof(long), flags));
}

// msgrcv(id, maxSize, type, flags) on this thread -> { type, data } or -errno.
Napi::Value Msgrcv(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  int64_t size = ArgInt(info, 1);
  long type = static_cast<long>(ArgInt(info, 2));
  int flags = static_cast<int>(ArgInt(info, 3));
  if (size < 0) return Errno(info.Env(), EINVAL);
  MsgBuf buf(static_cast<size_t>(size));
  if (!buf.ok()) return Errno(info.Env(), ENOMEM);
  ssize_t n = msgrcv(id, buf.data(), static_cast<size_t>(size), type, flags);
  if (n < 0) return Errno(info.Env(), errno);
  return ReceivedMessage(info.Env(), buf, static_cast<size_t>(n));
}

// msgsndWait(id, type, data, flags, callback) -> wait id (0: no thread could be started)
Napi::Value MsgsndWait(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  auto buf = OutgoingMessage(info, 1, 2);
  int flags = static_cast<int>(ArgInt(info, 3));
  auto cb = info[4].As<Napi::Function>();
  return Napi::Number::New(info.Env(), StartBlocking(info.Env(), std::make_unique<MsgsndCall>(id, std::move(buf), flags), cb, info.Env().Undefined()));
}

// msgrcvWait(id, maxSize, type, flags, callback) -> wait id
Napi::Value MsgrcvWait(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  int64_t size = ArgInt(info, 1);
  long type = static_cast<long>(ArgInt(info, 2));
  int flags = static_cast<int>(ArgInt(info, 3));
  auto cb = info[4].As<Napi::Function>();
  if (size < 0) throw Napi::RangeError::New(info.Env(), "size must not be negative");
  return Napi::Number::New(info.Env(), StartBlocking(info.Env(), std::make_unique<MsgrcvCall>(id, static_cast<size_t>(size), type, flags), cb, info.Env().Undefined()));
}

Napi::Value MsgStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = static_cast<int>(ArgInt(info, 0));
  struct msqid_ds ds;
  if (msgctl(id, IPC_STAT, &ds) != 0) return Errno(env, errno);
  Napi::Object o = Napi::Object::New(env);
  SetIpcPerm(o, ds.msg_perm);
  o.Set("stime", Napi::Number::New(env, static_cast<double>(ds.msg_stime)));
  o.Set("rtime", Napi::Number::New(env, static_cast<double>(ds.msg_rtime)));
  o.Set("ctime", Napi::Number::New(env, static_cast<double>(ds.msg_ctime)));
  o.Set("cbytes", Napi::Number::New(env, static_cast<double>(ds.__msg_cbytes)));
  o.Set("qnum", Napi::Number::New(env, static_cast<double>(ds.msg_qnum)));
  o.Set("qbytes", Napi::Number::New(env, static_cast<double>(ds.msg_qbytes)));
  o.Set("lspid", Napi::Number::New(env, ds.msg_lspid));
  o.Set("lrpid", Napi::Number::New(env, ds.msg_lrpid));
  return o;
}

// msgSet(id, qbytes, uid, gid, mode): IPC_SET of the fields a process may change.
Napi::Value MsgSet(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  struct msqid_ds ds;
  if (msgctl(id, IPC_STAT, &ds) != 0) return Errno(info.Env(), errno);
  ds.msg_qbytes = static_cast<msglen_t>(ArgInt(info, 1));
  ds.msg_perm.uid = static_cast<uid_t>(ArgInt(info, 2));
  ds.msg_perm.gid = static_cast<gid_t>(ArgInt(info, 3));
  ds.msg_perm.mode = static_cast<unsigned short>(ArgInt(info, 4));
  return SyscallResult(info.Env(), msgctl(id, IPC_SET, &ds));
}

Napi::Value MsgRemove(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  return SyscallResult(info.Env(), msgctl(id, IPC_RMID, nullptr));
}

}  // namespace

void RegisterMsg(Napi::Env env, Napi::Object exports) {
  exports.Set("msgget", Napi::Function::New(env, Msgget, "msgget"));
  exports.Set("msgsnd", Napi::Function::New(env, Msgsnd, "msgsnd"));
  exports.Set("msgrcv", Napi::Function::New(env, Msgrcv, "msgrcv"));
  exports.Set("msgsndWait", Napi::Function::New(env, MsgsndWait, "msgsndWait"));
  exports.Set("msgrcvWait", Napi::Function::New(env, MsgrcvWait, "msgrcvWait"));
  exports.Set("msgStat", Napi::Function::New(env, MsgStat, "msgStat"));
  exports.Set("msgSet", Napi::Function::New(env, MsgSet, "msgSet"));
  exports.Set("msgRemove", Napi::Function::New(env, MsgRemove, "msgRemove"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("MSG_NOERROR", Napi::Number::New(env, MSG_NOERROR));
  c.Set("MSG_EXCEPT", Napi::Number::New(env, MSG_EXCEPT));
  exports.Set("msgConstants", c);
}

}  // namespace interprocess
