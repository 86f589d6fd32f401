// A page that faultline holds RESIDENT but that is gone from the kernel (dropped behind its back)
// has lost its bytes: the program must get SIGBUS and a log line, never zeros, whether a fault or
// the evictor is the first to find the hole. The pages are dropped here with a raw
// MADV_DONTNEED_LOCKED, which faultline does not see, while four threads keep paging the rest of
// the region under a limit far below it; every other byte is verified.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/internal.h"
#include "faultline/faultline.h"
#include "support/test_support.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr int kSeed = 31;

// Drops the page from the kernel without faultline knowing (regions are mlocked, so plain
// MADV_DONTNEED would be refused).
void DropBehindFaultline(char* page) {
  REQUIRE(syscall(SYS_madvise, page, kPage, MADV_DONTNEED_LOCKED) == 0);
}

}  // namespace

using faultline::test::Map;
using faultline::test::Stats;
using Runtime = faultline::test::ScopedRuntime;

TEST_CASE("a resident page lost behind faultline's back raises SIGBUS, never zeros", "[lost]") {
  faultline::test::SkipUnlessUserfaultfd();
  const bool evict_first = GENERATE(false, true);
  INFO((evict_first ? "found by eviction" : "found by a fault"));
  Runtime runtime(faultline::test::TestConfig(8 * kMiB));
  const size_t size = 64 * kMiB;
  const size_t pages = size / kPage;
  void* mapped = Map(size);
  char* base = static_cast<char*>(mapped);

  // The second half of the region is paged by four threads throughout; the first half is written
  // once, and its last pages, written last, are resident.
  const size_t half = pages / 2;
  for (size_t p = 0; p < half; ++p) faultline::test::FillPage(base + p * kPage, p, kSeed);
  // Eight resident pages, pinned so that the evictor leaves them in place until they are dropped.
  std::vector<size_t> lost;
  for (size_t p = half; p-- > 0 && lost.size() < 8;) {
    REQUIRE(fl_pin(base + p * kPage, kPage, FL_PIN_ONFAULT) == 0);
    auto info = faultline::InspectManagedPage(base + p * kPage);
    REQUIRE(info.ok());
    if (info->state == faultline::PageState::kResident) {
      lost.push_back(p);
    } else {
      REQUIRE(fl_unpin(base + p * kPage, kPage) == 0);
    }
  }
  REQUIRE(lost.size() == 8);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0};
  std::string first_wrong;
  std::thread pager([&] {
    while (!stop.load()) {
      wrong += faultline::test::RunOverlappingStamps(base + half * kPage, size - half * kPage, 4, 1,
                                                     &first_wrong);
    }
  });

  for (size_t p : lost) {
    DropBehindFaultline(base + p * kPage);
    REQUIRE(fl_unpin(base + p * kPage, kPage) == 0);
  }
  if (evict_first) {
    for (size_t p : lost) REQUIRE(fl_advise(base + p * kPage, kPage, FL_ADVICE_PAGEOUT) == 0);
  }
  {
    faultline::test::SigbusCatcher sigbus;
    for (size_t p : lost) {
      INFO("page " << p);
      CHECK(sigbus.ReadRaises(base + p * kPage + 100));
      CHECK(sigbus.ReadRaises(base + p * kPage + 100));  // and stays poisoned
    }
  }
  stop = true;
  pager.join();
  INFO(first_wrong);
  CHECK(wrong == 0);

  uint64_t wrong_pages = 0;
  for (size_t p = 0; p < half; ++p) {
    bool is_lost = std::find(lost.begin(), lost.end(), p) != lost.end();
    if (!is_lost) wrong_pages += faultline::test::VerifyPage(base + p * kPage, p, kSeed) >= 0;
  }
  CHECK(wrong_pages == 0);
  fl_stats s = Stats();
  CHECK(s.poisoned_pages == lost.size());
  CHECK(s.evictions > half);
  REQUIRE(fl_unmap(mapped, size) == 0);
}
