// The statistics of a program run under faultline: the JSON file the preload library writes at the
// program's exit (FAULTLINE_STATS), read back by `faultline run`, and the reports made from it.
//
// The file is one flat JSON object whose values are unsigned integers and a few strings:
//   {"pid":123,"command":"cc1","memory_limit":134217728,"faults_zero_fill":131072,...}
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

// The unsigned integer and string members of a statistics file.
class RunStats {
 public:
  // Parses one flat JSON object. Members whose value is neither a string nor an unsigned integer
  // that fits in 64 bits (negative or fractional numbers, true/false/null) are skipped; nested
  // objects or arrays, trailing text and syntax errors are refused with a message giving the byte
  // offset.
  static absl::StatusOr<RunStats> Parse(absl::string_view text);

  // The value of `key`; 0 when the file does not have it (a library older than the counter).
  uint64_t Get(absl::string_view key) const;
  // The string `key` as written between the quotes (JSON escapes kept); empty when absent.
  std::string GetString(absl::string_view key) const;

  const std::map<std::string, uint64_t, std::less<>>& values() const { return values_; }
  const std::map<std::string, std::string, std::less<>>& strings() const { return strings_; }
  void Set(absl::string_view key, uint64_t value) {
    values_.insert_or_assign(std::string(key), value);
  }
  void SetString(absl::string_view key, absl::string_view raw) {
    strings_.insert_or_assign(std::string(key), std::string(raw));
  }

 private:
  // Keys as written between the quotes, escapes left undecoded: the keys read here have none.
  std::map<std::string, uint64_t, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> strings_;
};

// "512 MiB", "127.9 MiB", "4.0 KiB": binary units, one decimal unless the value is exact.
std::string FormatBytes(uint64_t bytes);
std::string FormatMicros(uint64_t nanoseconds);

// How the command ended, as `faultline run` saw it.
struct RunOutcome {
  bool started = false;  // false: exec failed, the command never ran
  int exit_status = 0;   // what `faultline run` exits with (128+N for signal N)
  int term_signal = 0;   // the signal that killed the command, or 0
  // From wait4(): the largest resident set of any single process of the tree that was waited for
  // (the kernel's ru_maxrss of the command and its reaped descendants), not a sum.
  uint64_t peak_rss_bytes = 0;
  double wall_seconds = 0;
};

// "wall 3.52 s, exit status 137 (killed by SIGKILL)"
std::string FormatEnd(const RunOutcome& outcome);

// The human report, several lines each ending in '\n', for stderr.
std::string FormatReport(const RunStats& stats, const RunOutcome& outcome);

// The report's line on limit_overshoot_pages; empty when it is 0.
std::string FormatOvershoot(const RunStats& stats);

// One line for stderr in place of the report: "faultline: <message>; wall 0.01 s, exit status 137
// (killed by SIGKILL)".
std::string FormatNoReport(absl::string_view message, const RunOutcome& outcome);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_RUN_STATS_H_
