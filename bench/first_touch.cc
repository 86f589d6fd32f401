#include "first_touch.h"

#include <algorithm>
#include <cmath>

#include "workloads.h"

namespace faultline_bench {
namespace {

// Room above the swept region, so that faultline never evicts during a sweep.
constexpr uint64_t kLimitHeadroom = 64 * kMiB;

FirstTouchRow Aggregate(uint32_t fault_around_pages, std::vector<double> rates, uint64_t faults) {
  FirstTouchRow row;
  row.fault_around_pages = fault_around_pages;
  std::sort(rates.begin(), rates.end());
  row.median_gib_per_s = rates[rates.size() / 2];
  row.min_gib_per_s = rates.front();
  row.max_gib_per_s = rates.back();
  row.faults = faults;
  return row;
}

double GiBPerSecond(size_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / kGiB / seconds : NAN;
}

}  // namespace

FirstTouchResult RunFirstTouch(size_t bytes, int runs, const std::string& swap_dir) {
  FirstTouchResult result;
  std::string error;
  std::vector<double> rates;
  Progress("first touch: kernel, %zu MiB x %d", bytes / kMiB, runs);
  for (int run = 0; run < runs; ++run) {
    AnonRegion region;
    if (!region.Open(bytes, &error)) break;
    rates.push_back(GiBPerSecond(bytes, TimeFirstTouch(region.data(), bytes)));
  }
  if (rates.empty()) {
    result.skipped.push_back({"first-touch: kernel", error});
  } else {
    result.rows.push_back(Aggregate(0, rates, bytes / kPage));
  }
  for (uint32_t around : kFaultAroundPages) {
    Progress("first touch: faultline, fault_around_pages %u", around);
    rates.clear();
    uint64_t faults = kNoValue;
    for (int run = 0; run < runs; ++run) {
      Knobs knobs;
      knobs.memory_limit = bytes + kLimitHeadroom;
      knobs.fault_around_pages = around;
      ManagedRegion region;
      if (!region.Open(knobs, swap_dir, bytes, &error)) break;
      rates.push_back(GiBPerSecond(bytes, TimeFirstTouch(region.data(), bytes)));
      faults = region.Stats().faults_zero_fill;
    }
    if (rates.empty()) {
      result.skipped.push_back(
          {"first-touch: faultline fault_around_pages " + std::to_string(around), error});
      continue;
    }
    result.rows.push_back(Aggregate(around, rates, faults));
  }
  return result;
}

}  // namespace faultline_bench
