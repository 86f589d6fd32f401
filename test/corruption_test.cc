// A swap slot that no longer holds what was written must surface as SIGBUS on that page (and a
// log line), never as wrong data or zeros.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

#include "api/internal.h"
#include "faultline/faultline.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

}  // namespace

using faultline::test::Map;
using faultline::test::Stats;
using Runtime = faultline::test::ScopedRuntime;

TEST_CASE("a corrupted swap slot poisons exactly its page", "[corruption]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(4 * kMiB));
  const size_t size = 32 * kMiB;
  void* mapped = Map(size);
  char* base = static_cast<char*>(mapped);
  for (size_t p = 0; p < size / kPage; ++p) faultline::test::FillPage(base + p * kPage, p, 21);

  const size_t victim = 100;
  faultline::test::FlipSwappedByte(base + victim * kPage, 2000, 0x40);

  // Its neighbours come back in the same readahead read and are intact.
  CHECK(faultline::test::VerifyPage(base + (victim - 1) * kPage, victim - 1, 21) < 0);
  {
    faultline::test::SigbusCatcher sigbus;
    CHECK(sigbus.ReadRaises(base + victim * kPage + 123));
    CHECK(sigbus.address() == base + victim * kPage + 123);
    CHECK(sigbus.ReadRaises(base + victim * kPage + 123));  // and stays poisoned
  }
  CHECK(faultline::test::VerifyPage(base + (victim + 1) * kPage, victim + 1, 21) < 0);
  fl_stats s = Stats();
  CHECK(s.checksum_errors == 1);
  CHECK(s.poisoned_pages == 1);
  // Every other page is as written.
  uint64_t wrong = 0;
  for (size_t p = 0; p < size / kPage; ++p) {
    if (p != victim) wrong += faultline::test::VerifyPage(base + p * kPage, p, 21) >= 0;
  }
  CHECK(wrong == 0);
  REQUIRE(fl_unmap(mapped, size) == 0);
}

TEST_CASE("a swap file cut short gives SIGBUS, not zeros", "[corruption]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(4 * kMiB));
  const size_t size = 16 * kMiB;
  void* mapped = Map(size);
  char* base = static_cast<char*>(mapped);
  for (size_t p = 0; p < size / kPage; ++p) faultline::test::FillPage(base + p * kPage, p, 22);
  auto info = faultline::InspectManagedPage(base);
  REQUIRE(info.ok());
  REQUIRE(info->state == faultline::PageState::kSwapped);
  int fd = faultline::test::OpenManagedSwapFile();
  REQUIRE(ftruncate(fd, 0) == 0);
  close(fd);
  faultline::test::SigbusCatcher sigbus;
  CHECK(sigbus.ReadRaises(base + 123));
  fl_stats s = Stats();
  // A short read is an I/O error; if later evictions extended the file again, the slot reads as
  // a hole of zeros and fails its checksum instead. Either way: SIGBUS, never zeros.
  CHECK(s.io_errors + s.checksum_errors >= 1);
  CHECK(s.poisoned_pages >= 1);
  REQUIRE(fl_unmap(mapped, size) == 0);
}
