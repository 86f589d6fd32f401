// The statistics of a program run under faultline: the JSON file the preload library writes at the
// program's exit (FAULTLINE_STATS), read back by `faultline run`, and the reports made from it.
//
// The file is one flat JSON object whose values are unsigned integers:
//   {"pid":123,"memory_limit":134217728,"faults_zero_fill":131072,...}
// Keys come in any order. Keys this tool does not know are ignored, whatever their value, so that
// a newer library can add counters (or non-integer fields) without breaking an older tool.
#ifndef FAULTLINE_TOOLS_RUN_STATS_H_
#define FAULTLINE_TOOLS_RUN_STATS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace faultline {

// The unsigned integer members of a statistics file.
class RunStats {
 public:
  // Parses one flat JSON object. Members whose value is not an unsigned integer that fits in 64
  // bits (strings, negative or fractional numbers, true/false/null) are skipped; nested objects or
  // arrays, trailing text and syntax errors are refused with a message giving the byte offset.
  static absl::StatusOr<RunStats> Parse(absl::string_view text);

  // The value of `key`; 0 when the file does not have it (a library older than the counter).
  uint64_t Get(absl::string_view key) const;

 private:
  // Keys as written between the quotes, escapes left undecoded: the keys read here have none.
  std::map<std::string, uint64_t, std::less<>> values_;
};

// How the command ended, as `faultline run` saw it.
struct RunOutcome {
  bool started = false;         // false: exec failed, the command never ran
  int exit_status = 0;          // what `faultline run` exits with (128+N for signal N)
  int term_signal = 0;          // the signal that killed the command, or 0
  uint64_t peak_rss_bytes = 0;  // the command's largest resident set, from wait4()
  double wall_seconds = 0;
};

// The human report, several lines each ending in '\n', for stderr.
std::string FormatReport(const RunStats& stats, const RunOutcome& outcome);

// One line for stderr in place of the report: "faultline: <message>; wall 0.01 s, exit status 137
// (killed by SIGKILL)".
std::string FormatNoReport(absl::string_view message, const RunOutcome& outcome);

// `stats_json` (a file RunStats::Parse accepted) with "exit_status", "peak_rss_bytes" and
// "wall_seconds" appended as members, and a newline. An empty `stats_json` gives an object with
// those three members only.
std::string AugmentJson(absl::string_view stats_json, const RunOutcome& outcome);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_RUN_STATS_H_
