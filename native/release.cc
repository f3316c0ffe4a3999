// What a thread's handles hold, let go when the thread ends.
//
// A Channel handle holds a sender slot or the receiver place in shared memory
// (pid words and waiting flags, docs/channel.md) and binds doorbells. close()
// gives them back; a worker thread that ends or is terminated without closing
// its handles would otherwise keep them as long as the process lives (its pid
// is alive, so no other process reclaims them either). So a handle registers
// here the atomic steps close() takes (src/channel.ts decides them) and its
// doorbells' descriptors; they are carried out when the thread's environment
// ends, and dropped if the mapping they are in is released first (a handle
// collected without close(): another handle of the process may hold the same
// place by then). close() cancels them.
#include "common.h"

#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace interprocess {

namespace {

enum Step : int32_t { kExchangeCount = 1, kCompareExchange = 2, kStore = 3 };

struct Release {
  napi_env env;
  int32_t* words;            // the mapping's start, or null
  std::vector<int32_t> steps;  // [step, index, a, b] each
  int fd;                    // a descriptor to close, or -1
};

std::mutex g_mutex;
std::unordered_map<int64_t, Release> g_releases;
std::set<napi_env> g_hooked;
int64_t g_next_id = 1;

void Run(const Release& r) {
  if (r.words) {
    int32_t* w = r.words;
    for (size_t k = 0; k + 3 < r.steps.size(); k += 4) {
      int32_t step = r.steps[k], i = r.steps[k + 1], a = r.steps[k + 2], b = r.steps[k + 3];
      if (step == kExchangeCount) {
        // word i to a; if it was not a, word b (a count) loses 1
        if (__atomic_exchange_n(&w[i], a, __ATOMIC_SEQ_CST) != a) __atomic_fetch_sub(&w[b], 1, __ATOMIC_SEQ_CST);
      } else if (step == kCompareExchange) {
        int32_t expected = a;
        __atomic_compare_exchange_n(&w[i], &expected, b, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      } else if (step == kStore) {
        __atomic_store_n(&w[i], a, __ATOMIC_SEQ_CST);
      }
    }
  }
  if (r.fd >= 0) close(r.fd);
}

// An environment (the main thread's or a worker's) ends: its releases run.
void EnvEnded(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_hooked.erase(env);
  for (auto it = g_releases.begin(); it != g_releases.end();) {
    if (it->second.env == env) {
      Run(it->second);
      it = g_releases.erase(it);
    } else {
      ++it;
    }
  }
}

Napi::Value Add(Napi::Env env, Release r) {
  int64_t id;
  {
    // (Nothing that allocates on the JavaScript heap while holding the lock: a collection could
    // release a mapping, and MappingReleased take the lock, on this very thread.)
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_hooked.insert(env).second) napi_add_env_cleanup_hook(env, EnvEnded, static_cast<napi_env>(env));
    id = g_next_id++;
    g_releases.emplace(id, std::move(r));
  }
  return Napi::Number::New(env, static_cast<double>(id));
}

// releaseAtEnd(buffer, steps: Int32Array) -> id. buffer: a mapping
// made by this addon (its SharedArrayBuffer); indices are int32 words in it.
Napi::Value ReleaseAtEnd(const Napi::CallbackInfo& info) {
  size_t length = 0;
  void* data = SharedBufferData(info[0], &length);
  if (!data || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "expected a SharedArrayBuffer and an Int32Array");
  Napi::Int32Array steps = info[1].As<Napi::Int32Array>();
  Release r{info.Env(), static_cast<int32_t*>(data), {}, -1};
  r.steps.assign(steps.Data(), steps.Data() + steps.ElementLength());
  for (size_t k = 0; k + 3 < r.steps.size(); k += 4) {
    int32_t i = r.steps[k + 1], b = r.steps[k + 3];
    bool counts = r.steps[k] == kExchangeCount;
    if (i < 0 || static_cast<size_t>(i) >= length / 4 || (counts && (b < 0 || static_cast<size_t>(b) >= length / 4)))
      throw Napi::RangeError::New(info.Env(), "a word index is outside the buffer");
  }
  return Add(info.Env(), std::move(r));
}

// closeAtEnd(fd) -> id: the descriptor is closed when the thread ends.
Napi::Value CloseAtEnd(const Napi::CallbackInfo& info) {
  return Add(info.Env(), Release{info.Env(), nullptr, {}, static_cast<int>(ArgInt(info, 0))});
}

// releaseCancel(id): forget a release (its owner let go itself).
Napi::Value ReleaseCancel(const Napi::CallbackInfo& info) {
  int64_t id = ArgInt(info, 0);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_releases.erase(id);
  }
  return info.Env().Undefined();
}

}  // namespace

void MappingReleased(void* data) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto it = g_releases.begin(); it != g_releases.end();) {
    if (it->second.words == data) {
      it = g_releases.erase(it);
    } else {
      ++it;
    }
  }
}

void RegisterRelease(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseAtEnd", Napi::Function::New(env, ReleaseAtEnd, "releaseAtEnd"));
  exports.Set("closeAtEnd", Napi::Function::New(env, CloseAtEnd, "closeAtEnd"));
  exports.Set("releaseCancel", Napi::Function::New(env, ReleaseCancel, "releaseCancel"));
}

}  // namespace interprocess
