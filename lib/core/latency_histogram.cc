#include "core/latency_histogram.h"

#include <algorithm>

namespace faultline {

int LatencyHistogram::BucketOf(uint64_t nanos) noexcept {
  if (nanos < 16) return static_cast<int>(nanos);
  int exponent = 63 - __builtin_clzll(nanos);  // >= 4
  int sub = static_cast<int>((nanos >> (exponent - 3)) & (kSubBuckets - 1));
  return 16 + (exponent - 4) * kSubBuckets + sub;
}

uint64_t LatencyHistogram::BucketUpperBound(int bucket) noexcept {
  if (bucket < 16) return static_cast<uint64_t>(bucket);
  int exponent = (bucket - 16) / kSubBuckets + 4;
  uint64_t sub = static_cast<uint64_t>((bucket - 16) % kSubBuckets);
  uint64_t lower = (uint64_t{1} << exponent) + (sub << (exponent - 3));
  return lower + (uint64_t{1} << (exponent - 3)) - 1;
}

void LatencyHistogram::Record(uint64_t nanos) noexcept {
  counts_[BucketOf(nanos)].fetch_add(1, std::memory_order_relaxed);
  uint64_t seen = max_.load(std::memory_order_relaxed);
  while (nanos > seen && !max_.compare_exchange_weak(seen, nanos, std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::Reset() noexcept {
  for (auto& count : counts_) count.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

uint64_t LatencyHistogram::count() const noexcept {
  uint64_t total = 0;
  for (const auto& count : counts_) total += count.load(std::memory_order_relaxed);
  return total;
}

uint64_t LatencyHistogram::Percentile(double fraction) const noexcept {
  std::array<uint64_t, kBuckets> snapshot;
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    snapshot[i] = counts_[i].load(std::memory_order_relaxed);
    total += snapshot[i];
  }
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(fraction * static_cast<double>(total) + 0.999999);
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += snapshot[i];
    if (seen >= rank) return std::min(BucketUpperBound(i), max());
  }
  return max();
}

}  // namespace faultline
