// Copy-on-write snapshots (core/runtime_snapshots.cc, core/pager_snapshot.cc), driven through the
// runtime so that they also run in the sanitizer builds: each under a limit far below the memory
// snapshotted, with every byte of every snapshot verified.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/runtime.h"
#include "snapshot/snapshot_file.h"
#include "support/runtime_helpers.h"
#include "support/test_support.h"
#include "util/raw_memory.h"
#include "util/status.h"

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

// The snapshot's bytes through ReadSnapshot (which brings nothing into memory).
std::vector<char> ReadAll(Runtime& runtime, const void* snapshot, size_t bytes) {
  std::vector<char> copy(bytes);
  absl::Status read = runtime.ReadSnapshot(snapshot, 0, copy.data(), bytes);
  INFO(read.ToString());
  REQUIRE(read.ok());
  return copy;
}

// Sequence stamps: writer thread t rewrites its own slice of pages in order, round after round,
// each page word by word with (round << 32 | page). A moment of such a writer reads: round R+1 up
// to the page it is writing, that page with round R+1 in its first words and round R in the
// rest, and round R from there on (R = 0: zeros, never written). A snapshot must read so.
uint64_t Stamp(uint64_t round, uint64_t page) { return round << 32 | page; }

void StampPage(char* page, uint64_t round, uint64_t index) {
  auto* words = reinterpret_cast<std::atomic<uint64_t>*>(page);
  for (size_t i = 0; i < kPage / 8; ++i) {
    words[i].store(Stamp(round, index), std::memory_order_relaxed);
  }
}

// Checks one writer's slice [first, end) of `pages` (a copy of the region's bytes): returns an
// empty string, or what is wrong.
std::string CheckSlice(const char* pages, uint64_t first, uint64_t end) {
  const uint64_t first_round = reinterpret_cast<const uint64_t*>(pages + first * kPage)[0] >> 32;
  uint64_t round = first_round;  // the round expected next
  for (uint64_t p = first; p < end; ++p) {
    const auto* words = reinterpret_cast<const uint64_t*>(pages + p * kPage);
    for (size_t i = 0; i < kPage / 8; ++i) {
      const uint64_t word = words[i];
      const std::string where = "page " + std::to_string(p) + " word " + std::to_string(i);
      if (word != 0 && (word & 0xffffffff) != p) {
        return where + " holds a stamp of page " + std::to_string(word & 0xffffffff);
      }
      if (word >> 32 == round) continue;
      // The writer's position: from here on, the round before.
      if (round == first_round && round > 0 && word >> 32 == round - 1) {
        round = round - 1;
        continue;
      }
      return where + " has round " + std::to_string(word >> 32) + " where round " +
             std::to_string(round) + " was due: not one moment of the writer";
    }
  }
  return "";
}

}  // namespace

TEST_CASE("snapshots taken while threads write are each one moment of every writer", "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(8 * kMiB);
  const size_t bytes = 48 * kMiB;  // six times the limit
  const uint64_t pages = bytes / kPage;
  char* base = MapAdopted(*runtime, bytes);
  // Three writers rewrite their 1 MiB slices over and over (hot pages, rewritten long before
  // they could be evicted); the rest of the region holds a fixed pattern that a reader scans
  // over and over, so that everything is paged, the snapshots' pages included.
  constexpr int kWriters = 3;
  constexpr uint64_t kSlicePages = kMiB / kPage;
  const uint64_t cold_first = kWriters * kSlicePages;
  Fill(base + cold_first * kPage, bytes - cold_first * kPage, 9, cold_first);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds_done{0}, scans_done{0}, scan_wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t first = t * kSlicePages;
      for (uint64_t round = 1; !stop.load(); ++round) {
        for (uint64_t p = first; p < first + kSlicePages; ++p)
          StampPage(base + p * kPage, round, p);
        rounds_done.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      scan_wrong += Wrong(base + cold_first * kPage, bytes - cold_first * kPage, 9, cold_first);
      scans_done.fetch_add(1);
    }
  });
  auto check = [&](const char* copy, const char* what) {
    for (int t = 0; t < kWriters; ++t) {
      INFO(what << ", writer " << t);
      CHECK(CheckSlice(copy, t * kSlicePages, (t + 1) * kSlicePages) == "");
    }
    INFO(what);
    CHECK(Wrong(copy + cold_first * kPage, bytes - cold_first * kPage, 9, cold_first) == 0);
  };
  // Snapshots at different moments, up to three alive at once, released out of order.
  std::vector<void*> alive;
  for (int s = 0; s < 6; ++s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + 50 * s));
    absl::StatusOr<void*> snapshot = runtime->TakeSnapshot(base, bytes);
    REQUIRE(snapshot.ok());
    std::vector<char> copy = ReadAll(*runtime, *snapshot, bytes);
    check(copy.data(), "snapshot, read");
    // It does not change while the writers go on: read again, and through its mapping.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const bool read_again_same = ReadAll(*runtime, *snapshot, bytes) == copy;
    CHECK(read_again_same);
    const bool mapping_same = std::memcmp(*snapshot, copy.data(), bytes) == 0;
    CHECK(mapping_same);
    alive.push_back(*snapshot);
    if (alive.size() == 3) {
      REQUIRE(runtime->ReleaseSnapshot(alive[1]).ok());  // the middle one first
      alive.erase(alive.begin() + 1);
    }
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  for (void* snapshot : alive) REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  fl_stats s = StatsOf(*runtime);
  INFO("writer rounds " << rounds_done.load() << ", scans " << scans_done.load());
  CHECK(rounds_done.load() >= 6 * kWriters);
  CHECK(scans_done.load() >= 1);
  CHECK(scan_wrong.load() == 0);
  CHECK(s.snapshots == 0);
  CHECK(s.snapshot_pages_copied > 0);
  CHECK(s.evictions > pages);
  CHECK(s.io_errors + s.checksum_errors == 0);
  check(base, "memory at the end");
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("a snapshot keeps its bytes when the source is written, discarded, cut and unmapped",
          "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 16 * kMiB, quarter = bytes / 4;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 1);
  void* whole = *runtime->TakeSnapshot(base, bytes);
  void* middle = *runtime->TakeSnapshot(base + quarter, 2 * quarter);
  Fill(base, quarter, 2);                                                 // written
  REQUIRE(runtime->Advise(base + quarter, quarter, MADV_DONTNEED) == 0);  // discarded
  // Cut out and unmapped, in the interposer's order: the kernel's munmap comes between.
  runtime->PrepareUnmap(base + 2 * quarter, quarter);
  faultline::RawMunmap(base + 2 * quarter, quarter);
  runtime->Forget(base + 2 * quarter, quarter);
  CHECK(Wrong(static_cast<char*>(whole), bytes, 1) == 0);
  CHECK(Wrong(static_cast<char*>(middle), 2 * quarter, 1, quarter / kPage) == 0);
  CHECK(Wrong(base, quarter, 2) == 0);
  CHECK(AllZero(base + quarter, quarter));
  CHECK(Wrong(base + 3 * quarter, quarter, 1, 3 * quarter / kPage) == 0);
  // The source gone entirely: the snapshots stay whole.
  runtime->PrepareUnmap(base, bytes);
  faultline::RawMunmap(base, bytes);
  runtime->Forget(base, bytes);
  std::vector<char> copy = ReadAll(*runtime, whole, bytes);
  CHECK(Wrong(copy.data(), bytes, 1) == 0);
  REQUIRE(runtime->ReleaseSnapshot(whole).ok());
  CHECK(Wrong(static_cast<char*>(middle), 2 * quarter, 1, quarter / kPage) == 0);
  REQUIRE(runtime->ReleaseSnapshot(middle).ok());
  fl_stats s = StatsOf(*runtime);
  CHECK(s.regions == 0);
  CHECK(s.swap_slots_used == 0);
  CHECK(s.managed_pages == 0);
}

TEST_CASE("swapped pages are shared with a snapshot by their slot, not copied", "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 32 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 3);
  REQUIRE(runtime->Advise(base, bytes, MADV_PAGEOUT) == 0);
  fl_stats before = StatsOf(*runtime);
  void* snapshot = *runtime->TakeSnapshot(base, bytes);
  fl_stats after = StatsOf(*runtime);
  CHECK(after.swap_slots_used == before.swap_slots_used);
  CHECK(after.bytes_read == before.bytes_read);
  CHECK(after.snapshot_pages_copied == 0);
  // Rewriting the source leaves the old slots to the snapshot.
  Fill(base, bytes, 4);
  CHECK(Wrong(static_cast<char*>(snapshot), bytes, 3) == 0);
  CHECK(Wrong(base, bytes, 4) == 0);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  REQUIRE(runtime->Advise(base, bytes, MADV_PAGEOUT) == 0);
  CHECK(StatsOf(*runtime).swap_slots_used <= bytes / kPage);  // the snapshot's slots came back
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("a snapshot page whose slot is corrupt reads as an error, never as zeros", "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 8 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 5);
  REQUIRE(runtime->Advise(base, bytes, MADV_PAGEOUT) == 0);
  void* snapshot = *runtime->TakeSnapshot(base, bytes);
  const size_t victim = 100 * kPage;
  absl::StatusOr<Runtime::PageInfo> info =
      runtime->InspectPage(static_cast<char*>(snapshot) + victim);
  REQUIRE(info.ok());
  REQUIRE(info->state == faultline::PageState::kSwapped);
  // The swap file is opened O_DIRECT: a whole aligned page of garbage.
  alignas(kPage) static char garbage[kPage];
  std::memset(garbage, 0x5a, sizeof garbage);
  REQUIRE(pwrite(runtime->swap_fd(), garbage, sizeof garbage,
                 static_cast<off_t>(runtime->SwapOffsetOfSlot(info->slot))) == sizeof garbage);
  std::vector<char> page(kPage);
  absl::Status read = runtime->ReadSnapshot(snapshot, victim, page.data(), kPage);
  CHECK(faultline::ErrnoOf(read) == EIO);
  CHECK(runtime->ReadSnapshot(snapshot, victim + kPage, page.data(), kPage).ok());
  CHECK(faultline::test::VerifyPage(page.data(), victim / kPage + 1, 5) < 0);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("snapshots and fork: a child sees the memory, the parent's snapshot stays",
          "[snapshot][fork]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 16 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 6);
  void* before_fork = *runtime->TakeSnapshot(base, bytes);
  Fill(base, bytes / 2, 7);
  int status = ForkAs(*runtime, [&] {
    return Wrong(base, bytes / 2, 7) == 0 &&
           Wrong(base + bytes / 2, bytes / 2, 6, bytes / 2 / kPage) == 0;
  });
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  void* after_fork = *runtime->TakeSnapshot(base, bytes);
  Fill(base, bytes, 8);
  CHECK(Wrong(static_cast<char*>(before_fork), bytes, 6) == 0);
  CHECK(Wrong(static_cast<char*>(after_fork), bytes / 2, 7) == 0);
  CHECK(Wrong(static_cast<char*>(after_fork) + bytes / 2, bytes / 2, 6, bytes / 2 / kPage) == 0);
  REQUIRE(runtime->ReleaseSnapshot(before_fork).ok());
  REQUIRE(runtime->ReleaseSnapshot(after_fork).ok());
  CHECK(Wrong(base, bytes, 8) == 0);
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("snapshot calls with bad arguments fail and change nothing", "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(8 * kMiB);
  char* first = MapAdopted(*runtime, 2 * kMiB);
  char* second = MapAdopted(*runtime, 2 * kMiB);
  CHECK(!runtime->TakeSnapshot(first + 1, kPage).ok());  // unaligned
  CHECK(!runtime->TakeSnapshot(first, 0).ok());          // empty
  CHECK(!runtime->TakeSnapshot(first, 4 * kMiB).ok());   // past its region
  CHECK(!runtime->TakeSnapshot(&runtime, kPage).ok());   // not managed
  CHECK(!runtime->ReleaseSnapshot(first).ok());          // not a snapshot
  void* snapshot = *runtime->TakeSnapshot(second, 2 * kMiB);
  CHECK(!runtime->TakeSnapshot(snapshot, kPage).ok());  // a snapshot of a snapshot
  CHECK(!runtime->Unmap(snapshot, 2 * kMiB).ok());      // not fl_unmap'able
  std::vector<char> buf(kPage);
  CHECK(!runtime->ReadSnapshot(snapshot, 2 * kMiB, buf.data(), 1).ok());  // past its end
  CHECK(StatsOf(*runtime).snapshots == 1);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  CHECK(!runtime->ReleaseSnapshot(snapshot).ok());  // released twice
  CHECK(StatsOf(*runtime).regions == 2);
  runtime->Forget(first, 2 * kMiB);
  runtime->Forget(second, 2 * kMiB);
  faultline::RawMunmap(first, 2 * kMiB);
  faultline::RawMunmap(second, 2 * kMiB);
}

namespace {

// A path for a saved snapshot in the test swap directory, removed at the end of the scope.
struct TempSnapshotPath {
  TempSnapshotPath() {
    const char* dir = std::getenv("FAULTLINE_TEST_SWAP_DIR");
    path = std::string(dir != nullptr && *dir != '\0' ? dir : "/var/tmp") + "/faultline-test-" +
           std::to_string(getpid()) + ".snapshot";
  }
  ~TempSnapshotPath() { unlink(path.c_str()); }
  std::string path;
};

}  // namespace

TEST_CASE("a saved snapshot opens as a region that reads back byte for byte, lazily",
          "[snapshot][file]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 32 * kMiB, hole = 2 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 10);
  REQUIRE(runtime->Advise(base + hole, hole, MADV_DONTNEED) == 0);  // a zero range
  void* snapshot = *runtime->TakeSnapshot(base, bytes);
  Fill(base, bytes, 11);  // the snapshot keeps seed 10
  TempSnapshotPath file;
  fl_stats before = StatsOf(*runtime);
  absl::Status saved = runtime->SaveSnapshot(snapshot, file.path);
  INFO(saved.ToString());
  REQUIRE(saved.ok());
  fl_stats after = StatsOf(*runtime);
  CHECK(after.faults_swap_in == before.faults_swap_in);  // read from swap, not faulted in
  CHECK(after.peak_resident_pages == before.peak_resident_pages);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());

  const uint64_t peak_before_open = StatsOf(*runtime).peak_resident_pages;
  size_t length = 0;
  absl::StatusOr<void*> opened = runtime->OpenSnapshotFile(file.path, &length);
  INFO(opened.status().ToString());
  REQUIRE(opened.ok());
  REQUIRE(length == bytes);
  char* image = static_cast<char*>(*opened);
  const uint64_t loads = StatsOf(*runtime).faults_swap_in;
  CHECK(StatsOf(*runtime).resident_pages < 4 * kMiB / kPage + 256);  // nothing read at open
  // Read by two threads at once, eight times the limit.
  std::atomic<uint64_t> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      const size_t half = bytes / 2, first = t * half;
      for (size_t offset = first; offset < first + half; offset += kPage) {
        bool in_hole = offset >= hole && offset < 2 * hole;
        wrong += in_hole ? !AllZero(image + offset, kPage)
                         : faultline::test::VerifyPage(image + offset, offset / kPage, 10) >= 0;
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  CHECK(wrong.load() == 0);
  fl_stats s = StatsOf(*runtime);
  CHECK(s.faults_swap_in - loads >= (bytes - hole) / kPage);  // each page read on first touch
  // Read lazily under the limit, not loaded whole (the file is 32 MiB): reading it raised the
  // peak no higher than the limit, plus the evictor's lag behind two faulting threads.
  INFO("peak before opening " << peak_before_open << " pages, after reading "
                              << s.peak_resident_pages);
  CHECK((s.peak_resident_pages == peak_before_open ||
         s.peak_resident_pages * kPage <= 4 * kMiB + kMiB));
  // The opened region is memory like any other: written, snapshotted, forked.
  Fill(image, kMiB, 12);
  void* again = *runtime->TakeSnapshot(image, bytes);
  int status = ForkAs(*runtime, [&] {
    return Wrong(image, kMiB, 12) == 0 && Wrong(image + 4 * kMiB, kMiB, 10, 4 * kMiB / kPage) == 0;
  });
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(Wrong(static_cast<char*>(again) + 8 * kMiB, 8 * kMiB, 10, 8 * kMiB / kPage) == 0);
  REQUIRE(runtime->ReleaseSnapshot(again).ok());
  REQUIRE(runtime->Unmap(image, bytes).ok());
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("a damaged snapshot file: SIGBUS on the bad page, an error for a truncated file",
          "[snapshot][file]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(8 * kMiB);
  const size_t bytes = 4 * kMiB;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 13);
  void* snapshot = *runtime->TakeSnapshot(base, bytes);
  TempSnapshotPath file;
  REQUIRE(runtime->SaveSnapshot(snapshot, file.path).ok());
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  // Flip a byte of page 7's stored bytes: page 7 is the 8th data page (none is zero).
  const uint64_t bad = 7;
  {
    absl::StatusOr<std::unique_ptr<faultline::SnapshotFileReader>> reader =
        faultline::SnapshotFileReader::Open(file.path);
    REQUIRE(reader.ok());
    const off_t at = static_cast<off_t>((*reader)->DataOffset(bad)) + 100;
    int fd = open(file.path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    char byte = 0;
    REQUIRE(pread(fd, &byte, 1, at) == 1);
    byte ^= 0x10;
    REQUIRE(pwrite(fd, &byte, 1, at) == 1);
    close(fd);
  }
  size_t length = 0;
  char* image = static_cast<char*>(*runtime->OpenSnapshotFile(file.path, &length));
  {
    faultline::test::SigbusCatcher sigbus;
    CHECK(sigbus.ReadRaises(image + bad * kPage));
    CHECK_FALSE(sigbus.ReadRaises(image + (bad + 1) * kPage));
  }
  CHECK(Wrong(image, bad * kPage, 13) == 0);
  CHECK(Wrong(image + (bad + 1) * kPage, bytes - (bad + 1) * kPage, 13, bad + 1) == 0);
  CHECK(StatsOf(*runtime).poisoned_pages == 1);
  REQUIRE(runtime->Unmap(image, length).ok());
  // Cut short: refused at open, nothing mapped.
  REQUIRE(truncate(file.path.c_str(), 3 * kMiB) == 0);
  const uint64_t regions = StatsOf(*runtime).regions;
  absl::StatusOr<void*> truncated = runtime->OpenSnapshotFile(file.path, &length);
  CHECK(!truncated.ok());
  CHECK(faultline::ErrnoOf(truncated.status()) == EINVAL);
  CHECK(StatsOf(*runtime).regions == regions);
  runtime->Forget(base, bytes);
  faultline::RawMunmap(base, bytes);
}

TEST_CASE("a snapshot of a self-paging region: writes to its pages are copied, not stuck",
          "[snapshot][self_paging]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(4 * kMiB);
  const size_t bytes = 16 * kMiB;
  absl::StatusOr<void*> mapped = runtime->Map(bytes, FL_MAP_SELF_PAGING);
  REQUIRE(mapped.ok());
  char* base = static_cast<char*>(*mapped);
  Fill(base, bytes, 14);
  void* snapshot = *runtime->TakeSnapshot(base, bytes);
  // Regression: the first write to a resident page the snapshot waited for was forwarded as a
  // missing-page fault, which a handler only woke: the write faulted again, forever.
  Fill(base, bytes, 15);
  CHECK(Wrong(base, bytes, 15) == 0);
  CHECK(Wrong(static_cast<char*>(snapshot), bytes, 14) == 0);
  CHECK(StatsOf(*runtime).snapshot_pages_copied > 0);
  REQUIRE(runtime->ReleaseSnapshot(snapshot).ok());
  REQUIRE(runtime->Unmap(base, bytes).ok());
}

TEST_CASE("a snapshot whose mapping the program cuts keeps the rest of its bytes", "[snapshot]") {
  faultline::test::SkipUnlessUserfaultfd();
  auto runtime = MakeRuntime(32 * kMiB);  // everything resident: every snapshot page waits
  const size_t bytes = 8 * kMiB, half = bytes / 2;
  char* base = MapAdopted(*runtime, bytes);
  Fill(base, bytes, 16);
  char* snapshot = static_cast<char*>(*runtime->TakeSnapshot(base, bytes));
  // The program unmaps the first half of the snapshot's mapping, as the interposer reports it.
  runtime->PrepareUnmap(snapshot, half);
  faultline::RawMunmap(snapshot, half);
  runtime->Forget(snapshot, half);
  Fill(base, bytes, 17);
  CHECK(Wrong(snapshot + half, half, 16, half / kPage) == 0);
  CHECK(Wrong(base, bytes, 17) == 0);
  runtime->PrepareUnmap(snapshot + half, half);
  faultline::RawMunmap(snapshot + half, half);
  runtime->Forget(snapshot + half, half);
  runtime->PrepareUnmap(base, bytes);
  faultline::RawMunmap(base, bytes);
  runtime->Forget(base, bytes);
  CHECK(StatsOf(*runtime).regions == 0);
}
