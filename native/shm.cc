// Shared memory: POSIX (shm_open + mmap) and System V (shmget + shmat).
// Mappings are handed to JavaScript as SharedArrayBuffers that own them
// (see WrapMapping): nothing here ever unmaps memory a view can still reach.
#include "common.h"

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

namespace interprocess {

namespace {

Napi::Value ShmOpen(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  int oflag = static_cast<int>(ArgInt(info, 1)) | O_CLOEXEC;
  mode_t mode = static_cast<mode_t>(ArgInt(info, 2));
  return SyscallResult(info.Env(), shm_open(name.c_str(), oflag, mode));
}

Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0);
  return SyscallResult(info.Env(), shm_unlink(name.c_str()));
}

// Reserves the object's pages now (ENOSPC now), so that touching the memory
// later can never raise SIGBUS because /dev/shm ran out of space.
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info, 0));
  off_t length = static_cast<off_t>(ArgInt(info, 1));
  int err = posix_fallocate(fd, 0, length);  // returns the error, not errno
  return Napi::Number::New(info.Env(), -err);
}

bool ValidLength(int64_t length) {
  return length > 0 && static_cast<uint64_t>(length) <= MaxMappingLength();
}

// mmap(MAP_SHARED) of `length` bytes of fd. With `copyOnWrite` (an object
// opened read-only) the mapping is MAP_PRIVATE and writable: a write from
// JavaScript to a PROT_READ page would kill the process, so instead writes
// stay private to this process and never reach the object.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info, 0));
  int64_t length = ArgInt(info, 1);
  bool copy_on_write = ArgBool(info, 2);
  if (!ValidLength(length)) return Errno(env, EINVAL);
  void* addr = mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE,
                    copy_on_write ? MAP_PRIVATE : MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return Errno(env, errno);
  return WrapMapping(env, addr, static_cast<size_t>(length), MappingKind::kMmap);
}

Napi::Value Shmget(const Napi::CallbackInfo& info) {
  key_t key = static_cast<key_t>(ArgInt(info, 0));
  int64_t size = ArgInt(info, 1);
  int flags = static_cast<int>(ArgInt(info, 2));
  if (size < 0) return Errno(info.Env(), EINVAL);
  return SyscallResult(info.Env(), shmget(key, static_cast<size_t>(size), flags));
}

// shmat(id) read-write; the segment's size comes from IPC_STAT (it cannot
// change after creation). Read-only attach is not offered: a write through a
// SharedArrayBuffer to a SHM_RDONLY page would kill the process.
Napi::Value Shmat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = static_cast<int>(ArgInt(info, 0));
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return Errno(env, errno);
  if (!ValidLength(static_cast<int64_t>(ds.shm_segsz))) return Errno(env, EFBIG);
  void* addr = shmat(id, nullptr, 0);
  if (addr == reinterpret_cast<void*>(-1)) return Errno(env, errno);
  return WrapMapping(env, addr, ds.shm_segsz, MappingKind::kShmat);
}

Napi::Value ShmStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id = static_cast<int>(ArgInt(info, 0));
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return Errno(env, errno);
  Napi::Object o = Napi::Object::New(env);
  SetIpcPerm(o, ds.shm_perm);
  o.Set("size", Napi::Number::New(env, static_cast<double>(ds.shm_segsz)));
  o.Set("atime", Napi::Number::New(env, static_cast<double>(ds.shm_atime)));
  o.Set("dtime", Napi::Number::New(env, static_cast<double>(ds.shm_dtime)));
  o.Set("ctime", Napi::Number::New(env, static_cast<double>(ds.shm_ctime)));
  o.Set("cpid", Napi::Number::New(env, ds.shm_cpid));
  o.Set("lpid", Napi::Number::New(env, ds.shm_lpid));
  o.Set("nattch", Napi::Number::New(env, static_cast<double>(ds.shm_nattch)));
  return o;
}

Napi::Value ShmRemove(const Napi::CallbackInfo& info) {
  int id = static_cast<int>(ArgInt(info, 0));
  return SyscallResult(info.Env(), shmctl(id, IPC_RMID, nullptr));
}

}  // namespace

void RegisterShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen, "shmOpen"));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink, "shmUnlink"));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("shmget", Napi::Function::New(env, Shmget, "shmget"));
  exports.Set("shmat", Napi::Function::New(env, Shmat, "shmat"));
  exports.Set("shmStat", Napi::Function::New(env, ShmStat, "shmStat"));
  exports.Set("shmRemove", Napi::Function::New(env, ShmRemove, "shmRemove"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("IPC_CREAT", Napi::Number::New(env, IPC_CREAT));
  c.Set("IPC_EXCL", Napi::Number::New(env, IPC_EXCL));
  c.Set("IPC_NOWAIT", Napi::Number::New(env, IPC_NOWAIT));
  c.Set("IPC_PRIVATE", Napi::Number::New(env, IPC_PRIVATE));
  c.Set("SHMMIN", Napi::Number::New(env, 1));
  exports.Set("sysvConstants", c);
}

}  // namespace interprocess
