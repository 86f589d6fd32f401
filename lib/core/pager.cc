#include "core/pager.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "kernel/uffd.h"
#include "util/check.h"
#include "util/log.h"
#include "util/raw_memory.h"

namespace faultline {

uint64_t MonotonicNanos() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

Pager::Pager(const PagerConfig& config, const PagerResources& resources)
    : config_(config), r_(resources), checksums_(resources.swap->slot_count() + 1) {
  // The evictor starts above the high watermark and stops at the low one; the gap is a few
  // batches (1/32 of the limit, bounded), so that it works in bursts of whole batches while
  // faults rarely find the hard limit.
  uint64_t gap = std::clamp<uint64_t>(config_.limit_pages / 32, config_.evict_batch_pages,
                                      uint64_t{16} * config_.evict_batch_pages);
  high_watermark_ = config_.limit_pages > gap ? config_.limit_pages - gap / 2 : 0;
  low_watermark_ = high_watermark_ > gap ? high_watermark_ - gap : 0;

  read_ops_.resize(r_.read_staging->chunks());
  write_batches_.resize(r_.evict_staging->chunks());
  for (WriteBatch& batch : write_batches_) {
    batch.victim.resize(config_.evict_batch_pages);
    batch.write.resize(config_.evict_batch_pages);
  }
}

uint32_t Pager::RoomFor(uint32_t wanted) const noexcept {
  int64_t free = static_cast<int64_t>(config_.limit_pages) - r_.counters->charged();
  if (free <= 1) return 1;
  return static_cast<uint32_t>(std::min<int64_t>(wanted, free));
}

void Pager::WakeEvictorIfNeeded() noexcept {
  uint64_t charged = static_cast<uint64_t>(std::max<int64_t>(0, r_.counters->charged()));
  r_.stats->peak_charged_pages.Max(charged);
  if (charged <= high_watermark_) return;
  if (evictor_woken_.exchange(true, std::memory_order_relaxed)) return;
  uint64_t one = 1;
  ssize_t ignored = write(r_.evictor_wake_fd, &one, sizeof(one));
  (void)ignored;
}

void Pager::EnsureRoom(IoContext& ctx, const RegionRegistry::Reader& regions,
                       uint32_t pages) noexcept {
  WakeEvictorIfNeeded();
  // A fork is copying the process: the limit gives for that moment (PauseEviction).
  if (eviction_pauses_.load(std::memory_order_relaxed) > 0) return;
  bool counted = false;
  // Bounded: each round frees pages, finishes some of this thread's writes, or waits a moment
  // for the thread whose writes hold every staging buffer (the evictor, usually). When nothing is
  // evictable for another reason (swap full, all pinned or busy), it gives up at once. The wait
  // for writes is bounded only against a disk that stopped answering: a fixed 40 ms, the bound
  // before, was exceeded by ordinary writes on a loaded machine, and the limit gave each time.
  constexpr uint64_t kMaxWriteStallNs = 1'000'000'000;
  uint64_t stalled_since = 0;
  for (;;) {
    int64_t over = r_.counters->charged() + pages - static_cast<int64_t>(config_.limit_pages);
    if (over <= 0) return;
    if (!counted) {
      r_.stats->direct_reclaims.Add();
      counted = true;
    }
    uint32_t want = static_cast<uint32_t>(std::min<int64_t>(over, config_.evict_batch_pages));
    bool staging_busy = false;
    if (ReclaimBatch(ctx, regions, std::max(want, config_.evict_batch_pages / 4), &staging_busy) >
        0) {
      stalled_since = 0;
      continue;
    }
    if (WaitForOwnIo(ctx, regions)) {
      stalled_since = 0;
      continue;
    }
    if (!staging_busy) break;
    const uint64_t now = MonotonicNanos();
    if (stalled_since == 0) stalled_since = now;
    if (now - stalled_since > kMaxWriteStallNs) break;
    timespec pause{0, 20'000};
    nanosleep(&pause, nullptr);
  }
  // A fork that started meanwhile stopped eviction: the limit gives for that moment, by design.
  if (eviction_pauses_.load(std::memory_order_relaxed) > 0) return;
  int64_t over = r_.counters->charged() + pages - static_cast<int64_t>(config_.limit_pages);
  if (over > 0) {
    // Real: this fault is served over the limit. Seen in two ways: the resident pages were all
    // there when the process forked and are not its own alone until written (UFFDIO_MOVE refuses
    // them, also after the child has exited), or every eviction buffer waited for swap writes
    // for longer than the bound above (a second without one finishing). Pages faulted in from here
    // on are evictable, so the excess stays small (docs/design.md, "Known limits").
    r_.stats->limit_overshoot_pages.Max(static_cast<uint64_t>(over));
    if (!overshoot_logged_.exchange(true)) {
      Log().warn(
          "memory limit exceeded: nothing could be evicted (pages still shared with a forked "
          "child, swap writes stalled, swap full, or every resident page busy or read-only); "
          "faults are served over the limit (limit_overshoot_pages gives the largest excess)");
    }
  }
}

void Pager::HandleCompletion(const RegionRegistry::Reader& regions,
                             const IoCompletion& completion) noexcept {
  uint64_t value = ValueOf(completion.user_data);
  switch (KindOf(completion.user_data)) {
    case IoKind::kRead:
      FinishRead(regions, static_cast<int>(value), completion.result);
      break;
    case IoKind::kWrite:
      FinishWrite(regions, static_cast<int>(value >> 16), static_cast<uint32_t>(value & 0xffff),
                  completion.result);
      break;
    case IoKind::kPollUffd:
    case IoKind::kPollWake:
      break;
  }
}

bool Pager::WaitForOwnIo(IoContext& ctx, const RegionRegistry::Reader& regions) noexcept {
  if (ctx.ring->in_flight() == 0) return false;
  int rc = ctx.ring->SubmitAndWait(-1);
  FL_CHECK(rc == 0 || rc == -EINTR || rc == -ETIME, "io_uring wait failed");
  IoCompletion completions[32];
  unsigned n;
  while ((n = ctx.ring->PopCompletions(completions, 32)) > 0) {
    for (unsigned i = 0; i < n; ++i) HandleCompletion(regions, completions[i]);
  }
  return true;
}

template <typename Apply>
uint64_t Pager::ForEachLockedRun(Region& region, uint64_t first, uint64_t count,
                                 Apply apply) noexcept {
  constexpr uint32_t kRun = 512;
  PageWord words[kRun];
  uint64_t index = first;
  const uint64_t end = first + count;
  while (index < end) {
    // Lock a run in ascending order, stopping before a page whose read is in flight.
    uint32_t n = 0;
    while (n < kRun && index + n < end) {
      PageWord word = region.pages.Lock(index + n);
      if (word.state() == PageState::kLoading) {
        region.pages.Unlock(index + n, word);
        break;
      }
      words[n++] = word;
    }
    if (n == 0) break;
    apply(index, words, n);
    index += n;
  }
  return index - first;
}

void Pager::DropOutOfMemory(Region& region, uint64_t index, PageWord word) noexcept {
  // An EVICTING page's write completion finds the page changed and frees the slot it wrote.
  if (word.state() == PageState::kSwapped) r_.slots->Free(word.payload());
  region.pages.Transition(index, word, word.With(PageState::kEmpty, 0));
}

uint64_t Pager::Discard(const RegionRegistry::Reader& regions, Region& region, uint64_t first,
                        uint64_t count) noexcept {
  return ForEachLockedRun(region, first, count, [&](uint64_t index, PageWord* words, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {  // snapshots keep the bytes the program discards
      words[i] =
          CopyToSnapshots(regions, region, index + i, words[i], region.PageAddress(index + i));
    }
    // Regions are locked (Runtime::Map), so plain MADV_DONTNEED would be refused.
    RawMadvise(region.PageAddress(index), size_t{n} << kPageShift, MADV_DONTNEED_LOCKED);
    for (uint32_t i = 0; i < n; ++i) {
      PageWord word = words[i];
      switch (word.state()) {
        case PageState::kResident:
          if (word.clean()) r_.slots->Free(word.payload());
          region.pages.Transition(index + i, word, word.With(PageState::kEmpty, 0));
          break;
        case PageState::kSwapped:
        case PageState::kEvicting:
          DropOutOfMemory(region, index + i, word);
          break;
        case PageState::kEmpty:  // a page of a saved snapshot not read yet now reads as zeros
          region.pages.Unlock(index + i, PageWord().WithAdvice(word.advice()));
          break;
        default:
          // POISONED stays so: the program does not get zeros for a page it lost.
          region.pages.Unlock(index + i, word);
          break;
      }
    }
  });
}

uint64_t Pager::MarkFreeable(const RegionRegistry::Reader& regions, Region& region, uint64_t first,
                             uint64_t count) noexcept {
  (void)regions;
  return ForEachLockedRun(region, first, count, [&](uint64_t index, PageWord* words, uint32_t n) {
    // From here a write to any of them faults (HandleWriteProtect clears FREEABLE).
    uffd::WriteProtect(region.uffd, region.PageAddress(index), size_t{n} << kPageShift, true);
    for (uint32_t i = 0; i < n; ++i) {
      PageWord word = words[i];
      switch (word.state()) {
        case PageState::kResident:
          region.pages.Unlock(index + i, word.WithFlag(PageWord::kFreeable, true));
          break;
        case PageState::kSwapped:
        case PageState::kEvicting:
          DropOutOfMemory(region, index + i, word);
          break;
        default:
          region.pages.Unlock(index + i, word);
          break;
      }
    }
  });
}

void Pager::ReleaseRegionSlots(Region& region) noexcept {
  ReleaseSlots(region, 0, region.pages.size());
}

void Pager::ReleaseSlots(Region& region, uint64_t first, uint64_t count) noexcept {
  for (uint64_t i = first; i < first + count; ++i) {
    PageWord word = region.pages.Peek(i);
    FL_CHECK(!word.locked(), "page locked in a removed region");
    switch (word.state()) {
      case PageState::kSwapped:
      case PageState::kLoading:
        r_.slots->Free(word.payload());
        break;
      case PageState::kResident:
        if (word.clean()) r_.slots->Free(word.payload());
        break;
      default:
        break;
    }
  }
}

}  // namespace faultline
