// SwapSlotAllocator: which page-sized slots of the swap file are free.
//
// Slots are numbered 1..total (0 is kNoSlot, "no slot", so a page-table word can hold "none").
// Slot s lives at file offset (s - 1) * page_size. Slots are grouped in clusters of
// kSlotsPerCluster; each allocating stream (one per evicting thread) owns a current cluster and
// allocates forward in it, so one eviction batch gets a contiguous run of slots and is written
// with one I/O (the kernel's swap cluster idea, KERNEL.md). A slot can be shared (Share): a
// snapshot refers to the slot of a page it has the same bytes as, and the slot stays allocated
// until every holder has freed it. Thread-safe; only Share allocates memory after construction;
// the rest is safe to call from the fault path.
#ifndef FAULTLINE_LIB_SWAP_SLOT_ALLOCATOR_H_
#define FAULTLINE_LIB_SWAP_SLOT_ALLOCATOR_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "util/internal_heap.h"
#include "absl/synchronization/mutex.h"

namespace faultline {

inline constexpr uint64_t kNoSlot = 0;
inline constexpr uint32_t kSlotsPerCluster = 512;

class SwapSlotAllocator {
 public:
  // `total_slots` > 0; `streams` is how many independent allocating streams there are (ids
  // 0..streams-1).
  SwapSlotAllocator(uint64_t total_slots, uint32_t streams);

  // Allocates a run of at most `count` (> 0) contiguous slots for `stream`. Returns the first slot
  // and stores the run's length in *got (1..count), or returns kNoSlot with *got = 0 when every
  // slot is in use. Prefers: the rest of the stream's current cluster, then a wholly free cluster,
  // then the longest free run it finds in a partly used cluster.
  uint64_t AllocateRun(uint32_t stream, uint32_t count, uint32_t* got) ABSL_LOCKS_EXCLUDED(mutex_);

  // Adds a holder to an allocated slot: it takes one more Free() to free it. Throws
  // std::bad_alloc (and adds nothing) when out of memory.
  void Share(uint64_t slot) ABSL_LOCKS_EXCLUDED(mutex_);
  // Makes room for `count` more Share() calls of slots not yet shared, so that they cannot fail.
  // Throws std::bad_alloc.
  void ReserveShares(uint64_t count) ABSL_LOCKS_EXCLUDED(mutex_);

  // Frees one slot / a run: drops one holder, and frees the slot with its last one. Freeing a
  // slot that is not allocated is a broken invariant (abort).
  void Free(uint64_t slot) ABSL_LOCKS_EXCLUDED(mutex_);
  void FreeRun(uint64_t first, uint32_t count) ABSL_LOCKS_EXCLUDED(mutex_);

  // Takes a run of slots whose write failed out of use for good: they stay allocated and are
  // never handed out again. A bad block stays bad, and a slot in a hole of a file system that
  // is full fails again until space is freed; retrying them would fail every eviction batch
  // anew. Once every slot is allocated or retired, eviction takes the swap-full path, which
  // does no I/O. REQUIRES: each slot allocated, with one holder (never shared).
  void RetireRun(uint64_t first, uint32_t count) ABSL_LOCKS_EXCLUDED(mutex_);

  // Fork hold. A child process reads the slots its parent held at fork() from the same file
  // (Runtime::MaterializeInChild), so the parent must not reuse them until the child is done.
  // While at least one hold is active, Free() only records the slot (it stays allocated);
  // EndHold() of the last hold frees what was recorded.
  void BeginHold() ABSL_LOCKS_EXCLUDED(mutex_);
  void EndHold() ABSL_LOCKS_EXCLUDED(mutex_);

  bool IsAllocated(uint64_t slot) const ABSL_LOCKS_EXCLUDED(mutex_);
  // Slots allocated, retired ones included.
  uint64_t used() const ABSL_LOCKS_EXCLUDED(mutex_);
  uint64_t retired() const ABSL_LOCKS_EXCLUDED(mutex_);
  uint64_t total() const { return total_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;  // no cluster / no stream

  struct Stream {
    uint32_t cluster = kNone;  // the cluster it allocates forward in
    uint32_t cursor = 0;       // index in that cluster where the next search starts
  };

  uint32_t ClusterSlots(uint32_t cluster) const;
  uint32_t FirstFree(uint32_t cluster, uint32_t from) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  uint32_t FreeRunLength(uint32_t cluster, uint32_t start, uint32_t limit) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  uint32_t FindWhollyFreeCluster(uint32_t stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  uint32_t FindMostFreeCluster(uint32_t stream) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  uint64_t TakeRun(uint32_t stream, uint32_t cluster, uint32_t start, uint32_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ReleaseLocked(uint64_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void FreeLocked(uint64_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const uint64_t total_;
  const uint32_t cluster_count_;
  mutable absl::Mutex mutex_;
  // Bit (slot - 1) is set while the slot is allocated; the bits past total_ in the last cluster
  // are set for good, so searches never hand them out.
  std::vector<uint64_t> bitmap_ ABSL_GUARDED_BY(mutex_);
  std::vector<uint32_t> cluster_free_ ABSL_GUARDED_BY(mutex_);   // free slots per cluster
  std::vector<uint32_t> cluster_owner_ ABSL_GUARDED_BY(mutex_);  // stream whose current it is
  std::vector<Stream> streams_ ABSL_GUARDED_BY(mutex_);
  // Holders beyond the first, by slot (Share); absent = one holder. On the internal heap: the
  // fault path reads it (Free), and under LD_PRELOAD malloc's memory may be managed.
  absl::flat_hash_map<uint64_t, uint32_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                      InternalAllocator<std::pair<const uint64_t, uint32_t>>>
      extra_holders_ ABSL_GUARDED_BY(mutex_);
  // Bit (slot - 1) is set when the slot was freed during a fork hold.
  std::vector<uint64_t> held_frees_ ABSL_GUARDED_BY(mutex_);
  uint32_t holds_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t used_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t retired_ ABSL_GUARDED_BY(mutex_) = 0;
  uint32_t wholly_free_clusters_ ABSL_GUARDED_BY(mutex_) = 0;
  uint32_t free_cluster_hint_ ABSL_GUARDED_BY(mutex_) = 0;  // where the next search starts
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_SWAP_SLOT_ALLOCATOR_H_
