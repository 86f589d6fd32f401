// The measured procedure of faultline-bench-advice, the same code on faultline's side and on the
// kernel's: write every word of every page of a fresh region (PagePattern), page the whole region
// out (PAGEOUT), give a mode's advice, then scan the region once from its start, reading and
// checking one 8-byte word per 4 KiB page. A Side says how advice is given (fl_advise or madvise;
// they take the same values) and where the counters come from.
#ifndef FAULTLINE_BENCH_ADVICE_SCAN_H_
#define FAULTLINE_BENCH_ADVICE_SCAN_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "bench_util.h"
#include "kernel_swap.h"
#include "workloads.h"

namespace faultline_bench {

// WILLNEED ahead advises this much at a time: at most two such windows are read ahead at once,
// well inside the smallest limit the bench uses (64 MiB).
inline constexpr size_t kWillNeedWindow = 8 * kMiB;

// What a mode advises: `region_advice` (an MADV_* value) for the whole region after the page-out
// and, with `willneed_ahead`, WILLNEED during the scan on the window after the one being read.
struct AdviceMode {
  const char* name;
  int region_advice;
  bool willneed_ahead;
};
inline constexpr AdviceMode kAdviceModes[] = {{"NORMAL", MADV_NORMAL, false},
                                              {"SEQUENTIAL", MADV_SEQUENTIAL, false},
                                              {"RANDOM", MADV_RANDOM, false},
                                              {"WILLNEED 8 MiB ahead", MADV_NORMAL, true}};
inline constexpr int kAdviceModeCount = sizeof(kAdviceModes) / sizeof(kAdviceModes[0]);

// A side's counters; a scan reports their differences. kNoValue where a side has none.
struct IoCounters {
  uint64_t read_faults = 0;  // faultline faults_swap_in; kernel ru_majflt of this process
  uint64_t bytes_read = 0;   // faultline bytes_read; kernel pswpin x 4 KiB (system-wide)
  uint64_t prefetched_pages = kNoValue;  // faultline pages_prefetched
};

// How a side takes advice (returns 0 or -errno) and where its counters come from.
struct Side {
  const char* name;
  int (*advise)(void* addr, size_t length, int advice);
  IoCounters (*counters)();
};
extern const Side kFaultlineSide;  // fl_advise, fl_get_stats
extern const Side kKernelSide;     // madvise, getrusage and /proc/vmstat

// One run of a mode. Plain data: the kernel's child sends it through a pipe.
struct ScanResult {
  char error[256] = {};       // why the run stopped short; empty when it ran to the end
  double seconds = 0;         // the scan alone
  uint64_t waits = 0;         // accesses that took kWaitNs or more
  double wait_seconds = 0;    // the time those accesses took
  double advise_seconds = 0;  // the time the WILLNEED calls of the scan took
  uint64_t verify_errors = 0;
  uint64_t first_bad_page = 0;
  uint64_t first_bad_value = 0;
  // After the page-out and the advice: pages in memory (mincore: mapped, or in the kernel's swap
  // cache) and, of those, mapped (/proc/self/pagemap). kNoValue when they could not be read.
  uint64_t resident_pages_at_start = kNoValue;
  uint64_t mapped_pages_at_start = kNoValue;
  IoCounters io;  // differences over the scan
};

// An access that took this long waited for something. A kernel fault that finds its page in the
// swap cache stays well under it (in a NORMAL scan its waits exceed its major faults by a few
// dozen), and faultline serves no fault without a read during the scan.
inline constexpr uint64_t kWaitNs = 10'000;

// Writes, pages out, advises and scans [base, base + bytes), memory that `side` manages.
ScanResult WriteEvictScan(const Side& side, char* base, size_t bytes, const AdviceMode& mode);

// Runs `mode` on faultline's side in this process: a runtime with `knobs` and its swap file in
// `swap_dir`, one region of `bytes`. False with *why when the runtime could not start (nothing
// was measured).
bool RunFaultlineScan(const Knobs& knobs, const std::string& swap_dir, size_t bytes,
                      const AdviceMode& mode, ScanResult* result, std::string* why);

// Runs `mode` on the kernel's side: a child joins the peer's cgroup, maps `bytes` of plain
// anonymous memory, runs WriteEvictScan and sends the result back through a pipe. False with
// *why when no result came back. REQUIRES: peer->Setup() succeeded; no faultline runtime is
// running (the child is a fork of this process).
bool RunKernelScan(KernelSwapPeer* peer, size_t bytes, const AdviceMode& mode, ScanResult* result,
                   std::string* why);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_ADVICE_SCAN_H_
