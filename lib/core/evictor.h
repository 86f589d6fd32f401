// Evictor: the background eviction thread (fl-evict) of a runtime. It sleeps until a fault pushes
// the charged pages above the high watermark (an eventfd write from Pager), then evicts batch
// after batch until they are at or below the low watermark, finishing its writes as they
// complete. Faults that find the hard limit reclaim directly (Pager::EnsureRoom) instead of
// waiting for it.
#ifndef FAULTLINE_LIB_CORE_EVICTOR_H_
#define FAULTLINE_LIB_CORE_EVICTOR_H_

#include <atomic>
#include <memory>
#include <thread>

#include "core/hints.h"
#include "core/pager.h"
#include "kernel/io_ring.h"

namespace faultline {

class Evictor {
 public:
  // `wake_fd`: a non-blocking eventfd written by Pager when eviction is needed, and by Stop().
  // `hints`: paging advice from program threads, applied on this thread (core/hints.h).
  Evictor(Pager* pager, RegionRegistry* registry, PageCounters* counters, int wake_fd,
          std::unique_ptr<IoRing> ring, uint32_t thread_index, HintQueue* hints);
  ~Evictor();

  void Start();
  // Stops the thread; it finishes its writes first.
  void Stop();

 private:
  void Run() noexcept;
  // One batch and its completions; returns whether pages left memory or I/O finished.
  bool EvictOnce(bool* active) noexcept;

  Pager* const pager_;
  RegionRegistry* const registry_;
  PageCounters* const counters_;
  HintQueue* const hints_;
  const int wake_fd_;
  std::unique_ptr<IoRing> ring_;
  IoContext ctx_;
  // Written by Stop(), read by the loop (release/acquire); the eventfd write wakes the loop.
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_EVICTOR_H_
