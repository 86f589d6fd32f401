// Changing a region's shape as the program does through the interposer (core/runtime_mappings.cc):
// cutting and moving self-paging regions, mremap(MREMAP_FIXED) onto managed memory, and munmap
// racing other threads' mmap. Each under a limit far below the memory in use, every byte
// verified.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime.h"
#include "support/runtime_helpers.h"
#include "support/test_support.h"
#include "util/raw_memory.h"

namespace {

using faultline::Runtime;
using faultline::test::Fill;
using faultline::test::kMiB;
using faultline::test::kPage;
using faultline::test::MakeRuntime;
using faultline::test::MapAdopted;
using faultline::test::StatsOf;
using faultline::test::Wrong;

// The interposer's munmap of managed memory (lib/preload/preload.cc).
bool ProgramUnmap(Runtime& runtime, void* address, size_t length) {
  return runtime.ReplaceMappings(address, length,
                                 [&] { return faultline::RawMunmap(address, length) == 0; });
}

// Number of wrong pages of [base, base + bytes) (first page index first_page), read by two
// threads.
uint64_t WrongByTwo(const char* base, size_t bytes, uint64_t seed, uint64_t first_page = 0) {
  const size_t half = bytes / 2 / kPage * kPage;
  uint64_t other = 0;
  std::thread second(
      [&] { other = Wrong(base + half, bytes - half, seed, first_page + half / kPage); });
  uint64_t wrong = Wrong(base, half, seed, first_page);
  second.join();
  return wrong + other;
}

}  // namespace

TEST_CASE("pieces of a cut or moved self-paging region stay self-paging",
          "[reshape][self-paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 16 * kMiB;
  absl::StatusOr<void*> mapped = runtime->Map(bytes, FL_MAP_SELF_PAGING);
  REQUIRE(mapped.ok());
  char* base = static_cast<char*>(*mapped);
  Fill(base, bytes, 30);
  // Cut out [4, 6) MiB: pieces [0, 4) and [6, 16) MiB.
  REQUIRE(ProgramUnmap(*runtime, base + 4 * kMiB, 2 * kMiB));
  // Move the tail piece elsewhere (grown, so that it cannot stay where it is: [6, 16) MiB ends
  // where the region ended, and a guard right after it blocks growing in place).
  void* guard = faultline::RawMmap(base + bytes, kPage, PROT_NONE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  char* tail = static_cast<char*>(
      runtime->Remap(base + 6 * kMiB, 10 * kMiB, 12 * kMiB, MREMAP_MAYMOVE, nullptr));
  REQUIRE(tail != MAP_FAILED);
  // Each piece by two threads, eight times the limit. Without the flag a cut piece's SIGBUS went
  // to the program's (default) handler; a moved piece registered with the other uffd had its
  // faults served by a handler thread, never on the faulting thread.
  auto rewrite = [&](char* piece, size_t piece_bytes, uint64_t old_first, size_t old_bytes,
                     uint64_t seed) {
    const uint64_t self_paged = StatsOf(*runtime).faults_self_paged;
    uint64_t wrong = WrongByTwo(piece, old_bytes, 30, old_first);
    std::thread second(
        [&] { Fill(piece + piece_bytes / 2, piece_bytes / 2, seed, piece_bytes / 2 / kPage); });
    Fill(piece, piece_bytes / 2, seed);
    second.join();
    wrong += WrongByTwo(piece, piece_bytes, seed);
    CHECK(wrong == 0);
    CHECK(StatsOf(*runtime).faults_self_paged > self_paged);
  };
  rewrite(tail, 12 * kMiB, 6 * kMiB / kPage, 10 * kMiB, 31);
  rewrite(base, 4 * kMiB, 0, 4 * kMiB, 32);
  CHECK(StatsOf(*runtime).io_errors == 0);
  REQUIRE(ProgramUnmap(*runtime, base, 4 * kMiB));
  REQUIRE(ProgramUnmap(*runtime, tail, 12 * kMiB));
  if (guard != MAP_FAILED) faultline::RawMunmap(guard, kPage);
  CHECK(StatsOf(*runtime).regions == 0);
}

TEST_CASE("mremap(MREMAP_FIXED) that fails leaves the target as it was", "[reshape][mremap]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(2 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* source = MapAdopted(*runtime, bytes);
  char* target = MapAdopted(*runtime, bytes);
  Fill(source, bytes, 40);
  Fill(target, bytes, 41);
  // Refused by the kernel after faultline's own checks of the target: MREMAP_FIXED without
  // MREMAP_MAYMOVE.
  errno = 0;
  CHECK(runtime->Remap(source, 2 * kMiB, 2 * kMiB, MREMAP_FIXED, target) == MAP_FAILED);
  CHECK(errno == EINVAL);
  // A source that is not one mapping: it runs into a hole.
  REQUIRE(ProgramUnmap(*runtime, source + 7 * kMiB, kMiB));
  errno = 0;
  CHECK(runtime->Remap(source + 6 * kMiB, 2 * kMiB, 2 * kMiB, MREMAP_MAYMOVE | MREMAP_FIXED,
                       target + 2 * kMiB) == MAP_FAILED);
  CHECK(errno == EFAULT);
  CHECK(WrongByTwo(target, bytes, 41) == 0);
  CHECK(WrongByTwo(source, 7 * kMiB, 40) == 0);
  CHECK(StatsOf(*runtime).managed_pages == 15 * kMiB / kPage);

  // Moves that succeed: onto another part of the source's own region, and onto the target.
  void* moved =
      runtime->Remap(source, 2 * kMiB, 2 * kMiB, MREMAP_MAYMOVE | MREMAP_FIXED, source + 4 * kMiB);
  REQUIRE(moved == source + 4 * kMiB);
  CHECK(WrongByTwo(source + 2 * kMiB, 2 * kMiB, 40, 2 * kMiB / kPage) == 0);
  CHECK(WrongByTwo(source + 4 * kMiB, 2 * kMiB, 40) == 0);
  CHECK(WrongByTwo(source + 6 * kMiB, kMiB, 40, 6 * kMiB / kPage) == 0);
  moved = runtime->Remap(source + 2 * kMiB, 2 * kMiB, 2 * kMiB, MREMAP_MAYMOVE | MREMAP_FIXED,
                         target + 2 * kMiB);
  REQUIRE(moved == target + 2 * kMiB);
  CHECK(WrongByTwo(target, 2 * kMiB, 41) == 0);
  CHECK(WrongByTwo(target + 2 * kMiB, 2 * kMiB, 40, 2 * kMiB / kPage) == 0);
  CHECK(WrongByTwo(target + 4 * kMiB, 4 * kMiB, 41, 4 * kMiB / kPage) == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.managed_pages == 11 * kMiB / kPage);
  CHECK(s.io_errors == 0);
  REQUIRE(ProgramUnmap(*runtime, source + 4 * kMiB, 3 * kMiB));
  REQUIRE(ProgramUnmap(*runtime, target, bytes));
  s = StatsOf(*runtime);
  CHECK(s.regions == 0);
  CHECK(s.swap_slots_used == 0);
}

TEST_CASE("munmap racing other threads' mmap: every new mapping is managed and keeps its bytes",
          "[reshape][munmap]") {
  faultline::test::SkipUnlessUserfaultfd();
  // Each thread maps, fills, verifies and unmaps a mapping of one size, over and over: the kernel
  // hands the address one thread has just unmapped to another. Had the unmapping thread forgotten
  // the range after the other had adopted it, the other's faults would find no region and retry
  // forever (this test would hang).
  auto runtime = MakeRuntime(kMiB);
  constexpr int kThreads = 4;
  constexpr int kRounds = 100;
  const size_t bytes = kMiB;
  std::atomic<uint64_t> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const uint64_t seed = 1000 * (t + 1) + round;
        void* p = faultline::RawMmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED || runtime->Adopt(p, bytes, PROT_READ | PROT_WRITE, false) != 0) {
          ++failed;
          return;
        }
        char* base = static_cast<char*>(p);
        Fill(base, bytes, seed);
        wrong += Wrong(base, bytes, seed);
        if (!ProgramUnmap(*runtime, p, bytes)) ++failed;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failed.load() == 0);
  CHECK(wrong.load() == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.regions == 0);
  CHECK(s.swap_slots_used == 0);
  CHECK(s.evictions > 0);
}
