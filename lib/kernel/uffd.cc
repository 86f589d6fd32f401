#include "kernel/uffd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "kernel/uffd_abi.h"
#include "util/errno_name.h"
#include "util/status.h"

namespace faultline::uffd {
namespace {

int IoctlResult(int fd, unsigned long request, void* arg) noexcept {
  return ioctl(fd, request, arg) == 0 ? 0 : -errno;
}

// Partial-progress ioctls report bytes done (or -errno) in a result field: a failed ioctl may
// still have done part of the range.
size_t Progress(int64_t field) noexcept { return field > 0 ? static_cast<size_t>(field) : 0; }

int OpenRaw() noexcept {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd >= 0) return fd;
  int syscall_error = errno;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) return -syscall_error;
  fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
  int dev_error = errno;
  close(dev);
  return fd >= 0 ? fd : -dev_error;
}

}  // namespace

absl::StatusOr<int> Open(uint64_t features) {
  int fd = OpenRaw();
  if (fd < 0) {
    if (fd == -EPERM || fd == -EACCES) {
      return ErrnoError(EPERM, "userfaultfd",
                        "permission denied: faultline needs a full userfaultfd (root, "
                        "CAP_SYS_PTRACE, or read-write access to /dev/userfaultfd); "
                        "vm.unprivileged_userfaultfd only allows user-mode faults, which "
                        "cannot serve system calls that touch evicted pages");
    }
    return ErrnoError(-fd, "userfaultfd");
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    int err = errno;
    close(fd);
    return ErrnoError(err, absl::StrFormat("UFFDIO_API with features %#x", features),
                      absl::StrFormat("%s (this kernel lacks a needed userfaultfd feature; "
                                      "Linux 6.8 or newer is required)",
                                      ErrnoDescription(err)));
  }
  if ((api.features & features) != features) {
    close(fd);
    return ErrnoError(
        ENOSYS, "userfaultfd",
        absl::StrFormat("kernel offers features %#x, faultline needs %#x", api.features, features));
  }
  return fd;
}

int Register(int fd, void* addr, size_t len, uint64_t mode) noexcept {
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(addr);
  reg.range.len = len;
  reg.mode = mode;
  return IoctlResult(fd, UFFDIO_REGISTER, &reg);
}

int Unregister(int fd, void* addr, size_t len) noexcept {
  uffdio_range range{reinterpret_cast<uint64_t>(addr), len};
  return IoctlResult(fd, UFFDIO_UNREGISTER, &range);
}

int Copy(int fd, void* dst, const void* src, size_t len, bool write_protect,
         size_t* done) noexcept {
  uffdio_copy copy{};
  copy.dst = reinterpret_cast<uint64_t>(dst);
  copy.src = reinterpret_cast<uint64_t>(src);
  copy.len = len;
  copy.mode = write_protect ? UFFDIO_COPY_MODE_WP : 0;
  int rc = IoctlResult(fd, UFFDIO_COPY, &copy);
  *done = Progress(copy.copy);
  return rc;
}

int Move(int fd, void* dst, void* src, size_t len, size_t* done) noexcept {
  uffdio_move move{};
  move.dst = reinterpret_cast<uint64_t>(dst);
  move.src = reinterpret_cast<uint64_t>(src);
  move.len = len;
  move.mode = 0;
  int rc = IoctlResult(fd, UFFDIO_MOVE, &move);
  *done = Progress(move.move);
  return rc;
}

int WriteProtect(int fd, void* addr, size_t len, bool protect) noexcept {
  uffdio_writeprotect wp{};
  wp.range.start = reinterpret_cast<uint64_t>(addr);
  wp.range.len = len;
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return IoctlResult(fd, UFFDIO_WRITEPROTECT, &wp);
}

int Wake(int fd, void* addr, size_t len) noexcept {
  uffdio_range range{reinterpret_cast<uint64_t>(addr), len};
  return IoctlResult(fd, UFFDIO_WAKE, &range);
}

int Poison(int fd, void* addr, size_t len, bool wake, size_t* done) noexcept {
  uffdio_poison poison{};
  poison.range.start = reinterpret_cast<uint64_t>(addr);
  poison.range.len = len;
  poison.mode = wake ? 0 : UFFDIO_POISON_MODE_DONTWAKE;
  int rc = IoctlResult(fd, UFFDIO_POISON, &poison);
  *done = Progress(poison.updated);
  return rc;
}

int ReadMessages(int fd, uffd_msg* msgs, int max) noexcept {
  ssize_t n = read(fd, msgs, sizeof(uffd_msg) * static_cast<size_t>(max));
  if (n < 0) return errno == EAGAIN ? 0 : -errno;
  return static_cast<int>(static_cast<size_t>(n) / sizeof(uffd_msg));
}

}  // namespace faultline::uffd
