// PagerStats: the runtime's event counters (page counts live in PageCounters). Each field is a
// relaxed atomic: many threads add to them, readers only want a recent value, and no other memory
// is published through them. A fault's counters are added before the UFFDIO_COPY, UFFDIO_POISON or
// un-protect that wakes its thread (the kernel's wake orders them), so a thread that has taken a
// fault, or its SIGBUS, finds it counted in fl_get_stats().
#ifndef FAULTLINE_LIB_CORE_STATS_H_
#define FAULTLINE_LIB_CORE_STATS_H_

#include <atomic>
#include <cstdint>

#include "core/latency_histogram.h"

namespace faultline {

class Counter {
 public:
  void Add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void Max(uint64_t candidate) noexcept {
    uint64_t seen = value_.load(std::memory_order_relaxed);
    while (candidate > seen &&
           !value_.compare_exchange_weak(seen, candidate, std::memory_order_relaxed)) {
    }
  }
  uint64_t Get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct PagerStats {
  Counter faults_zero_fill;
  Counter faults_swap_in;
  Counter faults_write_protect;
  Counter faults_in_flight_rescue;
  Counter faults_self_paged;
  Counter pages_fault_around;
  Counter pages_readahead;
  Counter evictions;
  Counter evictions_clean;
  Counter evictions_zero;
  Counter direct_reclaims;
  Counter bytes_read;
  Counter bytes_written;
  Counter swap_full_events;
  Counter limit_overshoot_pages;
  Counter io_errors;
  Counter checksum_errors;
  Counter peak_charged_pages;
  Counter peak_managed_pages;
  Counter regions_adopted;
  Counter forks;
  Counter pages_prefetched;
  Counter pages_freed;
  Counter snapshot_pages_copied;
  LatencyHistogram fault_latency;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_STATS_H_
