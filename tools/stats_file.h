// The file the preload library writes a run's statistics to (FAULTLINE_STATS).
#ifndef FAULTLINE_TOOLS_STATS_FILE_H_
#define FAULTLINE_TOOLS_STATS_FILE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline {

// Either the user's --stats file, kept, or a private temporary file, removed by the destructor.
// Create() makes it empty before the run, so that a file still empty afterwards means the command
// wrote no statistics, and so that an unwritable --stats path is reported before anything runs.
class StatsFile {
 public:
  StatsFile() = default;
  StatsFile(const StatsFile&) = delete;
  StatsFile& operator=(const StatsFile&) = delete;
  ~StatsFile();

  // Creates (or truncates) `user_path`, or a temporary file under $TMPDIR, else /tmp, when it is
  // absent. The path kept is absolute: the command may change directory before it exits.
  absl::Status Create(const std::optional<std::string>& user_path);

  const std::string& path() const { return path_; }

  // The file's contents; empty when the command wrote none (or removed the file).
  absl::StatusOr<std::string> Read() const;

 private:
  std::string path_;
  bool temporary_ = false;
};

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_STATS_FILE_H_
