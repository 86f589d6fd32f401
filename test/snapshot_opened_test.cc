// Snapshots of a region opened from a snapshot file (fl_snapshot_open): the pages not touched
// since the open are still in the file (EMPTY + BACKED), and a snapshot must read them from it
// through every path: its mapping (faults), ReadSnapshot and SaveSnapshot. Under a limit far
// below the memory snapshotted, two threads, every byte verified.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime.h"
#include "snapshot/snapshot_file.h"
#include "support/runtime_helpers.h"
#include "support/test_support.h"
#include "util/raw_memory.h"

namespace {

using faultline::Runtime;
using faultline::test::AllZero;
using faultline::test::Fill;
using faultline::test::kMiB;
using faultline::test::kPage;
using faultline::test::MakeRuntime;
using faultline::test::MapAdopted;
using faultline::test::VerifyPage;

struct TempPath {
  explicit TempPath(const char* name) {
    const char* dir = std::getenv("FAULTLINE_TEST_SWAP_DIR");
    path = std::string(dir != nullptr && *dir != '\0' ? dir : "/var/tmp") + "/faultline-test-" +
           std::to_string(getpid()) + "-" + name + ".snapshot";
  }
  ~TempPath() { unlink(path.c_str()); }
  std::string path;
};

constexpr size_t kBytes = 16 * kMiB;
constexpr size_t kWritten = kMiB;   // written after the open (seed 21)
constexpr size_t kHole = 2 * kMiB;  // [kHole, 2 * kHole) was zeros when saved
constexpr uint64_t kSaved = 20, kAfterOpen = 21, kLater = 22;

// Number of pages of [0, kBytes) read through `page(offset)` that are not what the snapshot of
// the opened region holds. Two threads, each half of the pages.
template <typename PageAt>
uint64_t WrongPages(PageAt page) {
  std::atomic<uint64_t> wrong{0};
  std::vector<std::thread> readers;
  for (size_t t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      for (size_t offset = t * kBytes / 2; offset < (t + 1) * kBytes / 2; offset += kPage) {
        const char* bytes = page(offset);
        if (offset < kWritten) {
          wrong += VerifyPage(bytes, offset / kPage, kAfterOpen) >= 0;
        } else if (offset >= kHole && offset < 2 * kHole) {
          wrong += !AllZero(bytes, kPage);
        } else {
          wrong += VerifyPage(bytes, offset / kPage, kSaved) >= 0;
        }
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  return wrong.load();
}

}  // namespace

TEST_CASE("a snapshot of an opened file's region reads its untouched pages from the file",
          "[snapshot][file]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  // A saved file: seed 20, with a zero range.
  TempPath saved("saved");
  {
    char* base = MapAdopted(*runtime, kBytes);
    Fill(base, kBytes, kSaved);
    REQUIRE(runtime->Advise(base + kHole, kHole, MADV_DONTNEED) == 0);
    void* snapshot = *runtime->TakeSnapshot(base, kBytes);
    REQUIRE(runtime->SaveSnapshot(snapshot, saved.path).ok());
    REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
    REQUIRE(runtime->Unmap(base, kBytes).ok());
  }
  // Opened, its first MiB written: the rest is still only in the file when the snapshot is taken.
  size_t length = 0;
  char* image = static_cast<char*>(*runtime->OpenSnapshotFile(saved.path, &length));
  REQUIRE(length == kBytes);
  Fill(image, kWritten, kAfterOpen);
  char* snapshot = static_cast<char*>(*runtime->TakeSnapshot(image, kBytes));
  // The source moves on: every page read from the file and rewritten.
  Fill(image, kBytes, kLater);

  SECTION("ReadSnapshot") {
    std::vector<char> copy(kBytes);
    absl::Status read = runtime->ReadSnapshot(snapshot, 0, copy.data(), kBytes);
    INFO(read.ToString());
    REQUIRE(read.ok());
    CHECK(WrongPages([&](size_t offset) { return copy.data() + offset; }) == 0);
  }
  SECTION("SaveSnapshot, then the saved file page by page") {
    TempPath again("again");
    absl::Status written = runtime->SaveSnapshot(snapshot, again.path);
    INFO(written.ToString());
    REQUIRE(written.ok());
    auto reader = faultline::SnapshotFileReader::Open(again.path);
    REQUIRE(reader.ok());
    REQUIRE((*reader)->page_count() == kBytes / kPage);
    std::vector<char> copy(kBytes);
    uint64_t unreadable = 0;
    for (uint64_t i = 0; i < kBytes / kPage; ++i) {
      unreadable += !(*reader)->ReadPageVerified(i, copy.data() + i * kPage);
    }
    CHECK(unreadable == 0);
    CHECK(WrongPages([&](size_t offset) { return copy.data() + offset; }) == 0);
  }
  SECTION("the snapshot's mapping (faults), four times the limit") {
    CHECK(WrongPages([&](size_t offset) { return snapshot + offset; }) == 0);
  }
  CHECK(faultline::test::Wrong(image, kBytes, kLater) == 0);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  REQUIRE(runtime->Unmap(image, kBytes).ok());
  CHECK(faultline::test::StatsOf(*runtime).regions == 0);
}
