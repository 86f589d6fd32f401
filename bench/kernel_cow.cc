#include "kernel_cow.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "bench_util.h"

namespace faultline_bench {

IdleForkChild::~IdleForkChild() { Release(); }

bool IdleForkChild::Fork(uint64_t* fork_ns, std::string* error) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  const uint64_t start = NowNs();
  pid_t pid = fork();
  const uint64_t end = NowNs();
  if (pid == 0) {
    close(fds[1]);
    char byte;
    while (read(fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(fds[0]);
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    close(fds[1]);
    return false;
  }
  pid_ = pid;
  release_fd_ = fds[1];
  *fork_ns = end - start;
  return true;
}

void IdleForkChild::Release() {
  if (pid_ < 0) return;
  close(release_fd_);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  release_fd_ = -1;
}

uint64_t ProportionalSetKiB(pid_t pid) {
  const std::string path =
      pid == 0 ? "/proc/self/smaps_rollup" : "/proc/" + std::to_string(pid) + "/smaps_rollup";
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return kNoValue;
  uint64_t kib = kNoValue;
  char line[256];
  while (std::fgets(line, sizeof(line), file) != nullptr) {
    unsigned long long value = 0;
    if (std::sscanf(line, "Pss: %llu kB", &value) == 1) {
      kib = value;
      break;
    }
  }
  std::fclose(file);
  return kib;
}

bool TimeWriteProtect(char* base, size_t bytes, uint64_t* protect_ns, uint64_t* unprotect_ns,
                      std::string* error) {
  const int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0) {
    *error = std::string("userfaultfd: ") + std::strerror(errno);
    return false;
  }
  auto fail = [&](const char* what) {
    *error = std::string(what) + ": " + std::strerror(errno);
    close(uffd);
    return false;
  };
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  if (ioctl(uffd, UFFDIO_API, &api) != 0) return fail("UFFDIO_API (write-protect)");
  uffdio_register registration{};
  registration.range.start = reinterpret_cast<uintptr_t>(base);
  registration.range.len = bytes;
  registration.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd, UFFDIO_REGISTER, &registration) != 0) return fail("UFFDIO_REGISTER");
  uffdio_writeprotect protect{};
  protect.range = registration.range;
  protect.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  uint64_t start = NowNs();
  const int protect_rc = ioctl(uffd, UFFDIO_WRITEPROTECT, &protect);
  *protect_ns = NowNs() - start;
  protect.mode = 0;
  start = NowNs();
  const int unprotect_rc = protect_rc == 0 ? ioctl(uffd, UFFDIO_WRITEPROTECT, &protect) : 0;
  *unprotect_ns = NowNs() - start;
  if (protect_rc != 0 || unprotect_rc != 0) return fail("UFFDIO_WRITEPROTECT");
  if (ioctl(uffd, UFFDIO_UNREGISTER, &registration.range) != 0) return fail("UFFDIO_UNREGISTER");
  close(uffd);
  return true;
}

}  // namespace faultline_bench
