// Pages whose protection the program changed with mprotect (issue 12: a JVM's code cache is rwx)
// are paged like any other: UFFDIO_MOVE refuses a source whose protection differs from the
// staging area's, so such pages leave by copy (pager_evict.cc, EvictByCopy). Only PROT_NONE
// pages, which cannot be read, stay resident.
#include <sys/mman.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "faultline/faultline.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// `threads` threads fill (or verify) an equal share each of the pages of [base + offset,
// base + offset + bytes), numbered from `base`.
uint64_t InParallel(char* base, size_t offset, size_t bytes, uint64_t seed, int threads,
                    bool verify) {
  std::vector<std::thread> workers;
  std::vector<uint64_t> wrong(threads, 0);
  const size_t end = (offset + bytes) / kPage;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t p = offset / kPage + t; p < end; p += threads) {
        if (verify) {
          wrong[t] += faultline::test::VerifyPage(base + p * kPage, p, seed) >= 0;
        } else {
          faultline::test::FillPage(base + p * kPage, p, seed);
        }
      }
    });
  }
  uint64_t total = 0;
  for (int t = 0; t < threads; ++t) {
    workers[t].join();
    total += wrong[t];
  }
  return total;
}

}  // namespace

TEST_CASE("rwx, read-only and striped pages are evicted and read back intact", "[protection]") {
  faultline::test::SkipUnlessUserfaultfd();
  const uint64_t limit = 16 * kMiB;
  faultline::test::ScopedRuntime runtime(faultline::test::TestConfig(limit));
  const size_t size = 64 * kMiB;
  char* code = static_cast<char*>(faultline::test::Map(size));
  // 1 MiB stripes, rwx and rw- in turn, as a JIT's code cache beside data: every eviction run
  // that crosses a stripe crosses two mappings.
  for (size_t at = 0; at < size; at += 2 * kMiB) {
    REQUIRE(mprotect(code + at, kMiB, PROT_READ | PROT_WRITE | PROT_EXEC) == 0);
  }
  REQUIRE(InParallel(code, 0, size, 1, 4, false) == 0);
  // The first quarter becomes read-only, one stripe PROT_NONE; then other memory pushes them out.
  REQUIRE(mprotect(code, size / 4, PROT_READ) == 0);
  REQUIRE(mprotect(code + size / 2, kMiB, PROT_NONE) == 0);
  char* data = static_cast<char*>(faultline::test::Map(size));
  REQUIRE(InParallel(data, 0, size, 2, 4, false) == 0);

  fl_stats s = faultline::test::Stats();
  INFO("peak resident " << s.peak_resident_pages << " pages, limit " << limit / kPage
                        << ", evictions " << s.evictions);
  // Without eviction by copy, the 32 MiB of rwx stripes could not leave at all.
  CHECK(s.peak_resident_pages <= limit / kPage + limit / kPage / 4);
  CHECK(s.evictions >= 2 * size / kPage - limit / kPage - kMiB / kPage);

  REQUIRE(mprotect(code + size / 2, kMiB, PROT_READ | PROT_WRITE) == 0);
  CHECK(InParallel(code, 0, size, 1, 4, true) == 0);
  CHECK(InParallel(data, 0, size, 2, 4, true) == 0);
  // Writable again, the read-only quarter takes writes (each page is dirty once more).
  REQUIRE(mprotect(code, size / 4, PROT_READ | PROT_WRITE) == 0);
  REQUIRE(InParallel(code, 0, size / 4, 3, 4, false) == 0);
  REQUIRE(InParallel(data, 0, size, 2, 4, true) == 0);
  CHECK(InParallel(code, 0, size / 4, 3, 4, true) == 0);
  CHECK(InParallel(code, size / 4, size - size / 4, 1, 4, true) == 0);
}
