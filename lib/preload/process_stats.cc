#include "preload/process_stats.h"

#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "faultline/faultline.h"

namespace faultline {
namespace {

enum class Mode { kNone, kFile, kDirectory };

// Written by StartProcessStats (before main, one thread) and ProcessStatsAfterFork (in the child,
// one thread); read by the writers afterwards.
Mode g_mode = Mode::kNone;
char g_directory[3072];
char g_path[4096];  // this image's file (directory mode), or the user's file (file mode)
int g_image = 0;
pid_t g_pid = 0;
pid_t g_ppid = 0;
uint64_t g_start_ticks = 0;  // the process's start time (/proc/self/stat), the same across exec
uint64_t g_start_ns = 0;
char g_command[17];
// Set before the program runs or in a child before it runs anything; atomic because the
// exit-time writer may run on any program thread.
std::atomic<Runtime*> g_runtime{nullptr};

void Say(const char* text) {
  ssize_t ignored = write(STDERR_FILENO, "faultline: ", 11);
  ignored = write(STDERR_FILENO, text, std::strlen(text));
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The contents of a /proc/self file, NUL-terminated, in `buffer`; false when unreadable.
bool ReadProcFile(const char* path, char* buffer, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = read(fd, buffer + used, size - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  buffer[used] = '\0';
  return used > 0;
}

// Field 22 of /proc/self/stat (starttime, in clock ticks since boot), counted after the command
// name's closing parenthesis (the name may hold spaces and parentheses).
uint64_t StartTicks() {
  char stat[1024];
  if (!ReadProcFile("/proc/self/stat", stat, sizeof(stat))) return 0;
  const char* at = std::strrchr(stat, ')');
  if (at == nullptr) return 0;
  for (int field = 2; field < 22 && at != nullptr; ++field) at = std::strchr(at + 1, ' ');
  return at != nullptr ? std::strtoull(at + 1, nullptr, 10) : 0;
}

// VmHWM of /proc/self/status: this image's largest resident set, in bytes.
uint64_t PeakRssBytes() {
  char status[4096];
  if (!ReadProcFile("/proc/self/status", status, sizeof(status))) return 0;
  const char* at = std::strstr(status, "\nVmHWM:");
  return at != nullptr ? std::strtoull(at + 7, nullptr, 10) * 1024 : 0;
}

// The process's name as the kernel keeps it, made safe to write between JSON quotes unescaped.
void ReadCommand() {
  std::memset(g_command, 0, sizeof(g_command));
  if (prctl(PR_GET_NAME, g_command) != 0) std::strcpy(g_command, "?");
  for (char& c : g_command) {
    if (c == '\0') break;
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') c = '?';
  }
}

// The summary as JSON in `json`; its length.
int FormatSummary(const char* end, char* json, size_t size) {
  Runtime* runtime = g_runtime.load(std::memory_order_acquire);
  fl_stats s{};
  if (runtime != nullptr) runtime->GetCounters(&s);  // no locks: _exit may be in a handler
  uint64_t wall_us = (MonotonicNs() - g_start_ns) / 1000;
  return std::snprintf(
      json, size,
      "{\"pid\":%d,\"ppid\":%d,\"image\":%d,\"command\":\"%s\",\"end\":\"%s\",\"pager\":%d"
      ",\"start_ticks\":%" PRIu64 ",\"start_ns\":%" PRIu64 ",\"wall_us\":%" PRIu64
      ",\"vm_hwm_bytes\":%" PRIu64 ",\"memory_limit\":%" PRIu64 ",\"page_size\":%" PRIu64
      ",\"managed_bytes_peak\":%" PRIu64 ",\"resident_bytes_peak\":%" PRIu64
      ",\"managed_bytes\":%" PRIu64 ",\"resident_bytes\":%" PRIu64 ",\"faults_zero_fill\":%" PRIu64
      ",\"faults_swap_in\":%" PRIu64 ",\"faults_write_protect\":%" PRIu64
      ",\"faults_in_flight_rescue\":%" PRIu64 ",\"pages_fault_around\":%" PRIu64
      ",\"pages_readahead\":%" PRIu64 ",\"evictions\":%" PRIu64 ",\"bytes_swapped_in\":%" PRIu64
      ",\"bytes_swapped_out\":%" PRIu64 ",\"fault_latency_p50_ns\":%" PRIu64
      ",\"fault_latency_p99_ns\":%" PRIu64 ",\"fault_latency_max_ns\":%" PRIu64
      ",\"io_errors\":%" PRIu64 ",\"checksum_errors\":%" PRIu64
      ",\"limit_overshoot_pages\":%" PRIu64 ",\"regions_adopted\":%" PRIu64 ",\"forks\":%" PRIu64
      "}\n",
      static_cast<int>(g_pid), static_cast<int>(g_ppid), g_image, g_command, end,
      runtime != nullptr ? 1 : 0, g_start_ticks, g_start_ns, wall_us, PeakRssBytes(),
      s.memory_limit, s.page_size, s.peak_managed_pages * s.page_size,
      s.peak_resident_pages * s.page_size, s.managed_pages * s.page_size,
      s.resident_pages * s.page_size, s.faults_zero_fill, s.faults_swap_in, s.faults_write_protect,
      s.faults_in_flight_rescue, s.pages_fault_around, s.pages_readahead, s.evictions, s.bytes_read,
      s.bytes_written, s.fault_latency_p50_ns, s.fault_latency_p99_ns, s.fault_latency_max_ns,
      s.io_errors, s.checksum_errors, s.limit_overshoot_pages, s.regions_adopted, s.forks);
}

bool WriteAll(int fd, const char* text, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, text, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

// Directory mode: the identity of this image, and its file created with "end":"running". Quiet
// when the directory is gone: `faultline run` removes it when the command ends, and a process
// that outlives the command has nobody to report to.
void CreateImageFile() {
  g_pid = getpid();
  g_ppid = getppid();
  g_start_ticks = StartTicks();
  g_start_ns = MonotonicNs();
  ReadCommand();
  for (g_image = 0; g_image < 4096; ++g_image) {
    std::snprintf(g_path, sizeof(g_path), "%s/%d.%d.json", g_directory, static_cast<int>(g_pid),
                  g_image);
    int fd = open(g_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;  // an earlier image of this pid (exec, or reuse)
    if (fd < 0) break;
    char json[4096];
    int n = FormatSummary("running", json, sizeof(json));
    bool written = n > 0 && WriteAll(fd, json, static_cast<size_t>(n));
    close(fd);
    if (written) return;
    unlink(g_path);
    break;
  }
  if (errno != ENOENT) Say("cannot create this process's statistics file in FAULTLINE_STATS");
  g_mode = Mode::kNone;
}

void WriteAtExit() { WriteProcessStats("exit"); }

// The C library's exec functions, found before the program runs: a vfork child must not look
// them up (another thread of its parent may hold the dynamic loader's lock).
using ExecveFunction = int (*)(const char*, char* const[], char* const[]);
using ExecvFunction = int (*)(const char*, char* const[]);
using FexecveFunction = int (*)(int, char* const[], char* const[]);
ExecveFunction g_execve = nullptr;
ExecvFunction g_execv = nullptr;
ExecvFunction g_execvp = nullptr;
ExecveFunction g_execvpe = nullptr;
FexecveFunction g_fexecve = nullptr;

template <typename Function>
void FindNext(Function* function, const char* name) {
  if (*function == nullptr) *function = reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

void FindExecFunctions() {
  FindNext(&g_execve, "execve");
  FindNext(&g_execv, "execv");
  FindNext(&g_execvp, "execvp");
  FindNext(&g_execvpe, "execvpe");
  FindNext(&g_fexecve, "fexecve");
}

// The summary as the image is about to be replaced; errno as it was.
void BeforeExec() {
  int saved_errno = errno;
  FindExecFunctions();
  WriteProcessStats("exec");
  errno = saved_errno;
}

}  // namespace

void StartProcessStats(const char* stats_path) {
  FindExecFunctions();
  if (stats_path == nullptr) return;
  struct stat st {};
  if (stat(stats_path, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (std::strlen(stats_path) >= sizeof(g_directory)) {
      Say("FAULTLINE_STATS names a directory whose path is too long");
      return;
    }
    std::strcpy(g_directory, stats_path);
    g_mode = Mode::kDirectory;
    CreateImageFile();
  } else {
    std::snprintf(g_path, sizeof(g_path), "%s", stats_path);
    g_mode = Mode::kFile;
    g_pid = getpid();
    g_start_ns = MonotonicNs();
    ReadCommand();
    // Programs this one executes get their own runtime, but not this summary file.
    unsetenv("FAULTLINE_STATS");
  }
  std::atexit(WriteAtExit);
}

void SetProcessStatsRuntime(Runtime* runtime) {
  g_runtime.store(runtime, std::memory_order_release);
}

void ProcessStatsAfterFork() {
  g_runtime.store(nullptr, std::memory_order_release);
  if (g_mode == Mode::kDirectory) {
    CreateImageFile();
  } else {
    g_mode = Mode::kNone;
  }
}

void WriteProcessStats(const char* end) {
  if (g_mode == Mode::kNone || getpid() != g_pid) return;
  char json[4096];
  int n = FormatSummary(end, json, sizeof(json));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(json)) return;
  if (g_mode == Mode::kFile) {
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      Say("cannot write the statistics file named by FAULTLINE_STATS");
      return;
    }
    WriteAll(fd, json, static_cast<size_t>(n));
    close(fd);
    return;
  }
  char temporary[4096];
  std::snprintf(temporary, sizeof(temporary), "%s/.%d.%d.tmp", g_directory, static_cast<int>(g_pid),
                g_image);
  int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;  // the directory is gone: the run has ended without this process
  bool written = WriteAll(fd, json, static_cast<size_t>(n));
  close(fd);
  if (!written || rename(temporary, g_path) != 0) unlink(temporary);
}

}  // namespace faultline

// The exec family and _exit: an image that ends this way runs no exit handlers, so its summary
// is written here first. execl, execle and execlp gather their arguments on the stack and go
// through execv, execve and execvp.
extern "C" {

__attribute__((visibility("default"))) int execve(const char* path, char* const argv[],
                                                  char* const envp[]) {
  faultline::BeforeExec();
  return faultline::g_execve(path, argv, envp);
}

__attribute__((visibility("default"))) int execv(const char* path, char* const argv[]) {
  faultline::BeforeExec();
  return faultline::g_execv(path, argv);
}

__attribute__((visibility("default"))) int execvp(const char* file, char* const argv[]) {
  faultline::BeforeExec();
  return faultline::g_execvp(file, argv);
}

__attribute__((visibility("default"))) int execvpe(const char* file, char* const argv[],
                                                   char* const envp[]) {
  faultline::BeforeExec();
  return faultline::g_execvpe(file, argv, envp);
}

__attribute__((visibility("default"))) int fexecve(int fd, char* const argv[], char* const envp[]) {
  faultline::BeforeExec();
  return faultline::g_fexecve(fd, argv, envp);
}

}  // extern "C"

namespace {

// The arguments after `first` up to the terminating NULL, counted.
size_t CountArguments(va_list args) {
  size_t count = 1;
  while (va_arg(args, const char*) != nullptr) ++count;
  return count;
}

// argv[0..count) from `first` and `args`, then NULL.
void GatherArguments(const char* first, va_list args, const char** argv, size_t count) {
  argv[0] = first;
  for (size_t i = 1; i < count; ++i) argv[i] = va_arg(args, const char*);
  argv[count] = nullptr;
}

}  // namespace

// execl(path, arg0, ..., NULL) and its siblings: the argument vector is built on the stack (no
// allocation: this may run in a child of a multi-threaded program), then the vector form runs.
extern "C" {

__attribute__((visibility("default"))) int execl(const char* path, const char* arg, ...) {
  va_list args;
  va_start(args, arg);
  size_t count = CountArguments(args);
  va_end(args);
  auto argv = static_cast<const char**>(alloca((count + 1) * sizeof(char*)));
  va_start(args, arg);
  GatherArguments(arg, args, argv, count);
  va_end(args);
  return execv(path, const_cast<char* const*>(argv));
}

__attribute__((visibility("default"))) int execlp(const char* file, const char* arg, ...) {
  va_list args;
  va_start(args, arg);
  size_t count = CountArguments(args);
  va_end(args);
  auto argv = static_cast<const char**>(alloca((count + 1) * sizeof(char*)));
  va_start(args, arg);
  GatherArguments(arg, args, argv, count);
  va_end(args);
  return execvp(file, const_cast<char* const*>(argv));
}

// execle(path, arg0, ..., NULL, envp)
__attribute__((visibility("default"))) int execle(const char* path, const char* arg, ...) {
  va_list args;
  va_start(args, arg);
  size_t count = CountArguments(args);
  char* const* envp = va_arg(args, char* const*);
  va_end(args);
  auto argv = static_cast<const char**>(alloca((count + 1) * sizeof(char*)));
  va_start(args, arg);
  GatherArguments(arg, args, argv, count);
  va_end(args);
  return execve(path, const_cast<char* const*>(argv), envp);
}

// _exit and _Exit end the process without exit handlers: the summary is written first.
__attribute__((visibility("default"), noreturn)) void _exit(int status) {
  faultline::WriteProcessStats("exit");
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status) { _exit(status); }

}  // extern "C"
