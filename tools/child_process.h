// Running a command as a child the way system(3) does: while it runs, this process ignores SIGINT
// and SIGQUIT (the terminal sends them to the child as well, and the child decides), and passes
// SIGTERM and SIGHUP on to it (they are usually sent to this process alone, by pid).
#ifndef FAULTLINE_TOOLS_CHILD_PROCESS_H_
#define FAULTLINE_TOOLS_CHILD_PROCESS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace faultline {

struct ChildResult {
  int exec_errno = 0;   // non-zero: execvp() failed with this errno and the command never ran
  int wait_status = 0;  // the status wait4() gave (meaningful when exec_errno == 0)
  uint64_t peak_rss_bytes = 0;  // the child's ru_maxrss, in bytes
  double wall_seconds = 0;      // from just before fork() to the child's end
};

// Runs argv[0] (looked up in PATH) with arguments argv[1..] in this process's environment and
// waits for it to end. REQUIRES: argv ends with nullptr; the process is single-threaded (the
// signal dispositions changed here are process-wide). Errors: fork() or pipe() failing.
absl::StatusOr<ChildResult> RunChild(const std::vector<char*>& argv);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_CHILD_PROCESS_H_
