#include <algorithm>

#include "core/eviction_policy.h"

namespace faultline {

size_t ClockPolicy::SelectVictims(const RegionRegistry::Reader& regions, VictimCandidate* out,
                                  size_t max) {
  absl::MutexLock lock(&mutex_);
  size_t found = TakeCold(regions, out, max);
  if (found == max) return found;
  Region* region = regions.FindById(hand_region_);
  if (region == nullptr || hand_index_ >= region->pages.size()) {
    region = regions.NextAfter(hand_region_);
    hand_index_ = 0;
  }
  if (region == nullptr) return found;
  hand_region_ = region->id;

  // Bound the sweep: two full turns (the first may only clear REFERENCED bits).
  uint64_t budget = 0;
  for (RegionId id = 0;;) {
    Region* r = regions.NextAfter(id);
    if (r == nullptr || r->id <= id) break;
    budget += r->pages.size();
    id = r->id;
  }
  budget *= 2;

  while (found < max && budget > 0) {
    if (hand_index_ >= region->pages.size()) {
      region = regions.NextAfter(region->id);
      hand_region_ = region->id;
      hand_index_ = 0;
      continue;
    }
    if (hand_index_ == 0 && region->pages.Count(PageState::kResident) == 0) {
      // Nothing to find here: a large reservation the program has not touched (yet) costs the
      // sweep nothing.
      budget -= std::min<uint64_t>(budget, region->pages.size());
      hand_index_ = region->pages.size();
      continue;
    }
    uint64_t index = hand_index_++;
    --budget;
    PageWord word = region->pages.Peek(index);
    if (word.state() != PageState::kResident || word.locked() || word.pinned()) continue;
    if (word.referenced()) {
      region->pages.SetFlag(index, PageWord::kReferenced, false);
      continue;
    }
    out[found++] = {region, index};
  }
  return found;
}

void ClockPolicy::MarkCold(Region& region, uint64_t first, uint64_t end) {
  absl::MutexLock lock(&mutex_);
  for (int i = 0; i < cold_count_; ++i) {
    // A range that continues or overlaps another extends it (drop-behind marks a scan window by
    // window), so that long scans do not push other cold ranges out.
    ColdRange& range = cold_[i];
    if (range.region == region.id && first <= range.end && end >= range.next) {
      range.end = std::max(range.end, end);
      return;
    }
  }
  if (cold_count_ == kColdRanges) {
    std::move(cold_.begin() + 1, cold_.end(), cold_.begin());
    --cold_count_;
  }
  cold_[cold_count_++] = ColdRange{region.id, first, end};
}

size_t ClockPolicy::TakeCold(const RegionRegistry::Reader& regions, VictimCandidate* out,
                             size_t max) {
  size_t found = 0;
  int kept = 0;
  for (int i = 0; i < cold_count_; ++i) {
    ColdRange range = cold_[i];
    Region* region = regions.FindById(range.region);
    while (region != nullptr && found < max && range.next < range.end) {
      PageWord word = region->pages.Peek(range.next);
      if (word.state() == PageState::kResident && !word.locked() && !word.pinned()) {
        out[found++] = {region, range.next};
      }
      ++range.next;
    }
    // A range stays until it is used up or its region is gone (unmapped or reshaped).
    if (region != nullptr && range.next < range.end) cold_[kept++] = range;
  }
  cold_count_ = kept;
  return found;
}

void ClockPolicy::OnRefault(Region& region, uint64_t index) {
  region.pages.SetFlag(index, PageWord::kReferenced, true);
}

}  // namespace faultline
