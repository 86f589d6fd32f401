#include "core/pager.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "util/check.h"
#include "util/log.h"

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
  if (static_cast<uint64_t>(r_.counters->charged()) <= high_watermark_) return;
  if (evictor_woken_.exchange(true, std::memory_order_relaxed)) return;
  uint64_t one = 1;
  ssize_t ignored = write(r_.evictor_wake_fd, &one, sizeof(one));
  (void)ignored;
}

void Pager::EnsureRoom(IoContext& ctx, const RegionRegistry::Reader& regions,
                       uint32_t pages) noexcept {
  WakeEvictorIfNeeded();
  bool counted = false;
  // Bounded: each round frees pages, finishes some of this thread's writes, or waits a moment
  // for the thread whose writes hold every staging buffer (the evictor, usually). When nothing is
  // evictable for another reason (swap full, all pinned or busy), it gives up at once.
  constexpr int kMaxStagingWaits = 2000;  // x 20 us: 40 ms, a long stall of the disk
  int staging_waits = 0;
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
      continue;
    }
    if (WaitForOwnIo(ctx, regions)) continue;
    if (!staging_busy || ++staging_waits > kMaxStagingWaits) break;
    timespec pause{0, 20'000};
    nanosleep(&pause, nullptr);
  }
  int64_t over = r_.counters->charged() + pages - static_cast<int64_t>(config_.limit_pages);
  if (over > 0) {
    r_.stats->limit_overshoot_pages.Max(static_cast<uint64_t>(over));
    if (!overshoot_logged_.exchange(true)) {
      Log().warn(
          "memory limit exceeded by {} pages: nothing could be evicted (swap full, or every "
          "resident page pinned or busy); faults are served anyway",
          over);
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

void Pager::ReleaseRegionSlots(Region& region) noexcept {
  for (uint64_t i = 0; i < region.pages.size(); ++i) {
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
