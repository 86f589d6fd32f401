// The C API (include/faultline/faultline.h) over the process's one Runtime. The runtime pointer is
// guarded by a reader-writer lock: fl_init/fl_shutdown write it, every other call reads it, so a
// shutdown waits for calls in progress and a call never sees a half-built runtime.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "api/internal.h"
#include "core/runtime.h"
#include "faultline/faultline.h"
#include "util/errno_name.h"
#include "util/status.h"

namespace faultline {
namespace {

absl::Mutex g_mutex(absl::kConstInit);
Runtime* g_runtime ABSL_GUARDED_BY(g_mutex) = nullptr;
// Set when g_runtime is the LD_PRELOAD library's (ServeApiFrom): it is not this API's to shut
// down, and it does not serve the process's forked children, which have no runtime.
bool g_borrowed ABSL_GUARDED_BY(g_mutex) = false;
pid_t g_borrowed_by ABSL_GUARDED_BY(g_mutex) = 0;

// The runtime a call uses, or nullptr when there is none in this process.
Runtime* Current() ABSL_SHARED_LOCKS_REQUIRED(g_mutex) {
  if (g_borrowed && getpid() != g_borrowed_by) return nullptr;
  return g_runtime;
}

thread_local char t_last_error[512];

int Fail(const absl::Status& status) {
  std::snprintf(t_last_error, sizeof(t_last_error), "%s", std::string(status.message()).c_str());
  return -ErrnoOf(status);
}

int NotRunning(const char* call) {
  std::snprintf(t_last_error, sizeof(t_last_error), "%s: faultline is not initialised (fl_init)",
                call);
  return -ENXIO;
}

}  // namespace
}  // namespace faultline

using faultline::g_mutex;
using faultline::Current;
using faultline::g_borrowed;
using faultline::g_runtime;

extern "C" {

void fl_config_init(fl_config* config) {
  *config = fl_config{};
  config->log_level = -1;
}

int fl_init(const fl_config* config) {
  if (config == nullptr) {
    return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_init", "config is NULL"));
  }
  absl::MutexLock lock(&g_mutex);
  if (g_runtime != nullptr) {
    return faultline::Fail(faultline::ErrnoError(
        EALREADY, "fl_init",
        g_borrowed ? "the process runs under LD_PRELOAD'ed faultline (faultline run)"
                   : "already initialised"));
  }
  auto runtime = faultline::Runtime::Create(*config);
  if (!runtime.ok()) return faultline::Fail(runtime.status());
  g_runtime = runtime->release();
  return 0;
}

int fl_shutdown(void) {
  absl::MutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_shutdown");
  if (g_borrowed) {
    return faultline::Fail(faultline::ErrnoError(
        EBUSY, "fl_shutdown", "the runtime is LD_PRELOAD'ed faultline's (faultline run)"));
  }
  delete g_runtime;
  g_runtime = nullptr;
  return 0;
}

int fl_map(size_t length, void** addr) { return fl_map_flags(length, 0, addr); }

int fl_map_flags(size_t length, unsigned flags, void** addr) {
  if (addr == nullptr) {
    return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_map", "addr is NULL"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_map");
  auto mapped = Current()->Map(length, flags);
  if (!mapped.ok()) return faultline::Fail(mapped.status());
  *addr = *mapped;
  return 0;
}

int fl_unmap(void* addr, size_t length) {
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_unmap");
  absl::Status status = Current()->Unmap(addr, length);
  return status.ok() ? 0 : faultline::Fail(status);
}

int fl_pin(void* addr, size_t length, unsigned flags) {
  if ((flags & ~unsigned{FL_PIN_ONFAULT}) != 0) {
    return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_pin", "unknown flags"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_pin");
  int rc = Current()->Pin(addr, length, (flags & FL_PIN_ONFAULT) != 0);
  if (rc == -EINVAL) {
    return faultline::Fail(faultline::ErrnoError(
        EINVAL, "fl_pin", "the range must be page-aligned, non-empty and inside regions"));
  }
  if (rc == -ENOMEM) {
    return faultline::Fail(faultline::ErrnoError(
        ENOMEM, "fl_pin", "the pages would exceed fl_config.max_pinned_pages; nothing pinned"));
  }
  return rc == 0 ? 0 : faultline::Fail(faultline::ErrnoError(-rc, "fl_pin"));
}

int fl_unpin(void* addr, size_t length) {
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_unpin");
  int rc = Current()->Unpin(addr, length);
  if (rc == -EINVAL) {
    return faultline::Fail(faultline::ErrnoError(
        EINVAL, "fl_unpin", "the range must be page-aligned, non-empty and inside regions"));
  }
  return rc == 0 ? 0 : faultline::Fail(faultline::ErrnoError(-rc, "fl_unpin"));
}

namespace {
// Whether [addr, addr + length) is page-aligned, non-empty and made only of regions' pages.
bool IsManagedRange(const faultline::Runtime& runtime, void* addr, size_t length) {
  uintptr_t begin = reinterpret_cast<uintptr_t>(addr);
  if (begin % faultline::kPageSize != 0 || length == 0 || length % faultline::kPageSize != 0) {
    return false;
  }
  uintptr_t end = begin + length;
  for (uintptr_t at = begin, part_begin, part_end; at < end; at = part_end) {
    if (!runtime.FirstManagedPart(at, end, &part_begin, &part_end) || part_begin != at) {
      return false;
    }
  }
  return true;
}
}  // namespace

int fl_advise(void* addr, size_t length, int advice) {
  switch (advice) {
    case FL_ADVICE_NORMAL:
    case FL_ADVICE_RANDOM:
    case FL_ADVICE_SEQUENTIAL:
    case FL_ADVICE_WILLNEED:
    case FL_ADVICE_DONTNEED:
    case FL_ADVICE_FREE:
    case FL_ADVICE_COLD:
    case FL_ADVICE_PAGEOUT:
      break;
    default:
      return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_advise", "unknown advice"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_advise");
  if (!IsManagedRange(*Current(), addr, length)) {
    return faultline::Fail(faultline::ErrnoError(
        EINVAL, "fl_advise", "the range must be page-aligned, non-empty and inside regions"));
  }
  int rc = Current()->Advise(addr, length, advice);
  return rc == 0 ? 0 : faultline::Fail(faultline::ErrnoError(-rc, "fl_advise"));
}

int fl_prefetch(void* addr, size_t length, int wait) {
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_prefetch");
  if (!IsManagedRange(*Current(), addr, length)) {
    return faultline::Fail(faultline::ErrnoError(
        EINVAL, "fl_prefetch", "the range must be page-aligned, non-empty and inside regions"));
  }
  int rc = Current()->Prefetch(addr, length, wait != 0);
  return rc == 0 ? 0 : faultline::Fail(faultline::ErrnoError(-rc, "fl_prefetch"));
}

int fl_get_stats_sized(fl_stats* stats, size_t size) {
  if (stats == nullptr) {
    return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_get_stats", "stats is NULL"));
  }
  if (size < FL_STATS_SIZE_V0_1 || size % sizeof(uint64_t) != 0) {
    return faultline::Fail(faultline::ErrnoError(
        EINVAL, "fl_get_stats",
        "size " + std::to_string(size) + " is not the size of any version of fl_stats"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_get_stats");
  fl_stats all;
  Current()->GetStats(&all);
  const size_t known = std::min(size, sizeof(all));
  std::memcpy(stats, &all, known);
  std::memset(reinterpret_cast<char*>(stats) + known, 0, size - known);
  return 0;
}

// For programs built against a header without the fl_get_stats macro (faultline.h, 0.1).
int(fl_get_stats)(fl_stats* stats) { return fl_get_stats_sized(stats, FL_STATS_SIZE_V0_1); }

}  // extern "C"

// The handle fl_snapshot_create returns: the snapshot's read-only mapping, which names it.
struct fl_snapshot {
  void* data;
  size_t length;
};

extern "C" {

int fl_snapshot_create(void* addr, size_t length, fl_snapshot** snapshot) {
  if (snapshot == nullptr) {
    return faultline::Fail(faultline::ErrnoError(EINVAL, "fl_snapshot_create", "snapshot is NULL"));
  }
  auto handle = std::unique_ptr<fl_snapshot>(new (std::nothrow) fl_snapshot{nullptr, length});
  if (handle == nullptr) {
    return faultline::Fail(faultline::ErrnoError(ENOMEM, "fl_snapshot_create"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_snapshot_create");
  absl::StatusOr<void*> data = Current()->TakeSnapshot(addr, length);
  if (!data.ok()) return faultline::Fail(data.status());
  handle->data = *data;
  *snapshot = handle.release();
  return 0;
}

const void* fl_snapshot_data(const fl_snapshot* snapshot) {
  return snapshot != nullptr ? snapshot->data : nullptr;
}

size_t fl_snapshot_length(const fl_snapshot* snapshot) {
  return snapshot != nullptr ? snapshot->length : 0;
}

int fl_snapshot_read(const fl_snapshot* snapshot, size_t offset, void* buf, size_t length) {
  if (snapshot == nullptr || (buf == nullptr && length > 0)) {
    return faultline::Fail(
        faultline::ErrnoError(EINVAL, "fl_snapshot_read", "snapshot or buf is NULL"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_snapshot_read");
  absl::Status status = Current()->ReadSnapshot(snapshot->data, offset, buf, length);
  return status.ok() ? 0 : faultline::Fail(status);
}

int fl_snapshot_save(const fl_snapshot* snapshot, const char* path) {
  if (snapshot == nullptr || path == nullptr) {
    return faultline::Fail(
        faultline::ErrnoError(EINVAL, "fl_snapshot_save", "snapshot or path is NULL"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_snapshot_save");
  absl::Status status = Current()->SaveSnapshot(snapshot->data, path);
  return status.ok() ? 0 : faultline::Fail(status);
}

int fl_snapshot_open(const char* path, void** addr, size_t* length) {
  if (path == nullptr || addr == nullptr || length == nullptr) {
    return faultline::Fail(
        faultline::ErrnoError(EINVAL, "fl_snapshot_open", "path, addr or length is NULL"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_snapshot_open");
  absl::StatusOr<void*> opened = Current()->OpenSnapshotFile(path, length);
  if (!opened.ok()) return faultline::Fail(opened.status());
  *addr = *opened;
  return 0;
}

int fl_snapshot_release(fl_snapshot* snapshot) {
  if (snapshot == nullptr) {
    return faultline::Fail(
        faultline::ErrnoError(EINVAL, "fl_snapshot_release", "snapshot is NULL"));
  }
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return faultline::NotRunning("fl_snapshot_release");
  absl::Status status = Current()->ReleaseSnapshot(snapshot->data);
  if (!status.ok()) return faultline::Fail(status);
  delete snapshot;
  return 0;
}

const char* fl_strerror(int error) {
  return error == 0 ? "Success" : faultline::ErrnoDescription(error);
}

const char* fl_last_error(void) { return faultline::t_last_error; }

}  // extern "C"

namespace faultline {

void ServeApiFrom(Runtime* runtime) {
  absl::MutexLock lock(&g_mutex);
  g_runtime = runtime;
  g_borrowed = true;
  g_borrowed_by = getpid();
}

absl::StatusOr<Runtime::PageInfo> InspectManagedPage(const void* address) {
  absl::ReaderMutexLock lock(&g_mutex);
  if (Current() == nullptr) return ErrnoError(ENXIO, "InspectManagedPage", "not running");
  return Current()->InspectPage(address);
}

int ManagedSwapFd() {
  absl::ReaderMutexLock lock(&g_mutex);
  return Current() == nullptr ? -1 : Current()->swap_fd();
}

uint64_t ManagedSwapOffset(uint64_t slot) {
  absl::ReaderMutexLock lock(&g_mutex);
  return Current() == nullptr ? 0 : Current()->SwapOffsetOfSlot(slot);
}

}  // namespace faultline
