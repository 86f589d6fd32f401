// The command line of `faultline bench`: parsing and defaults. The usage text, kBenchUsage
// (bench_command.h), is defined next to the parser in bench_options.cc.
#ifndef FAULTLINE_BENCH_BENCH_OPTIONS_H_
#define FAULTLINE_BENCH_BENCH_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "latency_modes.h"
#include "out_of_core.h"

namespace faultline_bench {

struct BenchOptions {
  bool help = false;  // --help: print the usage; nothing else is filled in
  bool quick = false;
  bool json = false;
  // What --mode selected, in the order the bench runs it.
  std::vector<LatencyMode> latency_modes;
  bool first_touch = false;
  std::vector<Workload> workloads;
  std::vector<uint32_t> threads;  // faulting threads of each latency mode, increasing
  size_t samples = 0;             // timed faults per latency row
  uint64_t limit = 0;             // the out-of-core workloads' limit, both sides
  uint64_t region = 0;            // the out-of-core workloads' region
  std::string swap_dir = "/var/tmp";
  std::string plot_path;  // empty: no plot
  // Sizes that follow from --quick alone.
  size_t first_touch_bytes = 0;
  int first_touch_runs = 0;
  size_t device_file_bytes = 0;
};

// Parses the arguments after "bench" (also as --name=value) and fills in the defaults. An error
// (unknown option or mode, bad value) is one line to show with a pointer to --help.
absl::StatusOr<BenchOptions> ParseBenchOptions(std::span<char* const> args);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_BENCH_OPTIONS_H_
