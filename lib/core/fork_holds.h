// ForkHolds: keeps the parent from reusing swap slots that a forked child still has to read.
//
// Right after fork() a child reads its evicted pages from the parent's swap file
// (Pager::MaterializeInChild), so the slots the parent held at the fork must keep their bytes
// until the child is done. Before each fork the parent begins a hold on its slot allocator
// (SwapSlotAllocator::BeginHold) and makes a pipe; the child closes the pipe's write end when it
// has read everything (or by exiting). A thread (fl-fork) watches the read ends and ends each
// hold at end-of-file.
#ifndef FAULTLINE_LIB_CORE_FORK_HOLDS_H_
#define FAULTLINE_LIB_CORE_FORK_HOLDS_H_

#include <array>
#include <atomic>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "swap/slot_allocator.h"

namespace faultline {

class ForkHolds {
 public:
  struct Pipe {
    int read_fd = -1;
    int write_fd = -1;
  };

  // Starts the watching thread, which `wake_fd` (a non-blocking eventfd, owned from now on)
  // wakes. Throws std::system_error when the thread cannot be started.
  ForkHolds(SwapSlotAllocator* slots, int wake_fd);
  ~ForkHolds();
  ForkHolds(const ForkHolds&) = delete;
  ForkHolds& operator=(const ForkHolds&) = delete;

  // Parent, before fork(): begins a hold. Returns a pipe with read_fd < 0 when none could be made
  // (too many children reading at once, or no file descriptors): then there is no hold, and a
  // child that finds a slot reused reports the page as lost (checksum) instead of using it.
  Pipe Begin() noexcept;
  // Parent, after fork(): closes the write end and watches the read end.
  void Watch(Pipe pipe) noexcept;
  // Child, after fork(): ChildStarted at once, ChildDone once it has read the slots.
  static void ChildStarted(Pipe pipe) noexcept;
  static void ChildDone(Pipe pipe) noexcept;

 private:
  static constexpr int kMaxWatched = 64;

  void Run() noexcept;

  SwapSlotAllocator* const slots_;
  const int wake_fd_;
  absl::Mutex mutex_;
  std::array<int, kMaxWatched> watched_ ABSL_GUARDED_BY(mutex_);
  int begun_ ABSL_GUARDED_BY(mutex_) = 0;  // holds begun and not yet ended
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_FORK_HOLDS_H_
