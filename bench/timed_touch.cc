#include "timed_touch.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "bench_util.h"
#include "kernel_swap.h"

namespace faultline_bench {
namespace {

constexpr uint64_t kPlanSeed = 20261125;

// One thread's share: its pages, and where its samples and end time go.
void TouchAndTime(char* base, const std::vector<uint32_t>& pages, Access access,
                  const std::atomic<bool>& start, uint32_t* samples, uint64_t* end_ns) {
  CleanupSignalsBlocked blocked;
  while (!start.load(std::memory_order_acquire)) std::this_thread::yield();
  for (size_t i = 0; i < pages.size(); ++i) {
    volatile char* target = base + static_cast<size_t>(pages[i]) * kPage;
    uint64_t before = NowNs();
    if (access == Access::kStore) {
      *target = 1;
    } else {
      (void)*target;
    }
    uint64_t after = NowNs();
    samples[i] = static_cast<uint32_t>(std::min<uint64_t>(after - before, UINT32_MAX));
  }
  *end_ns = NowNs();
}

}  // namespace

TouchPlan ContiguousSlices(size_t pages, uint32_t threads) {
  TouchPlan plan(threads);
  for (uint32_t t = 0; t < threads; ++t) {
    size_t first = pages * t / threads;
    size_t last = pages * (t + 1) / threads;
    for (size_t p = first; p < last; ++p) plan[t].push_back(static_cast<uint32_t>(p));
  }
  return plan;
}

TouchPlan StridedShuffled(size_t samples, size_t stride, uint32_t threads) {
  std::vector<uint32_t> pages(samples);
  for (size_t i = 0; i < samples; ++i) pages[i] = static_cast<uint32_t>(i * stride);
  std::mt19937_64 random(kPlanSeed);
  std::shuffle(pages.begin(), pages.end(), random);
  TouchPlan plan(threads);
  for (size_t i = 0; i < pages.size(); ++i) plan[i % threads].push_back(pages[i]);
  return plan;
}

std::vector<uint32_t> AllPages(const TouchPlan& plan) {
  std::vector<uint32_t> pages;
  for (const auto& list : plan) pages.insert(pages.end(), list.begin(), list.end());
  return pages;
}

TimedTouches TimeTouches(char* base, const TouchPlan& plan, Access access) {
  size_t total = 0;
  for (const auto& list : plan) total += list.size();
  TimedTouches result;
  // Value-initialised: the samples' own pages are touched before the clock starts.
  result.samples_ns.assign(total, 0);
  std::vector<uint64_t> end_ns(plan.size(), 0);
  std::atomic<bool> start{false};
  std::vector<std::thread> threads;
  size_t offset = 0;
  for (size_t t = 0; t < plan.size(); ++t) {
    threads.emplace_back(TouchAndTime, base, std::cref(plan[t]), access, std::cref(start),
                         result.samples_ns.data() + offset, &end_ns[t]);
    offset += plan[t].size();
  }
  uint64_t start_ns = NowNs();
  start.store(true, std::memory_order_release);
  for (std::thread& thread : threads) thread.join();
  result.elapsed_ns = *std::max_element(end_ns.begin(), end_ns.end()) - start_ns;
  return result;
}

size_t CountResident(const char* base, const std::vector<uint32_t>& pages) {
  size_t resident = 0;
  for (uint32_t page : pages) {
    unsigned char in_memory = 0;
    void* address = const_cast<char*>(base) + static_cast<size_t>(page) * kPage;
    if (mincore(address, kPage, &in_memory) == 0 && (in_memory & 1) != 0) ++resident;
  }
  return resident;
}

}  // namespace faultline_bench
