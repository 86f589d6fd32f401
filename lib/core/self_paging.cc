#include "core/self_paging.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>

#include "core/pager.h"
#include "core/threads.h"
#include "util/status.h"

namespace faultline {
namespace {

std::atomic<SigbusTarget*> g_target{nullptr};
// The handler installed before faultline's; written only while no target is installed.
struct sigaction g_previous {};

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Whether the faulting access was a write: bit 1 of the x86 page-fault error code, which the
// kernel passes in the signal context. Elsewhere every fault counts as a write, which is safe (a
// read would only mark a clean page dirty).
bool IsWriteFault(const void* context) noexcept {
#if defined(__x86_64__)
  const auto* uc = static_cast<const ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
  (void)context;
  return true;
#endif
}

// Hands a signal that is not faultline's to the handler installed before. With the default
// disposition (or SIG_IGN, which the kernel overrides for a synchronous SIGBUS) the handler is
// reset and the access retried, so the process dies of this SIGBUS as it would without faultline.
void PassOn(int signal_number, siginfo_t* info, void* context) noexcept {
  const struct sigaction& previous = g_previous;
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(signal_number, info, context);
  } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
    signal(signal_number, SIG_DFL);
  } else {
    previous.sa_handler(signal_number);
  }
}

void OnSigbus(int signal_number, siginfo_t* info, void* context) {
  int saved_errno = errno;
  if (OnLibraryThread()) {
    // A library thread's fault (core/threads.h) is faultline's bug: stop, naming it.
    if (info->si_code > 0) {
      LibraryThreadFaulted(gettid(), reinterpret_cast<uintptr_t>(info->si_addr), "SIGBUS");
    }
    // A SIGBUS sent to the process (kill) belongs on a program thread: this thread blocks
    // SIGBUS from now on (the mask restored on return) and sends it to the process again.
    sigaddset(&static_cast<ucontext_t*>(context)->uc_sigmask, SIGBUS);
    syscall(SYS_rt_sigqueueinfo, getpid(), signal_number, info);
    errno = saved_errno;
    return;
  }
  SigbusTarget* target = g_target.load(std::memory_order_acquire);
  bool handled = target != nullptr && info->si_code == BUS_ADRERR &&
                 target->ResolveSigbus(reinterpret_cast<uintptr_t>(info->si_addr),
                                       IsWriteFault(context), MonotonicNanos());
  if (!handled) PassOn(signal_number, info, context);
  errno = saved_errno;
}

}  // namespace

absl::Status InstallSigbusHandler(SigbusTarget* target) {
  SigbusTarget* current = g_target.load(std::memory_order_acquire);
  if (current == target) return absl::OkStatus();
  if (current != nullptr) return ErrnoError(EBUSY, "installing the SIGBUS handler", "taken");
  struct sigaction action {};
  action.sa_sigaction = OnSigbus;
  // SA_ONSTACK: a program with an alternate signal stack keeps using it.
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  g_target.store(target, std::memory_order_release);
  if (sigaction(SIGBUS, &action, &g_previous) != 0) {
    int err = errno;
    g_target.store(nullptr, std::memory_order_release);
    return ErrnoError(err, "installing the SIGBUS handler for self-paging regions");
  }
  return absl::OkStatus();
}

void RemoveSigbusHandler() {
  if (g_target.load(std::memory_order_acquire) == nullptr) return;
  struct sigaction current {};
  sigaction(SIGBUS, nullptr, &current);
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == OnSigbus) {
    sigaction(SIGBUS, &g_previous, nullptr);
  }
  g_target.store(nullptr, std::memory_order_release);
}

void FaultMailbox::Submit(uintptr_t address, uint64_t flags, uint64_t start_ns) noexcept {
  // At most kSlots faulting threads wait at once; more wait for a free slot.
  int slot = -1;
  while (slot < 0) {
    for (int i = 0; i < kSlots && slot < 0; ++i) {
      uint32_t expected = kFree;
      if (slots_[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire)) {
        slot = i;
      }
    }
    if (slot < 0) {
      timespec pause = {0, 50 * 1000};
      nanosleep(&pause, nullptr);
    }
  }
  Slot& s = slots_[slot];
  s.address = address;
  s.flags = flags;
  s.start_ns = start_ns;
  s.state.store(kQueued, std::memory_order_release);
  queued_.fetch_add(1, std::memory_order_acq_rel);
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  for (;;) {
    uint32_t state = s.state.load(std::memory_order_acquire);
    if (state == kDone) break;
    FutexWait(&s.state, state);
  }
  s.state.store(kFree, std::memory_order_release);
}

int FaultMailbox::Take() noexcept {
  if (!MaybeQueued()) return -1;
  for (int i = 0; i < kSlots; ++i) {
    uint32_t expected = kQueued;
    if (slots_[i].state.compare_exchange_strong(expected, kTaken, std::memory_order_acquire)) {
      queued_.fetch_sub(1, std::memory_order_acq_rel);
      return i;
    }
  }
  return -1;
}

void FaultMailbox::Complete(int slot) noexcept {
  slots_[slot].state.store(kDone, std::memory_order_release);
  FutexWake(&slots_[slot].state);
}

}  // namespace faultline
