#include "run_command.h"

#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "child_process.h"
#include "preload/env_config.h"
#include "run_options.h"
#include "run_stats.h"
#include "stats_file.h"
#include "tree_report.h"
#include "util/log.h"
#include "util/status.h"

// Where the preload library is looked for when FAULTLINE_PRELOAD_LIB is not set: the build tree
// this binary was built in (so that a faultline run from there uses the library built with it),
// then the install location. tools/meson.build defines both.
#if !defined(FAULTLINE_BUILD_PRELOAD) || !defined(FAULTLINE_INSTALL_PRELOAD)
#error "FAULTLINE_BUILD_PRELOAD and FAULTLINE_INSTALL_PRELOAD must be defined by the build"
#endif

namespace faultline {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInternal = 125;  // as env(1) and timeout(1): the tool failed, not the command
constexpr int kExitCannotRun = 126;
constexpr int kExitNotFound = 127;

// Debian's libjemalloc2; on Debian 12 /lib is /usr/lib, elsewhere it may not be.
constexpr const char* kSystemJemalloc[] = {"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                                           "/lib/x86_64-linux-gnu/libjemalloc.so.2"};

int Fail(const absl::Status& status, int exit_status) {
  std::fprintf(stderr, "faultline run: %s\n", std::string(status.message()).c_str());
  return exit_status;
}

uint64_t TotalRam() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * page_size : 0;
}

// `path` made fit for LD_PRELOAD: absolute (the command may change directory before it starts
// other programs, which inherit LD_PRELOAD), readable, and free of the characters ld.so splits
// LD_PRELOAD at. `context` names the path in errors.
absl::StatusOr<std::string> PreloadablePath(const char* path, const std::string& context) {
  char absolute[PATH_MAX];
  if (realpath(path, absolute) == nullptr) return ErrnoError(errno, context);
  if (access(absolute, R_OK) != 0) return ErrnoError(errno, context);
  if (std::strpbrk(absolute, " :") != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": LD_PRELOAD cannot hold a path with a space or ':'"));
  }
  return std::string(absolute);
}

// faultline's preload library: FAULTLINE_PRELOAD_LIB, else the built one, else the installed one.
absl::StatusOr<std::string> FindPreloadLibrary() {
  if (const char* chosen = std::getenv("FAULTLINE_PRELOAD_LIB"); chosen != nullptr && *chosen) {
    return PreloadablePath(chosen, absl::StrCat("FAULTLINE_PRELOAD_LIB=", chosen));
  }
  for (const char* path : {FAULTLINE_BUILD_PRELOAD, FAULTLINE_INSTALL_PRELOAD}) {
    if (access(path, F_OK) == 0) return PreloadablePath(path, path);
  }
  return absl::NotFoundError(absl::StrCat(
      "the preload library is neither built (", FAULTLINE_BUILD_PRELOAD, ") nor installed (",
      FAULTLINE_INSTALL_PRELOAD, "); set FAULTLINE_PRELOAD_LIB to its path"));
}

// jemalloc, to preload behind faultline's library: glibc malloc maps memory through internal calls
// that an LD_PRELOAD mmap wrapper never sees, jemalloc calls mmap through the PLT, so with it all
// heap memory is managed (docs/preload-memory-sources.md). FAULTLINE_JEMALLOC names another one;
// set empty, it turns this off. When none is found, warns and returns nullopt: the run goes on.
std::optional<std::string> FindJemalloc() {
  const char* chosen = std::getenv("FAULTLINE_JEMALLOC");
  if (chosen != nullptr && *chosen == '\0') return std::nullopt;
  const char* const chosen_only[] = {chosen};
  std::span<const char* const> candidates =
      chosen != nullptr ? std::span<const char* const>(chosen_only) : kSystemJemalloc;
  for (const char* candidate : candidates) {
    if (absl::StatusOr<std::string> path = PreloadablePath(candidate, candidate); path.ok()) {
      return *path;
    }
  }
  std::fprintf(stderr,
               "faultline run: warning: no jemalloc at %s: heap memory of programs that use glibc "
               "malloc will not be managed (apt-get install libjemalloc2)\n",
               absl::StrJoin(candidates, " or ").c_str());
  return std::nullopt;
}

absl::Status SetVariable(const char* name, const std::string& value) {
  if (setenv(name, value.c_str(), 1) != 0) return ErrnoError(errno, absl::StrCat("setenv ", name));
  return absl::OkStatus();
}

// EnvLookup wants a function returning const char*; std::getenv returns char*.
const char* LookUp(const char* name) { return std::getenv(name); }

// Makes this process's environment the command's: the options' variables, FAULTLINE_STATS (the
// directory where each process of the tree leaves its statistics), and
// LD_PRELOAD with `libraries` ahead of whatever was preloaded already. Then reads it back the way
// the library will, which checks the variables inherited rather than given as options as well.
absl::Status SetChildEnvironment(const RunOptions& options, const std::string& libraries,
                                 const std::string& stats_path, uint64_t total_ram) {
  // Absolute, as the command may change directory before the library reads it.
  std::optional<std::string> swap_dir;
  if (options.swap_dir.has_value()) {
    char absolute[PATH_MAX];
    if (realpath(options.swap_dir->c_str(), absolute) == nullptr) {
      return ErrnoError(errno, absl::StrCat("--swap-dir ", *options.swap_dir));
    }
    swap_dir = absolute;
  }
  const std::pair<const char*, const std::optional<std::string>&> from_options[] = {
      {"FAULTLINE_LIMIT", options.limit},
      {"FAULTLINE_SWAP_DIR", swap_dir},
      {"FAULTLINE_MIN_REGION", options.min_region},
      {"FAULTLINE_LOG", options.log_level},
  };
  for (const auto& [name, value] : from_options) {
    if (!value.has_value()) continue;
    if (absl::Status s = SetVariable(name, *value); !s.ok()) return s;
  }
  if (absl::Status s = SetVariable("FAULTLINE_STATS", stats_path); !s.ok()) return s;
  const char* preloaded = std::getenv("LD_PRELOAD");
  std::string ld_preload = preloaded != nullptr && *preloaded != '\0'
                               ? absl::StrCat(libraries, ":", preloaded)
                               : libraries;
  if (absl::Status s = SetVariable("LD_PRELOAD", ld_preload); !s.ok()) return s;

  if (!SetLogLevel(-1)) {  // reads FAULTLINE_LOG as the library does
    std::string given = options.log_level.has_value()
                            ? absl::StrCat("--log ", *options.log_level)
                            : absl::StrCat("FAULTLINE_LOG=", std::getenv("FAULTLINE_LOG"));
    return absl::InvalidArgumentError(
        absl::StrCat(given, ": not a log level: use trace, debug, info, warn, error, off or 0-6"));
  }
  PreloadConfig config;
  char error[512];
  if (!ReadPreloadConfig(LookUp, total_ram, &config, error, sizeof(error))) {
    return absl::InvalidArgumentError(error);
  }
  return absl::OkStatus();
}

RunOutcome OutcomeOf(const ChildResult& child) {
  RunOutcome outcome;
  outcome.started = child.exec_errno == 0;
  outcome.peak_rss_bytes = child.peak_rss_bytes;
  outcome.wall_seconds = child.wall_seconds;
  if (!outcome.started) {
    outcome.exit_status = child.exec_errno == ENOENT ? kExitNotFound : kExitCannotRun;
  } else if (WIFSIGNALED(child.wait_status)) {
    outcome.term_signal = WTERMSIG(child.wait_status);
    outcome.exit_status = 128 + outcome.term_signal;
  } else {
    outcome.exit_status = WEXITSTATUS(child.wait_status);
  }
  return outcome;
}

// As a shell says it: "foo: command not found" for a name looked up in PATH.
void PrintExecError(const char* command, int exec_errno) {
  if (exec_errno == ENOENT && std::strchr(command, '/') == nullptr) {
    std::fprintf(stderr, "faultline run: %s: command not found\n", command);
  } else {
    std::fprintf(stderr, "faultline run: %s: %s\n", command, std::strerror(exec_errno));
  }
}

// Why a run left no statistics behind.
const char* WhyNoStats(const RunOutcome& outcome) {
  if (!outcome.started) return "the command did not start";
  if (outcome.term_signal != 0) return "the command was killed before it could exit";
  return "the command exited without writing them: was the preload library loaded?";
}

// The report on stderr, or with --json on stdout; the same JSON goes to the --stats file. Without
// any statistics stderr says why in one line.
void Report(const RunOptions& options, const StatsDirectory& stats_dir, const RunOutcome& outcome) {
  absl::StatusOr<std::vector<StatsEntry>> entries = stats_dir.Read();
  TreeReport report;
  if (!entries.ok()) {
    std::fputs(
        FormatNoReport(absl::StrCat("the statistics cannot be read: ", entries.status().message()),
                       outcome)
            .c_str(),
        stderr);
  } else {
    report = BuildTreeReport(*entries);
    const ImageReport* malformed = nullptr;
    for (const ImageReport& image : report.images) {
      if (image.end == "malformed") malformed = &image;
    }
    if (report.images.empty()) {
      std::fputs(
          FormatNoReport(absl::StrCat("no statistics were written (", WhyNoStats(outcome), ")"),
                         outcome)
              .c_str(),
          stderr);
    } else if (malformed != nullptr && report.images.size() == 1) {
      std::fputs(FormatNoReport(absl::StrCat("the statistics are malformed (", malformed->file,
                                             ": ", malformed->error, ")"),
                                outcome)
                     .c_str(),
                 stderr);
    } else if (!options.json) {
      std::fputs(FormatTreeReport(report, outcome).c_str(), stderr);
    }
  }
  std::string json = FormatTreeJson(report, outcome);
  if (options.json) std::fputs(json.c_str(), stdout);
  if (absl::Status s = stats_dir.Keep(json); !s.ok()) {
    std::fprintf(stderr, "faultline run: --stats: %s\n", std::string(s.message()).c_str());
  }
}

}  // namespace

int RunCommand(std::span<char* const> args) {
  absl::StatusOr<RunOptions> options = ParseRunOptions(args);
  if (!options.ok()) {
    Fail(options.status(), kExitUsage);
    std::fputs("Try 'faultline run --help'.\n", stderr);
    return kExitUsage;
  }
  if (options->help) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  uint64_t total_ram = TotalRam();
  if (absl::Status s = ValidateRunOptions(*options, total_ram); !s.ok()) return Fail(s, kExitUsage);
  absl::StatusOr<std::string> libraries = FindPreloadLibrary();
  if (!libraries.ok()) return Fail(libraries.status(), kExitUsage);
  if (std::optional<std::string> jemalloc = FindJemalloc())
    absl::StrAppend(&*libraries, ":", *jemalloc);

  StatsDirectory stats_dir;
  if (absl::Status s = stats_dir.Create(options->stats_path); !s.ok()) {
    return Fail(s, options->stats_path.has_value() ? kExitUsage : kExitInternal);
  }
  if (absl::Status s = SetChildEnvironment(*options, *libraries, stats_dir.path(), total_ram);
      !s.ok()) {
    return Fail(s, kExitUsage);
  }
  absl::StatusOr<ChildResult> child = RunChild(options->command);
  if (!child.ok()) return Fail(child.status(), kExitInternal);
  RunOutcome outcome = OutcomeOf(*child);
  if (!outcome.started) PrintExecError(options->command[0], child->exec_errno);
  Report(*options, stats_dir, outcome);
  return outcome.exit_status;
}

}  // namespace faultline
