// The latency modes of `faultline bench`: one fault timed at a time, with 1..N faulting threads
// on disjoint pages, each mode a baseline or a counterpart of another:
//   kernel first touch    <-> faultline zero fill (handler thread), faultline self-paging
//   kernel swap-in        <-> faultline swap-in, both bounded below by the device's own read
//   (snapshots)           <-  faultline write-protect copy
#ifndef FAULTLINE_BENCH_LATENCY_MODES_H_
#define FAULTLINE_BENCH_LATENCY_MODES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernel_swap.h"

namespace faultline_bench {

enum class LatencyMode {
  kKernelFirstTouch,     // first store into private anonymous memory, 4 KiB pages
  kKernelSwapIn,         // load of a page the kernel swapped out, in a memory cgroup
  kFaultlineZeroFill,    // first store into a region, faults served by faultline's handler thread
  kFaultlineSelfPaging,  // the same with FL_MAP_SELF_PAGING: the faulting thread serves itself
  kFaultlineSwapIn,      // load of a page that fl_advise(FL_ADVICE_PAGEOUT) evicted
  // First store into a page of a region that has a snapshot: faultline copies the old page for
  // the snapshot (fl_snapshot_create), then lets the store through.
  kFaultlineWriteProtectCopy,
  kDeviceRead,  // O_DIRECT 4 KiB pread at QD1 in the swap directory (device_read.h)
};

struct LatencyModeInfo {
  LatencyMode mode;
  const char* name;  // as given to --mode
  const char* description;
};
extern const LatencyModeInfo kLatencyModes[7];
const LatencyModeInfo& InfoOf(LatencyMode mode);

struct LatencySettings {
  size_t samples = 0;            // timed faults per row, over all threads
  std::string swap_dir;          // faultline's swap file and the device-read file
  size_t device_file_bytes = 0;  // size of the file the device reads come from
};

// A swap-in row touches one page in kSwapInStride (timed_touch.h, StridedShuffled), so its region
// is this many times the samples.
inline constexpr size_t kSwapInStride = 16;

struct LatencyRow {
  LatencyMode mode = LatencyMode::kKernelFirstTouch;
  uint32_t threads = 1;
  LatencySummary summary;
  std::vector<uint32_t> sorted_ns;  // every sample, sorted: the CDF
  // Faults that read from swap while timed: faultline's faults_swap_in, the kernel's major faults.
  uint64_t io_faults = kNoValue;
  // Of the pages to be timed, how many were still in memory (mincore) when timing started.
  uint64_t resident_before = kNoValue;
  // faultline's own service time (fl_get_stats: message read to page mapped).
  uint64_t handler_p50_ns = kNoValue;
  uint64_t handler_p99_ns = kNoValue;
};

// Runs `mode` with `threads` faulting threads (kDeviceRead: always one). The kernel swap-in mode
// gets its peer from `kernel_peer`. Returns false with the reason in *why when the mode cannot run
// here; the caller lists it as skipped.
bool RunLatencyMode(LatencyMode mode, uint32_t threads, const LatencySettings& settings,
                    SharedKernelPeer* kernel_peer, LatencyRow* row, std::string* why);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_LATENCY_MODES_H_
