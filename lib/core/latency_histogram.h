// LatencyHistogram: a lock-free log-linear histogram of durations in nanoseconds (8 sub-buckets per
// power of two, so a percentile is within 12.5% of the true value). Record() is safe in the fault
// path: two relaxed atomic increments, no allocation.
#ifndef FAULTLINE_LIB_CORE_LATENCY_HISTOGRAM_H_
#define FAULTLINE_LIB_CORE_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>

namespace faultline {

class LatencyHistogram {
 public:
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 16 + (64 - 4) * kSubBuckets;

  void Record(uint64_t nanos) noexcept;
  void Reset() noexcept;

  uint64_t count() const noexcept;
  uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  // The value below which `fraction` (0..1] of the samples lie: the upper bound of that bucket,
  // capped at max(). 0 when empty.
  uint64_t Percentile(double fraction) const noexcept;

  static int BucketOf(uint64_t nanos) noexcept;
  static uint64_t BucketUpperBound(int bucket) noexcept;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> max_{0};
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_LATENCY_HISTOGRAM_H_
