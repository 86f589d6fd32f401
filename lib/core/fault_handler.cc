#include "core/fault_handler.h"

#include <linux/userfaultfd.h>
#include <sched.h>
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
constexpr int64_t kLoadingRecheckNs = 20 * 1000;

// Spinning pays only when the faulting thread runs on another CPU. Confined to one CPU, the
// spinning handler keeps that CPU from the thread it has just woken for the rest of its spin:
// p99 209 us against 10 us without spinning (bench/README.md, "spin_us").
bool MayRunOnSeveralCpus() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return true;
  return CPU_COUNT(&allowed) > 1;
}
}  // namespace

FaultHandler::FaultHandler(Pager* pager, RegionRegistry* registry, int uffd, FaultMailbox* mailbox,
                           int stop_fd, int64_t spin_ns, std::unique_ptr<IoRing> ring,
                           uint32_t thread_index)
    : pager_(pager),
      registry_(registry),
      uffd_(uffd),
      mailbox_(mailbox),
      stop_fd_(stop_fd),
      spin_ns_(spin_ns),
      ring_(std::move(ring)),
      ctx_{ring_.get(), thread_index} {
  loading_forwards_.reserve(FaultMailbox::kSlots);
}

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
      const auto& fault = messages[i].arg.pagefault;
      // A library thread's fault could only be served by faultline's threads, which may be
      // waiting for it (core/threads.h): stop loudly rather than deadlock.
      const pid_t tid = static_cast<pid_t>(fault.feat.ptid);
      if (IsLibraryThread(tid)) LibraryThreadFaulted(tid, fault.address, "userfaultfd");
      pager_->HandleFault(ctx_, regions, fault.address, fault.flags, now);
    }
  }
  if (ServeMailbox(regions)) worked = true;
  return worked;
}

bool FaultHandler::ServeMailbox(const RegionRegistry::Reader& regions) noexcept {
  auto loading = [&regions](uintptr_t address) {
    Region* region = regions.Find(address);
    return region != nullptr &&
           region->pages.Peek((address - region->base) >> kPageShift).state() ==
               PageState::kLoading;
  };
  bool worked = false;
  for (size_t i = 0; i < loading_forwards_.size();) {
    int slot = loading_forwards_[i];
    if (loading(mailbox_->address(slot))) {
      ++i;
      continue;
    }
    mailbox_->Complete(slot);
    loading_forwards_[i] = loading_forwards_.back();
    loading_forwards_.pop_back();
    worked = true;
  }
  if (!mailbox_->MaybeQueued()) return worked;
  uint64_t drained;
  ssize_t ignored = read(mailbox_->wake_fd(), &drained, sizeof(drained));
  (void)ignored;
  for (int slot = mailbox_->Take(); slot >= 0; slot = mailbox_->Take()) {
    uintptr_t address = mailbox_->address(slot);
    pager_->HandleFault(ctx_, regions, address, mailbox_->flags(slot), mailbox_->start_ns(slot));
    if (loading(address)) {
      loading_forwards_.push_back(slot);
    } else {
      mailbox_->Complete(slot);
    }
    worked = true;
  }
  return worked;
}

void FaultHandler::Run() noexcept {
  // Both polls stay armed for the thread's life (IoRing re-arms a multishot poll the kernel ends).
  FL_CHECK(ring_->QueuePollIn(uffd_, MakeUserData(IoKind::kPollUffd, 0)) &&
               ring_->QueuePollIn(stop_fd_, MakeUserData(IoKind::kPollWake, 0)) &&
               ring_->QueuePollIn(mailbox_->wake_fd(), MakeUserData(IoKind::kPollWake, 0)),
           "arming the fault handler's polls");
  uint64_t last_work = MonotonicNanos();
  bool spin = spin_ns_ > 0 && MayRunOnSeveralCpus();
  while (!stopping_.load(std::memory_order_acquire)) {
    if (ServeOnce()) {
      last_work = MonotonicNanos();
      continue;
    }
    // No spinning under pressure: there each fault brings eviction work, and on 2 CPUs a
    // spinning handler takes the CPU the evictor needs (perl and mawk at a third to a half of
    // their footprint: 18-22% faster without it; docs/design.md, "Waiting for faults").
    if (spin && !pager_->UnderPressure() &&
        static_cast<int64_t>(MonotonicNanos() - last_work) < spin_ns_) {
      __builtin_ia32_pause();
      continue;
    }
    // A forwarded fault whose page another thread is loading must be looked at again when that
    // read completes, which this thread is not woken for: sleep briefly only.
    int rc = ring_->SubmitAndWait(loading_forwards_.empty() ? -1 : kLoadingRecheckNs);
    FL_CHECK(rc == 0 || rc == -EINTR || rc == -ETIME, "io_uring wait in the fault handler");
    // Once per sleep: the program may have changed the process's affinity meanwhile.
    spin = spin_ns_ > 0 && MayRunOnSeveralCpus();
  }
  while (ring_->in_flight() > 0) {
    RegionRegistry::Reader regions(*registry_);
    pager_->WaitForOwnIo(ctx_, regions);
  }
  // Reads are done: no forwarded fault may sleep past shutdown.
  for (int slot : loading_forwards_) mailbox_->Complete(slot);
  loading_forwards_.clear();
}

}  // namespace faultline
