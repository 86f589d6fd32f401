// The runtime side of the LD_PRELOAD interposer (core/runtime_mappings.cc), driven directly, so
// that it also runs in the sanitizer builds (test/preload/ runs real programs, in plain builds
// only): adopting mappings, cutting regions on munmap, mremap, madvise and fork, each under a
// limit far below the memory in use, with every byte verified.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime.h"
#include "support/runtime_helpers.h"
#include "support/test_support.h"
#include "util/proc_memory.h"
#include "util/raw_memory.h"

namespace {

using faultline::Runtime;
using faultline::test::AllZero;
using faultline::test::Fill;
using faultline::test::ForkAs;
using faultline::test::kMiB;
using faultline::test::kPage;
using faultline::test::MakeRuntime;
using faultline::test::MapAdopted;
using faultline::test::StatsOf;
using faultline::test::Wrong;

// Resident bytes of [base, base + bytes) by the kernel's own account (mincore: the page is
// mapped), independent of faultline's page states.
size_t KernelResident(const char* base, size_t bytes) {
  std::vector<unsigned char> pages(bytes / kPage);
  REQUIRE(mincore(const_cast<char*>(base), bytes, pages.data()) == 0);
  size_t resident = 0;
  for (unsigned char p : pages) resident += (p & 1) * kPage;
  return resident;
}

size_t PagesIn(const Runtime& runtime, const char* base, size_t bytes, faultline::PageState state) {
  size_t count = 0;
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    count += runtime.InspectPage(base + offset)->state == state;
  }
  return count;
}

}  // namespace

TEST_CASE("an adopted mapping is paged under the limit", "[mappings]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 32 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 1);
  CHECK(Wrong(base, bytes, 1) == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.evictions > 0);
  CHECK(s.regions_adopted == 1);
  CHECK(s.peak_managed_pages * kPage >= bytes);
  CHECK(s.peak_resident_pages * kPage <= 4 * kMiB + kMiB);
  faultline::RawMunmap(base, bytes);
  runtime->Forget(base, bytes);
  s = StatsOf(*runtime);
  CHECK(s.regions == 0);
  CHECK(s.swap_slots_used == 0);
}

TEST_CASE("unmapping the head, the middle and the tail keeps the rest", "[mappings]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 16 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 2);
  uint64_t slots_before = StatsOf(*runtime).swap_slots_used;
  for (auto [offset, length] :
       {std::pair{size_t{0}, kMiB}, std::pair{7 * kMiB, 2 * kMiB}, std::pair{bytes - kMiB, kMiB}}) {
    REQUIRE(faultline::RawMunmap(base + offset, length) == 0);
    runtime->Forget(base + offset, length);
  }
  fl_stats s = StatsOf(*runtime);
  CHECK(s.regions == 2);
  CHECK(s.managed_pages * kPage == bytes - 4 * kMiB);
  CHECK(s.swap_slots_used < slots_before);
  CHECK(Wrong(base + kMiB, 6 * kMiB, 2, kMiB / kPage) == 0);
  CHECK(Wrong(base + 9 * kMiB, 6 * kMiB, 2, 9 * kMiB / kPage) == 0);
  // The pieces are regions like any other: rewrite them under the limit.
  Fill(base + kMiB, 6 * kMiB, 3, kMiB / kPage);
  CHECK(Wrong(base + kMiB, 6 * kMiB, 3, kMiB / kPage) == 0);
}

TEST_CASE("mremap grows, moves and shrinks a region with its bytes", "[mappings]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 4);
  // Something right after the region, so that growing must move it.
  void* blocker = faultline::RawMmap(base + bytes, kPage, PROT_READ,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (blocker != MAP_FAILED) {
    // Growing in place is impossible: refused, and nothing changes (the region still pages).
    uint64_t evictions = StatsOf(*runtime).evictions;
    CHECK(runtime->Remap(base, bytes, 2 * bytes, 0, nullptr) == MAP_FAILED);
    CHECK(errno == ENOMEM);
    Fill(base, bytes, 4);
    CHECK(StatsOf(*runtime).evictions > evictions);
  }
  char* grown = static_cast<char*>(runtime->Remap(base, bytes, 2 * bytes, MREMAP_MAYMOVE, nullptr));
  REQUIRE(grown != MAP_FAILED);
  if (blocker != MAP_FAILED) CHECK(grown != base);
  CHECK(Wrong(grown, bytes, 4) == 0);
  CHECK(AllZero(grown + bytes, bytes));
  Fill(grown + bytes, bytes, 4, bytes / kPage);
  char* shrunk = static_cast<char*>(runtime->Remap(grown, 2 * bytes, bytes / 2, 0, nullptr));
  REQUIRE(shrunk == grown);
  CHECK(Wrong(shrunk, bytes / 2, 4) == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.managed_pages * kPage == bytes / 2);
  CHECK(s.evictions > 0);
  if (blocker != MAP_FAILED) faultline::RawMunmap(blocker, kPage);
}

TEST_CASE("MADV_DONTNEED gives zeros and frees slots; other advice keeps the bytes", "[mappings]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 5);
  uint64_t slots_before = StatsOf(*runtime).swap_slots_used;
  REQUIRE(runtime->Advise(base + 2 * kMiB, 4 * kMiB, MADV_DONTNEED) == 0);
  CHECK(StatsOf(*runtime).swap_slots_used < slots_before);
  CHECK(AllZero(base + 2 * kMiB, 4 * kMiB));
  CHECK(Wrong(base, 2 * kMiB, 5) == 0);
  CHECK(Wrong(base + 6 * kMiB, 2 * kMiB, 5, 6 * kMiB / kPage) == 0);
  REQUIRE(runtime->Advise(base, bytes, MADV_COLD) == 0);
  CHECK(Wrong(base, 2 * kMiB, 5) == 0);
}

TEST_CASE("a forked child sees every page, evicted ones included; the parent keeps its own",
          "[mappings][fork]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 32 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  // Writers keep paging while the process forks.
  std::atomic<bool> stop{false};
  char* busy = MapAdopted(*runtime, 8 * kMiB);
  std::thread writer([&] {
    for (uint64_t round = 0; !stop.load(); ++round) Fill(busy, 8 * kMiB, 100 + round % 2);
  });
  Fill(base, bytes, 6);
  REQUIRE(StatsOf(*runtime).swapped_pages > 0);
  int status = ForkAs(*runtime, [&] {
    uint64_t wrong = Wrong(base, bytes, 6);
    Fill(base, bytes, 7);  // the child's memory is its own now
    return wrong == 0 && Wrong(base, bytes, 7) == 0;
  });
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  stop = true;
  writer.join();
  CHECK(Wrong(base, bytes, 6) == 0);
  CHECK(StatsOf(*runtime).forks == 1);
}

TEST_CASE("a shared anonymous mapping is shared with a forked child", "[mappings][fork]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes, /*shared_anonymous=*/true);
  Fill(base, bytes, 8);
  int status = ForkAs(*runtime, [&] {
    uint64_t wrong = Wrong(base, bytes, 8);
    Fill(base, bytes, 9);
    return wrong == 0;
  });
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(Wrong(base, bytes, 9) == 0);      // the child's writes
  CHECK(StatsOf(*runtime).regions == 0);  // it is ordinary shared memory now
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("pinned pages stay resident while other memory is evicted; unpinned, they go",
          "[mappings][pin]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);  // pin budget: half the limit, 512 pages
  const size_t bytes = 16 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 10);
  const size_t pinned_bytes = kMiB;
  // LOADING counts as resident: a page is mapped (and the populating call can return) a moment
  // before the thread that read it marks it RESIDENT. A pinned page that was evicted would show
  // as EVICTING or SWAPPED first.
  auto all_resident = [&] {
    for (size_t offset = 0; offset < pinned_bytes; offset += kPage) {
      auto info = runtime->InspectPage(base + offset);
      if (!info.ok() || (info->state != faultline::PageState::kResident &&
                         info->state != faultline::PageState::kLoading)) {
        return false;
      }
    }
    return true;
  };
  REQUIRE(runtime->Pin(base, pinned_bytes, /*on_fault=*/false) == 0);
  CHECK(all_resident());
  CHECK(faultline::SmapsRssOf(base) >= static_cast<int64_t>(pinned_bytes));
  CHECK(StatsOf(*runtime).pinned_pages == pinned_bytes / kPage);
  // Over the budget: refused, nothing changes. Pinning pinned pages again counts once.
  CHECK(runtime->Pin(base, 3 * kMiB, false) == -ENOMEM);
  CHECK(runtime->Pin(base, pinned_bytes / 2, false) == 0);
  CHECK(StatsOf(*runtime).pinned_pages == pinned_bytes / kPage);
  CHECK(runtime->Pin(base, bytes + kPage, false) == -EINVAL);

  // Two threads rewrite the rest of the region and another one, far over the limit.
  char* other = MapAdopted(*runtime, 16 * kMiB);
  uint64_t evictions = StatsOf(*runtime).evictions;
  std::thread first([&] { Fill(other, 16 * kMiB, 11); });
  std::thread second([&] { Fill(base + pinned_bytes, bytes - pinned_bytes, 12, kMiB / kPage); });
  bool stayed = true;
  for (int i = 0; i < 50; ++i) stayed &= all_resident();
  first.join();
  second.join();
  CHECK(stayed);
  CHECK(all_resident());
  CHECK(StatsOf(*runtime).evictions > evictions + 16 * kMiB / kPage);  // real pressure
  CHECK(Wrong(base, pinned_bytes, 10) == 0);
  CHECK(Wrong(other, 16 * kMiB, 11) == 0);

  REQUIRE(runtime->Unpin(base, pinned_bytes) == 0);
  CHECK(StatsOf(*runtime).pinned_pages == 0);
  Fill(other, 16 * kMiB, 13);
  CHECK_FALSE(all_resident());
  CHECK(Wrong(base, pinned_bytes, 10) == 0);

  // Unmapping releases pins.
  REQUIRE(runtime->Pin(base, pinned_bytes, /*on_fault=*/true) == 0);
  CHECK(StatsOf(*runtime).pinned_pages == pinned_bytes / kPage);
  faultline::RawMunmap(base, bytes);
  runtime->Forget(base, bytes);
  CHECK(StatsOf(*runtime).pinned_pages == 0);
}

TEST_CASE("a range that ends where the next region starts stops there", "[mappings][pins]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);
  // Three regions side by side: one mapping adopted in three parts.
  const size_t part = 2 * kMiB;
  void* p = faultline::RawMmap(nullptr, 3 * part, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(p != MAP_FAILED);
  char* base = static_cast<char*>(p);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(runtime->Adopt(base + i * part, part, PROT_READ | PROT_WRITE, false) == 0);
  }
  REQUIRE(StatsOf(*runtime).regions == 3);
  // Regression: iterating the regions of [base, base + part) went on into the next two (and
  // counted the third's pages negatively: a crash under mlockall(MCL_FUTURE) in python3).
  REQUIRE(runtime->Pin(base, part, /*on_fault=*/true) == 0);
  CHECK(StatsOf(*runtime).pinned_pages == part / kPage);
  REQUIRE(runtime->Unpin(base, part) == 0);
  CHECK(StatsOf(*runtime).pinned_pages == 0);
  faultline::RawMunmap(p, 3 * part);
  runtime->Forget(p, 3 * part);
}

TEST_CASE("PAGEOUT evicts now, WILLNEED brings pages back before they are touched",
          "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);  // everything fits: only the advice moves pages
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 20);
  const size_t out = 4 * kMiB;
  const int64_t rss_before = faultline::SmapsRssOf(base);  // the kernel's own account
  REQUIRE(runtime->Advise(base, out, MADV_PAGEOUT) == 0);
  fl_stats s = StatsOf(*runtime);
  // Against the region's size, not a count read before the advice: a fault handler may still be
  // counting the last fault-around window resident after waking the thread that faulted (seen:
  // 1023 of 1024 pages in 2 of 12 runs).
  CHECK(s.resident_pages <= (bytes - out) / kPage);
  CHECK(rss_before - faultline::SmapsRssOf(base) >= static_cast<int64_t>(out));
  CHECK(s.swapped_pages >= out / kPage);
  for (size_t offset = 0; offset < out; offset += kPage) {
    CHECK(runtime->InspectPage(base + offset)->state == faultline::PageState::kSwapped);
  }
  REQUIRE(runtime->Prefetch(base, out, /*wait=*/true) == 0);
  CHECK(faultline::SmapsRssOf(base) >= rss_before - static_cast<int64_t>(kPage));
  s = StatsOf(*runtime);
  CHECK(s.pages_prefetched >= out / kPage);
  for (size_t offset = 0; offset < out; offset += kPage) {
    CHECK(runtime->InspectPage(base + offset)->state == faultline::PageState::kResident);
  }
  uint64_t swap_ins = s.faults_swap_in;
  CHECK(Wrong(base, bytes, 20) == 0);
  CHECK(StatsOf(*runtime).faults_swap_in == swap_ins);  // no access waited for a read
}

TEST_CASE("COLD pages are evicted before any other", "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(8 * kMiB);
  // `warm` first: the clock would sweep it before `cold`, which was mapped later.
  char* warm = MapAdopted(*runtime, 4 * kMiB);
  char* cold = MapAdopted(*runtime, 2 * kMiB);
  Fill(warm, 4 * kMiB, 21);
  Fill(cold, 2 * kMiB, 22);
  REQUIRE(runtime->Advise(cold, 2 * kMiB, MADV_COLD) == 0);
  char* more = MapAdopted(*runtime, 5 * kMiB);
  Fill(more, 5 * kMiB, 23);  // 3 MiB over the limit: the faults themselves must make room
  CHECK(PagesIn(*runtime, cold, 2 * kMiB, faultline::PageState::kResident) == 0);
  CHECK(KernelResident(cold, 2 * kMiB) == 0);
  CHECK(PagesIn(*runtime, warm, 4 * kMiB, faultline::PageState::kResident) > 2 * kMiB / kPage);
  CHECK(KernelResident(warm, 4 * kMiB) > 2 * kMiB);
  CHECK(Wrong(cold, 2 * kMiB, 22) == 0);
  CHECK(Wrong(warm, 4 * kMiB, 21) == 0);
}

TEST_CASE("RANDOM turns readahead off, SEQUENTIAL always reads ahead", "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);
  const size_t bytes = 4 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 24);
  auto reread_with = [&](int advice, size_t stride) {
    REQUIRE(runtime->Advise(base, bytes, advice) == 0);
    REQUIRE(runtime->Advise(base, bytes, MADV_PAGEOUT) == 0);
    uint64_t before = StatsOf(*runtime).pages_readahead;
    uint64_t wrong = 0;
    for (size_t offset = 0; offset < bytes; offset += stride) {
      wrong += faultline::test::VerifyPage(base + offset, offset / kPage, 24) >= 0;
    }
    CHECK(wrong == 0);
    return StatsOf(*runtime).pages_readahead - before;
  };
  CHECK(reread_with(MADV_RANDOM, kPage) == 0);          // sequential faults, no readahead
  CHECK(reread_with(MADV_SEQUENTIAL, 16 * kPage) > 0);  // sparse faults, still readahead
  CHECK(reread_with(MADV_NORMAL, kPage) > 0);           // grows along the stream
}

TEST_CASE("readahead advice applies to the advised range only", "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);
  const size_t half = 2 * kMiB;
  char* base = MapAdopted(*runtime, 2 * half);
  Fill(base, 2 * half, 25);
  REQUIRE(runtime->Advise(base + half, half, MADV_RANDOM) == 0);
  REQUIRE(runtime->Advise(base, 2 * half, MADV_PAGEOUT) == 0);
  // A sequential read of the NORMAL half reads ahead, but not into the RANDOM half.
  uint64_t before = StatsOf(*runtime).pages_readahead;
  CHECK(Wrong(base, half, 25) == 0);
  CHECK(StatsOf(*runtime).pages_readahead - before > 0);
  CHECK(PagesIn(*runtime, base + half, half, faultline::PageState::kSwapped) == half / kPage);
  CHECK(KernelResident(base + half, half) == 0);
  // The RANDOM half reads each page alone.
  before = StatsOf(*runtime).pages_readahead;
  CHECK(Wrong(base + half, half, 25, half / kPage) == 0);
  CHECK(StatsOf(*runtime).pages_readahead == before);
  // Cutting the region keeps each page's advice: the RANDOM half stays RANDOM.
  runtime->Forget(base, kPage);
  faultline::RawMunmap(base, kPage);
  REQUIRE(runtime->Advise(base + kPage, 2 * half - kPage, MADV_PAGEOUT) == 0);
  before = StatsOf(*runtime).pages_readahead;
  CHECK(Wrong(base + half, half, 25, half / kPage) == 0);
  CHECK(StatsOf(*runtime).pages_readahead == before);
}

TEST_CASE("a SEQUENTIAL scan drops behind itself and leaves other memory resident",
          "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  // The scan is four times the limit; `hot` is a third of it. Both are written first, so the
  // scan's pages are swapped out and `hot` is resident when the scan starts.
  auto runtime = MakeRuntime(12 * kMiB);
  const size_t scan_bytes = 48 * kMiB, hot_bytes = 4 * kMiB;
  char* scan = MapAdopted(*runtime, scan_bytes);
  char* hot = MapAdopted(*runtime, hot_bytes);
  Fill(scan, scan_bytes, 26);
  REQUIRE(runtime->Advise(scan, scan_bytes, MADV_PAGEOUT) == 0);
  Fill(hot, hot_bytes, 27);
  auto hot_left_after_scan = [&](int advice) {
    REQUIRE(runtime->Advise(scan, scan_bytes, MADV_PAGEOUT) == 0);
    REQUIRE(Wrong(hot, hot_bytes, 27) == 0);
    REQUIRE(KernelResident(hot, hot_bytes) == hot_bytes);
    REQUIRE(runtime->Advise(scan, scan_bytes, advice) == 0);
    std::atomic<uint64_t> wrong{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {  // two scans, each over its own half
      readers.emplace_back([&, t] {
        size_t first = t * scan_bytes / 2;
        wrong += Wrong(scan + first, scan_bytes / 2, 26, first / kPage);
      });
    }
    for (std::thread& reader : readers) reader.join();
    CHECK(wrong == 0);
    return KernelResident(hot, hot_bytes);
  };
  size_t kept_normal = hot_left_after_scan(MADV_NORMAL);
  size_t kept_sequential = hot_left_after_scan(MADV_SEQUENTIAL);
  INFO("hot bytes resident after a NORMAL scan " << kept_normal << ", after a SEQUENTIAL scan "
                                                 << kept_sequential);
  CHECK(kept_normal < hot_bytes / 2);          // the clock sweeps `hot` out with the rest
  CHECK(kept_sequential > 3 * hot_bytes / 4);  // the scan's own pages went first
  CHECK(Wrong(hot, hot_bytes, 27) == 0);
}

TEST_CASE("MADV_FREE pages keep their bytes until evicted; written ones are kept for good",
          "[mappings][advice]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 30);
  REQUIRE(runtime->Advise(base, bytes, MADV_FREE) == 0);
  CHECK(Wrong(base, bytes, 30) == 0);  // no pressure: nothing was dropped
  // Rewrite the first half: a write cancels the MADV_FREE of its page.
  Fill(base, bytes / 2, 31);
  uint64_t written = StatsOf(*runtime).bytes_written;
  REQUIRE(runtime->Advise(base, bytes, MADV_PAGEOUT) == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.pages_freed == bytes / 2 / kPage);
  CHECK(s.bytes_written - written >= bytes / 2);  // only the rewritten half was written out
  CHECK(s.bytes_written - written < bytes);
  CHECK(KernelResident(base, bytes) == 0);
  CHECK(Wrong(base, bytes / 2, 31) == 0);
  CHECK(AllZero(base + bytes / 2, bytes / 2));
}
