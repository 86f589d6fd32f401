// The two sides' memory (a faultline region, a plain anonymous mapping) and the loops both sides
// share: a first-touch sweep and the fill that gives every page known contents.
#ifndef FAULTLINE_BENCH_WORKLOADS_H_
#define FAULTLINE_BENCH_WORKLOADS_H_

#include <cstddef>
#include <cstdint>
#include <string>

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

// Stores one byte into each page in order; returns the seconds the whole sweep took.
double TimeFirstTouch(char* base, size_t bytes);

// Fills every word of every page with PagePattern(page), showing progress as `label`; returns
// the seconds it took.
double WritePages(char* base, size_t bytes, const char* label);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_WORKLOADS_H_
