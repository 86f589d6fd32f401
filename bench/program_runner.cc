#include "program_runner.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "bench_util.h"

namespace faultline_bench {
namespace {

// What the signal handlers must undo. Written with the cleanup signals blocked (the bench has one
// thread), so a handler sees each field whole.
struct WorkState {
  volatile sig_atomic_t child_pid = 0;  // a child started without a peer, until it is reaped
  volatile sig_atomic_t dir_exists = 0;
  char dir[PATH_MAX] = {};
};
WorkState g_work;
// The handlers that were installed before ours (KernelSwapPeer's), by kCleanupSignals index.
struct sigaction g_previous[std::size(kCleanupSignals)];

// Async-signal-safe (strlen and memcpy only): writes dir/name into `out`; false if it is too long.
bool JoinPath(const char* dir, const char* name, char* out, size_t size) {
  size_t dir_length = std::strlen(dir);
  size_t name_length = std::strlen(name);
  if (dir_length + 1 + name_length + 1 > size) return false;
  std::memcpy(out, dir, dir_length);
  out[dir_length] = '/';
  std::memcpy(out + dir_length + 1, name, name_length + 1);
  return true;
}

// Async-signal-safe: the signal handlers call it.
void RemoveWorkFiles() {
  if (!g_work.dir_exists) return;
  char path[PATH_MAX];
  for (const char* name : kWorkFileNames) {
    if (JoinPath(g_work.dir, name, path, sizeof(path))) unlink(path);
  }
  rmdir(g_work.dir);
  g_work.dir_exists = 0;
}

void OnCleanupSignal(int signal_number) {
  pid_t child = g_work.child_pid;
  if (child > 0) {
    kill(child, SIGTERM);
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    g_work.child_pid = 0;
  }
  RemoveWorkFiles();
  for (size_t i = 0; i < std::size(kCleanupSignals); ++i) {
    if (kCleanupSignals[i] != signal_number) continue;
    void (*previous)(int) = g_previous[i].sa_handler;
    if (previous != SIG_DFL && previous != SIG_IGN) previous(signal_number);
  }
  // Dies of the same signal once the handler returns (it is blocked until then). KernelSwapPeer's
  // handler has arranged the same, so the signal is pending once either way.
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

// In the child: stdout to `path`, then exec. Never returns.
[[noreturn]] void ExecWithStdout(const std::vector<std::string>& argv, const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
    std::fprintf(stderr, "faultline-bench-programs: opening %s: %s\n", path.c_str(),
                 std::strerror(errno));
    _exit(127);
  }
  if (fd != STDOUT_FILENO) close(fd);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  std::fprintf(stderr, "faultline-bench-programs: exec %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

// fork() for a child outside any cgroup, recorded for the signal handlers. The child gets the
// cleanup signals at their defaults.
pid_t ForkPlain() {
  CleanupSignalsBlocked blocked;
  pid_t pid = fork();
  if (pid > 0) g_work.child_pid = pid;
  if (pid == 0) {
    for (int s : kCleanupSignals) signal(s, SIG_DFL);
  }
  return pid;
}

// Waits until `pid` has ended and returns its rusage, leaving it a zombie to be reaped by its
// owner (so that its pid cannot be reused while a record of it exists). The raw waitid system
// call fills the same rusage as wait4 (RUSAGE_BOTH); glibc's waitid() has no rusage argument.
rusage WaitForEnd(pid_t pid) {
  rusage usage{};
  siginfo_t info{};
  while (syscall(SYS_waitid, P_PID, pid, &info, WEXITED | WNOWAIT, &usage) < 0 && errno == EINTR) {
  }
  return usage;
}

int ReapPlain(pid_t pid) {
  CleanupSignalsBlocked blocked;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_work.child_pid = 0;
  return status;
}

}  // namespace

bool WorkDir::Create(const std::string& parent, std::string* why) {
  CleanupSignalsBlocked blocked;
  int length = std::snprintf(g_work.dir, sizeof(g_work.dir), "%s/faultline-bench-programs-XXXXXX",
                             parent.c_str());
  if (length < 0 || static_cast<size_t>(length) >= sizeof(g_work.dir)) {
    *why = "work directory path too long under " + parent;
    return false;
  }
  if (mkdtemp(g_work.dir) == nullptr) {
    *why = "mkdtemp in " + parent + ": " + std::strerror(errno);
    return false;
  }
  g_work.dir_exists = 1;
  return true;
}

std::string WorkDir::Path(const char* name) const { return std::string(g_work.dir) + "/" + name; }

void WorkDir::Remove() {
  CleanupSignalsBlocked blocked;
  RemoveWorkFiles();
}

void InstallWorkCleanupHandlers() {
  struct sigaction action {};
  action.sa_handler = OnCleanupSignal;
  sigemptyset(&action.sa_mask);
  for (int s : kCleanupSignals) sigaddset(&action.sa_mask, s);
  for (size_t i = 0; i < std::size(kCleanupSignals); ++i) {
    sigaction(kCleanupSignals[i], &action, &g_previous[i]);
  }
}

ProgramRun RunProgram(const std::vector<std::string>& argv, const std::string& stdout_path,
                      KernelSwapPeer* peer) {
  ProgramRun run;
  uint64_t start_ns = NowNs();
  pid_t pid = peer != nullptr ? peer->ForkIntoCgroup(&run.error) : ForkPlain();
  if (pid == 0) ExecWithStdout(argv, stdout_path);
  if (pid < 0) {
    if (run.error.empty()) run.error = std::string("fork: ") + std::strerror(errno);
    return run;
  }
  rusage usage = WaitForEnd(pid);
  run.wait_status = peer != nullptr ? peer->WaitForChild(pid) : ReapPlain(pid);
  run.wall_seconds = static_cast<double>(NowNs() - start_ns) / 1e9;
  run.started = true;
  run.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  run.major_faults = static_cast<uint64_t>(usage.ru_majflt);
  return run;
}

std::string DescribeStatus(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int s = WTERMSIG(wait_status);
    return "killed by signal " + std::to_string(s) + " (" + strsignal(s) + ")";
  }
  return "exit status " + std::to_string(WEXITSTATUS(wait_status));
}

double JsonNumber(const std::string& json, const std::string& key) {
  std::string quoted = "\"" + key + "\"";
  size_t at = json.find(quoted);
  if (at == std::string::npos) return NAN;
  at = json.find_first_not_of(" \t\n", at + quoted.size());
  if (at == std::string::npos || json[at] != ':') return NAN;
  const char* value = json.c_str() + at + 1;
  char* end = nullptr;
  double number = std::strtod(value, &end);
  return end == value ? NAN : number;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace faultline_bench
