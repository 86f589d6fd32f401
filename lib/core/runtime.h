// Runtime: everything faultline runs in one process (DESIGN.md, "Core concepts"): the
// userfaultfds, the swap file and its slots, the regions, the pager, the fault-handler threads and
// the evictor. Create() builds it completely or not at all; the destructor stops the threads and
// unmaps every region that is left.
#ifndef FAULTLINE_LIB_CORE_RUNTIME_H_
#define FAULTLINE_LIB_CORE_RUNTIME_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/eviction_policy.h"
#include "core/evictor.h"
#include "core/fault_handler.h"
#include "core/pager.h"
#include "core/region_registry.h"
#include "core/self_paging.h"
#include "core/staging_area.h"
#include "core/stats.h"
#include "faultline/faultline.h"
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

  // For tests and tools: where the page at `address` is kept, or an error if it is not managed.
  struct PageInfo {
    PageState state;
    uint64_t slot;  // kNoSlot unless the swap file holds the page
  };
  absl::StatusOr<PageInfo> InspectPage(const void* address) const;
  int swap_fd() const { return swap_->fd(); }
  uint64_t SwapOffsetOfSlot(uint64_t slot) const { return swap_->SlotOffset(slot); }

  bool ResolveSigbus(uintptr_t address, bool write, uint64_t start_ns) noexcept override;

 private:
  Runtime() = default;
  absl::Status Start(const fl_config& config);

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
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_RUNTIME_H_
