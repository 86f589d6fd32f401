// Demand paging, swap and eviction through the C API, under limits far below the working set.
// Every byte written is verified; resident memory is measured by the kernel (/proc/self/smaps),
// not only by faultline's counters.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "faultline/faultline.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Slack over the limit that the kernel may report for a region: the handler installs a fault's
// page after reserving it, and a fault that finds the limit reached while every staging buffer is
// being written waits at most 40 ms before it is served anyway (README, "Memory limit"). Tests
// measure whole-process slack separately; for a region it is a few pages.
constexpr int64_t kRegionSlackBytes = 1 * kMiB;

}  // namespace

using faultline::test::Map;
using faultline::test::Stats;
using Runtime = faultline::test::ScopedRuntime;

TEST_CASE("a region 16 times the limit (1 GiB, 64 MiB) keeps every byte, RSS bounded", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  const uint64_t limit = faultline::test::Scaled(64 * kMiB);
  const size_t size = faultline::test::Scaled(1024 * kMiB);
  const size_t pages = size / kPage;
  Runtime runtime(faultline::test::TestConfig(limit));
  char* base = static_cast<char*>(Map(size));
  int64_t max_rss = 0;

  auto sample_rss = [&] {
    int64_t rss = faultline::test::SmapsRssOf(base);
    REQUIRE(rss >= 0);
    max_rss = std::max(max_rss, rss);
  };
  for (size_t p = 0; p < pages; ++p) {
    faultline::test::FillPage(base + p * kPage, p, 1);
    if (p % 2048 == 0) sample_rss();
  }
  fl_stats written = Stats();
  CHECK(written.swapped_pages > 0);
  CHECK(written.bytes_written > 0);
  CHECK(written.resident_pages <= limit / kPage);

  SECTION("sequential read back") {
    for (size_t p = 0; p < pages; ++p) {
      int64_t bad = faultline::test::VerifyPage(base + p * kPage, p, 1);
      INFO("page " << p << " wrong at byte " << bad);
      REQUIRE(bad < 0);
      if (p % 2048 == 0) sample_rss();
    }
    fl_stats read = Stats();
    CHECK(read.faults_swap_in > 0);
    CHECK(read.bytes_read > 0);
    // A read-only pass brings pages back clean (write-protected, slot kept): evicting them
    // again needs no write at all.
    uint64_t written_before = read.bytes_written;
    for (size_t p = 0; p < pages; ++p) {
      REQUIRE(faultline::test::VerifyPage(base + p * kPage, p, 1) < 0);
      if (p % 2048 == 0) sample_rss();
    }
    fl_stats again = Stats();
    CHECK(again.evictions_clean > read.evictions_clean);
    CHECK(again.bytes_written == written_before);
  }
  SECTION("random read back") {
    std::vector<size_t> order(pages);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
    size_t done = 0;
    for (size_t p : order) {
      int64_t bad = faultline::test::VerifyPage(base + p * kPage, p, 1);
      INFO("page " << p << " wrong at byte " << bad);
      REQUIRE(bad < 0);
      if (++done % 2048 == 0) sample_rss();
    }
  }
  SECTION("rewrite in random order, then verify") {
    std::mt19937_64 rng(7);
    for (size_t i = 0; i < pages / 4; ++i) {
      size_t p = rng() % pages;
      faultline::test::FillPage(base + p * kPage, p, 1);  // same contents, but dirty again
    }
    std::string error;
    CHECK(faultline::test::VerifyPages(base, size, 1, &error) == 0);
    INFO(error);
  }
  INFO("largest region RSS seen " << max_rss / kMiB << " MiB");
  CHECK(max_rss <= static_cast<int64_t>(limit) + kRegionSlackBytes);
  fl_stats end = Stats();
  CHECK(end.resident_pages <= limit / kPage);
  CHECK(end.poisoned_pages == 0);
  CHECK(end.io_errors == 0);
  CHECK(end.checksum_errors == 0);
  CHECK(end.managed_pages == pages);
  REQUIRE(fl_unmap(base, size) == 0);
}

TEST_CASE("pages that were never written are never written to swap", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(16 * kMiB));
  const size_t size = 256 * kMiB;
  const volatile char* base = static_cast<const char*>(Map(size));
  for (size_t offset = 0; offset < size; offset += kPage) REQUIRE(base[offset] == 0);
  fl_stats s = Stats();
  CHECK(s.bytes_written == 0);
  CHECK(s.evictions_zero > 0);
  CHECK(s.swap_slots_used == 0);
  // Evicted zero pages read back as zeros, without I/O.
  for (size_t offset = 0; offset < size; offset += 7 * kPage) REQUIRE(base[offset + 100] == 0);
  CHECK(Stats().bytes_read == 0);
  REQUIRE(fl_unmap(const_cast<char*>(base), size) == 0);
}

TEST_CASE("several regions share one limit", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  const uint64_t limit = 32 * kMiB;
  Runtime runtime(faultline::test::TestConfig(limit));
  const size_t size = 96 * kMiB;
  std::vector<char*> regions;
  for (int r = 0; r < 3; ++r) regions.push_back(static_cast<char*>(Map(size)));
  int64_t max_total_rss = 0;
  for (size_t p = 0; p < size / kPage; ++p) {
    for (int r = 0; r < 3; ++r) {
      faultline::test::FillPage(regions[r] + p * kPage, p, 100 + r);
    }
    if (p % 1024 == 0) {
      int64_t total = 0;
      for (char* region : regions) total += faultline::test::SmapsRssOf(region);
      max_total_rss = std::max(max_total_rss, total);
    }
  }
  for (int r = 0; r < 3; ++r) {
    std::string error;
    INFO("region " << r << ": " << error);
    CHECK(faultline::test::VerifyPages(regions[r], size, 100 + r, &error) == 0);
  }
  CHECK(max_total_rss <= static_cast<int64_t>(limit) + kRegionSlackBytes);
  CHECK(Stats().regions == 3);
  for (char* region : regions) REQUIRE(fl_unmap(region, size) == 0);
  CHECK(Stats().regions == 0);
}

TEST_CASE("unmapping returns every swap slot and page", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(16 * kMiB));
  const size_t size = 128 * kMiB;
  char* a = static_cast<char*>(Map(size));
  char* b = static_cast<char*>(Map(size));
  for (size_t p = 0; p < size / kPage; ++p) {
    faultline::test::FillPage(a + p * kPage, p, 3);
    faultline::test::FillPage(b + p * kPage, p, 4);
  }
  // Bring part of `a` back so that it holds clean resident pages with slots too.
  for (size_t p = 0; p < 1024; ++p) REQUIRE(faultline::test::VerifyPage(a + p * kPage, p, 3) < 0);
  fl_stats before = Stats();
  CHECK(before.swap_slots_used > 0);
  REQUIRE(fl_unmap(a, size) == 0);
  fl_stats after_a = Stats();
  CHECK(after_a.managed_pages == size / kPage);
  CHECK(after_a.swap_slots_used < before.swap_slots_used);
  std::string error;
  CHECK(faultline::test::VerifyPages(b, size, 4, &error) == 0);
  INFO(error);
  REQUIRE(fl_unmap(b, size) == 0);
  fl_stats end = Stats();
  CHECK(end.swap_slots_used == 0);
  CHECK(end.managed_pages == 0);
  CHECK(end.resident_pages == 0);
  CHECK(end.swapped_pages == 0);
}

TEST_CASE("a full swap file loses nothing: the limit gives instead", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(4 * kMiB);
  config.max_swap = 8 * kMiB;
  Runtime runtime(config);
  const size_t size = 32 * kMiB;
  char* base = static_cast<char*>(Map(size));
  for (size_t p = 0; p < size / kPage; ++p) faultline::test::FillPage(base + p * kPage, p, 5);
  std::string error;
  CHECK(faultline::test::VerifyPages(base, size, 5, &error) == 0);
  INFO(error);
  fl_stats s = Stats();
  CHECK(s.swap_full_events > 0);
  CHECK(s.limit_overshoot_pages > 0);
  CHECK(s.swap_slots_used == s.swap_slots_total);
  REQUIRE(fl_unmap(base, size) == 0);
  CHECK(Stats().swap_slots_used == 0);
}

// The voluntary context switches of the thread named `name` so far (it blocked that often), or
// -1 when no thread has that name.
int64_t VoluntarySwitchesOf(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (!std::getline(comm, line) || line != name) continue;
    std::ifstream status(task.path() / "status");
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoll(line.substr(24));
    }
  }
  return -1;
}

TEST_CASE("with swap full and every page dirty, the evictor waits instead of spinning",
          "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(4 * kMiB);
  config.max_swap = 4 * kMiB;
  config.fault_threads = 2;
  Runtime runtime(config);
  const size_t size = 16 * kMiB;
  const size_t pages = size / kPage;
  char* base = static_cast<char*>(Map(size));
  // Four threads, each filling (or verifying) every fourth page in order.
  auto in_threads = [&](bool fill) {
    std::atomic<uint64_t> wrong{0};
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (size_t p = t; p < pages; p += 4) {
          if (fill) faultline::test::FillPage(base + p * kPage, p, 6);
          if (faultline::test::VerifyPage(base + p * kPage, p, 6) >= 0) wrong.fetch_add(1);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    return wrong.load();
  };
  CHECK(in_threads(true) == 0);
  fl_stats full = Stats();
  REQUIRE(full.swap_slots_used == full.swap_slots_total);
  REQUIRE(full.resident_pages > 4 * kMiB / kPage);
  // Over the limit with nothing it may evict: a spinning evictor never blocks, one that waits
  // blocks at each wait (it backs off to at most 50 ms at a time).
  int64_t before = VoluntarySwitchesOf("fl-evict");
  REQUIRE(before >= 0);
  usleep(1'000'000);
  int64_t after = VoluntarySwitchesOf("fl-evict");
  CHECK(after - before >= 3);
  CHECK(in_threads(false) == 0);
  CHECK(Stats().poisoned_pages == 0);
  REQUIRE(fl_unmap(base, size) == 0);
}

TEST_CASE("shutdown, then init again in the same process", "[paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  int fds = faultline::test::CountOpenFds();
  int threads = faultline::test::CountThreads();
  // Several fault threads share one stop eventfd: shutdown once hung when one thread's wake-up
  // came with another's stop.
  const uint32_t fault_threads = GENERATE(1u, 2u, 3u);
  for (int round = 0; round < 8; ++round) {
    fl_config config = faultline::test::TestConfig(8 * kMiB);
    config.fault_threads = fault_threads;
    REQUIRE(fl_init(&config) == 0);
    const size_t size = 32 * kMiB;
    char* base = static_cast<char*>(Map(size));
    for (size_t p = 0; p < size / kPage; ++p) {
      faultline::test::FillPage(base + p * kPage, p, 10 + round);
    }
    std::string error;
    CHECK(faultline::test::VerifyPages(base, size, 10 + round, &error) == 0);
    fl_stats s = Stats();
    CHECK(s.regions == 1);
    // Shutdown with the region still mapped: it is unmapped for us.
    REQUIRE(fl_shutdown() == 0);
    fl_stats after;
    CHECK(fl_get_stats(&after) == -ENXIO);
  }
  CHECK(faultline::test::CountOpenFds() == fds);
  // io_uring's kernel workers (iou-wrk) leave a moment after their ring is gone.
  for (int wait = 0; wait < 100 && faultline::test::CountThreads() != threads; ++wait) {
    usleep(20'000);
  }
  CHECK(faultline::test::CountThreads() == threads);
}
