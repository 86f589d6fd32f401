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
uintptr_t EndOf(const Region& region) { return region.base + (region.pages.size() << kPageShift); }
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

int Runtime::Pin(void* address, size_t length, bool on_fault) noexcept {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  const uintptr_t end = begin + length;
  if (begin % kPageSize != 0 || length == 0 || length % kPageSize != 0) return -EINVAL;
  {
    RegionRegistry::Reader regions(registry_);
    // Every page must be managed, and the new pins must fit: count first, change nothing yet.
    int64_t unpinned = 0;
    for (uintptr_t at = begin; at < end;) {
      Region* region = regions.Find(at);
      if (region == nullptr) return -EINVAL;
      uintptr_t stop = std::min(end, EndOf(*region));
      for (uintptr_t page = at; page < stop; page += kPageSize) {
        unpinned += !region->pages.Peek((page - region->base) >> kPageShift).pinned();
      }
      at = stop;
    }
    int64_t pinned = pinned_pages_.load(std::memory_order_relaxed);
    do {
      if (pinned + unpinned > static_cast<int64_t>(config_.max_pinned_pages)) return -ENOMEM;
    } while (!pinned_pages_.compare_exchange_weak(pinned, pinned + unpinned));
    // Set the bits; another thread pinning the same pages meanwhile is why the reservation is
    // corrected by what actually changed.
    int64_t changed = 0;
    for (uintptr_t at = begin; at < end;) {
      Region* region = regions.Find(at);
      uintptr_t stop = std::min(end, EndOf(*region));
      changed += static_cast<int64_t>(
          SetPinned(*region, (at - region->base) >> kPageShift, (stop - at) >> kPageShift, true));
      at = stop;
    }
    pinned_pages_.fetch_sub(unpinned - changed, std::memory_order_relaxed);
  }
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
  const uintptr_t end = begin + length;
  if (begin % kPageSize != 0 || length == 0 || length % kPageSize != 0) return -EINVAL;
  RegionRegistry::Reader regions(registry_);
  for (uintptr_t at = begin; at < end;) {
    Region* region = regions.Find(at);
    if (region == nullptr) return -EINVAL;
    at = std::min(end, EndOf(*region));
  }
  for (uintptr_t at = begin; at < end;) {
    Region* region = regions.Find(at);
    uintptr_t stop = std::min(end, EndOf(*region));
    uint64_t changed =
        SetPinned(*region, (at - region->base) >> kPageShift, (stop - at) >> kPageShift, false);
    pinned_pages_.fetch_sub(static_cast<int64_t>(changed), std::memory_order_relaxed);
    at = stop;
  }
  return 0;
}

int Runtime::PinAll(bool on_fault) noexcept {
  {
    RegionRegistry::Reader regions(registry_);
    int64_t unpinned = 0;
    for (Region* r = regions.FirstOverlap(0, UINTPTR_MAX); r != nullptr;
         r = regions.FirstOverlap(EndOf(*r), UINTPTR_MAX)) {
      for (uint64_t i = 0; i < r->pages.size(); ++i) unpinned += !r->pages.Peek(i).pinned();
    }
    int64_t pinned = pinned_pages_.load(std::memory_order_relaxed);
    do {
      if (pinned + unpinned > static_cast<int64_t>(config_.max_pinned_pages)) return -ENOMEM;
    } while (!pinned_pages_.compare_exchange_weak(pinned, pinned + unpinned));
    int64_t changed = 0;
    for (Region* r = regions.FirstOverlap(0, UINTPTR_MAX); r != nullptr;
         r = regions.FirstOverlap(EndOf(*r), UINTPTR_MAX)) {
      changed += static_cast<int64_t>(SetPinned(*r, 0, r->pages.size(), true));
    }
    pinned_pages_.fetch_sub(unpinned - changed, std::memory_order_relaxed);
  }
  if (on_fault) return 0;
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
      bytes = region->pages.size() << kPageShift;
    }
    RawMadvise(reinterpret_cast<void*>(base), bytes, MADV_POPULATE_READ);
    next = base + bytes;
  }
}

void Runtime::UnpinAll() noexcept {
  RegionRegistry::Reader regions(registry_);
  for (Region* r = regions.FirstOverlap(0, UINTPTR_MAX); r != nullptr;
       r = regions.FirstOverlap(EndOf(*r), UINTPTR_MAX)) {
    uint64_t changed = SetPinned(*r, 0, r->pages.size(), false);
    pinned_pages_.fetch_sub(static_cast<int64_t>(changed), std::memory_order_relaxed);
  }
}

void Runtime::PinFuture(bool enabled, bool on_fault) noexcept {
  pin_future_on_fault_.store(on_fault, std::memory_order_relaxed);
  pin_future_.store(enabled, std::memory_order_relaxed);
}

}  // namespace faultline
