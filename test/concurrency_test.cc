// Several threads faulting at once on the same pages while eviction runs, every byte verified.
#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "faultline/faultline.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

}  // namespace

using faultline::test::Map;
using faultline::test::Stats;
using Runtime = faultline::test::ScopedRuntime;

TEST_CASE("4 threads write and verify overlapping pages under eviction", "[concurrency]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto threads_per_handler = GENERATE(1u, 2u);
  const uint64_t limit = faultline::test::Scaled(32 * kMiB);
  fl_config config = faultline::test::TestConfig(limit);
  config.fault_threads = threads_per_handler;
  Runtime runtime(config);
  const size_t size = faultline::test::Scaled(256 * kMiB);
  const size_t pages = size / kPage;
  void* mapped = Map(size);
  std::string first_wrong;
  uint64_t wrong = faultline::test::RunOverlappingStamps(mapped, size, 4, 2, &first_wrong);
  INFO(first_wrong);
  CHECK(wrong == 0);
  fl_stats s = Stats();
  CHECK(s.evictions > pages);
  CHECK(s.faults_swap_in > 0);
  CHECK(s.resident_pages <= limit / kPage);
  CHECK(s.io_errors == 0);
  REQUIRE(fl_unmap(mapped, size) == 0);
}

TEST_CASE("threads faulting the same pages get one resolution per page", "[concurrency]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(256 * kMiB));
  const size_t size = 64 * kMiB;
  void* mapped = Map(size);
  const volatile char* base = static_cast<const char*>(mapped);
  std::barrier start(4);
  std::atomic<uint64_t> nonzero{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (size_t offset = 0; offset < size; offset += kPage) {
        if (base[offset] != 0) nonzero.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(nonzero.load() == 0);
  fl_stats s = Stats();
  CHECK(s.faults_zero_fill + s.pages_fault_around == size / kPage);
  CHECK(s.resident_pages == size / kPage);
  REQUIRE(fl_unmap(mapped, size) == 0);
}

TEST_CASE("writes racing eviction are never lost", "[concurrency]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(2 * kMiB);
  config.evict_batch_pages = 16;
  Runtime runtime(config);
  const size_t size = 64 * kMiB;
  const size_t pages = size / kPage;
  void* mapped = Map(size);
  char* base = static_cast<char*>(mapped);
  constexpr int kHotPages = 64;
  constexpr size_t kFirstStreamedPage = 1024;
  // Two threads stream over the region, twice, to keep eviction busy; two others increment
  // counters on hot pages meanwhile, which are evicted under them again and again.
  std::atomic<size_t> streamed{0};
  const size_t stream_target = 2 * (pages - kFirstStreamedPage);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < stream_target; i += 2) {
        size_t page = kFirstStreamedPage + i % (pages - kFirstStreamedPage);
        faultline::test::FillPage(base + page * kPage, page, 9);
        streamed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  uint64_t rounds[2] = {0, 0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      while (streamed.load(std::memory_order_relaxed) < stream_target) {
        for (int h = 0; h < kHotPages; ++h) {
          auto* counter = reinterpret_cast<volatile uint64_t*>(base + h * 16 * kPage + t * 64);
          *counter = *counter + 1;
        }
        ++rounds[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& w : writers) w.join();
  for (int t = 0; t < 2; ++t) {
    for (int h = 0; h < kHotPages; ++h) {
      auto* counter = reinterpret_cast<volatile uint64_t*>(base + h * 16 * kPage + t * 64);
      INFO("thread " << t << " hot page " << h);
      REQUIRE(*counter == rounds[t]);
    }
  }
  uint64_t wrong = 0;
  for (size_t page = kFirstStreamedPage; page < pages; ++page) {
    wrong += faultline::test::VerifyPage(base + page * kPage, page, 9) >= 0;
  }
  CHECK(wrong == 0);
  fl_stats s = Stats();
  INFO("rescues " << s.faults_in_flight_rescue << " evictions " << s.evictions);
  CHECK(s.evictions > pages);
  CHECK(rounds[0] > 0);
  REQUIRE(fl_unmap(mapped, size) == 0);
}
