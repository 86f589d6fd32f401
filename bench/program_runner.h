// Running an unmodified program as a measured child for faultline-bench-programs: natively, under
// `faultline run`, or inside a KernelSwapPeer's memory cgroup. Also the private work directory
// that holds the programs' input and output files.
//
// Cleanup on every path: the work directory and its files go at Remove() and from the
// SIGINT/SIGTERM/SIGHUP handlers that InstallWorkCleanupHandlers() puts in front of
// KernelSwapPeer's (which then remove the swap file and the cgroup). A child started without a
// peer is sent SIGTERM by those handlers (`faultline run` passes it on to its program); a child in
// the cgroup is killed by the peer's.
#ifndef FAULTLINE_BENCH_PROGRAM_RUNNER_H_
#define FAULTLINE_BENCH_PROGRAM_RUNNER_H_

#include <sys/wait.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernel_swap.h"

namespace faultline_bench {

// The files the work directory may hold, by name; nothing else is created in it.
inline constexpr const char* kWorkFileNames[] = {"program.py", "input.txt", "expected.txt",
                                                 "output.txt", "faultline.json"};

// A directory made with mkdtemp() in a parent directory. One at a time per process.
class WorkDir {
 public:
  WorkDir() = default;
  ~WorkDir() { Remove(); }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;

  // Creates <parent>/faultline-bench-programs-XXXXXX. On failure returns false with the reason.
  bool Create(const std::string& parent, std::string* why);
  // The path of `name`, one of kWorkFileNames. REQUIRES: Create() succeeded.
  std::string Path(const char* name) const;
  // Unlinks every file of kWorkFileNames that exists and the directory. Idempotent.
  void Remove();
};

// Installs the handlers that end a running child and remove the work directory, then run the
// handler installed before them. REQUIRES: InstallCleanupHandlers() (kernel_swap.h) ran first.
void InstallWorkCleanupHandlers();

// What one run of a program gave. rusage fields come from the child together with the
// descendants it reaped (RUSAGE_BOTH, as wait4 reports them): for `faultline run`, its program.
struct ProgramRun {
  bool started = false;  // false: fork failed (`error` says why)
  int wait_status = 0;
  double wall_seconds = 0;  // from just before fork to the child reaped
  uint64_t peak_rss_bytes = 0;
  uint64_t major_faults = 0;
  std::string error;
};

// Runs argv (argv[0] looked up in PATH) with stdout to `stdout_path` (created or truncated) and
// waits for it. With a peer the child joins the peer's cgroup before exec. A child that cannot
// exec exits with 127 after a line on stderr. REQUIRES: argv is not empty; with a peer, its
// Setup() succeeded.
ProgramRun RunProgram(const std::vector<std::string>& argv, const std::string& stdout_path,
                      KernelSwapPeer* peer);

// "exit status N" or "killed by signal N (NAME)".
std::string DescribeStatus(int wait_status);

// True when the program ran and exited with status 0.
inline bool ExitedCleanly(const ProgramRun& run) {
  return run.started && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0;
}

// The number after "key": in the flat JSON object `json` (what `faultline run --json` prints);
// NaN when the key is absent or its value is not a number.
double JsonNumber(const std::string& json, const std::string& key);

// The whole file, or an empty string when it cannot be read.
std::string ReadWholeFile(const std::string& path);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_PROGRAM_RUNNER_H_
