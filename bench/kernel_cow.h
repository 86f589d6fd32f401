// The kernel's side of faultline-bench-snapshot: fork() with a child that keeps the parent's pages
// shared until it is let go, the proportional set size of a process, and the cost of
// UFFDIO_WRITEPROTECT over populated memory (the kernel's share of fl_snapshot_create).
#ifndef FAULTLINE_BENCH_KERNEL_COW_H_
#define FAULTLINE_BENCH_KERNEL_COW_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace faultline_bench {

// A child forked from the calling process that does nothing until released, so that every private
// page of the parent stays shared with it (copy-on-write) meanwhile. The child only blocks in
// read() on a pipe and then calls _exit(): both async-signal-safe, as a child of a process that
// may have other threads requires.
class IdleForkChild {
 public:
  IdleForkChild() = default;
  // Releases the child if it still runs.
  ~IdleForkChild();
  IdleForkChild(const IdleForkChild&) = delete;
  IdleForkChild& operator=(const IdleForkChild&) = delete;

  // Forks. *fork_ns is the time fork() took in the parent, from the call to its return. On failure
  // returns false with the reason in *error and no child. REQUIRES: no child forked yet.
  bool Fork(uint64_t* fork_ns, std::string* error);
  pid_t pid() const { return pid_; }
  // Lets the child exit and reaps it.
  void Release();

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;  // write end of the pipe the child reads; closing it lets the child exit
};

// Pss of process `pid` (0: this process) in KiB, from /proc/<pid>/smaps_rollup; kNoValue when it
// cannot be read. The kernel walks every page table of the process for it: milliseconds per GiB.
uint64_t ProportionalSetKiB(pid_t pid);

// Registers [base, base + bytes) (private anonymous memory, populated) with a userfaultfd of its
// own in write-protect mode and times UFFDIO_WRITEPROTECT of the whole range on, then off. The
// registration is gone on return. False with the reason in *error when userfaultfd or its
// write-protect mode is unavailable.
bool TimeWriteProtect(char* base, size_t bytes, uint64_t* protect_ns, uint64_t* unprotect_ns,
                      std::string* error);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_KERNEL_COW_H_
