// Out-of-core workloads: a region several times the memory limit, filled once, then accessed in
// one of four patterns. faultline (a limit of its own) and the kernel (a memory cgroup with the
// same limit, swapping to a file on the same disk) run the same access sequence in the same run.
#ifndef FAULTLINE_BENCH_OUT_OF_CORE_H_
#define FAULTLINE_BENCH_OUT_OF_CORE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernel_swap.h"

namespace faultline_bench {

enum class Workload {
  kSequential,  // one pass over the region, in address order
  kUniform,     // one access per page of the region, pages drawn uniformly at random
  kZipf,        // as many accesses, pages drawn by Zipf(0.99) ranks scattered over the region
  kLoop,        // kLoopPasses passes over the region in address order
};
inline constexpr int kLoopPasses = 3;

struct WorkloadInfo {
  Workload workload;
  const char* name;  // as given to --mode
  const char* description;
};
extern const WorkloadInfo kWorkloads[4];

// The page of every access of `workload` over `pages` pages. Fixed seeds: the same sequence for
// both sides and for every run.
std::vector<uint32_t> AccessSequence(Workload workload, size_t pages);

// One side's run of one workload. Counters cover the access phase only, except fill_*.
struct OutOfCoreResult {
  double fill_seconds = 0;  // writing every word of every page, before the accesses
  double seconds = 0;       // the accesses
  uint64_t accesses = 0;
  uint64_t verify_errors = 0;
  // Accesses that took kWaitThresholdNs or more, each timed alone: the same measure on both sides.
  uint64_t waits = 0;
  // Faults that read from swap: faultline's faults_swap_in, the kernel's major faults.
  uint64_t io_faults = 0;
  uint64_t bytes_read = 0;     // faultline's bytes_read; the kernel's pswpin (system-wide)
  uint64_t bytes_written = 0;  // faultline's bytes_written; the kernel's pswpout (system-wide)
};
inline constexpr uint64_t kWaitThresholdNs = 10000;

// faultline with its defaults and `limit` over a region of `sequence`'s page range.
bool RunFaultlineWorkload(const std::vector<uint32_t>& sequence, size_t region_bytes,
                          uint64_t limit, const std::string& swap_dir, OutOfCoreResult* result,
                          std::string* why);

// The kernel: a child in the peer's cgroup, limited to `limit`, on a private anonymous mapping
// with 4 KiB pages.
bool RunKernelWorkload(const std::vector<uint32_t>& sequence, size_t region_bytes, uint64_t limit,
                       SharedKernelPeer* kernel_peer, OutOfCoreResult* result, std::string* why);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_OUT_OF_CORE_H_
