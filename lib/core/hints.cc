#include "core/hints.h"

#include <time.h>
#include <unistd.h>

namespace faultline {

void HintQueue::Submit(const Hint& hint, int wake_fd) {
  for (;;) {
    {
      absl::MutexLock lock(&mutex_);
      if (count_ < kCapacity) {
        hints_[(first_ + count_) % kCapacity] = hint;
        ++count_;
        break;
      }
    }
    timespec pause{0, 100'000};  // the evictor is applying the queued ones
    nanosleep(&pause, nullptr);
  }
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd, &one, sizeof(one));
  (void)ignored;
}

bool HintQueue::Take(Hint* hint) {
  absl::MutexLock lock(&mutex_);
  if (count_ == 0) return false;
  *hint = hints_[first_];
  first_ = (first_ + 1) % kCapacity;
  --count_;
  return true;
}

}  // namespace faultline
