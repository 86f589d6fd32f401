// Where the preload library writes a run's statistics (FAULTLINE_STATS): a private directory in
// which each program image of the command's process tree keeps its own file
// (lib/preload/process_stats.h), and the user's --stats file, which gets the whole report as JSON.
#ifndef FAULTLINE_TOOLS_STATS_FILE_H_
#define FAULTLINE_TOOLS_STATS_FILE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline {

// One file the library wrote: its name (`<pid>.<n>.json`) and contents.
struct StatsEntry {
  std::string name;
  std::string text;
};

// A temporary directory under $TMPDIR (else /tmp), removed with whatever is in it by the
// destructor, and optionally the user's --stats file, created (or truncated) before the run so
// that an unwritable path is reported before anything runs.
class StatsDirectory {
 public:
  StatsDirectory() = default;
  StatsDirectory(const StatsDirectory&) = delete;
  StatsDirectory& operator=(const StatsDirectory&) = delete;
  ~StatsDirectory();

  absl::Status Create(const std::optional<std::string>& user_path);

  // The directory, absolute: the command may change directory before it starts other programs.
  const std::string& path() const { return path_; }

  // The files the processes wrote, in name order (dotfiles, the library's half-written ones,
  // left out).
  absl::StatusOr<std::vector<StatsEntry>> Read() const;

  // Writes `text` to the --stats file, if one was given.
  absl::Status Keep(const std::string& text) const;

 private:
  std::string path_;
  std::optional<std::string> user_path_;
};

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_STATS_FILE_H_
