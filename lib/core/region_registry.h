// Region and RegionRegistry: the managed address ranges of a runtime.
//
// A Region is one fl_map() mapping: an anonymous private read-write VMA registered for MISSING and
// WP faults, and its PageTable. It is registered with the runtime's userfaultfd, whose faults
// fault-handler threads read, or, when self-paging, with the userfaultfd that turns its faults
// into SIGBUS on the faulting thread (core/self_paging.h). Every uffd operation on the region's
// pages goes to `uffd`: the kernel accepts them only from the uffd the range is registered with.
//
// Lifetime: regions are owned by the registry. Fault handlers and the evictor use a Region* only
// while holding a RegionRegistry::Reader; Remove() and a Writer take the write lock, so once a
// region is taken out no thread still uses it. I/O that outlives a Reader refers to its region by
// RegionId and looks it up again at completion: a region unmapped meanwhile is simply not found.
// A region whose pages are rebuilt into new regions (the program unmapped or moved part of it)
// is first left without I/O in flight (Runtime), so no completion is lost with its old id.
//
// Fork view: besides the maps, every region is published in a flat array of atomic pointers that
// a child process reads right after fork() (Runtime::MaterializeInChild) without any lock, since
// the thread that held a lock may not exist in the child. A region is published before the
// program can see its pages at a new place and unpublished only after it has left the registry,
// and it is deleted only after that; so whatever instant the child's copy of memory was taken,
// every published pointer is a whole region and every managed page is covered by one of them
// (two published regions may cover the same pages for a moment: the child copes).
//
// Regions, their page tables and the maps' nodes live on the internal heap
// (util/internal_heap.h): faultline's threads must never touch memory that faultline manages.
#ifndef FAULTLINE_LIB_CORE_REGION_REGISTRY_H_
#define FAULTLINE_LIB_CORE_REGION_REGISTRY_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/page_table.h"
#include "util/internal_heap.h"

namespace faultline {

class SnapshotFileReader;

using RegionId = uint32_t;

// Most snapshots alive at once whose pages still wait for their source (a fault on a waited-for
// page visits each of them).
inline constexpr uint32_t kMaxLinkedSnapshots = 64;

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

struct Region : InternallyAllocated {
  Region(RegionId id, uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
         bool self_paging)
      : id(id), base(base), uffd(uffd), self_paging(self_paging), pages(pages, counters) {}

  char* PageAddress(uint64_t index) const {
    return reinterpret_cast<char*>(base + (index << kPageShift));
  }
  size_t bytes() const { return pages.size() << kPageShift; }
  uintptr_t end() const { return base + bytes(); }
  bool Contains(uintptr_t addr) const { return addr >= base && addr < end(); }

  const RegionId id;
  const uintptr_t base;
  const int uffd;
  const bool self_paging;
  PageTable pages;
  // Fault-around (zero fill) and readahead (swap-in) windows, each grown by a sequential stream of
  // faults in this region and reset by a fault elsewhere.
  SequentialWindow zero_fill_window;
  SequentialWindow swap_in_window;
  // Set while the region waits to be rebuilt (Runtime): the evictor leaves it alone, so that its
  // I/O in flight drains.
  std::atomic<bool> reshaping{false};
  // The program asked for MAP_SHARED|MAP_ANONYMOUS, with protection `prot`; managed as private
  // memory until the process forks (Runtime::ShareBeforeFork).
  bool shared_anonymous = false;
  int prot = 0;
  uint32_t view_slot = 0;  // its place in the registry's fork view
  // A snapshot's own region (core/runtime_snapshots.cc): mapped read-only, so its pages leave
  // memory by copy and discard instead of UFFDIO_MOVE (which needs a writable source).
  bool read_only = false;
  // For a snapshot's region while pages of it still wait for their source's bytes (SNAPSHOT bit):
  // page i is page snapshot_first + i of region snapshot_source. 0: none wait.
  RegionId snapshot_source = 0;
  uint64_t snapshot_first = 0;
  // For a region opened from a saved snapshot (and the regions cut from it, and snapshots of it):
  // the file its BACKED pages are read from. Owned by the Runtime.
  const SnapshotFileReader* backing = nullptr;
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
    // The region with the lowest base that overlaps [begin, end), or nullptr.
    Region* FirstOverlap(uintptr_t begin, uintptr_t end) const;
    // Calls fn(Region&) for every region overlapping [begin, end), in address order.
    template <typename Fn>
    void ForEachOverlap(uintptr_t begin, uintptr_t end, Fn fn) const {
      for (Region* r = FirstOverlap(begin, end); r != nullptr; r = FirstOverlap(r->end(), end)) {
        fn(*r);
      }
    }
    // Calls fn(Region& snapshot) for every snapshot region whose pages may wait for pages of
    // region `source` (Region::snapshot_source).
    template <typename Fn>
    void ForEachSnapshotOf(RegionId source, Fn fn) const {
      registry_.ForEachSnapshotOfLocked(source, fn);
    }

   private:
    const RegionRegistry& registry_;
  };

  // Holds the registry's write lock: for changing which regions exist. No Reader is active
  // meanwhile (fault handlers and the evictor wait).
  class ABSL_SCOPED_LOCKABLE Writer {
   public:
    explicit Writer(RegionRegistry& registry) ABSL_EXCLUSIVE_LOCK_FUNCTION(registry.mutex_)
        : registry_(registry) {
      registry_.mutex_.Lock();
    }
    ~Writer() ABSL_UNLOCK_FUNCTION() { registry_.mutex_.Unlock(); }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // The region with the lowest base that overlaps [begin, end), or nullptr.
    Region* FirstOverlap(uintptr_t begin, uintptr_t end) const;
    Region* FindById(RegionId id) const;
    // As Reader::ForEachOverlap; fn must not add or take regions.
    template <typename Fn>
    void ForEachOverlap(uintptr_t begin, uintptr_t end, Fn fn) const {
      for (Region* r = FirstOverlap(begin, end); r != nullptr; r = FirstOverlap(r->end(), end)) {
        fn(*r);
      }
    }
    template <typename Fn>
    void ForEachSnapshotOf(RegionId source, Fn fn) const {
      registry_.ForEachSnapshotOfLocked(source, fn);
    }
    // Snapshot regions whose pages wait for a source (at most kMaxLinkedSnapshots at once):
    // LinkSnapshot returns false when that many are linked; UnlinkSnapshot of one that is not
    // linked does nothing.
    bool LinkSnapshot(Region* snapshot);
    void UnlinkSnapshot(Region* snapshot);
    // Adds and publishes a region; see RegionRegistry::Add.
    Region* Add(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd, bool self_paging);
    // Rebuilding a region in steps (Runtime): Create makes a region that is in no map yet and
    // publishes it in the fork view; Insert puts it in the maps; Discard unpublishes and deletes
    // one that was never inserted. Create throws std::bad_alloc.
    std::unique_ptr<Region> Create(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
                                   bool self_paging);
    Region* Insert(std::unique_ptr<Region> region);
    void Discard(std::unique_ptr<Region> region);
    // Takes `region` out of the maps and the fork view. The caller deletes it (after the lock is
    // released is fine: nothing can reach it any more).
    std::unique_ptr<Region> Take(Region* region);

   private:
    RegionRegistry& registry_;
  };

  // Adds a region of `pages` pages at `base`, registered with `uffd`; returns it. REQUIRES: no
  // overlap with a region. Throws std::bad_alloc when memory or fork-view places run out.
  Region* Add(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd = -1,
              bool self_paging = false) ABSL_LOCKS_EXCLUDED(mutex_);
  // Removes and returns the region starting at `base` with exactly `pages` pages, or nullptr.
  // Waits for every Reader to finish.
  std::unique_ptr<Region> Remove(uintptr_t base, uint64_t pages) ABSL_LOCKS_EXCLUDED(mutex_);
  // Removes every region (shutdown).
  std::vector<std::unique_ptr<Region>> RemoveAll() ABSL_LOCKS_EXCLUDED(mutex_);

  uint64_t count() const ABSL_LOCKS_EXCLUDED(mutex_);

  // For a child process right after fork(), single-threaded, no lock: calls fn(const Region&) for
  // every published region (see "Fork view" above).
  template <typename Fn>
  void ForEachPublished(Fn fn) const {
    uint32_t end = view_end_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < end; ++i) {
      const Region* region = view_[i].load(std::memory_order_acquire);
      if (region != nullptr) fn(*region);
    }
  }

  RegionRegistry();
  ~RegionRegistry();
  RegionRegistry(const RegionRegistry&) = delete;
  RegionRegistry& operator=(const RegionRegistry&) = delete;

 private:
  using ByBase = std::map<uintptr_t, std::unique_ptr<Region>, std::less<>,
                          InternalAllocator<std::pair<const uintptr_t, std::unique_ptr<Region>>>>;
  using ById = std::map<RegionId, Region*, std::less<>,
                        InternalAllocator<std::pair<const RegionId, Region*>>>;
  static constexpr uint32_t kViewSlots = 1 << 18;

  static Region* FirstOverlapIn(const ByBase& regions, uintptr_t begin, uintptr_t end);
  template <typename Fn>
  void ForEachSnapshotOfLocked(RegionId source, Fn fn) const ABSL_SHARED_LOCKS_REQUIRED(mutex_) {
    for (uint32_t i = 0; i < linked_count_; ++i) {
      if (linked_[i]->snapshot_source == source) fn(*linked_[i]);
    }
  }
  Region* AddLocked(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
                    bool self_paging) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::unique_ptr<Region> CreateLocked(uintptr_t base, uint64_t pages, PageCounters* counters,
                                       int uffd, bool self_paging)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  Region* InsertLocked(std::unique_ptr<Region> region) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::unique_ptr<Region> TakeLocked(Region* region) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  mutable absl::Mutex mutex_;
  ByBase by_base_ ABSL_GUARDED_BY(mutex_);
  ById by_id_ ABSL_GUARDED_BY(mutex_);
  RegionId next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  // The fork view: kViewSlots atomic pointers in memory of their own (util/raw_memory.h).
  std::atomic<const Region*>* view_;
  std::atomic<uint32_t> view_end_{0};                    // one past the highest slot ever used
  uint32_t view_free_hint_ ABSL_GUARDED_BY(mutex_) = 0;  // where the search for a slot starts
  std::array<Region*, kMaxLinkedSnapshots> linked_ ABSL_GUARDED_BY(mutex_) = {};
  uint32_t linked_count_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_REGION_REGISTRY_H_
