// Self-paging: faults of FL_MAP_SELF_PAGING regions are resolved on the faulting thread itself.
//
// Why: a fault that a fault-handler thread resolves costs the faulting thread a sleep and a
// cross-CPU wake-up (KERNEL.md: about 17 us per isolated fault here, against 1.3 us for the
// kernel). Such regions are registered with a second userfaultfd opened with UFFD_FEATURE_SIGBUS:
// the kernel raises SIGBUS (BUS_ADRERR) on the faulting thread instead of queueing a message, and
// faultline's SIGBUS handler resolves the fault there and returns, which retries the access.
//
// What the handler does itself: zero fill (with fault-around) while the limit has room, and the
// first write to a clean page (write-protect). Everything else (swap-in, rescue of a page being
// evicted, zero fill that needs reclaim first) is forwarded to the fault-handler threads through
// the FaultMailbox, and the faulting thread sleeps on a futex until that fault is served.
//
// The price, which is why it is opt-in: a system call that reads or writes a page of such a region
// that is not resident fails with EFAULT (the kernel cannot run a signal handler inside a system
// call), so only memory that the program touches with loads and stores may be self-paging.
//
// Signal safety: the handler runs on an application thread interrupted anywhere outside
// faultline's own code. It uses atomics, ioctl/write/futex system calls, the registry's read lock
// and leaf mutexes (slot allocator) that application threads never hold outside this handler, and
// faultline code never touches managed memory while holding a lock, so none can be re-entered. It
// never allocates; it logs only on errors that are fatal anyway.
#ifndef FAULTLINE_LIB_CORE_SELF_PAGING_H_
#define FAULTLINE_LIB_CORE_SELF_PAGING_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"

namespace faultline {

// What the SIGBUS handler calls for a BUS_ADRERR fault. Implemented by the Runtime.
class SigbusTarget {
 public:
  virtual ~SigbusTarget() = default;
  // Resolves the fault at `address` on the calling (faulting) thread, or has it resolved and
  // waits. Returns false when `address` is not in a self-paging region: the signal is then passed
  // to the handler that was installed before faultline's.
  virtual bool ResolveSigbus(uintptr_t address, bool write, uint64_t start_ns) noexcept = 0;
};

// Installs faultline's SIGBUS handler for `target`, remembering the one installed before.
// Idempotent for the same target. REQUIRES: no other target installed.
absl::Status InstallSigbusHandler(SigbusTarget* target);
// Restores the handler installed before, unless the program has replaced faultline's meanwhile.
void RemoveSigbusHandler();

// Faults forwarded by faulting threads (in their SIGBUS handler) to the fault-handler threads.
// Submit() is async-signal-safe; the other members are for the fault-handler threads.
class FaultMailbox {
 public:
  static constexpr int kSlots = 64;

  // `wake_fd`: an eventfd (EFD_NONBLOCK) that fault-handler threads poll; not owned.
  explicit FaultMailbox(int wake_fd) : wake_fd_(wake_fd) {}

  // Queues the fault and sleeps until a fault-handler thread calls Complete() on it.
  void Submit(uintptr_t address, uint64_t flags, uint64_t start_ns) noexcept;

  // Claims one queued fault; returns its slot, or -1 when none is queued.
  int Take() noexcept;
  uintptr_t address(int slot) const noexcept { return slots_[slot].address; }
  uint64_t flags(int slot) const noexcept { return slots_[slot].flags; }
  uint64_t start_ns(int slot) const noexcept { return slots_[slot].start_ns; }
  // Wakes the faulting thread of a taken slot and frees the slot.
  void Complete(int slot) noexcept;

  // Whether some fault may be queued (cheap; for the fault-handler threads' polling loop).
  bool MaybeQueued() const noexcept { return queued_.load(std::memory_order_acquire) > 0; }
  int wake_fd() const noexcept { return wake_fd_; }

 private:
  // kFree -> kFilling (submitter) -> kQueued -> kTaken (handler) -> kDone -> kFree (submitter).
  enum : uint32_t { kFree, kFilling, kQueued, kTaken, kDone };
  struct Slot {
    std::atomic<uint32_t> state{kFree};  // also the futex word the submitter sleeps on
    uintptr_t address = 0;
    uint64_t flags = 0;
    uint64_t start_ns = 0;
  };

  const int wake_fd_;
  std::atomic<int> queued_{0};
  Slot slots_[kSlots];
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_SELF_PAGING_H_
