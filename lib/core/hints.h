// HintQueue: paging advice that needs I/O (MADV_PAGEOUT, MADV_WILLNEED) or the eviction policy
// (MADV_COLD), passed from program threads to the evictor thread, which owns an io_uring ring
// and applies it (Pager::ApplyHint). A program thread has no ring of its own. Fixed capacity, no
// allocation; Submit waits while the queue is full.
#ifndef FAULTLINE_LIB_CORE_HINTS_H_
#define FAULTLINE_LIB_CORE_HINTS_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace faultline {

struct Hint {
  uintptr_t begin;
  uintptr_t end;
  int advice;  // MADV_PAGEOUT, MADV_WILLNEED or MADV_COLD
  // Set to 1 (release) by the evictor once the hint is applied; nullptr: nobody waits.
  std::atomic<int>* done;
};

class HintQueue {
 public:
  // Queues `hint` and wakes the evictor through `wake_fd`.
  void Submit(const Hint& hint, int wake_fd) ABSL_LOCKS_EXCLUDED(mutex_);
  // The oldest queued hint, if any.
  bool Take(Hint* hint) ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  static constexpr int kCapacity = 64;
  absl::Mutex mutex_;
  std::array<Hint, kCapacity> hints_ ABSL_GUARDED_BY(mutex_);
  int first_ ABSL_GUARDED_BY(mutex_) = 0;
  int count_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_HINTS_H_
