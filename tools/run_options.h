// The command line of `faultline run`: parsing, checking the values, and the usage text.
#ifndef FAULTLINE_TOOLS_RUN_OPTIONS_H_
#define FAULTLINE_TOOLS_RUN_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline {

// Options given on the command line; an absent one leaves the inherited variable as it is.
struct RunOptions {
  bool help = false;                      // --help: print the usage; nothing else is filled in
  std::optional<std::string> limit;       // FAULTLINE_LIMIT
  std::optional<std::string> swap_dir;    // FAULTLINE_SWAP_DIR
  std::optional<std::string> min_region;  // FAULTLINE_MIN_REGION
  std::optional<std::string> stats_path;  // where the JSON report is kept; absent: nowhere
  std::optional<std::string> log_level;   // FAULTLINE_LOG
  bool json = false;
  std::vector<char*> command;  // the command's argv, ending with nullptr
};

// The full usage of `faultline run`.
extern const char kRunUsage[];

// Parses the arguments after "run": options (also as --name=value), an optional "--", then the
// command, which starts at the first argument that does not begin with '-'. An error (unknown
// option, missing value, no command) is one line to show with a pointer to --help.
absl::StatusOr<RunOptions> ParseRunOptions(std::span<char* const> args);

// Checks the values the way the preload library will read them: sizes with ParseSize() (a
// percentage of `total_ram` for --limit), the swap directory exists and is writable, and a limit
// is given unless FAULTLINE_LIMIT is set. An error is one line naming the option.
absl::Status ValidateRunOptions(const RunOptions& options, uint64_t total_ram);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_RUN_OPTIONS_H_
