// Userfaultfd: the only code that issues userfaultfd syscalls and ioctls. Contract:
//  - Every call returns 0 or -errno and never throws or allocates (safe in the fault path).
//  - Resolution calls (Copy, Move, Poison) report partial progress through *done (bytes) so the
//    caller can continue; -EAGAIN means a non-cooperative event is pending or the copy was partial
//    (KERNEL.md: drain events, then retry). -EEXIST from Copy means the page is already there: the
//    caller treats it as done and wakes the waiters.
//  - Constants newer than Debian 12's 6.1 headers are defined in uffd_abi.h.
#ifndef FAULTLINE_LIB_KERNEL_UFFD_H_
#define FAULTLINE_LIB_KERNEL_UFFD_H_

#include <linux/userfaultfd.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace faultline::uffd {

// Opens a userfaultfd (O_CLOEXEC|O_NONBLOCK) with the userfaultfd(2) syscall, falling back to
// /dev/userfaultfd, and negotiates `features` with UFFDIO_API. EPERM when the process may not
// have a full (kernel-mode) userfaultfd; the status says which permissions would allow it.
absl::StatusOr<int> Open(uint64_t features);

// Registers [addr, addr+len) for `mode` (UFFDIO_REGISTER_MODE_*). Returns 0 or -errno.
int Register(int fd, void* addr, size_t len, uint64_t mode) noexcept;
int Unregister(int fd, void* addr, size_t len) noexcept;

// UFFDIO_COPY of len bytes from src to dst; `write_protect` maps the pages write-protected.
int Copy(int fd, void* dst, const void* src, size_t len, bool write_protect, size_t* done) noexcept;
// UFFDIO_MOVE (zero-copy) of len bytes from src to dst. A hole in src (a page that is not there)
// stops the move with -ENOENT, *done counting the pages before it: a page a pager holds resident
// must never be skipped silently (UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES would count it as moved).
int Move(int fd, void* dst, void* src, size_t len, size_t* done) noexcept;
// Sets (protect=true) or clears write protection on a range; clearing wakes the waiters.
int WriteProtect(int fd, void* addr, size_t len, bool protect) noexcept;
// Wakes threads waiting on faults in the range.
int Wake(int fd, void* addr, size_t len) noexcept;
// Installs poison markers: the next access of each page raises SIGBUS. Like Copy, it refuses a
// page that is there (-EEXIST). `wake` = false leaves the threads waiting on the range asleep
// (UFFDIO_POISON_MODE_DONTWAKE), for the caller to record the loss before it wakes them.
int Poison(int fd, void* addr, size_t len, bool wake, size_t* done) noexcept;

// Reads up to `max` messages without blocking. Returns the count (0 when none) or -errno.
int ReadMessages(int fd, uffd_msg* msgs, int max) noexcept;

}  // namespace faultline::uffd

#endif  // FAULTLINE_LIB_KERNEL_UFFD_H_
