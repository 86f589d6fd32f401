// Region and RegionRegistry: the managed address ranges of a runtime.
//
// A Region is one fl_map() mapping: an anonymous private read-write VMA registered for MISSING and
// WP faults, and its PageTable. It is registered with the runtime's userfaultfd, whose faults
// fault-handler threads read, or, when self-paging, with the userfaultfd that turns its faults
// into SIGBUS on the faulting thread (core/self_paging.h). Every uffd operation on the region's
// pages goes to `uffd`: the kernel accepts them only from the uffd the range is registered with.
//
// Lifetime: regions are owned by the registry. Fault handlers and the evictor use a Region* only
// while holding a RegionRegistry::Reader; Remove() takes the write lock, so once it returns no
// thread still uses the region. I/O that outlives a Reader refers to its region by RegionId and
// looks it up again at completion: a region unmapped meanwhile is simply not found.
#ifndef FAULTLINE_LIB_CORE_REGION_REGISTRY_H_
#define FAULTLINE_LIB_CORE_REGION_REGISTRY_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/page_table.h"

namespace faultline {

using RegionId = uint32_t;

// Detects a forward sequential stream of faults and sizes the next fault's window: it doubles
// (up to the caller's maximum) when a fault lands where the previous window ended, and falls back
// to one page otherwise (the kernel's readahead does the same). Atomic because several
// fault-handler threads may fault in one region; relaxed: it is a heuristic, a lost update only
// changes one window size.
class SequentialWindow {
 public:
  uint32_t Next(uint64_t index, uint32_t max_pages) noexcept {
    uint32_t window = 1;
    if (index == next_.load(std::memory_order_relaxed)) {
      window = std::min(max_pages, 2 * window_.load(std::memory_order_relaxed));
    }
    window_.store(window, std::memory_order_relaxed);
    return window;
  }
  // Records that pages [index, index + count) were resolved by the last fault.
  void Resolved(uint64_t index, uint32_t count) noexcept {
    next_.store(index + count, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> next_{~uint64_t{0}};
  std::atomic<uint32_t> window_{1};
};

struct Region {
  Region(RegionId id, uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
         bool self_paging)
      : id(id), base(base), uffd(uffd), self_paging(self_paging), pages(pages, counters) {}

  char* PageAddress(uint64_t index) const {
    return reinterpret_cast<char*>(base + (index << kPageShift));
  }
  bool Contains(uintptr_t addr) const {
    return addr >= base && addr < base + (pages.size() << kPageShift);
  }

  const RegionId id;
  const uintptr_t base;
  const int uffd;
  const bool self_paging;
  PageTable pages;
  // Fault-around (zero fill) and readahead (swap-in) windows, each grown by a sequential stream of
  // faults in this region and reset by a fault elsewhere.
  SequentialWindow zero_fill_window;
  SequentialWindow swap_in_window;
};

class RegionRegistry {
 public:
  // Holds the registry's read lock: regions found through it stay valid until it is destroyed.
  class ABSL_SCOPED_LOCKABLE Reader {
   public:
    explicit Reader(const RegionRegistry& registry) ABSL_SHARED_LOCK_FUNCTION(registry.mutex_)
        : registry_(registry) {
      registry_.mutex_.ReaderLock();
    }
    ~Reader() ABSL_UNLOCK_FUNCTION() { registry_.mutex_.ReaderUnlock(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // The region containing `addr`, or nullptr.
    Region* Find(uintptr_t addr) const;
    Region* FindById(RegionId id) const;
    // The region with the smallest id > `after` (wrapping to the first); nullptr when empty.
    Region* NextAfter(RegionId after) const;

   private:
    const RegionRegistry& registry_;
  };

  // Adds a region of `pages` pages at `base`, registered with `uffd`; returns it. REQUIRES: no
  // overlap with a region.
  Region* Add(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd = -1,
              bool self_paging = false) ABSL_LOCKS_EXCLUDED(mutex_);
  // Removes and returns the region starting at `base` with exactly `pages` pages, or nullptr.
  // Waits for every Reader to finish.
  std::unique_ptr<Region> Remove(uintptr_t base, uint64_t pages) ABSL_LOCKS_EXCLUDED(mutex_);
  // Removes every region (shutdown).
  std::map<uintptr_t, std::unique_ptr<Region>> RemoveAll() ABSL_LOCKS_EXCLUDED(mutex_);

  uint64_t count() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  mutable absl::Mutex mutex_;
  std::map<uintptr_t, std::unique_ptr<Region>> by_base_ ABSL_GUARDED_BY(mutex_);
  std::map<RegionId, Region*> by_id_ ABSL_GUARDED_BY(mutex_);
  RegionId next_id_ ABSL_GUARDED_BY(mutex_) = 1;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_REGION_REGISTRY_H_
