#include "core/fault_handler.h"

#include <linux/userfaultfd.h>
#include <unistd.h>

#include <string>

#include "core/threads.h"
#include "kernel/uffd.h"
#include "util/check.h"
#include "util/log.h"

namespace faultline {
namespace {
constexpr int kMessagesPerRead = 64;
constexpr unsigned kCompletionsPerPop = 64;
}  // namespace

FaultHandler::FaultHandler(Pager* pager, RegionRegistry* registry, int uffd, int stop_fd,
                           int64_t spin_ns, std::unique_ptr<IoRing> ring, uint32_t slot_stream)
    : pager_(pager),
      registry_(registry),
      uffd_(uffd),
      stop_fd_(stop_fd),
      spin_ns_(spin_ns),
      ring_(std::move(ring)),
      ctx_{ring_.get(), slot_stream} {}

FaultHandler::~FaultHandler() { Stop(); }

void FaultHandler::Start(int number) {
  thread_ = StartLibraryThread("fl-fault-" + std::to_string(number), [this] { Run(); });
}

void FaultHandler::Stop() {
  // The flag first, then the wake-up: a thread woken before the flag is set would sleep again.
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  if (thread_.joinable()) thread_.join();
}

bool FaultHandler::ServeOnce() noexcept {
  uffd_msg messages[kMessagesPerRead];
  IoCompletion completions[kCompletionsPerPop];
  RegionRegistry::Reader regions(*registry_);
  // Completions first, messages second: a poll completion for a fault is consumed here only
  // before the read below, which then sees that fault. (The other order loses the wake-up of a
  // fault that arrives between the read and the pop, and the thread sleeps on it.)
  bool worked = false;
  unsigned c;
  while ((c = ring_->PopCompletions(completions, kCompletionsPerPop)) > 0) {
    for (unsigned i = 0; i < c; ++i) {
      IoKind kind = KindOf(completions[i].user_data);
      // A stop wake-up counts as work, so that the loop looks at its stop flag before it sleeps:
      // otherwise a handler whose wake-up came with another handler's stop could sleep through
      // its own (seen with 2 fault threads: shutdown hung within 50 init/shutdown cycles).
      worked |= kind == IoKind::kRead || kind == IoKind::kWrite || kind == IoKind::kPollWake;
      pager_->HandleCompletion(regions, completions[i]);
    }
  }
  int n = uffd::ReadMessages(uffd_, messages, kMessagesPerRead);
  FL_CHECK(n >= 0, "reading the userfaultfd failed");
  if (n > 0) {
    worked = true;
    uint64_t now = MonotonicNanos();
    for (int i = 0; i < n; ++i) {
      // Only page faults arrive: the runtime's uffd enables no non-cooperative events.
      if (messages[i].event != UFFD_EVENT_PAGEFAULT) continue;
      pager_->HandleFault(ctx_, regions, messages[i].arg.pagefault.address,
                          messages[i].arg.pagefault.flags, now);
    }
  }
  return worked;
}

void FaultHandler::Run() noexcept {
  // Both polls stay armed for the thread's life (IoRing re-arms a multishot poll the kernel ends).
  FL_CHECK(ring_->QueuePollIn(uffd_, MakeUserData(IoKind::kPollUffd, 0)) &&
               ring_->QueuePollIn(stop_fd_, MakeUserData(IoKind::kPollWake, 0)),
           "arming the fault handler's polls");
  uint64_t last_work = MonotonicNanos();
  while (!stopping_.load(std::memory_order_acquire)) {
    if (ServeOnce()) {
      last_work = MonotonicNanos();
      continue;
    }
    if (spin_ns_ > 0 && static_cast<int64_t>(MonotonicNanos() - last_work) < spin_ns_) {
      __builtin_ia32_pause();
      continue;
    }
    int rc = ring_->SubmitAndWait(-1);
    FL_CHECK(rc == 0 || rc == -EINTR || rc == -ETIME, "io_uring wait in the fault handler");
  }
  while (ring_->in_flight() > 0) {
    RegionRegistry::Reader regions(*registry_);
    pager_->WaitForOwnIo(ctx_, regions);
  }
}

}  // namespace faultline
