// libfaultline-preload.so: runs an unmodified program with faultline managing its anonymous
// memory (docs/design.md, "Programs under LD_PRELOAD"; docs/preload-memory-sources.md for why
// this mechanism).
//
// It interposes mmap, mmap64, munmap, mremap, madvise and posix_madvise through the PLT, and the
// mlock family (mlock, mlock2, munlock, mlockall, munlockall), which on managed memory pins pages,
// and the exec family and _exit, to write each program image's statistics (process_stats.h).
// A private or shared anonymous mapping of at least FAULTLINE_MIN_REGION bytes becomes a managed
// region (a shared one is mapped private: see Runtime::Adopt and docs/design.md for what fork then
// does); unmapping, moving, discarding and advising managed pages is reported to the runtime.
// fork() is followed through pthread_atfork. glibc's malloc maps its memory with internal calls
// that no PLT wrapper sees, so `faultline run` preloads jemalloc behind this library: jemalloc maps
// through the PLT.
//
// Rules of an interposer: the wrappers keep errno as the system call left it; before the runtime
// is up (including while it starts, when its own allocations map memory) and in a forked child,
// they only pass calls through, with raw system calls; and nothing here allocates through malloc,
// which may be the allocator whose memory is being managed.
// Both mmap and mmap64 are defined here: with 64-bit file offsets the headers would rename mmap.
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/internal.h"
#include "core/runtime.h"
#include "core/threads.h"
#include "faultline/faultline.h"
#include "preload/env_config.h"
#include "preload/process_stats.h"
#include "util/raw_memory.h"

namespace {

using faultline::kPageSize;
using faultline::Runtime;

std::atomic<Runtime*> g_runtime{nullptr};

// The runtime for a call of the program's; nullptr when calls are to pass through: before start,
// in a forked child, and on faultline's own threads.
Runtime* ProgramRuntime() {
  Runtime* runtime = g_runtime.load(std::memory_order_acquire);
  return runtime != nullptr && !faultline::OnLibraryThread() ? runtime : nullptr;
}
uint64_t g_min_region_bytes = faultline::kDefaultMinRegionBytes;

size_t RoundUpToPage(size_t length) { return (length + kPageSize - 1) & ~(kPageSize - 1); }

// One line on stderr without stdio (which may allocate).
void SayLine(const char* text) {
  size_t length = std::strlen(text);
  ssize_t ignored = write(STDERR_FILENO, "faultline: ", 11);
  ignored = write(STDERR_FILENO, text, length);
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
}

bool ShouldManage(size_t length, int flags, int fd) {
  if ((flags & MAP_ANONYMOUS) == 0 || fd != -1) return false;
  if (length < g_min_region_bytes) return false;
  // Huge pages, stacks (glibc maps thread stacks MAP_STACK), and memory the kernel populates or
  // locks at once stay the kernel's (README.md, "Running a program under faultline"). A thread's
  // stack must not be evicted while the thread holds the registry lock (taking a snapshot, cutting
  // a region): the fault would wait for the lock it holds.
  return (flags & (MAP_HUGETLB | MAP_GROWSDOWN | MAP_STACK | MAP_POPULATE | MAP_LOCKED)) == 0;
}

void PrepareFork() {
  if (Runtime* runtime = g_runtime.load(std::memory_order_acquire)) runtime->PrepareFork();
}
void ParentAfterFork() {
  if (Runtime* runtime = g_runtime.load(std::memory_order_acquire)) runtime->ParentAfterFork();
}
void ChildAfterFork() {
  Runtime* runtime = g_runtime.exchange(nullptr, std::memory_order_acq_rel);
  // The parent's runtime object is left as it is (its threads are gone): the child only needs
  // its pages, and then runs without faultline.
  if (runtime != nullptr) runtime->ChildAfterFork();
  faultline::ProcessStatsAfterFork();
}

// Before main(): read the environment, start the runtime, or stop the program with one line.
__attribute__((constructor)) void StartFaultline() {
  // Registered before the runtime exists, so that fork() is followed from the first region on.
  pthread_atfork(PrepareFork, ParentAfterFork, ChildAfterFork);
  uint64_t total_ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * kPageSize;
  faultline::PreloadConfig config;
  char error[512];
  auto lookup = [](const char* name) -> const char* { return std::getenv(name); };
  if (!faultline::ReadPreloadConfig(lookup, total_ram, &config, error, sizeof(error))) {
    SayLine(error);
    _exit(2);
  }
  g_min_region_bytes = config.min_region_bytes;
  fl_config c;
  fl_config_init(&c);
  c.memory_limit = config.limit_bytes;
  c.swap_path = config.swap_dir;
  absl::StatusOr<std::unique_ptr<Runtime>> runtime = Runtime::Create(c);
  if (!runtime.ok()) {
    std::snprintf(error, sizeof(error), "cannot start: %s",
                  std::string(runtime.status().message()).c_str());
    SayLine(error);
    _exit(2);
  }
  Runtime* started = runtime->release();
  faultline::SetProcessStatsRuntime(started);
  faultline::StartProcessStats(config.stats_path);
  faultline::ServeApiFrom(started);  // the fl_* API, for programs that ask for more (snapshots)
  g_runtime.store(started, std::memory_order_release);
}

void* MapAndAdopt(void* address, size_t length, int prot, int flags, int fd, off_t offset) {
  const int saved_errno = errno;
  Runtime* runtime = ProgramRuntime();
  const bool manage = runtime != nullptr && ShouldManage(length, flags, fd);
  const bool shared_anonymous = manage && (flags & MAP_SHARED) != 0;
  int map_flags = flags;
  if (shared_anonymous) map_flags = (flags & ~MAP_SHARED) | MAP_PRIVATE;
  if (manage) map_flags |= MAP_NORESERVE;
  if (runtime != nullptr && (flags & MAP_FIXED) != 0 && length > 0) {
    runtime->PrepareUnmap(address, RoundUpToPage(length));  // the new mapping replaces these
  }
  void* result = faultline::RawMmap(address, length, prot, map_flags, fd, offset);
  if (result == MAP_FAILED || runtime == nullptr) return result;
  if (manage) {
    int rc = runtime->Adopt(result, RoundUpToPage(length), prot, shared_anonymous);
    if (rc != 0) {
      // Once, and without allocating: this may run inside the program's allocator.
      static std::atomic<bool> said{false};
      if (!said.exchange(true)) {
        SayLine(rc == -ENOMEM || rc == -EPERM
                    ? "a mapping could not be managed (locking it failed: raise RLIMIT_MEMLOCK or "
                      "grant CAP_IPC_LOCK); such mappings stay the kernel's"
                    : "a mapping could not be managed; such mappings stay the kernel's");
      }
    }
  } else if ((flags & MAP_FIXED) != 0) {
    // A mapping made over managed memory replaces those pages.
    runtime->Forget(result, RoundUpToPage(length));
  }
  errno = saved_errno;
  return result;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* mmap(void* address, size_t length, int prot, int flags,
                                                  int fd, off_t offset) {
  return MapAndAdopt(address, length, prot, flags, fd, offset);
}

__attribute__((visibility("default"))) void* mmap64(void* address, size_t length, int prot,
                                                    int flags, int fd, off64_t offset) {
  return MapAndAdopt(address, length, prot, flags, fd, offset);
}

__attribute__((visibility("default"))) int munmap(void* address, size_t length) {
  const int saved_errno = errno;
  Runtime* runtime = ProgramRuntime();
  if (runtime == nullptr || length == 0 || !runtime->Overlaps(address, RoundUpToPage(length))) {
    return faultline::RawMunmap(address, length);
  }
  // Unmapped and forgotten in one step: another thread's mmap must not get this address, be
  // adopted, and then be forgotten here.
  if (!runtime->ReplaceMappings(address, RoundUpToPage(length),
                                [&] { return faultline::RawMunmap(address, length) == 0; })) {
    return -1;
  }
  errno = saved_errno;
  return 0;
}

__attribute__((visibility("default"))) void* mremap(void* old_address, size_t old_size,
                                                    size_t new_size, int flags, ...) {
  void* new_address = nullptr;
  if ((flags & MREMAP_FIXED) != 0) {
    va_list args;
    va_start(args, flags);
    new_address = va_arg(args, void*);
    va_end(args);
  }
  const int saved_errno = errno;
  Runtime* runtime = ProgramRuntime();
  if (runtime == nullptr || reinterpret_cast<uintptr_t>(old_address) % kPageSize != 0 ||
      !runtime->Overlaps(old_address, RoundUpToPage(old_size == 0 ? 1 : old_size))) {
    void* result = MAP_FAILED;
    auto move = [&] {
      result = faultline::RawMremap(old_address, old_size, new_size, flags, new_address);
      return result != MAP_FAILED;
    };
    if (runtime != nullptr && (flags & MREMAP_FIXED) != 0 && new_size > 0 &&
        reinterpret_cast<uintptr_t>(new_address) % kPageSize == 0) {
      runtime->ReplaceMappings(new_address, RoundUpToPage(new_size), move);  // the target's
    } else {
      move();
    }
    if (result != MAP_FAILED) errno = saved_errno;
    return result;
  }
  void* result = runtime->Remap(old_address, old_size, new_size, flags, new_address);
  if (result != MAP_FAILED) errno = saved_errno;
  return result;
}

__attribute__((visibility("default"))) int madvise(void* address, size_t length, int advice) {
  const int saved_errno = errno;
  Runtime* runtime = g_runtime.load(std::memory_order_acquire);
  if (runtime == nullptr || reinterpret_cast<uintptr_t>(address) % kPageSize != 0 || length == 0 ||
      !runtime->Overlaps(address, RoundUpToPage(length))) {
    return faultline::RawMadvise(address, length, advice);
  }
  int rc = runtime->Advise(address, RoundUpToPage(length), advice);
  if (rc != 0) {
    errno = -rc;
    return -1;
  }
  errno = saved_errno;
  return 0;
}

// posix_madvise reaches the kernel without the PLT's madvise: the same advice, POSIX's error
// convention (the error number returned, errno untouched). glibc ignores POSIX_MADV_DONTNEED
// (POSIX does not allow it to discard), and so does this.
__attribute__((visibility("default"))) int posix_madvise(void* address, size_t length, int advice) {
  if (advice == POSIX_MADV_DONTNEED) return 0;
  const int saved_errno = errno;
  int rc = madvise(address, length, advice);  // POSIX_MADV_* have the MADV_* values
  int error = rc == 0 ? 0 : errno;
  errno = saved_errno;
  return error;
}

}  // extern "C"

namespace {

// The mlock family (issue 4): on managed memory a lock is a faultline pin (never evicted; the
// kernel's own lock on regions, MLOCK_ONFAULT, stays as faultline set it); elsewhere it is the
// kernel's. Errors are the kernel's: ENOMEM over the pin budget, with the managed parts unchanged.

// Applies `managed` to the managed parts of [begin, end) and `kernel` to the rest; the managed
// parts first, so that a refused pin leaves everything as it was. Returns 0 or -1 with errno.
template <typename Managed, typename Kernel>
int SplitByManagement(Runtime* runtime, uintptr_t begin, uintptr_t end, Managed managed,
                      Kernel kernel) {
  for (uintptr_t at = begin, part_begin, part_end;
       at < end && runtime->FirstManagedPart(at, end, &part_begin, &part_end); at = part_end) {
    int rc = managed(reinterpret_cast<void*>(part_begin), part_end - part_begin);
    if (rc != 0) {
      errno = -rc;
      return -1;
    }
  }
  for (uintptr_t at = begin, part_begin = end, part_end = end; at < end; at = part_end) {
    if (!runtime->FirstManagedPart(at, end, &part_begin, &part_end)) part_begin = part_end = end;
    if (part_begin > at && kernel(reinterpret_cast<void*>(at), part_begin - at) != 0) return -1;
  }
  return 0;
}

// The page-aligned range that mlock(2) and munlock(2) act on.
void LockRange(const void* address, size_t length, uintptr_t* begin, uintptr_t* end) {
  *begin = reinterpret_cast<uintptr_t>(address) & ~(uintptr_t{kPageSize} - 1);
  *end = RoundUpToPage(reinterpret_cast<uintptr_t>(address) + length);
}

int LockCall(const void* address, size_t length, bool on_fault) {
  Runtime* runtime = ProgramRuntime();
  auto kernel = [on_fault](void* at, size_t bytes) {
    return static_cast<int>(on_fault ? syscall(SYS_mlock2, at, bytes, MLOCK_ONFAULT)
                                     : syscall(SYS_mlock, at, bytes));
  };
  if (runtime == nullptr || length == 0) {
    return kernel(const_cast<void*>(address), length);
  }
  const int saved_errno = errno;
  uintptr_t begin, end;
  LockRange(address, length, &begin, &end);
  auto pin = [runtime, on_fault](void* at, size_t bytes) {
    return runtime->Pin(at, bytes, on_fault);
  };
  if (SplitByManagement(runtime, begin, end, pin, kernel) != 0) return -1;
  errno = saved_errno;
  return 0;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int mlock(const void* address, size_t length) {
  return LockCall(address, length, false);
}

__attribute__((visibility("default"))) int mlock2(const void* address, size_t length,
                                                  unsigned int flags) {
  if ((flags & ~unsigned{MLOCK_ONFAULT}) != 0) {
    errno = EINVAL;
    return -1;
  }
  return LockCall(address, length, flags != 0);
}

__attribute__((visibility("default"))) int munlock(const void* address, size_t length) {
  Runtime* runtime = ProgramRuntime();
  auto kernel = [](void* at, size_t bytes) {
    return static_cast<int>(syscall(SYS_munlock, at, bytes));
  };
  if (runtime == nullptr || length == 0) return kernel(const_cast<void*>(address), length);
  const int saved_errno = errno;
  uintptr_t begin, end;
  LockRange(address, length, &begin, &end);
  auto unpin = [runtime](void* at, size_t bytes) { return runtime->Unpin(at, bytes); };
  if (SplitByManagement(runtime, begin, end, unpin, kernel) != 0) return -1;
  errno = saved_errno;
  return 0;
}

__attribute__((visibility("default"))) int mlockall(int flags) {
  Runtime* runtime = ProgramRuntime();
  const int known = MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT;
  if (runtime == nullptr || flags == 0 || (flags & ~known) != 0 ||
      (flags & (MCL_CURRENT | MCL_FUTURE)) == 0) {
    return static_cast<int>(syscall(SYS_mlockall, flags));
  }
  const int saved_errno = errno;
  const bool on_fault = (flags & MCL_ONFAULT) != 0;
  if ((flags & MCL_CURRENT) != 0) {
    int rc = runtime->PinAll(on_fault);
    if (rc != 0) {
      errno = -rc;
      return -1;
    }
  }
  // The kernel's part, on fault: without MCL_ONFAULT it would fault in every page of every
  // region at once, far past the limit. (Unmanaged memory is then locked as it is touched.)
  if (syscall(SYS_mlockall, flags | MCL_ONFAULT) != 0) return -1;
  if ((flags & MCL_FUTURE) != 0) runtime->PinFuture(true, on_fault);
  errno = saved_errno;
  return 0;
}

__attribute__((visibility("default"))) int munlockall(void) {
  Runtime* runtime = ProgramRuntime();
  if (syscall(SYS_munlockall) != 0) return -1;
  if (runtime != nullptr) {
    // The kernel has unlocked faultline's regions too; they must stay locked (Runtime::Map).
    runtime->RelockRegions();
    runtime->UnpinAll();
    runtime->PinFuture(false, false);
  }
  return 0;
}

}  // extern "C"
