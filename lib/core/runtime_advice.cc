// The program's paging advice (Runtime::Advise, madvise through the interposer and fl_advise) and
// fl_prefetch. Discards and MADV_FREE act on the page words under the registry's read lock;
// readahead advice is a field of the page words; PAGEOUT, COLD and WILLNEED need a ring and go to
// the evictor (core/hints.h). No thread here waits for another thread's I/O while it holds the
// registry lock (docs/design.md, "Lock order").
#include <sys/mman.h>

#include <algorithm>
#include <atomic>

#include "core/runtime.h"
#include "util/raw_memory.h"

namespace faultline {
namespace {

// REQUIRES: advice is MADV_NORMAL, MADV_SEQUENTIAL or MADV_RANDOM.
ReadaheadAdvice ToReadahead(int advice) {
  switch (advice) {
    case MADV_SEQUENTIAL:
      return ReadaheadAdvice::kSequential;
    case MADV_RANDOM:
      return ReadaheadAdvice::kRandom;
    default:
      return ReadaheadAdvice::kNormal;
  }
}

}  // namespace

int Runtime::Advise(void* address, size_t length, int advice) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  const uintptr_t end = begin + length;
  enum class Action { kDiscard, kFree, kReadahead, kHint, kAccept, kKernel };
  Action action;
  switch (advice) {
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
      action = Action::kDiscard;
      break;
    case MADV_FREE:
      action = Action::kFree;
      break;
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
      action = Action::kReadahead;
      break;
    case MADV_WILLNEED:
    case MADV_COLD:
    case MADV_PAGEOUT:
      action = Action::kHint;
      break;
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_MERGEABLE:
    case MADV_UNMERGEABLE:
      // Hints about paging: faultline is the pager of this memory, and the kernel would refuse
      // some of them for its locked regions. Accepted; they do not change what the program reads.
      action = Action::kAccept;
      break;
    default:
      action = Action::kKernel;
      break;
  }
  // The parts that are not managed get the kernel's answer as they would have. A discard stops
  // at a page whose read is in flight (Pager::Discard): this thread waits for the read with the
  // registry lock released, then goes on from that page. Waiting under the lock would deadlock:
  // the reading thread takes the lock anew to finish its read, and a writer queued meanwhile
  // lets no new reader in (docs/design.md, "Lock order").
  int result = 0;
  for (uintptr_t at = begin; at < end;) {
    {
      RegionRegistry::Reader regions(registry_);
      while (at < end) {
        Region* region = regions.FirstOverlap(at, end);
        uintptr_t managed_begin = region != nullptr ? std::max(at, region->base) : end;
        if (managed_begin > at &&
            RawMadvise(reinterpret_cast<void*>(at), managed_begin - at, advice) != 0) {
          result = -errno;
        }
        if (region == nullptr) {
          at = end;
          break;
        }
        uintptr_t managed_end = std::min(end, region->end());
        const uint64_t first = (managed_begin - region->base) >> kPageShift;
        const uint64_t count = (managed_end - managed_begin) >> kPageShift;
        uint64_t done = count;
        switch (action) {
          case Action::kDiscard:
            done = pager_->Discard(regions, *region, first, count);
            break;
          case Action::kFree:
            done = pager_->MarkFreeable(regions, *region, first, count);
            break;
          case Action::kReadahead:
            pager_->SetReadahead(*region, first, count, ToReadahead(advice));
            break;
          case Action::kHint:
          case Action::kAccept:
            break;
          case Action::kKernel:
            if (RawMadvise(reinterpret_cast<void*>(managed_begin), managed_end - managed_begin,
                           advice) != 0) {
              result = -errno;
            }
            break;
        }
        at = managed_begin + (done << kPageShift);
        if (done < count) break;
      }
    }
    if (at < end) {
      PauseForOtherThreads();
    }
  }
  // Outside the registry lock: the evictor needs it to apply the hint, and a writer waiting for
  // the lock would keep the evictor out while this thread waits.
  if (action == Action::kHint) {
    // Applied by the evictor, which has an io_uring ring. PAGEOUT waits for it ("evicts now"),
    // and so does COLD, as the kernel's does: the pages are the next to go once it returns.
    const bool wait = advice == MADV_PAGEOUT || advice == MADV_COLD;
    std::atomic<int> done{0};
    hints_.Submit(Hint{begin, end, advice, wait ? &done : nullptr}, evictor_wake_fd_);
    while (wait && done.load(std::memory_order_acquire) == 0) {
      PauseForOtherThreads();
    }
  }
  return result;
}

int Runtime::Prefetch(void* address, size_t length, bool wait) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  if (begin % kPageSize != 0 || length == 0 || length % kPageSize != 0) return -EINVAL;
  // `done` lives on this frame: only a caller that waits lends it to the evictor.
  std::atomic<int> done{0};
  hints_.Submit(Hint{begin, begin + length, MADV_WILLNEED, wait ? &done : nullptr},
                evictor_wake_fd_);
  if (!wait) return 0;
  // The reads are started once `done` is set; then wait for the pages to leave LOADING.
  auto loading = [&] {
    if (done.load(std::memory_order_acquire) == 0) return true;
    RegionRegistry::Reader regions(registry_);
    bool any = false;
    regions.ForEachOverlap(begin, begin + length,
                           [&](Region& r) { any |= r.pages.Count(PageState::kLoading) > 0; });
    return any;
  };
  while (loading()) {
    PauseForOtherThreads();
  }
  return 0;
}

}  // namespace faultline
