#include "kernel/io_ring.h"

#include <dirent.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "swap/swap_file.h"

namespace faultline {
namespace {

constexpr uint32_t kPage = 4096;
constexpr int64_t kSecond = 1'000'000'000;

// A swap file in a fresh directory on a disk ($TMPDIR unless that is tmpfs, else /var/tmp).
class TestSwap {
 public:
  explicit TestSwap(uint64_t slots) {
    const char* tmpdir = std::getenv("TMPDIR");
    struct statfs fs {};
    const bool usable = tmpdir != nullptr && *tmpdir != '\0' && statfs(tmpdir, &fs) == 0 &&
                        fs.f_type != TMPFS_MAGIC;
    std::string templ = std::string(usable ? tmpdir : "/var/tmp") + "/io_ring_test.XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    directory_ = templ;
    auto file = SwapFile::Open(directory_, slots * kPage, kPage);
    REQUIRE(file.ok());
    file_ = std::move(*file);
  }
  ~TestSwap() {
    file_.reset();
    rmdir(directory_.c_str());
  }
  int fd() const { return file_->fd(); }
  uint64_t offset(uint64_t slot) const { return file_->SlotOffset(slot); }

 private:
  std::string directory_;
  std::unique_ptr<SwapFile> file_;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `pages` page-aligned pages.
class Pages {
 public:
  explicit Pages(size_t pages)
      : memory_(static_cast<uint8_t*>(std::aligned_alloc(kPage, pages * kPage))) {
    std::memset(memory_.get(), 0, pages * kPage);
  }
  uint8_t* page(size_t index) const { return memory_.get() + index * kPage; }
  void Fill(size_t index, uint64_t seed) const {
    for (uint32_t i = 0; i < kPage; i += 8) {
      const uint64_t value = seed * 0x9E3779B97F4A7C15ull + i;
      std::memcpy(page(index) + i, &value, 8);
    }
  }

 private:
  std::unique_ptr<uint8_t, FreeDeleter> memory_;
};

std::unique_ptr<IoRing> MakeRing(unsigned entries) {
  auto ring = IoRing::Create(entries);
  REQUIRE(ring.ok());
  return std::move(*ring);
}

// Waits for and pops completions until `count` have arrived; returns them by user_data.
std::map<uint64_t, int32_t> Collect(IoRing& ring, size_t count) {
  std::map<uint64_t, int32_t> results;
  IoCompletion completions[16];
  size_t received = 0;
  while (received < count) {
    REQUIRE(ring.SubmitAndWait(5 * kSecond) == 0);
    const unsigned popped = ring.PopCompletions(completions, 16);
    for (unsigned i = 0; i < popped; ++i) {
      CHECK(results.count(completions[i].user_data) == 0);
      results[completions[i].user_data] = completions[i].result;
    }
    received += popped;
  }
  CHECK(received == count);
  return results;
}

TEST_CASE("pages written through the ring read back intact") {
  TestSwap swap(64);
  auto ring = MakeRing(16);
  constexpr int kSlots = 8;
  Pages out(kSlots);
  Pages in(kSlots);
  for (int i = 0; i < kSlots; ++i) {
    out.Fill(i, i + 1);
    REQUIRE(ring->QueueWrite(swap.fd(), out.page(i), kPage, swap.offset(10 + i), 100 + i));
  }
  CHECK(ring->in_flight() == kSlots);
  for (const auto& [user_data, result] : Collect(*ring, kSlots)) {
    CHECK(user_data >= 100);
    CHECK(user_data < 100 + kSlots);
    CHECK(result == static_cast<int32_t>(kPage));
  }
  CHECK(ring->in_flight() == 0);

  for (int i = 0; i < kSlots; ++i) {
    REQUIRE(ring->QueueRead(swap.fd(), in.page(i), kPage, swap.offset(10 + i), 200 + i));
  }
  for (const auto& [user_data, result] : Collect(*ring, kSlots)) {
    CHECK(result == static_cast<int32_t>(kPage));
  }
  for (int i = 0; i < kSlots; ++i) {
    CAPTURE(i);
    CHECK(std::memcmp(in.page(i), out.page(i), kPage) == 0);
  }
}

TEST_CASE("user_data comes back exactly, whatever its value") {
  TestSwap swap(16);
  auto ring = MakeRing(16);
  Pages pages(1);
  int local = 0;
  const std::vector<uint64_t> values = {0,
                                        1,
                                        UINT64_MAX,
                                        UINT64_MAX - 1,
                                        uint64_t{1} << 63,
                                        reinterpret_cast<uintptr_t>(&local),
                                        reinterpret_cast<uintptr_t>(ring.get())};
  for (uint64_t value : values) REQUIRE(ring->QueueRead(swap.fd(), pages.page(0), kPage, 0, value));
  const auto results = Collect(*ring, values.size());
  for (uint64_t value : values) {
    CAPTURE(value);
    REQUIRE(results.count(value) == 1);
    CHECK(results.at(value) == static_cast<int32_t>(kPage));
  }
  CHECK(ring->in_flight() == 0);
}

TEST_CASE("64 writes go to the kernel in one submission") {
  TestSwap swap(128);
  auto ring = MakeRing(64);
  Pages out(64);
  for (int i = 0; i < 64; ++i) {
    out.Fill(i, 1000 + i);
    REQUIRE(ring->QueueWrite(swap.fd(), out.page(i), kPage, swap.offset(1 + i), i));
  }
  CHECK(ring->in_flight() == 64);
  CHECK(ring->Submit() == 64);
  const auto results = Collect(*ring, 64);
  CHECK(results.size() == 64);
  for (const auto& [user_data, result] : results) CHECK(result == static_cast<int32_t>(kPage));
  CHECK(ring->in_flight() == 0);

  Pages in(1);
  REQUIRE(pread(swap.fd(), in.page(0), kPage, static_cast<off_t>(swap.offset(1 + 37))) == kPage);
  CHECK(std::memcmp(in.page(0), out.page(37), kPage) == 0);
}

TEST_CASE("a full submission queue refuses more until submitted") {
  TestSwap swap(16);
  auto ring = MakeRing(8);
  Pages pages(1);
  unsigned queued = 0;
  while (ring->QueueRead(swap.fd(), pages.page(0), kPage, 0, queued)) ++queued;
  CHECK(queued == 8);
  CHECK(ring->in_flight() == 8);
  CHECK_FALSE(ring->QueueWrite(swap.fd(), pages.page(0), kPage, 0, 99));
  CHECK_FALSE(ring->QueuePollIn(0, 99));
  CHECK(ring->in_flight() == 8);

  CHECK(ring->Submit() == 8);
  CHECK(ring->QueueRead(swap.fd(), pages.page(0), kPage, 0, 8));
  CHECK(Collect(*ring, 9).size() == 9);
  CHECK(ring->in_flight() == 0);
}

TEST_CASE("waiting with a timeout and nothing to complete gives -ETIME") {
  auto ring = MakeRing(4);
  const auto start = std::chrono::steady_clock::now();
  CHECK(ring->SubmitAndWait(20'000'000) == -ETIME);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(15));
  CHECK(ring->SubmitAndWait(0) == -ETIME);
  IoCompletion completion;
  CHECK(ring->PopCompletions(&completion, 1) == 0);
}

TEST_CASE("errors and short transfers come back as raw results") {
  TestSwap swap(4);
  auto ring = MakeRing(4);
  Pages pages(1);
  REQUIRE(ring->QueueRead(-1, pages.page(0), kPage, 0, 1));
  REQUIRE(ring->QueueRead(swap.fd(), pages.page(0), kPage, swap.offset(5), 2));  // past the end
  const auto results = Collect(*ring, 2);
  CHECK(results.at(1) == -EBADF);
  CHECK(results.at(2) == 0);
  CHECK(ring->in_flight() == 0);
}

TEST_CASE("a multishot poll on an eventfd fires once per write") {
  auto ring = MakeRing(4);
  const int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(event_fd >= 0);
  constexpr uint64_t kTag = 0xE7E7;
  REQUIRE(ring->QueuePollIn(event_fd, kTag));
  CHECK(ring->in_flight() == 0);
  CHECK(ring->SubmitAndWait(10'000'000) == -ETIME);

  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    REQUIRE(eventfd_write(event_fd, 1) == 0);
    REQUIRE(ring->SubmitAndWait(5 * kSecond) == 0);
    IoCompletion completions[4];
    REQUIRE(ring->PopCompletions(completions, 4) == 1);
    CHECK(completions[0].user_data == kTag);
    CHECK((completions[0].result & POLLIN) != 0);
    eventfd_t value = 0;
    REQUIRE(eventfd_read(event_fd, &value) == 0);
    CHECK(value == 1);
    CHECK(ring->SubmitAndWait(10'000'000) == -ETIME);
    CHECK(ring->in_flight() == 0);
  }
  ring.reset();
  close(event_fd);
}

TEST_CASE("a poll keeps firing after the completion queue overflowed") {
  auto ring = MakeRing(1);  // the completion queue holds 2 entries
  const int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(event_fd >= 0);
  REQUIRE(ring->QueuePollIn(event_fd, 7));
  REQUIRE(ring->Submit() == 1);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(eventfd_write(event_fd, 1) == 0);
    CHECK(ring->SubmitAndWait(kSecond) == 0);
  }
  IoCompletion completions[8];
  const unsigned popped = ring->PopCompletions(completions, 8);
  CHECK(popped >= 1);
  for (unsigned i = 0; i < popped; ++i) CHECK(completions[i].user_data == 7);
  eventfd_t value = 0;
  REQUIRE(eventfd_read(event_fd, &value) == 0);

  CHECK(ring->SubmitAndWait(10'000'000) == -ETIME);
  REQUIRE(eventfd_write(event_fd, 1) == 0);
  REQUIRE(ring->SubmitAndWait(kSecond) == 0);
  REQUIRE(ring->PopCompletions(completions, 8) == 1);
  CHECK(completions[0].user_data == 7);
  ring.reset();
  close(event_fd);
}

TEST_CASE("a ring made on one thread is driven by another") {
  TestSwap swap(8);
  auto ring = MakeRing(8);
  Pages out(1);
  out.Fill(0, 42);
  std::thread owner([&] {
    REQUIRE(ring->QueueWrite(swap.fd(), out.page(0), kPage, swap.offset(2), 5));
    const auto results = Collect(*ring, 1);
    CHECK(results.at(5) == static_cast<int32_t>(kPage));
  });
  owner.join();
  ring.reset();
}

TEST_CASE("destroying the ring waits for submitted writes") {
  TestSwap swap(64);
  Pages out(32);
  {
    auto ring = MakeRing(32);
    for (int i = 0; i < 32; ++i) {
      out.Fill(i, 500 + i);
      REQUIRE(ring->QueueWrite(swap.fd(), out.page(i), kPage, swap.offset(1 + i), i));
    }
    REQUIRE(ring->Submit() == 32);
    // One more queued but never submitted: dropped, not waited for.
    REQUIRE(ring->QueueWrite(swap.fd(), out.page(0), kPage, swap.offset(40), 99));
  }
  Pages in(1);
  for (int i = 0; i < 32; ++i) {
    REQUIRE(pread(swap.fd(), in.page(0), kPage, static_cast<off_t>(swap.offset(1 + i))) == kPage);
    CHECK(std::memcmp(in.page(0), out.page(i), kPage) == 0);
  }
}

}  // namespace
}  // namespace faultline
