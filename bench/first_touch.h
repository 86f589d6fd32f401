// Sequential first-touch throughput: one store per fresh 4 KiB page, the kernel's 4 KiB first
// touch against faultline's zero fill over a range of fault_around_pages (no eviction).
#ifndef FAULTLINE_BENCH_FIRST_TOUCH_H_
#define FAULTLINE_BENCH_FIRST_TOUCH_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"

namespace faultline_bench {

// The fault_around_pages values measured, and the library's default among them.
inline constexpr uint32_t kFaultAroundPages[] = {1, 16, 64, 256, 512};
inline constexpr uint32_t kDefaultFaultAroundPages = 256;

struct FirstTouchRow {
  uint32_t fault_around_pages = 0;  // 0: the kernel's row
  double median_gib_per_s = NAN;    // over the runs
  double min_gib_per_s = NAN;
  double max_gib_per_s = NAN;
  uint64_t faults = kNoValue;  // faults of the last run (the kernel: one per page)
};

struct FirstTouchResult {
  std::vector<FirstTouchRow> rows;  // the kernel's first, when it ran
  // Rows that could not run, with the reason: {what, why}.
  std::vector<std::pair<std::string, std::string>> skipped;
};

// Sweeps `bytes` `runs` times per row. faultline rows use `swap_dir` for their (unused) swap file.
FirstTouchResult RunFirstTouch(size_t bytes, int runs, const std::string& swap_dir);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_FIRST_TOUCH_H_
