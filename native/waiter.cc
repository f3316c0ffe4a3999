#include "waiter.h"

#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace interprocess {

namespace {

// A real-time signal nobody else in a Node process uses. Its handler does
// nothing: its only job is to make the waiter thread's call return EINTR.
int WakeSignal() { return SIGRTMIN + 6; }

void OnWakeSignal(int) {}

void InstallWakeSignal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnWakeSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: sem_wait must return EINTR too
    sigaction(WakeSignal(), &sa, nullptr);
  });
}

struct EnvState;

struct Waiter {
  uint32_t id;
  EnvState* state;
  std::unique_ptr<BlockingCall> call;
  pthread_t thread;
  std::atomic<bool> cancelled{false};
  long long result = 0;
  Napi::FunctionReference callback;
  Napi::Reference<Napi::Value> keep_alive;
};

struct EnvState {
  napi_env env;
  uv_async_t async;
  std::mutex mutex;
  std::vector<Waiter*> finished;                  // guarded by mutex
  std::unordered_map<uint32_t, Waiter*> pending;  // JavaScript thread only
  uint32_t next_id = 1;
  bool torn_down = false;
};

void* WaiterMain(void* arg) {
  Waiter* w = static_cast<Waiter*>(arg);
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, WakeSignal());
  pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
  long long r;
  for (;;) {
    if (w->cancelled.load()) {
      r = -ECANCELED;
      break;
    }
    r = w->call->Run();
    if (r != -EINTR) break;
  }
  // A call that completed although a cancel raced with it keeps its result:
  // a message it took is delivered, never dropped.
  w->result = r;
  {
    std::lock_guard<std::mutex> lock(w->state->mutex);
    w->state->finished.push_back(w);
  }
  uv_async_send(&w->state->async);
  return nullptr;
}

void UpdateRef(EnvState* s) {
  // A pending wait keeps the process alive, like a pending socket read.
  if (s->pending.empty())
    uv_unref(reinterpret_cast<uv_handle_t*>(&s->async));
  else
    uv_ref(reinterpret_cast<uv_handle_t*>(&s->async));
}

void OnFinished(uv_async_t* async) {
  EnvState* s = static_cast<EnvState*>(async->data);
  std::vector<Waiter*> done;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    done.swap(s->finished);
  }
  if (done.empty()) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  for (Waiter* w : done) {
    pthread_join(w->thread, nullptr);
    s->pending.erase(w->id);
    Napi::Env e(env);
    Napi::Value value = w->result >= 0 ? w->call->Result(e, w->result)
                                       : Napi::Number::New(e, static_cast<double>(w->result));
    napi_value argv[] = {value};
    napi_value global;
    napi_get_global(env, &global);
    CallFromLoop(env, global, w->callback.Value(), 1, argv);
    delete w;
  }
  UpdateRef(s);
  napi_close_handle_scope(env, scope);
}

void Cancel(Waiter* w) {
  w->cancelled.store(true);
  pthread_kill(w->thread, WakeSignal());
}

// On environment teardown (process exit, worker termination): end every wait
// and join its thread before the loop and this state go away.
void Teardown(void* arg) {
  EnvState* s = static_cast<EnvState*>(arg);
  s->torn_down = true;
  for (auto& [id, w] : s->pending) {
    for (;;) {
      Cancel(w);
      struct timespec ts = TimespecAfter(CLOCK_REALTIME, 2 * 1000 * 1000);
      if (pthread_timedjoin_np(w->thread, nullptr, &ts) == 0) break;
    }
  }
  // The waiters are joined; their Waiter objects and this state are leaked on
  // purpose: the loop may never run the close callback that would free them.
  uv_close(reinterpret_cast<uv_handle_t*>(&s->async), nullptr);
}

// Teardown owns the state (see there); Node must not free it.
void KeepState(Napi::Env, EnvState*) {}

EnvState* StateFor(Napi::Env env) {
  EnvState* s = env.GetInstanceData<EnvState>();
  if (s) return s;
  InstallWakeSignal();
  s = new EnvState();
  s->env = env;
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_async_init(loop, &s->async, OnFinished);
  s->async.data = s;
  uv_unref(reinterpret_cast<uv_handle_t*>(&s->async));
  env.SetInstanceData<EnvState, KeepState>(s);
  napi_add_env_cleanup_hook(env, Teardown, s);
  return s;
}

// cancelWait(id): asks the wait to end. Idempotent, and a no-op for a wait
// that already finished. The caller repeats it until the callback runs: a
// signal that lands just before the thread enters its call is not seen.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  EnvState* s = StateFor(info.Env());
  auto it = s->pending.find(static_cast<uint32_t>(ArgInt(info, 0)));
  if (it != s->pending.end()) Cancel(it->second);
  return info.Env().Undefined();
}

Napi::Value PendingWaits(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(StateFor(info.Env())->pending.size()));
}

}  // namespace

uint32_t StartBlocking(Napi::Env env, std::unique_ptr<BlockingCall> call, Napi::Function callback,
                       Napi::Value keepAlive) {
  EnvState* s = StateFor(env);
  auto* w = new Waiter();
  w->id = s->next_id++;
  if (s->next_id == 0) s->next_id = 1;
  w->state = s;
  w->call = std::move(call);
  w->callback = Napi::Persistent(callback);
  if (!keepAlive.IsUndefined()) w->keep_alive = Napi::Reference<Napi::Value>::New(keepAlive, 1);

  // The thread starts with every signal blocked (it unblocks only the wake
  // signal), so process signals keep going to Node's own threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int err = pthread_create(&w->thread, &attr, WaiterMain, w);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    delete w;
    return 0;  // the caller reports EAGAIN
  }
  s->pending.emplace(w->id, w);
  UpdateRef(s);
  return w->id;
}

void RegisterWaiter(Napi::Env env, Napi::Object exports) {
  exports.Set("cancelWait", Napi::Function::New(env, CancelWait, "cancelWait"));
  exports.Set("pendingWaits", Napi::Function::New(env, PendingWaits, "pendingWaits"));
}

}  // namespace interprocess
