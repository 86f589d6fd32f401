// Paging advice applied on the evictor thread (Pager::ApplyHint; core/hints.h says how it gets
// there). Transitions are the ordinary ones: eviction (RESIDENT -> SWAPPED/EVICTING/EMPTY) for
// MADV_PAGEOUT, swap-in (SWAPPED -> LOADING -> RESIDENT) for MADV_WILLNEED.
#include <sys/mman.h>

#include <algorithm>

#include "core/pager.h"

namespace faultline {

void Pager::ApplyHint(IoContext& ctx, const RegionRegistry::Reader& regions, uintptr_t begin,
                      uintptr_t end, int advice) noexcept {
  for (Region* region = regions.FirstOverlap(begin, end); region != nullptr;) {
    uintptr_t region_end = region->end();
    uint64_t first = (std::max(begin, region->base) - region->base) >> kPageShift;
    uint64_t last = (std::min(end, region_end) - region->base) >> kPageShift;
    switch (advice) {
      case MADV_PAGEOUT:
        PageOut(ctx, regions, *region, first, last);
        break;
      case MADV_COLD:
        r_.policy->MarkCold(*region, first, last);
        break;
      case MADV_WILLNEED:
        Prefetch(ctx, regions, *region, first, last);
        break;
      default:
        break;
    }
    region = regions.FirstOverlap(region_end, end);
  }
}

void Pager::SetReadahead(Region& region, uint64_t first, uint64_t count,
                         ReadaheadAdvice advice) noexcept {
  for (uint64_t index = first; index < first + count; ++index) {
    region.pages.Unlock(index, region.pages.Lock(index).WithAdvice(advice));
  }
}

void Pager::PageOut(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
                    uint64_t first, uint64_t end) noexcept {
  VictimCandidate chosen[512];
  const uint32_t batch = std::min<uint32_t>(config_.evict_batch_pages, 512);
  uint64_t index = first;
  while (index < end) {
    uint32_t count = 0;
    for (; index < end && count < batch; ++index) {
      PageWord word = region.pages.Peek(index);
      if (word.state() == PageState::kResident && !word.pinned()) {
        chosen[count++] = VictimCandidate{&region, index};
      }
    }
    while (count > 0) {
      bool staging_busy = false;
      if (ReclaimBatch(ctx, regions, count, &staging_busy, chosen, count) > 0 || !staging_busy) {
        break;
      }
      // Every staging buffer holds a write. This thread's own writes it finishes here; for other
      // threads' writes it does not wait under the registry's read lock (those threads may need
      // the lock anew to finish them: docs/design.md, "Lock order"), and this batch of the
      // advice is dropped, as the kernel drops MADV_PAGEOUT pages it cannot reclaim.
      if (!WaitForOwnIo(ctx, regions)) break;
    }
  }
  while (WaitForOwnIo(ctx, regions)) {
  }
}

void Pager::Prefetch(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
                     uint64_t first, uint64_t end) noexcept {
  for (uint64_t index = first; index < end; ++index) {
    if (region.pages.Peek(index).state() != PageState::kSwapped) continue;
    // Room first (a read brings pages in), then a buffer, then the page: as in HandleMissing.
    EnsureRoom(ctx, regions, 1);
    int chunk = AcquireReadChunk(ctx, regions);
    PageWord word = region.pages.Lock(index);
    if (word.state() != PageState::kSwapped) {
      region.pages.Unlock(index, word);
      r_.read_staging->Release(chunk);
      continue;
    }
    StartSwapIn(ctx, region, index, word, false, chunk, 0, /*prefetch=*/true);
  }
}

}  // namespace faultline
