// FaultHandler: one fault-handler thread (fl-fault-N). It reads userfaultfd messages in batches
// and hands them to the Pager, and finishes the swap reads (and direct-reclaim writes) it started.
//
// Waiting: a thread that sleeps in the kernel costs a cross-CPU wake-up (about 25 us here, both
// ways: KERNEL.md) on every isolated fault. So after its last piece of work the thread keeps
// polling (non-blocking read of the uffd and of its ring) for `spin_ns`, unless the runtime is
// under pressure (Pager::UnderPressure: the CPU is the evictor's then); only then does it sleep
// in io_uring, which wakes it for a fault (a multishot poll on the uffd), an I/O completion or
// shutdown (a poll on the stop eventfd).
//
// It also serves the faults that faulting threads of self-paging regions forward through the
// FaultMailbox (core/self_paging.h), and wakes each such thread once its page is no longer being
// loaded: that thread retries its access then, and must not find the read still in flight.
#ifndef FAULTLINE_LIB_CORE_FAULT_HANDLER_H_
#define FAULTLINE_LIB_CORE_FAULT_HANDLER_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/pager.h"
#include "core/self_paging.h"
#include "kernel/io_ring.h"

namespace faultline {

class FaultHandler {
 public:
  FaultHandler(Pager* pager, RegionRegistry* registry, int uffd, FaultMailbox* mailbox, int stop_fd,
               int64_t spin_ns, std::unique_ptr<IoRing> ring, uint32_t thread_index);
  ~FaultHandler();

  void Start(int number);
  // Asks the thread to stop (through the stop eventfd) and waits for it; it finishes its
  // in-flight I/O first.
  void Stop();

 private:
  void Run() noexcept;
  // Reads and serves one batch of messages and completions; returns whether there was any.
  bool ServeOnce() noexcept;
  // Serves forwarded faults; completes those whose page has finished loading. Returns whether it
  // served or completed any.
  bool ServeMailbox(const RegionRegistry::Reader& regions) noexcept;

  Pager* const pager_;
  RegionRegistry* const registry_;
  const int uffd_;
  FaultMailbox* const mailbox_;
  // Forwarded faults served but whose page was LOADING: completed once it is not.
  std::vector<int> loading_forwards_;
  const int stop_fd_;
  const int64_t spin_ns_;
  std::unique_ptr<IoRing> ring_;
  IoContext ctx_;
  // Written by Stop(), read by the thread's loop (release/acquire: nothing else is published).
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_FAULT_HANDLER_H_
