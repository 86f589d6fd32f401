// The measured loops, shared by the kernel and faultline rows so both sides run the same code:
// one timed store per fresh page, an untimed-per-page first-touch sweep, and the three
// out-of-core phases (write every page, re-read sequentially, re-read in a shuffled order).
#ifndef FAULTLINE_BENCH_WORKLOADS_H_
#define FAULTLINE_BENCH_WORKLOADS_H_

#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"
#include "faultline/faultline.h"

namespace faultline_bench {

// The faultline knobs a row sets; 0 leaves the library's default.
struct Knobs {
  uint64_t memory_limit = 0;
  uint32_t fault_around_pages = 0;
  uint32_t readahead_pages = 0;
  uint32_t evict_batch_pages = 0;
  uint32_t fault_threads = 0;
  int32_t spin_us = 0;
  unsigned map_flags = 0;  // FL_MAP_*
};

// A faultline runtime (fl_init .. fl_shutdown) holding one mapped region. There is one runtime
// per process, so at most one of these may be open at a time.
class ManagedRegion {
 public:
  ManagedRegion() = default;
  ~ManagedRegion();
  ManagedRegion(const ManagedRegion&) = delete;
  ManagedRegion& operator=(const ManagedRegion&) = delete;

  // Starts a runtime with `knobs` and its swap file in `swap_dir`, then maps `bytes`. On failure
  // returns false with the library's explanation in *error, and nothing is left running.
  bool Open(const Knobs& knobs, const std::string& swap_dir, size_t bytes, std::string* error);
  char* data() const { return base_; }
  fl_stats Stats() const;

 private:
  bool running_ = false;
  char* base_ = nullptr;
  size_t bytes_ = 0;
};

// A private anonymous mapping with 4 KiB pages (MADV_NOHUGEPAGE): the kernel's side.
class AnonRegion {
 public:
  AnonRegion() = default;
  ~AnonRegion();
  AnonRegion(const AnonRegion&) = delete;
  AnonRegion& operator=(const AnonRegion&) = delete;

  bool Open(size_t bytes, std::string* error);
  char* data() const { return base_; }

 private:
  char* base_ = nullptr;
  size_t bytes_ = 0;
};

// Restricts the calling thread to the CPU it runs on, for the object's lifetime. Threads started
// meanwhile (by fl_init: the fault handlers and the evictor) inherit the restriction, so a
// runtime opened under it has every thread on one CPU.
class PinToCurrentCpu {
 public:
  PinToCurrentCpu();
  ~PinToCurrentCpu();
  PinToCurrentCpu(const PinToCurrentCpu&) = delete;
  PinToCurrentCpu& operator=(const PinToCurrentCpu&) = delete;

  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// Stores one byte into each page of [base, base + bytes) in order, timing every store alone.
LatencySummary TimeEachFirstStore(char* base, size_t bytes);

// Stores one byte into each page in order; returns the seconds the whole sweep took.
double TimeFirstTouch(char* base, size_t bytes);

// One out-of-core phase. The counters are deltas over the phase; kNoValue where a side has no
// such counter. Plain data: the kernel-swap child sends it through a pipe.
struct PhaseResult {
  double seconds = 0;
  uint64_t pages = 0;
  uint64_t verify_errors = 0;
  uint64_t swap_ins = kNoValue;  // faultline faults_swap_in; kernel major faults
  uint64_t readahead_pages = kNoValue;
  uint64_t bytes_read = kNoValue;
  uint64_t bytes_written = kNoValue;
  uint64_t evictions = kNoValue;  // faultline evictions; kernel pages reclaimed (system-wide)
  uint64_t evictions_clean = kNoValue;
  uint64_t direct_reclaims = kNoValue;  // faultline only: faults that had to evict first
};

// Fills every word of every page with PagePattern(page).
PhaseResult WritePages(char* base, size_t bytes, const char* label);
// Reads one word per page in order and checks it against PagePattern.
PhaseResult ReadSequential(char* base, size_t bytes, const char* label);
// Reads one word per page in the order given and checks it against PagePattern.
PhaseResult ReadInOrder(char* base, const std::vector<uint32_t>& order, const char* label);
// Every page index of `pages` once, in an order shuffled with a fixed seed.
std::vector<uint32_t> ShuffledPages(size_t pages);

// Sets the counters of *phase to the differences between two fl_get_stats snapshots.
void SetFaultlineCounters(const fl_stats& before, const fl_stats& after, PhaseResult* phase);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_WORKLOADS_H_
