// Semaphores: POSIX named (sem_open) and System V sets (semget/semop/semctl).
#include "waiter.h"

#include <fcntl.h>
#include <semaphore.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

#include <climits>

#include <vector>

namespace interprocess {

namespace {

// ---- POSIX named semaphores ----------------------------------------------
//
// A sem_t* from sem_open points into a mapping that sem_close removes, so the
// handle guards it: no call after close, no unmapping while a wait thread
// uses it (the wait keeps the JavaScript handle, hence this struct, alive).
// A close that finds waits still running is carried out by the last of them
// to end: their callbacks run before their threads' calls are destroyed, so
// JavaScript reacting to a finished wait (closing the handle it waited on)
// always meets a wait still counted here.

struct NamedSem {
  sem_t* sem = nullptr;
  bool closed = false;  // JavaScript thread only
  int waits = 0;        // JavaScript thread only
};

void FinalizeSem(Napi::Env, NamedSem* s) {
  if (s->sem) sem_close(s->sem);
  delete s;
}

// The handle's semaphore, or nullptr once close() was called.
sem_t* OpenSem(NamedSem* s) { return s->closed ? nullptr : s->sem; }

NamedSem* ArgSem(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "not a semaphore handle");
  return info[i].As<Napi::External<NamedSem>>().Data();
}

Napi::Value SemOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0);
  int oflag = static_cast<int>(ArgInt(info, 1));
  mode_t mode = static_cast<mode_t>(ArgInt(info, 2));
  unsigned value = static_cast<unsigned>(ArgInt(info, 3));
  sem_t* sem = sem_open(name.c_str(), oflag, mode, value);
  if (sem == SEM_FAILED) return Errno(env, errno);
  auto* s = new NamedSem();
  s->sem = sem;
  return Napi::External<NamedSem>::New(env, s, FinalizeSem);
}

// semClose(handle): sem_close now, or when the last pending wait ends.
Napi::Value SemClose(const Napi::CallbackInfo& info) {
  NamedSem* s = ArgSem(info, 0);
  if (s->closed) return Errno(info.Env(), EBADF);
  s->closed = true;
  if (s->waits > 0) return Napi::Number::New(info.Env(), 0);
  int r = sem_close(s->sem);
  s->sem = nullptr;
  return SyscallResult(info.Env(), r);
}

Napi::Value SemUnlink(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  return SyscallResult(info.Env(), sem_unlink(name.c_str()));
}

Napi::Value SemPost(const Napi::CallbackInfo& info) {
  sem_t* sem = OpenSem(ArgSem(info, 0));
  if (!sem) return Errno(info.Env(), EBADF);
  return SyscallResult(info.Env(), sem_post(sem));
}

Napi::Value SemTryWait(const Napi::CallbackInfo& info) {
  sem_t* sem = OpenSem(ArgSem(info, 0));
  if (!sem) return Errno(info.Env(), EBADF);
  return SyscallResult(info.Env(), sem_trywait(sem));
}

Napi::Value SemGetValue(const Napi::CallbackInfo& info) {
  sem_t* sem = OpenSem(ArgSem(info, 0));
  if (!sem) return Errno(info.Env(), EBADF);
  int value;
  if (sem_getvalue(sem, &value) != 0) return Errno(info.Env(), errno);
  return Napi::Number::New(info.Env(), value);
}

// semWaitSync(handle, timeoutMs): blocks this thread; timeoutMs < 0 waits forever.
Napi::Value SemWaitSync(const Napi::CallbackInfo& info) {
  sem_t* sem = OpenSem(ArgSem(info, 0));
  int64_t ms = ArgInt(info, 1);
  if (!sem) return Errno(info.Env(), EBADF);
  int r;
  if (ms < 0) {
    do r = sem_wait(sem); while (r != 0 && errno == EINTR);
  } else {
    // CLOCK_MONOTONIC: a wall-clock change must not stretch or cut the wait.
    struct timespec deadline = TimespecAfter(CLOCK_MONOTONIC, ms * 1000000LL);
    do r = sem_clockwait(sem, CLOCK_MONOTONIC, &deadline); while (r != 0 && errno == EINTR);
  }
  return SyscallResult(info.Env(), r);
}

class SemWaitCall : public BlockingCall {
 public:
  explicit SemWaitCall(NamedSem* s) : s_(s) {}
  // Runs on the JavaScript thread, after the wait's callback.
  ~SemWaitCall() override {
    if (--s_->waits == 0 && s_->closed && s_->sem) {
      sem_close(s_->sem);
      s_->sem = nullptr;
    }
  }
  long long Run() override { return sem_wait(s_->sem) == 0 ? 0 : -errno; }

 private:
  NamedSem* s_;
};

// semWait(handle, callback) -> wait id
Napi::Value SemWait(const Napi::CallbackInfo& info) {
  NamedSem* s = ArgSem(info, 0);
  if (!OpenSem(s)) return Errno(info.Env(), EBADF);
  s->waits++;
  uint32_t id = StartBlocking(info.Env(), std::make_unique<SemWaitCall>(s), info[1].As<Napi::Function>(), info[0]);
  return Napi::Number::New(info.Env(), id);
}

// ---- System V semaphore sets -----------------------------------------------

union semun {
  int val;
  struct semid_ds* buf;
  unsigned short* array;
};

// Operations arrive as a flat Int32Array: [num, op, flags, num, op, flags, ...].
std::vector<struct sembuf> ArgOps(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "operations must be an Int32Array");
  auto a = info[i].As<Napi::Int32Array>();
  std::vector<struct sembuf> ops(a.ElementLength() / 3);
  for (size_t k = 0; k < ops.size(); k++) {
    ops[k].sem_num = static_cast<unsigned short>(a[3 * k]);
    ops[k].sem_op = static_cast<short>(a[3 * k + 1]);
    ops[k].sem_flg = static_cast<short>(a[3 * k + 2]);
  }
  return ops;
}

Napi::Value Semget(const Napi::CallbackInfo& info) {
  key_t key = static_cast<key_t>(ArgInt(info, 0));
  int nsems = static_cast<int>(ArgInt(info, 1));
  int flags = static_cast<int>(ArgInt(info, 2));
  return SyscallResult(info.Env(), semget(key, nsems, flags));
}

// semop(id, ops) on this thread (ops carry IPC_NOWAIT for try forms), or with
// a timeout (semtimedop) when timeoutMs >= 0. semop is never restarted after
// a signal handler runs, whatever SA_RESTART says: a signal Node handles
// (SIGCHLD, SIGUSR2...) must not end the wait, so EINTR is retried, with what
// is left of the timeout.
Napi::Value Semop(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  auto ops = ArgOps(info, 1);
  int64_t ms = ArgInt(info, 2);
  int r;
  if (ms < 0) {
    do r = semop(id, ops.data(), ops.size()); while (r != 0 && errno == EINTR);
  } else {
    struct timespec deadline = TimespecAfter(CLOCK_MONOTONIC, ms * 1000000LL);
    struct timespec t = {static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
    for (;;) {
      r = semtimedop(id, ops.data(), ops.size(), &t);
      if (r == 0 || errno != EINTR) break;
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      t.tv_sec = deadline.tv_sec - now.tv_sec;
      t.tv_nsec = deadline.tv_nsec - now.tv_nsec;
      if (t.tv_nsec < 0) {
        t.tv_sec--;
        t.tv_nsec += 1000000000;
      }
      if (t.tv_sec < 0) t.tv_sec = t.tv_nsec = 0;  // time is up: one last try
    }
  }
  return SyscallResult(info.Env(), r);
}

class SemopCall : public BlockingCall {
 public:
  SemopCall(int id, std::vector<struct sembuf> ops) : id_(id), ops_(std::move(ops)) {}
  long long Run() override { return semop(id_, ops_.data(), ops_.size()) == 0 ? 0 : -errno; }

 private:
  int id_;
  std::vector<struct sembuf> ops_;
};

// semopWait(id, ops, callback) -> wait id
Napi::Value SemopWait(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  auto ops = ArgOps(info, 1);
  uint32_t w = StartBlocking(info.Env(), std::make_unique<SemopCall>(id, std::move(ops)), info[2].As<Napi::Function>(), info.Env().Undefined());
  return Napi::Number::New(info.Env(), w);
}

// semctl(id, num, cmd[, value]) for the integer commands: GETVAL, SETVAL,
// GETNCNT, GETZCNT, GETPID, IPC_RMID.
Napi::Value SemctlInt(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  int num = static_cast<int>(ArgInt(info, 1));
  int cmd = static_cast<int>(ArgInt(info, 2));
  union semun arg;
  arg.val = info.Length() > 3 ? static_cast<int>(ArgInt(info, 3)) : 0;
  return SyscallResult(info.Env(), semctl(id, num, cmd, arg));
}

Napi::Value SemGetAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = static_cast<int>(ArgInt(info, 0));
  struct semid_ds ds;
  union semun arg;
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return Errno(env, errno);
  std::vector<unsigned short> values(ds.sem_nsems);
  arg.array = values.data();
  if (semctl(id, 0, GETALL, arg) != 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, values[i]));
  return out;
}

Napi::Value SemSetAll(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "values must be a Uint16Array");
  auto a = info[1].As<Napi::Uint16Array>();
  std::vector<unsigned short> values(a.Data(), a.Data() + a.ElementLength());
  union semun arg;
  arg.array = values.data();
  return SyscallResult(info.Env(), semctl(id, 0, SETALL, arg));
}

Napi::Value SemStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = static_cast<int>(ArgInt(info, 0));
  struct semid_ds ds;
  union semun arg;
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return Errno(env, errno);
  Napi::Object o = Napi::Object::New(env);
  SetIpcPerm(o, ds.sem_perm);
  o.Set("otime", Napi::Number::New(env, static_cast<double>(ds.sem_otime)));
  o.Set("ctime", Napi::Number::New(env, static_cast<double>(ds.sem_ctime)));
  o.Set("nsems", Napi::Number::New(env, static_cast<double>(ds.sem_nsems)));
  return o;
}

}  // namespace

void RegisterSem(Napi::Env env, Napi::Object exports) {
  exports.Set("semOpen", Napi::Function::New(env, SemOpen, "semOpen"));
  exports.Set("semClose", Napi::Function::New(env, SemClose, "semClose"));
  exports.Set("semUnlink", Napi::Function::New(env, SemUnlink, "semUnlink"));
  exports.Set("semPost", Napi::Function::New(env, SemPost, "semPost"));
  exports.Set("semTryWait", Napi::Function::New(env, SemTryWait, "semTryWait"));
  exports.Set("semGetValue", Napi::Function::New(env, SemGetValue, "semGetValue"));
  exports.Set("semWaitSync", Napi::Function::New(env, SemWaitSync, "semWaitSync"));
  exports.Set("semWait", Napi::Function::New(env, SemWait, "semWait"));
  exports.Set("semget", Napi::Function::New(env, Semget, "semget"));
  exports.Set("semop", Napi::Function::New(env, Semop, "semop"));
  exports.Set("semopWait", Napi::Function::New(env, SemopWait, "semopWait"));
  exports.Set("semctlInt", Napi::Function::New(env, SemctlInt, "semctlInt"));
  exports.Set("semGetAll", Napi::Function::New(env, SemGetAll, "semGetAll"));
  exports.Set("semSetAll", Napi::Function::New(env, SemSetAll, "semSetAll"));
  exports.Set("semStat", Napi::Function::New(env, SemStat, "semStat"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("SEM_UNDO", Napi::Number::New(env, SEM_UNDO));
  c.Set("GETVAL", Napi::Number::New(env, GETVAL));
  c.Set("SETVAL", Napi::Number::New(env, SETVAL));
  c.Set("GETNCNT", Napi::Number::New(env, GETNCNT));
  c.Set("GETZCNT", Napi::Number::New(env, GETZCNT));
  c.Set("GETPID", Napi::Number::New(env, GETPID));
  c.Set("IPC_RMID", Napi::Number::New(env, IPC_RMID));
  c.Set("SEM_VALUE_MAX", Napi::Number::New(env, SEM_VALUE_MAX));
  c.Set("SEMVMX", Napi::Number::New(env, 32767));
  exports.Set("semConstants", c);
}

}  // namespace interprocess
