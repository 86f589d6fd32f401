// Pager: the page-level mechanisms of a runtime, shared by its threads: resolving faults (zero
// fill with fault-around, swap-in with readahead, rescue of pages being evicted, write-protect
// faults), evicting batches of pages (moving them out, writing them in contiguous runs) and
// completing the I/O that these start. Which thread calls what:
//   - fault-handler threads: HandleFault, EnsureRoom (direct reclaim), HandleCompletion;
//   - an application thread in its SIGBUS handler (self-paging regions, core/self_paging.h):
//     ResolveOnFaultingThread, which uses only atomics, uffd ioctls and leaf mutexes;
//   - the evictor: ReclaimBatch, HandleCompletion;
//   - the thread unmapping a region: ReleaseRegionSlots;
//   - a program thread in madvise (through the interposer): Discard;
//   - the thread calling fork(): PauseEviction / ResumeEviction in the parent, and
//     MaterializeInChild in the child (core/pager_fork.cc).
// Every page-state change goes through PageTable::Transition (page_state.h). Nothing here
// allocates, throws or blocks except on its own I/O.
//
// I/O ownership: an I/O is submitted on the calling thread's IoContext ring and its completion
// comes back only there, so the same thread finishes it. Records of in-flight I/O live in tables
// indexed by staging chunk (a chunk belongs to the thread that acquired it until released).
//
// Lock order (outer first): RegionRegistry lock (read: faults, eviction, Discard; write: a
// program thread changing which regions exist, core/runtime_mappings.cc, or taking a snapshot)
// -> page LOCKED bits, taken in ascending (region, index) order by one thread at a time or with
// TryLock, except that a snapshotted page is locked before the snapshot pages waiting for it ->
// ClockPolicy::mutex_ / SwapSlotAllocator::mutex_ / StagingArea::mutex_ / the internal heap's
// mutex (leaves; no call out while held). ForkHolds::mutex_ -> SwapSlotAllocator::mutex_.
// No thread waits for another thread's I/O while holding the registry's read lock: that thread
// takes the lock anew to finish its I/O, and a writer waiting for the lock lets no new reader in.
// Hence read buffers owned per thread (AcquireReadChunk) and Discard stopping at LOADING pages
// (docs/design.md, "Lock order").
#ifndef FAULTLINE_LIB_CORE_PAGER_H_
#define FAULTLINE_LIB_CORE_PAGER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/eviction_policy.h"
#include "core/page_table.h"
#include "core/region_registry.h"
#include "core/staging_area.h"
#include "core/stats.h"
#include "kernel/io_ring.h"
#include "swap/slot_allocator.h"
#include "swap/swap_file.h"
#include "util/zeroed_array.h"

namespace faultline {

struct PagerConfig {
  uint64_t limit_pages;
  uint32_t evict_batch_pages;   // pages per eviction batch = eviction staging chunk size
  uint32_t fault_around_pages;  // most pages per zero fill
  uint32_t readahead_pages;     // most pages per swap-in = read staging chunk size
};

// The I/O state of one thread: its ring, and which of the threads with a ring it is (fault
// handlers 0..n-1, the evictor n), which picks its swap-slot stream and its own read staging
// chunks (StagingArea owner).
struct IoContext {
  IoRing* ring;
  uint32_t thread_index;
};

// Kinds of io_uring completions, in the top byte of user_data.
enum class IoKind : uint8_t { kRead = 1, kWrite = 2, kPollUffd = 3, kPollWake = 4 };
inline uint64_t MakeUserData(IoKind kind, uint64_t value) {
  return (uint64_t{static_cast<uint8_t>(kind)} << 56) | value;
}
inline IoKind KindOf(uint64_t user_data) { return static_cast<IoKind>(user_data >> 56); }
inline uint64_t ValueOf(uint64_t user_data) { return user_data & ((uint64_t{1} << 56) - 1); }

struct PagerResources {
  int uffd;          // fault messages come from here (each region's own uffd is Region::uffd)
  int staging_uffd;  // the eviction staging area is registered here; used for UFFDIO_MOVE out
  SwapFile* swap;
  SwapSlotAllocator* slots;
  RegionRegistry* registry;
  EvictionPolicy* policy;
  PageCounters* counters;
  PagerStats* stats;
  StagingArea* evict_staging;
  StagingArea* read_staging;
  const char* zero_source;  // fault_around_pages of zeros, read-only
  int evictor_wake_fd;      // eventfd the evictor polls
};

class Pager {
 public:
  Pager(const PagerConfig& config, const PagerResources& resources);

  // For a fault raised as SIGBUS in a self-paging region, on the faulting thread: resolves it
  // when that needs no I/O and no reclaim (zero fill while the limit has room, first write to a
  // clean page). kForward: a fault-handler thread must serve it (HandleFault) with the uffd
  // page-fault flags stored in *forward_flags. kPoisoned: the page is poisoned, the SIGBUS is the
  // program's (kernels without CONFIG_MEMORY_FAILURE report poison as BUS_ADRERR, like uffd).
  enum class SigbusAction { kResolved, kForward, kPoisoned };
  SigbusAction ResolveOnFaultingThread(const RegionRegistry::Reader& regions, Region& region,
                                       uint64_t index, bool write, uint64_t start_ns,
                                       uint64_t* forward_flags) noexcept;

  // Resolves one userfaultfd page-fault message. `flags` are uffd_msg.arg.pagefault.flags;
  // `start_ns` is when the message was read (for the latency histogram).
  void HandleFault(IoContext& ctx, const RegionRegistry::Reader& regions, uintptr_t address,
                   uint64_t flags, uint64_t start_ns) noexcept;

  // Finishes a read or write that `ctx` submitted; ignores poll completions.
  void HandleCompletion(const RegionRegistry::Reader& regions,
                        const IoCompletion& completion) noexcept;

  // Waits for at least one of `ctx`'s own I/O to complete and finishes what completed. Returns
  // false when `ctx` has no read or write in flight.
  bool WaitForOwnIo(IoContext& ctx, const RegionRegistry::Reader& regions) noexcept;

  // Evicts up to `want` pages (at most one batch). Returns how many pages left memory; when 0
  // because every eviction staging buffer is taken by writes in flight, sets *staging_busy.
  // With `chosen` (count `chosen_count`), evicts those candidates instead of the policy's.
  uint32_t ReclaimBatch(IoContext& ctx, const RegionRegistry::Reader& regions, uint32_t want,
                        bool* staging_busy = nullptr, const VictimCandidate* chosen = nullptr,
                        uint32_t chosen_count = 0) noexcept;

  // Applies paging advice to the managed pages of [begin, end) (core/hints.h), on the evictor:
  // MADV_PAGEOUT evicts the resident unpinned pages now and waits for their writes;
  // MADV_COLD makes them the next victims; MADV_WILLNEED starts reads of the swapped ones
  // (batched by adjacent slots, as much as fits under the limit) without waiting.
  void ApplyHint(IoContext& ctx, const RegionRegistry::Reader& regions, uintptr_t begin,
                 uintptr_t end, int advice) noexcept;

  // Direct reclaim: makes room for `pages` more charged pages, evicting when the limit would be
  // exceeded. When nothing can be evicted (swap full, everything locked or in flight) it lets the
  // limit be exceeded and records the overshoot.
  void EnsureRoom(IoContext& ctx, const RegionRegistry::Reader& regions, uint32_t pages) noexcept;

  // Frees the swap slots a removed region still holds (SWAPPED, LOADING and clean RESIDENT
  // pages). EVICTING pages' slots are freed by their write completions. REQUIRES: the region is
  // out of the registry (no other thread can reach it).
  void ReleaseRegionSlots(Region& region) noexcept;
  // The same for pages [first, first + count) of a region whose other pages live on in regions
  // rebuilt from it (Runtime). REQUIRES: the caller holds the registry's write lock.
  void ReleaseSlots(Region& region, uint64_t first, uint64_t count) noexcept;

  // Drops pages [first, first + count) of `region` as madvise(MADV_DONTNEED) does: the next access
  // reads zeros; their swap slots are freed. Stops at a page whose read is in flight and returns
  // how many pages it did (count when all): the caller waits for the read with the registry's
  // lock released, since the reading thread may need the lock anew to finish it, and goes on
  // from that page. REQUIRES: `regions` holds the registry's read lock; the range is inside the
  // region.
  uint64_t Discard(const RegionRegistry::Reader& regions, Region& region, uint64_t first,
                   uint64_t count) noexcept;
  // madvise(MADV_FREE) as Linux defines it: resident pages keep their contents but become
  // FREEABLE (page_state.h): eviction drops them without writing, so they then read as zeros,
  // unless the program writes to them first. Pages already out of memory are discarded now.
  // Stops at a page whose read is in flight, as Discard.
  uint64_t MarkFreeable(const RegionRegistry::Reader& regions, Region& region, uint64_t first,
                        uint64_t count) noexcept;

  // madvise(MADV_NORMAL / MADV_SEQUENTIAL / MADV_RANDOM): the swap-in readahead of pages
  // [first, first + count) of `region` (page_state.h, ADVICE). Pages of any state take it.
  void SetReadahead(Region& region, uint64_t first, uint64_t count,
                    ReadaheadAdvice advice) noexcept;

  // Snapshots (core/pager_snapshot.cc; page_state.h, SNAPSHOT bit).
  //
  // Fills `snapshot`, a new empty region of source's pages [first, first + snapshot pages), with
  // those pages as they are now: a page the swap file holds (swapped, being read, or clean) is
  // shared by its slot; a page in flight to swap is copied from its staging buffer; a dirty
  // resident page is write-protected and both it and the snapshot's page get the SNAPSHOT bit:
  // its bytes are copied later, before they change. REQUIRES: the registry's write lock (no
  // fault, eviction or I/O completion runs meanwhile); SwapSlotAllocator::ReserveShares for
  // one share per page. Returns how many snapshot pages wait for their source.
  uint64_t FillNewSnapshot(Region& source, uint64_t first, Region& snapshot) noexcept;
  // Before a source region is cut or removed: every snapshot page still waiting for one of its
  // pages gets its bytes now, and those snapshots stop referring to it. REQUIRES: the registry's
  // write lock.
  void DetachSnapshots(RegionRegistry::Writer& writer, Region& source) noexcept;
  // Before a snapshot's own region is cut (the program unmapped part of its mapping): its pages
  // that still wait get their source's bytes now, and it stops referring to the source.
  // REQUIRES: the registry's write lock.
  void CompleteSnapshot(RegionRegistry::Writer& writer, Region& snapshot) noexcept;
  // Before a snapshot's region is removed: its source pages stop waiting for it (their SNAPSHOT
  // bit is cleared unless another snapshot still waits for them). REQUIRES: the write lock.
  void ForgetSnapshot(RegionRegistry::Writer& writer, Region& snapshot) noexcept;
  // The bytes of snapshot page `at` into `out` (4 KiB), without bringing the page into memory:
  // from memory if it is there, from the swap file (verified) if not, from the source page if it
  // still waits for it. kLost: the page was lost (poisoned, or its slot fails its checksum).
  enum class SnapshotPage { kZero, kData, kLost };
  SnapshotPage ReadSnapshotPage(const RegionRegistry::Reader& regions, Region& snapshot,
                                uint64_t at, char* out) noexcept;

  // Fork (core/pager_fork.cc). PauseEviction stops new eviction batches and waits for those in
  // progress, so that no page is between the region and its staging buffer when the process is
  // copied; faults are still served (over the limit if need be). Nests; ResumeEviction undoes one.
  void PauseEviction() noexcept;
  void ResumeEviction() noexcept;
  // In a child process right after fork(), single-threaded: gives every managed page of the
  // child's copy the contents the parent's page had (reading swapped pages from the swap file,
  // which the parent holds for it: SwapSlotAllocator::BeginHold), so the child no longer needs a
  // pager. Pages it cannot read back are poisoned (SIGBUS on access) and logged. Returns the
  // number of pages read from swap.
  uint64_t MaterializeInChild(const RegionRegistry& registry) noexcept;

  // Reads swap slot `slot` into `page` (4 KiB, page-aligned) with a plain read, and checks it
  // against its checksum. For control paths (Runtime::ShareRegion).
  bool ReadSlot(uint64_t slot, char* page) const noexcept;

  uint64_t limit_pages() const { return config_.limit_pages; }
  uint64_t high_watermark() const { return high_watermark_; }
  uint64_t low_watermark() const { return low_watermark_; }
  // Whether the charged pages are above the low watermark: eviction has work (or will at the next
  // fault), so every fault also costs the evictor CPU time.
  bool UnderPressure() const noexcept {
    return r_.counters->charged() > static_cast<int64_t>(low_watermark_);
  }

 private:
  struct ReadOp {
    RegionId region;
    uint64_t first_index;
    uint32_t count;
    uint64_t first_slot;
    uint64_t fault_index;  // the page whose fault started the read
    bool write_fault;
    uint64_t start_ns;
  };
  struct EvictVictim {
    RegionId region;
    uint64_t index;
    uint64_t slot;  // kNoSlot once the page needs no write (zero, clean, put back)
  };
  struct WriteRun {
    uint32_t first;  // victim position = staging page within the chunk
    uint32_t count;
  };
  struct WriteBatch {
    uint32_t writes;
    uint32_t writes_pending;
    std::vector<EvictVictim> victim;  // sized evict_batch_pages at construction
    std::vector<WriteRun> write;
  };

  // Fault path (pager_fault.cc).
  void HandleMissing(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
                     uint64_t index, bool write, uint64_t start_ns) noexcept;
  void HandleWriteProtect(const RegionRegistry::Reader& regions, Region& region, uint64_t index,
                          uint64_t start_ns) noexcept;
  void ZeroFill(Region& region, uint64_t index, PageWord word, uint64_t start_ns) noexcept;
  // EMPTY + BACKED: reads the page from the region's snapshot file (verified) and installs it;
  // a page that fails is poisoned. REQUIRES: the page is locked.
  void LoadBacked(Region& region, uint64_t index, PageWord word, uint64_t start_ns) noexcept;
  // One of this thread's read staging chunks, waiting for its own reads while all are in flight.
  // REQUIRES: no page lock held; every chunk this thread holds has its read in flight.
  int AcquireReadChunk(IoContext& ctx, const RegionRegistry::Reader& regions) noexcept;
  // REQUIRES: the page is locked and SWAPPED; `chunk` is this thread's read staging chunk.
  // `prefetch`: started by MADV_WILLNEED, not by a fault (no fault is counted or timed).
  void StartSwapIn(IoContext& ctx, Region& region, uint64_t index, PageWord word, bool write,
                   int chunk, uint64_t start_ns, bool prefetch = false) noexcept;
  void PageOut(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
               uint64_t first, uint64_t end) noexcept;
  void Prefetch(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
                uint64_t first, uint64_t end) noexcept;
  void FinishRead(const RegionRegistry::Reader& regions, int chunk, int32_t result) noexcept;
  void InstallLoaded(Region& region, const ReadOp& op, const char* staging, uint32_t from,
                     uint32_t count) noexcept;
  void PoisonLoaded(Region& region, const ReadOp& op, uint32_t position, const char* why) noexcept;
  // A RESIDENT page that is missing from the kernel although faultline never dropped it (the
  // program's own MADV_DONTNEED and munmap take the page lock): its bytes are lost. Poisons it
  // (unless the page turns out to be there: returns false then, the page still locked), logs,
  // frees a clean page's slot and makes it POISONED before anyone waiting on it is woken.
  // `where` says who found it. REQUIRES: the page is locked RESIDENT, with `word`.
  bool PoisonIfMissing(Region& region, uint64_t index, PageWord word, const char* where) noexcept;
  // Number of pages that fit under the limit now (at least 1: a fault is always served).
  uint32_t RoomFor(uint32_t wanted) const noexcept;

  // Snapshots (pager_snapshot.cc). If the locked source page `word` has the SNAPSHOT bit, copies
  // `bytes` (its current contents) into every snapshot page waiting for it; returns the word
  // without the bit. `Registry` is a RegionRegistry::Reader or Writer held by the caller.
  template <typename Registry>
  PageWord CopyToSnapshots(const Registry& regions, Region& source, uint64_t index, PageWord word,
                           const char* bytes) noexcept;
  // A fault on snapshot page `at` that still waits for its source: gives it (and every other
  // snapshot waiting for the same page) the source page's bytes. Takes the source page's lock
  // first (lock order: source page, then snapshot page). `Registry` is a RegionRegistry::Reader
  // or Writer held by the caller. REQUIRES: no page lock held.
  template <typename Registry>
  void FillSnapshotPage(const Registry& regions, Region& snapshot, uint64_t at) noexcept;

  // Eviction (pager_evict.cc).
  // Calls apply(index, words, n) for runs of pages [first, first + count) of `region`, each run
  // locked in ascending order (at most 512 pages); apply unlocks or transitions every page of its
  // run. Stops at the first page whose read is in flight (LOADING) and returns how many pages it
  // did: it never waits for another thread's I/O (see Discard).
  template <typename Apply>
  uint64_t ForEachLockedRun(Region& region, uint64_t first, uint64_t count, Apply apply) noexcept;
  // SWAPPED or EVICTING -> EMPTY, with the swap slot freed. REQUIRES: the page is locked.
  void DropOutOfMemory(Region& region, uint64_t index, PageWord word) noexcept;
  uint32_t LockVictims(const RegionRegistry::Reader& regions, VictimCandidate* candidates,
                       uint32_t count, PageWord* words) noexcept;
  void FinishWrite(const RegionRegistry::Reader& regions, int chunk, uint32_t write,
                   int32_t result) noexcept;
  void PutBack(Region& region, uint64_t index, PageWord word, const char* staging_page) noexcept;
  void ReleaseWriteChunk(int chunk) noexcept;
  void WakeEvictorIfNeeded() noexcept;

  const PagerConfig config_;
  const PagerResources r_;
  uint64_t high_watermark_;
  uint64_t low_watermark_;
  std::vector<ReadOp> read_ops_;           // by read staging chunk
  std::vector<WriteBatch> write_batches_;  // by eviction staging chunk
  // By swap slot: written before the slot's write, read after its read (ordered by the page
  // word's release/acquire).
  ZeroedArray<uint32_t> checksums_;
  std::atomic<bool> swap_full_logged_{false};
  std::atomic<bool> overshoot_logged_{false};
  // Swap writes that failed so far; each power of two of them is logged. Relaxed: a count.
  std::atomic<uint64_t> failed_writes_{0};
  // Set when a thread has asked the evictor to run and it has not yet picked the request up;
  // spares an eventfd write per fault. Relaxed: a lost or extra wake-up only costs latency.
  std::atomic<bool> evictor_woken_{false};
  // Fork: eviction pauses in force, and eviction batches between their start and the end of
  // their moves. Sequentially consistent, as a pair: a batch announces itself, then checks for a
  // pause; a pause announces itself, then waits for the batches.
  std::atomic<int> eviction_pauses_{0};
  std::atomic<int> batches_in_progress_{0};

  friend class Evictor;
};

uint64_t MonotonicNanos() noexcept;

// Copies `len` bytes into a region with UFFDIO_COPY (write-protected if asked), continuing after
// partial progress. A page found already populated (EEXIST) is kept and its waiters woken.
// Returns the bytes that now hold the copied (or kept) contents; the rest of the range is gone
// (the program unmapped it).
size_t CopyIn(int uffd, char* dst, const char* src, size_t len, bool write_protect) noexcept;

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_PAGER_H_
