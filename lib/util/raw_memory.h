// Memory that faultline maps for itself, with system calls that bypass the PLT.
//
// Under LD_PRELOAD the library's own `mmap` is the interposer (lib/preload/): a call to mmap()
// from inside faultline would reach it and could hand faultline's own buffers to faultline's
// pager. A fault-handler thread touching memory that only it can page in would wait for itself.
// So everything faultline maps for its own use goes through these, and everything faultline's
// threads touch after start-up lives in such memory (InternalHeap, util/internal_heap.h).
// Each returns what the system call returns; on failure errno is set, as libc would.
#ifndef FAULTLINE_LIB_UTIL_RAW_MEMORY_H_
#define FAULTLINE_LIB_UTIL_RAW_MEMORY_H_

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24  // Linux 5.18; Debian 12's headers predate it
#endif

namespace faultline {

inline void* RawMmap(void* address, size_t length, int prot, int flags, int fd, off_t offset) {
  long rc = syscall(SYS_mmap, address, length, prot, flags, fd, offset);
  return rc == -1 ? MAP_FAILED : reinterpret_cast<void*>(rc);
}
inline int RawMunmap(void* address, size_t length) {
  return static_cast<int>(syscall(SYS_munmap, address, length));
}
inline void* RawMremap(void* old_address, size_t old_size, size_t new_size, int flags,
                       void* new_address) {
  long rc = syscall(SYS_mremap, old_address, old_size, new_size, flags, new_address);
  return rc == -1 ? MAP_FAILED : reinterpret_cast<void*>(rc);
}
inline int RawMadvise(void* address, size_t length, int advice) {
  return static_cast<int>(syscall(SYS_madvise, address, length, advice));
}
// faultline's own locks on its regions and buffers (the interposer turns the program's mlock
// calls on managed memory into pins).
inline int RawMlock2(void* address, size_t length, unsigned flags) {
  return static_cast<int>(syscall(SYS_mlock2, address, length, flags));
}
inline int RawMunlock(void* address, size_t length) {
  return static_cast<int>(syscall(SYS_munlock, address, length));
}
// Private, zero-filled, read-write memory for faultline's own use; MAP_FAILED on failure.
inline void* RawAnonymous(size_t length) {
  return RawMmap(nullptr, length, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_RAW_MEMORY_H_
