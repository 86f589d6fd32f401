// The kernel's own swap as faultline's peer: a swap file in the same directory as faultline's, and
// a cgroup v1 memory group that holds a forked child to the same limit while it runs the same
// workload on a plain anonymous mapping.
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
#include <functional>
#include <string>
#include <utility>

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

  // Runs `body` in a child of ForkIntoCgroup(). What the child appends to *report comes back into
  // this call's *report; when `body` returns false, its *why comes back as this call's *why and the
  // call returns false. The child may start threads; it ends with _exit(). REQUIRES: Setup()
  // succeeded.
  using ChildBody = std::function<bool(std::string* report, std::string* why)>;
  bool RunInChild(const ChildBody& body, std::string* report, std::string* why);

  // Sets the cgroup's memory limit (memory.limit_in_bytes). Lowering it below the group's usage
  // makes the kernel reclaim the group's pages before the write returns; when it cannot reclaim
  // enough the write fails with EBUSY. Callable from the parent or from the child of
  // ForkIntoCgroup(). REQUIRES: Setup() succeeded.
  bool SetLimit(uint64_t limit_bytes, std::string* why);

  // Kills a child still running, disables and removes the swap file, removes the cgroup.
  // Idempotent. A step that fails is reported on stderr with what is left to remove.
  void Teardown();
};

// One KernelSwapPeer for a whole run, set up on first use, so that every kernel row of the run
// uses the same swap file. A failed setup is remembered with its reason and not retried. Users set
// the cgroup's limit they need with SetLimit() before each use.
class SharedKernelPeer {
 public:
  SharedKernelPeer(std::string swap_dir, uint64_t swap_bytes)
      : swap_dir_(std::move(swap_dir)), swap_bytes_(swap_bytes) {}

  // The peer, or nullptr with the reason in *why.
  KernelSwapPeer* Get(std::string* why);
  // Removes what the peer created (KernelSwapPeer::Teardown); a later Get() sets it up again.
  void Teardown();

 private:
  std::string swap_dir_;
  uint64_t swap_bytes_;
  bool tried_ = false;
  bool ready_ = false;
  std::string failure_;
  KernelSwapPeer peer_;
};

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_KERNEL_SWAP_H_
