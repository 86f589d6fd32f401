#include "child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <iterator>

#include "util/status.h"

namespace faultline {
namespace {

// The child that SIGTERM and SIGHUP are passed on to; 0 when there is none. Atomic because the
// signal handler reads it (lock-free, so safe there); relaxed: the handler is installed after the
// store and removed before the reset, and sigaction() orders those.
std::atomic<pid_t> g_child{0};
static_assert(std::atomic<pid_t>::is_always_lock_free);

void ForwardSignal(int sig) {
  int saved_errno = errno;
  pid_t child = g_child.load(std::memory_order_relaxed);
  if (child > 0) kill(child, sig);
  errno = saved_errno;
}

double MonotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

constexpr int kIgnored[] = {SIGINT, SIGQUIT};
constexpr int kForwarded[] = {SIGTERM, SIGHUP};

// The dispositions and mask this process had before RunChild changed them.
struct SavedSignals {
  struct sigaction ignored[std::size(kIgnored)];
  struct sigaction forwarded[std::size(kForwarded)];
  sigset_t mask;
};

// Ignores SIGINT and SIGQUIT and blocks SIGTERM and SIGHUP until the child's pid is known, so that
// none of them is lost or ends this process before the child has started.
void PrepareSignals(SavedSignals* saved) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (size_t i = 0; i < std::size(kIgnored); ++i)
    sigaction(kIgnored[i], &ignore, &saved->ignored[i]);
  sigset_t block;
  sigemptyset(&block);
  for (int sig : kForwarded) sigaddset(&block, sig);
  sigprocmask(SIG_BLOCK, &block, &saved->mask);
}

// In the child, before exec: what the command should inherit is what this process had.
void RestoreSignalsInChild(const SavedSignals& saved) {
  for (size_t i = 0; i < std::size(kIgnored); ++i)
    sigaction(kIgnored[i], &saved.ignored[i], nullptr);
  sigprocmask(SIG_SETMASK, &saved.mask, nullptr);
}

// In the parent once the child exists: SIGTERM and SIGHUP (pending ones too) go to it.
void StartForwarding(pid_t child, SavedSignals* saved) {
  g_child.store(child, std::memory_order_relaxed);
  struct sigaction forward {};
  forward.sa_handler = ForwardSignal;
  forward.sa_flags = SA_RESTART;
  sigemptyset(&forward.sa_mask);
  for (size_t i = 0; i < std::size(kForwarded); ++i)
    sigaction(kForwarded[i], &forward, &saved->forwarded[i]);
  sigprocmask(SIG_SETMASK, &saved->mask, nullptr);
}

// Back to the dispositions of before. SIGTERM and SIGHUP stay blocked while their handler goes,
// so that none is sent to a pid that has been reaped (and may be reused).
void RestoreSignals(const SavedSignals& saved, bool forwarding) {
  if (forwarding) {
    sigset_t block;
    sigemptyset(&block);
    for (int sig : kForwarded) sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, nullptr);
    for (size_t i = 0; i < std::size(kForwarded); ++i)
      sigaction(kForwarded[i], &saved.forwarded[i], nullptr);
    g_child.store(0, std::memory_order_relaxed);
  }
  for (size_t i = 0; i < std::size(kIgnored); ++i)
    sigaction(kIgnored[i], &saved.ignored[i], nullptr);
  sigprocmask(SIG_SETMASK, &saved.mask, nullptr);
}

// The child: exec the command, or report execvp()'s errno through `error_fd` (close-on-exec, so
// the parent reads end-of-file exactly when exec succeeded).
[[noreturn]] void ExecChild(const std::vector<char*>& argv, const SavedSignals& saved,
                            int error_fd) {
  RestoreSignalsInChild(saved);
  execvp(argv[0], argv.data());
  int err = errno;
  [[maybe_unused]] ssize_t written = write(error_fd, &err, sizeof(err));
  _exit(127);
}

// execvp()'s errno as the child reported it, or 0 when exec succeeded.
int ReadExecErrno(int error_fd) {
  int err = 0;
  ssize_t n;
  do {
    n = read(error_fd, &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  return n == sizeof(err) ? err : 0;
}

}  // namespace

absl::StatusOr<ChildResult> RunChild(const std::vector<char*>& argv) {
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe2");
  SavedSignals saved;
  PrepareSignals(&saved);
  ChildResult result;
  double start = MonotonicSeconds();
  pid_t pid = fork();
  if (pid == 0) ExecChild(argv, saved, error_pipe[1]);
  int fork_errno = errno;
  close(error_pipe[1]);
  if (pid < 0) {
    close(error_pipe[0]);
    RestoreSignals(saved, /*forwarding=*/false);
    return ErrnoError(fork_errno, "fork");
  }
  StartForwarding(pid, &saved);
  result.exec_errno = ReadExecErrno(error_pipe[0]);
  close(error_pipe[0]);
  rusage usage{};
  while (wait4(pid, &result.wait_status, 0, &usage) < 0 && errno == EINTR) {
  }
  result.wall_seconds = MonotonicSeconds() - start;
  RestoreSignals(saved, /*forwarding=*/true);
  result.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // ru_maxrss is in KiB
  return result;
}

}  // namespace faultline
