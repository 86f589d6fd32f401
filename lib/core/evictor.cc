#include "core/evictor.h"

#include <unistd.h>

#include <algorithm>

#include "core/threads.h"
#include "util/check.h"

namespace faultline {
namespace {
constexpr unsigned kCompletionsPerPop = 64;
// When eviction is needed but nothing could be evicted and no write is in flight (every
// candidate busy, or swap full), retry after this long, doubled at each fruitless retry up to
// kIdleCheckNs, instead of spinning.
constexpr int64_t kBusyRetryNs = 1'000'000;
// Without a wake-up, look at the counters this often anyway (a lost wake-up costs this much).
constexpr int64_t kIdleCheckNs = 50'000'000;
}  // namespace

Evictor::Evictor(Pager* pager, RegionRegistry* registry, PageCounters* counters, int wake_fd,
                 std::unique_ptr<IoRing> ring, uint32_t thread_index, HintQueue* hints)
    : pager_(pager),
      registry_(registry),
      counters_(counters),
      hints_(hints),
      wake_fd_(wake_fd),
      ring_(std::move(ring)),
      ctx_{ring_.get(), thread_index} {}

Evictor::~Evictor() { Stop(); }

void Evictor::Start() {
  thread_ = StartLibraryThread("fl-evict", [this] { Run(); });
}

void Evictor::Stop() {
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  if (thread_.joinable()) thread_.join();
}

bool Evictor::EvictOnce(bool* active) noexcept {
  RegionRegistry::Reader regions(*registry_);
  bool progress = false;
  IoCompletion completions[kCompletionsPerPop];
  unsigned n;
  while ((n = ring_->PopCompletions(completions, kCompletionsPerPop)) > 0) {
    for (unsigned i = 0; i < n; ++i) pager_->HandleCompletion(regions, completions[i]);
    progress = true;
  }
  Hint hint;
  while (hints_->Take(&hint)) {
    pager_->ApplyHint(ctx_, regions, hint.begin, hint.end, hint.advice);
    if (hint.done != nullptr) hint.done->store(1, std::memory_order_release);
    progress = true;
  }
  uint64_t charged = static_cast<uint64_t>(counters_->charged());
  if (charged > pager_->high_watermark()) *active = true;
  if (*active && charged <= pager_->low_watermark()) *active = false;
  if (*active) {
    uint64_t want = charged - pager_->low_watermark();
    progress |= pager_->ReclaimBatch(ctx_, regions, static_cast<uint32_t>(want)) > 0;
  }
  return progress;
}

void Evictor::Run() noexcept {
  // Armed for the thread's life (IoRing re-arms a multishot poll the kernel ends).
  FL_CHECK(ring_->QueuePollIn(wake_fd_, MakeUserData(IoKind::kPollWake, 0)),
           "arming the evictor's poll");
  bool active = false;
  int64_t retry_ns = kBusyRetryNs;
  while (!stopping_.load(std::memory_order_acquire)) {
    if (EvictOnce(&active)) {
      retry_ns = kBusyRetryNs;
      continue;
    }
    // Take the wake-up request before looking at the counters again, so that a fault crossing
    // the watermark after this point writes the eventfd anew.
    pager_->evictor_woken_.store(false, std::memory_order_relaxed);
    uint64_t drained;
    ssize_t ignored = read(wake_fd_, &drained, sizeof(drained));
    (void)ignored;
    // A fault crossed the watermark since EvictOnce looked (its wake-up was just drained).
    if (!active && static_cast<uint64_t>(counters_->charged()) > pager_->high_watermark()) continue;
    int64_t timeout = kIdleCheckNs;
    if (active && ring_->in_flight() > 0) {
      timeout = -1;
    } else if (active) {
      // Over the watermark with nothing evictable (every page dirty with swap full, or busy):
      // looking again at once would spin. Back off until something changes; a wake-up or a
      // completion ends the wait early.
      timeout = retry_ns;
      retry_ns = std::min(retry_ns * 2, kIdleCheckNs);
    }
    int rc = ring_->SubmitAndWait(timeout);
    FL_CHECK(rc == 0 || rc == -EINTR || rc == -ETIME, "io_uring wait in the evictor");
  }
  while (ring_->in_flight() > 0) {
    RegionRegistry::Reader regions(*registry_);
    pager_->WaitForOwnIo(ctx_, regions);
  }
}

}  // namespace faultline
