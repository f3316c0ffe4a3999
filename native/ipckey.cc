// System V IPC keys. ftok is called rather than reimplemented so the key is
// whatever this platform's C library computes, bit for bit.
#include "common.h"

#include <sys/ipc.h>

namespace interprocess {

namespace {

Napi::Value Ftok(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  int proj = static_cast<int>(ArgInt(info, 1));
  errno = 0;
  key_t key = ftok(path.c_str(), proj);
  if (key == static_cast<key_t>(-1) && errno != 0) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("errno", Napi::Number::New(info.Env(), -errno));
    return o;
  }
  return Napi::Number::New(info.Env(), key);
}

}  // namespace

void RegisterIpcKey(Napi::Env env, Napi::Object exports) {
  exports.Set("ftok", Napi::Function::New(env, Ftok, "ftok"));
}

}  // namespace interprocess
