// Runtime: everything faultline runs in one process (DESIGN.md, "Core concepts"): the
// userfaultfds, the swap file and its slots, the regions, the pager, the fault-handler threads and
// the evictor. Create() builds it completely or not at all; the destructor stops the threads and
// unmaps every region that is left.
#ifndef FAULTLINE_LIB_CORE_RUNTIME_H_
#define FAULTLINE_LIB_CORE_RUNTIME_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/eviction_policy.h"
#include "core/evictor.h"
#include "core/fault_handler.h"
#include "core/fork_holds.h"
#include "core/pager.h"
#include "core/region_registry.h"
#include "core/self_paging.h"
#include "core/staging_area.h"
#include "core/stats.h"
#include "faultline/faultline.h"
#include "snapshot/snapshot_file.h"
#include "swap/slot_allocator.h"
#include "swap/swap_file.h"

namespace faultline {

class Runtime final : public SigbusTarget {
 public:
  static absl::StatusOr<std::unique_ptr<Runtime>> Create(const fl_config& config);
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // `flags`: FL_MAP_* (faultline.h).
  absl::StatusOr<void*> Map(size_t length, unsigned flags);
  absl::Status Unmap(void* address, size_t length);
  void GetStats(fl_stats* stats) const;
  // GetStats without `regions` and `swap_slots_used` (left 0), which need locks: takes none, so
  // it may run in a signal handler (a program's `_exit` there writes its statistics).
  void GetCounters(fl_stats* stats) const noexcept;

  // For tests and tools: where the page at `address` is kept, or an error if it is not managed.
  struct PageInfo {
    PageState state;
    uint64_t slot;  // kNoSlot unless the swap file holds the page
  };
  absl::StatusOr<PageInfo> InspectPage(const void* address) const;
  int swap_fd() const { return swap_->fd(); }
  uint64_t SwapOffsetOfSlot(uint64_t slot) const { return swap_->SlotOffset(slot); }

  bool ResolveSigbus(uintptr_t address, bool write, uint64_t start_ns) noexcept override;

  // What the program does to its own mappings, as the interposer (lib/preload/) reports it
  // (core/runtime_mappings.cc). Only page-aligned ranges are passed in.
  //
  // Adopt: the program has just made [address, +length) a private anonymous read-write-able
  // mapping (`shared_anonymous`: it asked for MAP_SHARED|MAP_ANONYMOUS, which the interposer
  // turned into a private one); manage it. On error nothing is managed and the mapping is left as
  // the kernel made it. `prot` is the protection it was made with. Returns 0 or -errno; it does
  // not allocate through malloc (it may be running inside the program's allocator).
  int Adopt(void* address, size_t length, int prot, bool shared_anonymous) noexcept;
  // Whether any page of [address, +length) is managed.
  bool Overlaps(const void* address, size_t length) const;
  // The first managed part [*part_begin, *part_end) of [begin, end) (one region's pages), or
  // false when there is none.
  bool FirstManagedPart(uintptr_t begin, uintptr_t end, uintptr_t* part_begin,
                        uintptr_t* part_end) const;
  // Locks every region and the eviction staging area again (mlock2(MLOCK_ONFAULT), see Map):
  // after the program's munlockall().
  void RelockRegions() noexcept;
  // The program is about to unmap [address, +length) or map over it (munmap, MAP_FIXED,
  // MREMAP_FIXED): snapshots still waiting for its pages' bytes copy them now, while they are
  // still mapped (and so does a snapshot whose own mapping it is). Allocates nothing.
  void PrepareUnmap(const void* address, size_t length) noexcept;
  // The program has unmapped [address, +length) (munmap, or a MAP_FIXED mapping made over it):
  // the managed pages there are forgotten and their slots freed; regions are cut around them.
  void Forget(const void* address, size_t length);
  // Runs `change`, the program's system call that unmaps or replaces every mapping in
  // [address, +length) (munmap, mremap onto it), and forgets the managed pages there if it
  // succeeds (returns true; false with errno set, and nothing changed, if it failed). Snapshots
  // waiting for those pages copy them first. All of it under the registry's write lock with the
  // regions there quiesced, so that no other thread sees the range between the system call and
  // the registry's update: no fault is served and no page evicted from a mapping that is gone,
  // and no other thread's new mapping at the same address is adopted and then forgotten.
  // `change` must not touch managed memory.
  bool ReplaceMappings(void* address, size_t length, absl::FunctionRef<bool()> change);
  // mremap(2) of a range that overlaps managed memory, with mremap's contract: the new address,
  // or MAP_FAILED with errno set (and nothing changed).
  void* Remap(void* old_address, size_t old_size, size_t new_size, int flags, void* new_address);
  // madvise(2) of a range that overlaps managed memory: 0, or -errno. Also fl_advise().
  //  - DONTNEED: the pages are discarded; FREE: they may be, when evicted (Pager::MarkFreeable);
  //  - PAGEOUT: evicted before it returns; COLD: the next to be evicted; WILLNEED: reads of the
  //    swapped pages start (Prefetch waits for them);
  //  - SEQUENTIAL, RANDOM, NORMAL: the swap-in readahead of the pages of the range (SEQUENTIAL
  //    also drops pages behind a scan first);
  //  - other paging hints are accepted without effect; anything else goes to the kernel.
  int Advise(void* address, size_t length, int advice);
  // MADV_WILLNEED, then (if `wait`) until no page of the range is still being read.
  int Prefetch(void* address, size_t length, bool wait);
  // Pins (core/runtime_pins.cc): fl_pin/fl_unpin, and mlock & co. under LD_PRELOAD. Return 0 or
  // -errno and allocate nothing. Pin: -EINVAL if part of the range is not managed, -ENOMEM (nothing
  // pinned) beyond max_pinned_pages; unless `on_fault`, the pages are made resident before it
  // returns. PinAll / UnpinAll: every region; PinFuture: regions adopted from now on are pinned
  // (mlockall(MCL_FUTURE)).
  int Pin(void* address, size_t length, bool on_fault) noexcept;
  int Unpin(void* address, size_t length) noexcept;
  int PinAll(bool on_fault) noexcept;
  void UnpinAll() noexcept;
  void PinFuture(bool enabled, bool on_fault) noexcept;

  // Snapshots (core/runtime_snapshots.cc; the contract is fl_snapshot_create's in faultline.h).
  // A snapshot is named by the address of its read-only mapping, which TakeSnapshot returns.
  absl::StatusOr<void*> TakeSnapshot(void* address, size_t length);
  absl::Status ReadSnapshot(const void* snapshot, size_t offset, void* buf, size_t length);
  absl::Status ReleaseSnapshot(const void* snapshot);
  absl::Status SaveSnapshot(const void* snapshot, const std::string& path);
  // Maps a saved snapshot as a new region (fl_unmap it) whose pages are read from the file on
  // first touch; stores its length in *length.
  absl::StatusOr<void*> OpenSnapshotFile(const std::string& path, size_t* length);

  // fork(), as pthread_atfork handlers. The child is left without a runtime: every managed page
  // becomes ordinary memory of its own (Pager::MaterializeInChild), and the Runtime object must
  // not be used (or destroyed) there.
  void PrepareFork() noexcept;
  void ParentAfterFork() noexcept;
  void ChildAfterFork() noexcept;

 private:
  Runtime() = default;
  absl::Status Start(const fl_config& config);

  // A part of a region that survives a change of the program's mappings, as a new region: pages
  // [first, first + count) of the old one, now at `base`, followed by `grow` new EMPTY pages.
  struct Piece {
    uint64_t first;
    uint64_t count;
    uintptr_t base;
    uint64_t grow;
  };
  // Sleeps 20 us: a wait for other threads (I/O to finish, the evictor to apply a hint) with no
  // lock held.
  static void PauseForOtherThreads() noexcept;
  // Runs fn(writer) under the registry's write lock at a moment when no region overlapping
  // [begin, end) has I/O in flight (such regions are marked reshaping meanwhile, so that the
  // evictor stops adding to it).
  // With `also_begin` < `also_end`, the regions overlapping that range too.
  template <typename Fn>
  void WithQuiescedRegions(uintptr_t begin, uintptr_t end, Fn fn, uintptr_t also_begin = 0,
                           uintptr_t also_end = 0);
  // Cuts the region that holds `at` in two there (if `at` is inside one, not at its base),
  // changing nothing else: every page keeps its word, in one piece or the other.
  void SplitAt(RegionRegistry::Writer& writer, uintptr_t at);
  // Snapshots waiting for pages of [begin, end) (or whose own pages those are) copy them now.
  void DetachSnapshotsIn(RegionRegistry::Writer& writer, uintptr_t begin, uintptr_t end);
  // Replaces `region` by `pieces` (ordered by `first`, not overlapping): each becomes a region
  // with a copy of its pages' words, published in the fork view before `change` runs.
  // `change` performs the program's system call and returns false (errno set) if it failed; then
  // nothing is changed. Otherwise the pages that no piece keeps lose their slots and `region` is
  // replaced. Returns the new regions in `made`.
  template <typename Change>
  bool Reshape(RegionRegistry::Writer& writer, Region* region, const Piece* pieces, int count,
               Change change, Region** made);
  void ForgetLocked(RegionRegistry::Writer& writer, uintptr_t begin, uintptr_t end);
  void NoteManaged();
  // Page `at` of a snapshot into `page` under the registry's read lock; kLost with *error set
  // when the page was lost (EIO) or the snapshot is not there (EINVAL).
  Pager::SnapshotPage ReadSnapshotPage(const void* snapshot, uint64_t at, char* page,
                                       absl::Status* error);
  // Closes the opened snapshot files that no region reads from any more.
  void CloseUnusedSnapshotFiles();
  // Makes a range of the program's usable as a region: 4 KiB pages, locked on fault, registered
  // with `uffd` for missing and write-protect faults. Returns 0 or -errno, with *lock_failed set
  // when it was the lock that failed; on failure nothing is left changed.
  static int PrepareRange(int uffd, void* address, size_t length, bool* lock_failed) noexcept;
  // A new private anonymous mapping of `length` bytes with `prot`, prepared (PrepareRange) with
  // `uffd`; errors name `call`.
  static absl::StatusOr<void*> MapPrepared(int uffd, size_t length, int prot, const char* call);
  // Sets or clears PINNED on pages [first, first + count) of `region`; returns how many changed.
  uint64_t SetPinned(Region& region, uint64_t first, uint64_t count, bool pinned) noexcept;
  // Pins or unpins the managed pages of [begin, end) (-EINVAL, nothing changed, if `whole_range`
  // and some page is not managed; -ENOMEM, nothing changed, beyond the pin budget).
  int SetPinnedRange(uintptr_t begin, uintptr_t end, bool whole_range, bool pinned) noexcept;
  // Takes the pinned pages among [first, first + count) of a region being dropped off the count.
  void DropPins(Region& region, uint64_t first, uint64_t count) noexcept;
  // Before fork: turns each region the program mapped MAP_SHARED|MAP_ANONYMOUS into what it asked
  // for, shared memory (a memfd mapped over it, holding every page's contents), so that parent
  // and child share it. The region is no longer managed.
  void ShareBeforeFork();
  void ShareRegion(RegionRegistry::Writer& writer, Region* region);

  fl_config config_{};
  int uffd_ = -1;
  int staging_uffd_ = -1;
  int self_paging_uffd_ = -1;  // UFFD_FEATURE_SIGBUS: faults of self-paging regions
  int stop_fd_ = -1;
  int evictor_wake_fd_ = -1;
  int mailbox_wake_fd_ = -1;
  std::unique_ptr<FaultMailbox> mailbox_;
  void* zero_source_ = nullptr;
  size_t zero_source_bytes_ = 0;
  std::unique_ptr<SwapFile> swap_;
  std::unique_ptr<SwapSlotAllocator> slots_;
  RegionRegistry registry_;
  ClockPolicy policy_;
  PageCounters counters_;
  PagerStats stats_;
  std::unique_ptr<StagingArea> evict_staging_;
  std::unique_ptr<StagingArea> read_staging_;
  std::unique_ptr<Pager> pager_;
  std::vector<std::unique_ptr<FaultHandler>> handlers_;
  std::unique_ptr<Evictor> evictor_;
  std::unique_ptr<ForkHolds> fork_holds_;
  HintQueue hints_;
  std::atomic<int64_t> pinned_pages_{0};
  std::atomic<int64_t> snapshots_{0};
  // Files opened by OpenSnapshotFile, while regions read from them (Region::backing). Lock
  // order: before the registry's lock.
  absl::Mutex opened_files_mutex_;
  std::vector<std::unique_ptr<SnapshotFileReader>> opened_files_
      ABSL_GUARDED_BY(opened_files_mutex_);
  std::atomic<bool> pin_future_{false};
  std::atomic<bool> pin_future_on_fault_{false};
  ForkHolds::Pipe fork_pipe_;  // of the fork in progress (PrepareFork to the After handlers)
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_RUNTIME_H_
