#include "core/fork_holds.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/threads.h"

namespace faultline {

ForkHolds::ForkHolds(SwapSlotAllocator* slots, int wake_fd) : slots_(slots), wake_fd_(wake_fd) {
  watched_.fill(-1);
  thread_ = StartLibraryThread("fl-fork", [this] { Run(); });
}

ForkHolds::~ForkHolds() {
  stopping_.store(true, std::memory_order_release);
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  for (int fd : watched_) {
    if (fd >= 0) close(fd);
  }
  close(wake_fd_);
}

ForkHolds::Pipe ForkHolds::Begin() noexcept {
  absl::MutexLock lock(&mutex_);
  if (begun_ >= kMaxWatched) return Pipe{};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Pipe{};
  ++begun_;
  slots_->BeginHold();
  return Pipe{fds[0], fds[1]};
}

void ForkHolds::Watch(Pipe pipe) noexcept {
  if (pipe.read_fd < 0) return;
  close(pipe.write_fd);
  {
    absl::MutexLock lock(&mutex_);
    for (int& fd : watched_) {
      if (fd < 0) {
        fd = pipe.read_fd;
        break;
      }
    }
  }
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void ForkHolds::ChildStarted(Pipe pipe) noexcept {
  if (pipe.read_fd >= 0) close(pipe.read_fd);
}

void ForkHolds::ChildDone(Pipe pipe) noexcept {
  if (pipe.write_fd >= 0) close(pipe.write_fd);
}

void ForkHolds::Run() noexcept {
  while (!stopping_.load(std::memory_order_acquire)) {
    pollfd fds[kMaxWatched + 1];
    int count = 0;
    fds[count++] = pollfd{wake_fd_, POLLIN, 0};
    {
      absl::MutexLock lock(&mutex_);
      for (int fd : watched_) {
        if (fd >= 0) fds[count++] = pollfd{fd, POLLIN, 0};
      }
    }
    if (poll(fds, static_cast<nfds_t>(count), -1) < 0) continue;
    uint64_t drained;
    ssize_t ignored = read(wake_fd_, &drained, sizeof(drained));
    (void)ignored;
    for (int i = 1; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      char byte;
      if (read(fds[i].fd, &byte, 1) > 0) continue;  // children write nothing; ignore
      // End of file: the child has read its pages, exec'd or exited.
      absl::MutexLock lock(&mutex_);
      for (int& fd : watched_) {
        if (fd == fds[i].fd) fd = -1;
      }
      close(fds[i].fd);
      --begun_;
      slots_->EndHold();
    }
  }
}

}  // namespace faultline
