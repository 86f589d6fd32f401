// Self-paging regions (FL_MAP_SELF_PAGING): faults resolved on the faulting thread in faultline's
// SIGBUS handler, the rest forwarded to the fault-handler threads. Same guarantees as any region
// (every byte kept under eviction, corruption surfaces as SIGBUS), plus what the flag documents:
// system calls on non-resident pages fail with EFAULT, and SIGBUS that is not faultline's still
// reaches the program's own handler.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>

#include "faultline/faultline.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

void* MapSelfPaging(size_t bytes) {
  void* p = nullptr;
  int rc = fl_map_flags(bytes, FL_MAP_SELF_PAGING, &p);
  INFO(fl_last_error());
  REQUIRE(rc == 0);
  return p;
}

}  // namespace

using faultline::test::Map;
using faultline::test::Stats;
using Runtime = faultline::test::ScopedRuntime;

TEST_CASE("a self-paging region keeps every byte under eviction, beside a normal one",
          "[self-paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(32 * kMiB));
  const size_t size = 128 * kMiB;
  void* self_paging = MapSelfPaging(size);
  void* normal = Map(size);
  std::string first_wrong_self, first_wrong_normal;
  uint64_t wrong_self = 0, wrong_normal = 0;
  // Two threads on each region at once: the regions share the limit, so each evicts the other's
  // pages.
  std::thread other([&] {
    wrong_normal = faultline::test::RunOverlappingStamps(normal, size, 2, 2, &first_wrong_normal);
  });
  wrong_self = faultline::test::RunOverlappingStamps(self_paging, size, 2, 2, &first_wrong_self);
  other.join();
  INFO(first_wrong_self);
  CHECK(wrong_self == 0);
  INFO(first_wrong_normal);
  CHECK(wrong_normal == 0);
  fl_stats s = Stats();
  CHECK(s.faults_self_paged > 0);
  CHECK(s.faults_swap_in > 0);
  CHECK(s.faults_write_protect > 0);
  CHECK(s.resident_pages <= 32 * kMiB / kPage);
  CHECK(s.io_errors == 0);
  REQUIRE(fl_unmap(self_paging, size) == 0);
  REQUIRE(fl_unmap(normal, size) == 0);
  CHECK(Stats().swap_slots_used == 0);
}

TEST_CASE("first touches of a self-paging region are resolved on the faulting thread",
          "[self-paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(64 * kMiB);
  config.fault_around_pages = 1;
  Runtime runtime(config);
  const size_t size = 16 * kMiB;
  char* base = static_cast<char*>(MapSelfPaging(size));
  for (size_t offset = 0; offset < size; offset += kPage) base[offset] = 1;
  fl_stats s = Stats();
  CHECK(s.faults_zero_fill == size / kPage);
  CHECK(s.faults_self_paged == size / kPage);
  for (size_t offset = 0; offset < size; offset += kPage) REQUIRE(base[offset] == 1);
  REQUIRE(fl_unmap(base, size) == 0);
}

TEST_CASE("system calls on non-resident self-paging pages fail with EFAULT, as documented",
          "[self-paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  Runtime runtime(faultline::test::TestConfig(64 * kMiB));
  const size_t size = 1 * kMiB;
  char* base = static_cast<char*>(MapSelfPaging(size));
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  errno = 0;
  CHECK(write(fds[1], base, kPage) == -1);
  CHECK(errno == EFAULT);
  base[0] = 'x';  // resident now: system calls see it
  CHECK(write(fds[1], base, kPage) == static_cast<ssize_t>(kPage));
  char copy[kPage];
  REQUIRE(read(fds[0], copy, kPage) == static_cast<ssize_t>(kPage));
  CHECK(copy[0] == 'x');
  close(fds[0]);
  close(fds[1]);
  REQUIRE(fl_unmap(base, size) == 0);
}

TEST_CASE("SIGBUS that is not faultline's reaches the program's own handler", "[self-paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  faultline::test::SigbusCatcher program_handler;
  Runtime runtime(faultline::test::TestConfig(64 * kMiB));
  void* region = MapSelfPaging(1 * kMiB);  // installs faultline's handler over the program's

  // A shared mapping beyond the end of its file: the kernel's SIGBUS (BUS_ADRERR, like uffd's).
  char path[] = "/var/tmp/faultline-sigbus-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  unlink(path);
  void* beyond_eof = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(beyond_eof != MAP_FAILED);
  CHECK(program_handler.ReadRaises(static_cast<const char*>(beyond_eof)));
  CHECK(program_handler.code() == BUS_ADRERR);
  munmap(beyond_eof, kPage);
  close(fd);

  // Faultline's own faults do not reach it.
  CHECK_FALSE(program_handler.ReadRaises(static_cast<const char*>(region)));
  REQUIRE(fl_unmap(region, 1 * kMiB) == 0);
}

TEST_CASE("a corrupted swap slot of a self-paging region raises SIGBUS on its page",
          "[self-paging][corruption]") {
  faultline::test::SkipUnlessUserfaultfd();
  faultline::test::SigbusCatcher program_handler;
  Runtime runtime(faultline::test::TestConfig(4 * kMiB));
  const size_t size = 32 * kMiB;
  char* base = static_cast<char*>(MapSelfPaging(size));
  for (size_t p = 0; p < size / kPage; ++p) faultline::test::FillPage(base + p * kPage, p, 5);
  const size_t victim = 100;
  faultline::test::FlipSwappedByte(base + victim * kPage, 100, 0x01);

  // BUS_MCEERR_AR, or BUS_ADRERR on kernels without CONFIG_MEMORY_FAILURE.
  CHECK(program_handler.ReadRaises(base + victim * kPage));
  fl_stats s = Stats();
  CHECK(s.checksum_errors == 1);
  CHECK(s.poisoned_pages == 1);
  // Its neighbours, read back through the same readahead, are intact.
  for (size_t p = victim - 4; p <= victim + 4; ++p) {
    if (p != victim) CHECK(faultline::test::VerifyPage(base + p * kPage, p, 5) == -1);
  }
  REQUIRE(fl_unmap(base, size) == 0);
}
