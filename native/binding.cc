// Module entry point and the one place that reaches below Node-API: Node-API
// (as of Node 20) cannot create a SharedArrayBuffer over external memory, so
// WrapMapping uses V8's BackingStore API directly.
#include "common.h"

#include <sys/mman.h>
#include <sys/shm.h>
#include <v8.h>

#include <atomic>
#include <cstring>

namespace interprocess {

namespace {

// Bytes unmapped by ReleaseMapping and not yet reported to V8. The deleter
// may run on any thread, where V8's accounting must not be touched, so the
// next mapping made on a JavaScript thread settles the difference.
std::atomic<int64_t> g_released_bytes{0};

void ReleaseMapping(void* data, size_t length, void* deleter_data) {
  // May run on any thread, after every isolate dropped the buffer.
  MappingReleased(data);
  if (static_cast<MappingKind>(reinterpret_cast<intptr_t>(deleter_data)) == MappingKind::kShmat)
    shmdt(data);
  else
    munmap(data, length);
  g_released_bytes.fetch_add(static_cast<int64_t>(length));
}

// napi_value is, in every Node release, the address of a V8 handle slot; this
// is the same conversion Node performs internally (js_native_api_v8.h).
napi_value ToNapiValue(v8::Local<v8::Value> local) {
  return reinterpret_cast<napi_value>(*local);
}

}  // namespace

void* SharedBufferData(Napi::Value value, size_t* length) {
  napi_value raw = value;
  v8::Local<v8::Value> local;
  static_assert(sizeof(local) == sizeof(raw), "napi_value is a V8 handle slot");
  memcpy(static_cast<void*>(&local), &raw, sizeof raw);  // the inverse of ToNapiValue
  if (local.IsEmpty() || !local->IsSharedArrayBuffer()) return nullptr;
  std::shared_ptr<v8::BackingStore> store = local.As<v8::SharedArrayBuffer>()->GetBackingStore();
  *length = store->ByteLength();
  return store->Data();
}

// V8's own bound for a (Shared)ArrayBuffer: 2^53 - 1 bytes on 64-bit builds.
// NewBackingStore aborts the process beyond it, so callers check first.
size_t MaxMappingLength() {
  return sizeof(void*) == 8 ? static_cast<size_t>((uint64_t{1} << 53) - 1) : size_t{0x7fffffff};
}

Napi::Value WrapMapping(Napi::Env env, void* addr, size_t length, MappingKind kind) {
  // V8 does not count external backing stores: report mappings as external
  // memory so that churning them (create, drop, create...) makes the garbage
  // collector run and unmap the dropped ones, instead of piling them up.
  int64_t released = g_released_bytes.exchange(0);
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(length) - released, &ignored);
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      addr, length, ReleaseMapping, reinterpret_cast<void*>(static_cast<intptr_t>(kind)));
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(store));
  return Napi::Value(env, ToNapiValue(sab));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterFd(env, exports);
  RegisterShm(env, exports);
  RegisterIpcKey(env, exports);
  RegisterWaiter(env, exports);
  RegisterMsg(env, exports);
  RegisterMqueue(env, exports);
  RegisterSem(env, exports);
  RegisterPoll(env, exports);
  RegisterFutex(env, exports);
  RegisterMutex(env, exports);
  RegisterDoorbell(env, exports);
  RegisterSocket(env, exports);
  RegisterRelease(env, exports);
  exports.Set("maxMappingLength", Napi::Number::New(env, static_cast<double>(MaxMappingLength())));
  return exports;
}

}  // namespace interprocess

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return interprocess::Init(env, exports);
}

NODE_API_MODULE(interprocess, InitModule)
