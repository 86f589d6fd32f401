// The report of a process tree run under `faultline run`: each program image's statistics
// (lib/preload/process_stats.h), what became of the images that left none, and the sums.
#ifndef FAULTLINE_TOOLS_TREE_REPORT_H_
#define FAULTLINE_TOOLS_TREE_REPORT_H_

#include <string>
#include <vector>

#include "run_stats.h"
#include "stats_file.h"

namespace faultline {

// One program image, as the report shows it.
struct ImageReport {
  std::string file;  // `<pid>.<n>.json`
  RunStats stats;    // as the image wrote it; only identity fields for "lost" and "running"
  // "exit" or "exec" (the image wrote its summary), "lost" (it ended without: killed by a
  // signal, or crashed), "running" (it outlived the command), "malformed" (`error` says why).
  std::string end;
  std::string error;
};

struct TreeReport {
  std::vector<ImageReport> images;  // in the order they started; malformed ones last
  // Counters and byte amounts summed over the images; memory_limit, page_size, the fault
  // latencies and limit_overshoot_pages: the largest of any image.
  RunStats total;
  int without_summary = 0;  // lost + running + malformed
};

// Reads the entries; an image whose file still says "running" is "running" when a process with
// its pid and start time still exists, else "lost".
TreeReport BuildTreeReport(const std::vector<StatsEntry>& entries);

// The human report for stderr: the sums, then (for more than one image, or one that left no
// summary) a table with a line per image.
std::string FormatTreeReport(const TreeReport& report, const RunOutcome& outcome);

// One JSON object and a newline (README.md, "A process tree"):
// {"processes":[{...},...],"process_count":N,"processes_without_summary":M,<sums>,
//  "exit_status":S,"peak_rss_bytes":B,"wall_seconds":W}
std::string FormatTreeJson(const TreeReport& report, const RunOutcome& outcome);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_TREE_REPORT_H_
