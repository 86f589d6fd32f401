// EvictionPolicy: which resident pages leave memory first. The evicting code (Pager) asks for
// candidates and does the rest (locking, moving out, writing); a policy only orders pages.
#ifndef FAULTLINE_LIB_CORE_EVICTION_POLICY_H_
#define FAULTLINE_LIB_CORE_EVICTION_POLICY_H_

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

 private:
  absl::Mutex mutex_;
  RegionId hand_region_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t hand_index_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_EVICTION_POLICY_H_
