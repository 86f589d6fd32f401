#include "kernel_swap.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"

extern char** environ;

namespace faultline_bench {
namespace {

constexpr char kCgroupV1Memory[] = "/sys/fs/cgroup/memory";

// What exists right now and must be removed. Written only with the cleanup signals blocked in the
// writing thread (the only one that exists while a peer is set up), so a handler sees it whole.
struct Resources {
  volatile sig_atomic_t child_pid = 0;
  volatile sig_atomic_t swap_file = 0;
  volatile sig_atomic_t swap_enabled = 0;
  volatile sig_atomic_t cgroup = 0;
  char swap_path[PATH_MAX] = {};
  char cgroup_path[PATH_MAX] = {};
};
Resources g_resources;

// Async-signal-safe: write(2) only.
void Complain(const char* what, const char* path, const char* advice) {
  for (const char* piece : {"faultline-bench: ", what, " ", path, " failed: ", advice, "\n"}) {
    ssize_t ignored = write(STDERR_FILENO, piece, std::strlen(piece));
    (void)ignored;
  }
}

// Async-signal-safe: the signal handlers call it.
void ReleaseAll() {
  Resources& r = g_resources;
  if (r.child_pid > 0) {
    kill(r.child_pid, SIGKILL);
    while (waitpid(r.child_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    r.child_pid = 0;
  }
  if (r.swap_enabled) {
    // An active swap file cannot be unlinked (EPERM), so a failed swapoff keeps the file.
    if (swapoff(r.swap_path) != 0) {
      Complain("swapoff", r.swap_path, "swapoff and remove it by hand");
      r.swap_file = 0;
    }
    r.swap_enabled = 0;
  }
  if (r.swap_file) {
    if (unlink(r.swap_path) != 0) Complain("unlink", r.swap_path, "remove it by hand");
    r.swap_file = 0;
  }
  if (r.cgroup) {
    // The group stays busy for a moment after its last task is reaped.
    int tries = 0;
    while (rmdir(r.cgroup_path) != 0 && errno == EBUSY && ++tries < 200) {
      timespec pause = {0, 10 * 1000 * 1000};
      nanosleep(&pause, nullptr);
    }
    if (access(r.cgroup_path, F_OK) == 0) Complain("rmdir", r.cgroup_path, "rmdir it by hand");
    r.cgroup = 0;
  }
}

void OnCleanupSignal(int signal_number) {
  ReleaseAll();
  // Dies of the same signal once the handler returns (the signal is blocked until then).
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

bool WriteFile(const std::string& path, const std::string& text, std::string* why) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = Errno("open " + path);
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (!ok) *why = Errno("write '" + text + "' to " + path);
  close(fd);
  return ok;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// This process's cgroup v1 memory directory, from /proc/self/cgroup ("id:controllers:path").
bool OwnMemoryCgroup(std::string* dir, std::string* why) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t first = line.find(':');
    size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
    if (controllers.find(",memory,") == std::string::npos) continue;
    std::string path = line.substr(second + 1);
    *dir = std::string(kCgroupV1Memory) + (path == "/" ? "" : path);
    if (access((*dir + "/memory.limit_in_bytes").c_str(), F_OK) != 0) {
      *why = "no cgroup v1 memory controller at " + *dir;
      return false;
    }
    return true;
  }
  *why = "no cgroup v1 memory controller in /proc/self/cgroup";
  return false;
}

bool RunMkswap(const char* path, std::string* why) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  char arg0[] = "mkswap";
  char arg1[] = "-q";
  std::vector<char> arg2(path, path + std::strlen(path) + 1);
  char* argv[] = {arg0, arg1, arg2.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "mkswap", &actions, &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    *why = std::string("running mkswap: ") + std::strerror(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = std::string("mkswap ") + path + " failed (status " + std::to_string(status) + ")";
    return false;
  }
  return true;
}

}  // namespace

KernelCounters ReadKernelCounters() {
  KernelCounters c;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  c.major_faults = static_cast<uint64_t>(usage.ru_majflt);
  std::ifstream in("/proc/vmstat");
  std::string name;
  uint64_t value = 0;
  while (in >> name >> value) {
    if (name == "pswpin") c.swapped_in = value;
    if (name == "pswpout") c.swapped_out = value;
    if (name == "pgsteal_anon") c.reclaimed = value;
  }
  return c;
}

void InstallCleanupHandlers() {
  struct sigaction action {};
  action.sa_handler = OnCleanupSignal;
  sigemptyset(&action.sa_mask);
  for (int s : kCleanupSignals) sigaddset(&action.sa_mask, s);
  for (int s : kCleanupSignals) sigaction(s, &action, nullptr);
}

std::string KernelSwapSettings() {
  std::string zswap = ReadFirstLine("/sys/module/zswap/parameters/enabled");
  return "vm.page-cluster=" + ReadFirstLine("/proc/sys/vm/page-cluster") +
         ", vm.swappiness=" + ReadFirstLine("/proc/sys/vm/swappiness") +
         ", zswap=" + (zswap.empty() ? "absent" : zswap);
}

bool KernelSwapPeer::Setup(const std::string& swap_dir, uint64_t swap_bytes, uint64_t limit_bytes,
                           std::string* why) {
  if (geteuid() != 0) {
    *why = "not running as root (swapon and cgroups need it)";
    return false;
  }
  std::string parent_cgroup;
  if (!OwnMemoryCgroup(&parent_cgroup, why)) return false;
  CleanupSignalsBlocked block;
  Resources& r = g_resources;
  std::snprintf(r.swap_path, sizeof(r.swap_path), "%s/faultline-bench-%d.swap", swap_dir.c_str(),
                static_cast<int>(getpid()));
  int fd = open(r.swap_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    *why = Errno(std::string("creating ") + r.swap_path);
    return false;
  }
  r.swap_file = 1;
  // fallocate, not a sparse file: swapon refuses files with holes.
  bool allocated =
      fchmod(fd, 0600) == 0 && fallocate(fd, 0, 0, static_cast<off_t>(swap_bytes)) == 0;
  if (!allocated) *why = Errno(std::string("allocating ") + r.swap_path);
  close(fd);
  if (!allocated || !RunMkswap(r.swap_path, why)) {
    ReleaseAll();
    return false;
  }
  if (swapon(r.swap_path, 0) != 0) {
    *why = Errno(std::string("swapon ") + r.swap_path);
    ReleaseAll();
    return false;
  }
  r.swap_enabled = 1;

  std::snprintf(r.cgroup_path, sizeof(r.cgroup_path), "%s/faultline-bench-%d",
                parent_cgroup.c_str(), static_cast<int>(getpid()));
  if (mkdir(r.cgroup_path, 0755) != 0) {
    *why = Errno(std::string("mkdir ") + r.cgroup_path);
    ReleaseAll();
    return false;
  }
  r.cgroup = 1;
  std::string dir = r.cgroup_path;
  if (access((dir + "/memory.swappiness").c_str(), F_OK) != 0) {
    *why = dir + " has no memory.swappiness";
    ReleaseAll();
    return false;
  }
  if (!WriteFile(dir + "/memory.limit_in_bytes", std::to_string(limit_bytes), why) ||
      !WriteFile(dir + "/memory.swappiness", "60", why)) {
    ReleaseAll();
    return false;
  }
  Progress("kernel swap peer: swap file %s (%llu MiB), cgroup %s (limit %llu MiB)", r.swap_path,
           static_cast<unsigned long long>(swap_bytes / kMiB), r.cgroup_path,
           static_cast<unsigned long long>(limit_bytes / kMiB));
  return true;
}

pid_t KernelSwapPeer::ForkIntoCgroup(std::string* why) {
  pid_t pid;
  {
    CleanupSignalsBlocked block;
    pid = fork();
    if (pid > 0) g_resources.child_pid = pid;
  }
  if (pid < 0) {
    *why = Errno("fork");
    return -1;
  }
  if (pid > 0) return pid;
  for (int s : kCleanupSignals) signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  std::string procs = std::string(g_resources.cgroup_path) + "/cgroup.procs";
  std::string join_error;
  if (!WriteFile(procs, std::to_string(getpid()), &join_error)) {
    std::fprintf(stderr, "joining the cgroup: %s\n", join_error.c_str());
    _exit(kJoinFailedExitCode);
  }
  return 0;
}

int KernelSwapPeer::WaitForChild(pid_t pid) {
  int status = 0;
  CleanupSignalsBlocked block;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_resources.child_pid = 0;
  return status;
}

namespace {

// Writes all of `bytes` unless the pipe breaks.
bool WriteAll(int fd, const char* bytes, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool KernelSwapPeer::RunInChild(const ChildBody& body, std::string* report, std::string* why) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *why = Errno("pipe2");
    return false;
  }
  pid_t pid = ForkIntoCgroup(why);
  if (pid == 0) {
    close(fds[0]);
    // The message: one byte, '1' when `body` succeeded, then its report or its reason.
    std::string payload;
    std::string reason;
    bool ok = body(&payload, &reason);
    const std::string& text = ok ? payload : reason;
    char flag = ok ? '1' : '0';
    bool sent = WriteAll(fds[1], &flag, 1) && WriteAll(fds[1], text.data(), text.size());
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return false;
  }
  std::string message;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = WaitForChild(pid);
  if (message.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = WIFSIGNALED(status)
               ? "the child died of signal " + std::to_string(WTERMSIG(status)) +
                     " (SIGKILL: the cgroup's OOM killer?)"
               : "the child exited without a report (status " + std::to_string(status) + ")";
    return false;
  }
  if (message[0] != '1') {
    *why = "in the child: " + message.substr(1);
    return false;
  }
  report->append(message, 1);
  return true;
}

bool KernelSwapPeer::SetLimit(uint64_t limit_bytes, std::string* why) {
  return WriteFile(std::string(g_resources.cgroup_path) + "/memory.limit_in_bytes",
                   std::to_string(limit_bytes), why);
}

void KernelSwapPeer::Teardown() {
  CleanupSignalsBlocked block;
  ReleaseAll();
}

KernelSwapPeer* SharedKernelPeer::Get(std::string* why) {
  if (!tried_) {
    tried_ = true;
    // The cgroup starts at the size of the swap file; every user sets the limit it needs.
    ready_ = peer_.Setup(swap_dir_, swap_bytes_, swap_bytes_, &failure_);
  }
  if (!ready_) {
    *why = failure_;
    return nullptr;
  }
  return &peer_;
}

void SharedKernelPeer::Teardown() {
  if (ready_) peer_.Teardown();
  tried_ = false;
  ready_ = false;
}

}  // namespace faultline_bench
