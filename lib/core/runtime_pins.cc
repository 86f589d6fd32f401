// Pins (Runtime::Pin and friends): pages that are never evicted. A pin is the PINNED bit of the
// page word (page_state.h): the evictor and the clock policy pass such pages by, whatever else
// happens to them (a pinned page that is swapped out when pinned is read back, and then stays).
// The count of pinned pages is kept here, against fl_config.max_pinned_pages: it is reserved
// before any bit is set, so a pin over the budget changes nothing.
#include <sys/mman.h>

#include <algorithm>

#include "core/runtime.h"
#include "util/raw_memory.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; Debian 12's headers predate it
#endif

namespace faultline {
namespace {

// Calls fn(region, first, count) for the part of each region in [begin, end), in address order;
// returns how many pages those parts hold (less than the range has when it is not all managed).
template <typename Fn>
uint64_t ForEachPart(const RegionRegistry::Reader& regions, uintptr_t begin, uintptr_t end, Fn fn) {
  uint64_t pages = 0;
  regions.ForEachOverlap(begin, end, [&](Region& region) {
    uintptr_t from = std::max(begin, region.base);
    uint64_t count = (std::min(end, region.end()) - from) >> kPageShift;
    fn(region, (from - region.base) >> kPageShift, count);
    pages += count;
  });
  return pages;
}

bool IsPageRange(uintptr_t begin, size_t length) {
  return begin % kPageSize == 0 && length > 0 && length % kPageSize == 0;
}

}  // namespace

uint64_t Runtime::SetPinned(Region& region, uint64_t first, uint64_t count, bool pinned) noexcept {
  uint64_t changed = 0;
  for (uint64_t i = first; i < first + count; ++i) {
    PageWord word = region.pages.Lock(i);
    if (word.pinned() != pinned) ++changed;
    region.pages.Unlock(i, word.WithFlag(PageWord::kPinned, pinned));
  }
  return changed;
}

void Runtime::DropPins(Region& region, uint64_t first, uint64_t count) noexcept {
  int64_t dropped = 0;
  for (uint64_t i = first; i < first + count; ++i) dropped += region.pages.Peek(i).pinned();
  pinned_pages_.fetch_sub(dropped, std::memory_order_relaxed);
}

int Runtime::SetPinnedRange(uintptr_t begin, uintptr_t end, bool whole_range,
                            bool pinned) noexcept {
  RegionRegistry::Reader regions(registry_);
  // Count first and change nothing until the pins are known to fit.
  int64_t unpinned = 0;
  uint64_t managed = ForEachPart(regions, begin, end, [&](Region& r, uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; ++i) unpinned += !r.pages.Peek(i).pinned();
  });
  if (whole_range && managed != (end - begin) >> kPageShift) return -EINVAL;
  if (pinned) {
    int64_t now = pinned_pages_.load(std::memory_order_relaxed);
    do {
      if (now + unpinned > static_cast<int64_t>(config_.max_pinned_pages)) return -ENOMEM;
    } while (!pinned_pages_.compare_exchange_weak(now, now + unpinned));
  }
  int64_t changed = 0;
  ForEachPart(regions, begin, end, [&](Region& r, uint64_t first, uint64_t n) {
    changed += static_cast<int64_t>(SetPinned(r, first, n, pinned));
  });
  // Pinning: the reservation is corrected by what actually changed (another thread may have
  // pinned some of the same pages meanwhile). Unpinning: what changed leaves the count.
  pinned_pages_.fetch_sub(pinned ? unpinned - changed : changed, std::memory_order_relaxed);
  return 0;
}

int Runtime::Pin(void* address, size_t length, bool on_fault) noexcept {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  if (!IsPageRange(begin, length)) return -EINVAL;
  int rc = SetPinnedRange(begin, begin + length, /*whole_range=*/true, /*pinned=*/true);
  if (rc != 0) return rc;
  // Outside the registry lock: the faults this raises are served by the fault-handler threads.
  if (!on_fault && RawMadvise(address, length, MADV_POPULATE_READ) != 0) {
    int err = errno;
    Unpin(address, length);
    return -err;
  }
  return 0;
}

int Runtime::Unpin(void* address, size_t length) noexcept {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  if (!IsPageRange(begin, length)) return -EINVAL;
  return SetPinnedRange(begin, begin + length, /*whole_range=*/true, /*pinned=*/false);
}

int Runtime::PinAll(bool on_fault) noexcept {
  int rc = SetPinnedRange(0, UINTPTR_MAX, /*whole_range=*/false, /*pinned=*/true);
  if (rc != 0 || on_fault) return rc;
  // Make them resident, region by region, outside the registry lock (the faults this raises are
  // served by the fault-handler threads). A region unmapped meanwhile is simply skipped.
  for (uintptr_t next = 0;;) {
    uintptr_t base;
    size_t bytes;
    {
      RegionRegistry::Reader regions(registry_);
      Region* region = regions.FirstOverlap(next, UINTPTR_MAX);
      if (region == nullptr) return 0;
      base = region->base;
      bytes = region->bytes();
    }
    RawMadvise(reinterpret_cast<void*>(base), bytes, MADV_POPULATE_READ);
    next = base + bytes;
  }
}

void Runtime::UnpinAll() noexcept {
  SetPinnedRange(0, UINTPTR_MAX, /*whole_range=*/false, /*pinned=*/false);
}

void Runtime::PinFuture(bool enabled, bool on_fault) noexcept {
  pin_future_on_fault_.store(on_fault, std::memory_order_relaxed);
  pin_future_.store(enabled, std::memory_order_relaxed);
}

}  // namespace faultline
