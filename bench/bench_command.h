// `faultline bench`: the kernel and faultline side by side on this machine, in one run: fault
// latency (latency_modes.h), sequential first-touch throughput (first_touch.h) and out-of-core
// workloads (out_of_core.h), with the targets checked against ratios from the same run.
#ifndef FAULTLINE_BENCH_BENCH_COMMAND_H_
#define FAULTLINE_BENCH_BENCH_COMMAND_H_

#include <span>

namespace faultline_bench {

// The usage of `faultline bench` (bench_options.h).
extern const char kBenchUsage[];

// Exit status of the tool, given the arguments after "bench" (kBenchUsage lists them and the
// exit statuses). Tables go to stdout, progress and errors to stderr.
// REQUIRES: single-threaded (it installs the cleanup signal handlers, kernel_swap.h).
int BenchCommand(std::span<char* const> args);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_BENCH_COMMAND_H_
