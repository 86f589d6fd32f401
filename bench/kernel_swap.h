// The kernel's own swap as faultline's peer: a swap file in the same directory as faultline's, and
// a cgroup v1 memory group that holds a forked child to the same limit while it runs the same
// out-of-core phases on a plain anonymous mapping.
//
// Everything created here is removed on every path: by Teardown() (also run by the destructor and
// after every failed setup step) and by the SIGINT/SIGTERM/SIGHUP handlers, which kill the child,
// swapoff, unlink the swap file and rmdir the cgroup before the process dies. SIGKILL cannot be
// caught: after one, the names printed at setup tell what to remove by hand.
#ifndef FAULTLINE_BENCH_KERNEL_SWAP_H_
#define FAULTLINE_BENCH_KERNEL_SWAP_H_

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "workloads.h"

namespace faultline_bench {

// The signals after which a benchmark cleans up before it dies.
inline constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Installs the cleanup handlers for SIGINT, SIGTERM and SIGHUP. Call once, early in main().
void InstallCleanupHandlers();

// Blocks the cleanup signals in the calling thread for its lifetime (around a step that a
// cleanup handler must not interrupt halfway).
class CleanupSignalsBlocked {
 public:
  CleanupSignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kCleanupSignals) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~CleanupSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  CleanupSignalsBlocked(const CleanupSignalsBlocked&) = delete;
  CleanupSignalsBlocked& operator=(const CleanupSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

// One line describing the kernel's swap configuration that matters to the comparison
// (vm.page-cluster, zswap).
std::string KernelSwapSettings();

struct KernelCounters {
  uint64_t major_faults = 0;  // of this process
  uint64_t swapped_in = 0;    // pages, system-wide (/proc/vmstat pswpin)
  uint64_t swapped_out = 0;   // pages, system-wide (pswpout)
  uint64_t reclaimed = 0;     // anonymous pages, system-wide (pgsteal_anon)
};
KernelCounters ReadKernelCounters();

class KernelSwapPeer {
 public:
  KernelSwapPeer() = default;
  ~KernelSwapPeer() { Teardown(); }
  KernelSwapPeer(const KernelSwapPeer&) = delete;
  KernelSwapPeer& operator=(const KernelSwapPeer&) = delete;

  // Creates, formats and enables a swap file of `swap_bytes` in `swap_dir`, and creates a memory
  // cgroup limited to `limit_bytes` (swappiness 60) under this process's own memory cgroup. On
  // failure returns false with the reason in *why and leaves nothing behind. Only one peer may be
  // set up at a time.
  bool Setup(const std::string& swap_dir, uint64_t swap_bytes, uint64_t limit_bytes,
             std::string* why);

  // Forks a child that has joined the cgroup, with the cleanup signals at their defaults and
  // unblocked. Returns 0 in the child, which must end with _exit() (it exits with
  // kJoinFailedExitCode, after a line on stderr, when it cannot join the cgroup); the child's pid
  // in the parent, which must collect it with WaitForChild(); -1 with the reason in *why.
  // REQUIRES: Setup() succeeded.
  pid_t ForkIntoCgroup(std::string* why);
  static constexpr int kJoinFailedExitCode = 125;

  // Waits for the child of ForkIntoCgroup() and returns its wait status.
  int WaitForChild(pid_t pid);

  // Forks a child that joins the cgroup, maps `region_bytes` of anonymous memory and runs
  // WritePages, ReadSequential and ReadInOrder(ShuffledPages) on it; their results come back
  // through a pipe into phases[0..2]. REQUIRES: Setup() succeeded.
  bool RunOutOfCore(size_t region_bytes, PhaseResult phases[3], std::string* why);

  // Kills a child still running, disables and removes the swap file, removes the cgroup.
  // Idempotent. A step that fails is reported on stderr with what is left to remove.
  void Teardown();
};

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_KERNEL_SWAP_H_
