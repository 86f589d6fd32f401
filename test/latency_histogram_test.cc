#include "core/latency_histogram.h"

#include <catch2/catch.hpp>

using faultline::LatencyHistogram;

TEST_CASE("bucket bounds contain their values within 12.5%", "[histogram]") {
  for (uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 100ull, 1000ull, 123456ull, 1ull << 40}) {
    int b = LatencyHistogram::BucketOf(v);
    uint64_t upper = LatencyHistogram::BucketUpperBound(b);
    CHECK(upper >= v);
    CHECK(static_cast<double>(upper) <= static_cast<double>(v) * 1.125 + 1);
    if (b > 0) CHECK(LatencyHistogram::BucketUpperBound(b - 1) < v);
  }
}

TEST_CASE("percentiles of a known distribution", "[histogram]") {
  LatencyHistogram h;
  CHECK(h.Percentile(0.5) == 0);
  for (uint64_t v = 1; v <= 1000; ++v) h.Record(v * 1000);  // 1..1000 us
  CHECK(h.count() == 1000);
  CHECK(h.max() == 1'000'000);
  CHECK(h.Percentile(0.5) >= 500'000);
  CHECK(h.Percentile(0.5) <= 500'000 * 1.125);
  CHECK(h.Percentile(0.99) >= 990'000);
  CHECK(h.Percentile(1.0) == 1'000'000);
  h.Reset();
  CHECK(h.count() == 0);
}
