// EvictionPolicy: which resident pages leave memory first. The evicting code (Pager) asks for
// candidates and does the rest (locking, moving out, writing); a policy only orders pages.
#ifndef FAULTLINE_LIB_CORE_EVICTION_POLICY_H_
#define FAULTLINE_LIB_CORE_EVICTION_POLICY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/region_registry.h"

namespace faultline {

struct VictimCandidate {
  Region* region;
  uint64_t index;
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;

  // Fills `out` with up to `max` candidates, best victim first; pages of one region come in
  // ascending address order where the policy allows it, so that they form contiguous runs (one
  // UFFDIO_MOVE and one swap write per run). Candidates are hints: the caller locks each page and
  // skips it unless it is still RESIDENT, unlocked and unpinned. Thread-safe; concurrent callers
  // get disjoint candidates. REQUIRES: `regions` holds the registry's read lock.
  virtual size_t SelectVictims(const RegionRegistry::Reader& regions, VictimCandidate* out,
                               size_t max) = 0;

  // A page was read back from swap: it had been evicted while still in use.
  virtual void OnRefault(Region& region, uint64_t index) = 0;

  // The program said pages [first, end) of `region` are cold (MADV_COLD): they go first.
  virtual void MarkCold(Region& region, uint64_t first, uint64_t end) = 0;
};

// CLOCK over the regions' page tables, in (region id, page index) order, with a second chance for
// pages that came back by a refault (the REFERENCED bit; a cheap form of the kernel's refault
// protection). Without hardware access bits, the sweep is otherwise first-in-first-out by
// address. Needs no memory of its own and nothing on the fault path except OnRefault's bit.
class ClockPolicy final : public EvictionPolicy {
 public:
  size_t SelectVictims(const RegionRegistry::Reader& regions, VictimCandidate* out,
                       size_t max) override ABSL_LOCKS_EXCLUDED(mutex_);
  void OnRefault(Region& region, uint64_t index) override;
  // Remembers up to kColdRanges ranges (the oldest is forgotten beyond that); SelectVictims
  // takes their resident pages before it sweeps.
  void MarkCold(Region& region, uint64_t first, uint64_t end) override ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  struct ColdRange {
    RegionId region;
    uint64_t next;  // the next page to offer
    uint64_t end;
  };
  static constexpr int kColdRanges = 16;

  // Fills `out` from the cold ranges; returns how many it found.
  size_t TakeCold(const RegionRegistry::Reader& regions, VictimCandidate* out, size_t max)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  std::array<ColdRange, kColdRanges> cold_ ABSL_GUARDED_BY(mutex_) = {};
  int cold_count_ ABSL_GUARDED_BY(mutex_) = 0;
  RegionId hand_region_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t hand_index_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_EVICTION_POLICY_H_
