#include "snapshot/snapshot_file.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "swap/checksum.h"

namespace faultline {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kPage = kSnapshotPageSize;
constexpr uint64_t kSourceAddress = 0x7f1234560000;

// Offsets from the layout documented in snapshot_file.h, written out again here on purpose: the
// test checks the documentation as much as the code.
constexpr uint64_t kHeaderVersionOffset = 8;
constexpr uint64_t kHeaderPageSizeOffset = 12;
constexpr uint64_t kHeaderTableCrcOffset = 80;
constexpr uint64_t kHeaderCrcOffset = 84;
constexpr uint64_t kTableEntrySize = 8;
constexpr uint64_t kTrailerSize = 32;

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string name = (fs::temp_directory_path() / "snapshot_file_test.XXXXXX").string();
    REQUIRE(mkdtemp(name.data()) != nullptr);
    path_ = name;
  }
  ~TemporaryDirectory() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  // The names of the directory's entries.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) {
      names.push_back(entry.path().filename());
    }
    return names;
  }

 private:
  fs::path path_;
};

// What a test gives the writer for one page, and what the reader must give back.
struct PlannedPage {
  SnapshotPageKind given;
  SnapshotPageKind stored;
  std::vector<uint8_t> bytes;  // empty for kZero and kLost as given
};

std::vector<uint8_t> RandomPage(std::mt19937_64& random) {
  std::vector<uint8_t> page(kPage);
  for (size_t offset = 0; offset < kPage; offset += 8) {
    uint64_t word = random();
    std::memcpy(page.data() + offset, &word, 8);
  }
  return page;
}

// A mix of every kind, including data pages that are all zeros (stored as kZero) and data pages
// with a single non-zero byte at either end.
std::vector<PlannedPage> MixedPlan(uint64_t page_count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<PlannedPage> plan;
  for (uint64_t index = 0; index < page_count; ++index) {
    const uint64_t draw = random() % 20;
    if (draw < 10) {
      plan.push_back({SnapshotPageKind::kData, SnapshotPageKind::kData, RandomPage(random)});
    } else if (draw < 16) {
      plan.push_back({SnapshotPageKind::kZero, SnapshotPageKind::kZero, {}});
    } else if (draw < 18) {
      plan.push_back({SnapshotPageKind::kLost, SnapshotPageKind::kLost, {}});
    } else if (draw < 19) {
      plan.push_back(
          {SnapshotPageKind::kData, SnapshotPageKind::kZero, std::vector<uint8_t>(kPage)});
    } else {
      std::vector<uint8_t> bytes(kPage);
      bytes[random() % 2 == 0 ? 0 : kPage - 1] = 1;
      plan.push_back({SnapshotPageKind::kData, SnapshotPageKind::kData, std::move(bytes)});
    }
  }
  return plan;
}

void WriteSnapshot(const std::string& path, const std::vector<PlannedPage>& plan) {
  auto writer = SnapshotFileWriter::Create(path, plan.size(), kPage, kSourceAddress);
  REQUIRE(writer.ok());
  for (const PlannedPage& page : plan) {
    absl::Status status =
        (*writer)->AddPage(page.given, page.bytes.empty() ? nullptr : page.bytes.data());
    REQUIRE(status.ok());
  }
  absl::Status status = (*writer)->Finish();
  INFO(status.ToString());
  REQUIRE(status.ok());
}

uint64_t StoredDataPages(const std::vector<PlannedPage>& plan) {
  uint64_t count = 0;
  for (const PlannedPage& page : plan) count += page.stored == SnapshotPageKind::kData;
  return count;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFileBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

uint32_t LoadU32(const std::vector<uint8_t>& bytes, uint64_t offset) {
  uint32_t value;
  std::memcpy(&value, bytes.data() + offset, 4);
  return value;
}

void StoreU32(std::vector<uint8_t>& bytes, uint64_t offset, uint32_t value) {
  std::memcpy(bytes.data() + offset, &value, 4);
}

// Rewrites the header's checksum to match its (edited) contents, as a writer would.
void ResealHeader(std::vector<uint8_t>& bytes) {
  StoreU32(bytes, kHeaderCrcOffset, 0);
  StoreU32(bytes, kHeaderCrcOffset, Crc32c(bytes.data(), kPage));
}

std::string OpenError(const std::string& path) {
  auto reader = SnapshotFileReader::Open(path);
  REQUIRE_FALSE(reader.ok());
  return std::string(reader.status().message());
}

TEST_CASE("every page of a snapshot reads back as written") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<PlannedPage> plan = MixedPlan(3000, 20240501);
  WriteSnapshot(path, plan);
  CHECK(directory.Entries() == std::vector<std::string>{"snap"});

  auto opened = SnapshotFileReader::Open(path);
  INFO(opened.status().ToString());
  REQUIRE(opened.ok());
  const SnapshotFileReader& reader = **opened;
  REQUIRE(reader.page_count() == plan.size());
  CHECK(reader.page_size() == kPage);
  CHECK(reader.source_address() == kSourceAddress);
  CHECK(reader.data_page_count() == StoredDataPages(plan));
  const uint64_t table_bytes = plan.size() * kTableEntrySize;
  CHECK(reader.file_size() == kPage * (1 + StoredDataPages(plan)) + table_bytes + kTrailerSize);
  CHECK(fs::file_size(path) == reader.file_size());

  std::vector<uint8_t> page(kPage);
  std::vector<uint8_t> direct(kPage);
  const std::vector<uint8_t> zeros(kPage);
  uint64_t previous_offset = 0;
  uint64_t wrong_pages = 0;
  for (uint64_t index = 0; index < plan.size(); ++index) {
    const PlannedPage& planned = plan[index];
    INFO("page " << index);
    REQUIRE(reader.kind(index) == planned.stored);
    absl::Status status = reader.ReadPage(index, page.data());
    switch (planned.stored) {
      case SnapshotPageKind::kZero:
        CHECK(status.ok());
        CHECK(reader.checksum(index) == 0);
        wrong_pages += page != zeros;
        break;
      case SnapshotPageKind::kLost:
        CHECK(absl::IsDataLoss(status));
        CHECK(reader.checksum(index) == 0);
        break;
      case SnapshotPageKind::kData: {
        CHECK(status.ok());
        CHECK(reader.checksum(index) == PageChecksum(planned.bytes.data(), kPage));
        wrong_pages += page != planned.bytes;
        const uint64_t offset = reader.DataOffset(index);
        CHECK(offset % kPage == 0);
        CHECK(offset > previous_offset);
        previous_offset = offset;
        REQUIRE(pread(reader.fd(), direct.data(), kPage, static_cast<off_t>(offset)) == kPage);
        wrong_pages += direct != planned.bytes;
        break;
      }
    }
  }
  CHECK(wrong_pages == 0);
}

TEST_CASE("snapshots of one page and of whole write batches") {
  const uint64_t page_count = GENERATE(1, 63, 64, 65, 128);
  const SnapshotPageKind kind =
      GENERATE(SnapshotPageKind::kData, SnapshotPageKind::kZero, SnapshotPageKind::kLost);
  INFO(page_count << " pages of kind " << SnapshotPageKindName(kind));
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  std::mt19937_64 random(page_count);
  std::vector<PlannedPage> plan;
  for (uint64_t index = 0; index < page_count; ++index) {
    plan.push_back({kind, kind,
                    kind == SnapshotPageKind::kData ? RandomPage(random) : std::vector<uint8_t>()});
  }
  WriteSnapshot(path, plan);
  auto reader = SnapshotFileReader::Open(path);
  REQUIRE(reader.ok());
  REQUIRE((*reader)->page_count() == page_count);
  std::vector<uint8_t> page(kPage);
  for (uint64_t index = 0; index < page_count; ++index) {
    REQUIRE((*reader)->kind(index) == kind);
    if (kind != SnapshotPageKind::kData) continue;
    REQUIRE((*reader)->ReadPage(index, page.data()).ok());
    REQUIRE(page == plan[index].bytes);
  }
}

TEST_CASE("a truncated snapshot fails to open, saying where it was cut") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<PlannedPage> plan = MixedPlan(200, 7);
  WriteSnapshot(path, plan);
  const std::vector<uint8_t> whole = ReadFileBytes(path);
  const uint64_t table_offset = kPage * (1 + StoredDataPages(plan));
  const uint64_t trailer_offset = table_offset + plan.size() * kTableEntrySize;
  REQUIRE(whole.size() == trailer_offset + kTrailerSize);

  const std::vector<std::pair<uint64_t, std::string>> cuts = {
      {0, "empty file"},
      {5, "truncated in the header"},
      {60, "truncated in the header"},
      {kPage - 1, "truncated in the header"},
      {kPage, "truncated in the data pages"},
      {kPage + 1000, "truncated in the data pages"},
      {table_offset - 1, "truncated in the data pages"},
      {table_offset, "truncated in the page table"},
      {table_offset + 13, "truncated in the page table"},
      {trailer_offset - 1, "truncated in the page table"},
      {trailer_offset, "truncated in the trailer"},
      {whole.size() - 1, "truncated in the trailer"},
  };
  for (const auto& [length, expected] : cuts) {
    INFO("cut at " << length << " of " << whole.size() << " bytes");
    WriteFileBytes(path, std::vector<uint8_t>(whole.begin(), whole.begin() + length));
    const std::string error = OpenError(path);
    INFO(error);
    CHECK(error.find(expected) != std::string::npos);
    CHECK(error.find(path) == 0);
  }

  std::vector<uint8_t> extended = whole;
  extended.push_back(0);
  WriteFileBytes(path, extended);
  CHECK(OpenError(path).find("1 more than its header says") != std::string::npos);
}

TEST_CASE("a corrupt data page is caught when it is read; the other pages read fine") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<PlannedPage> plan = MixedPlan(300, 99);
  WriteSnapshot(path, plan);
  uint64_t victim = 0;
  uint64_t victim_offset = 0;
  {
    auto reader = SnapshotFileReader::Open(path);
    REQUIRE(reader.ok());
    for (uint64_t index = 150; index < plan.size(); ++index) {
      if ((*reader)->kind(index) == SnapshotPageKind::kData) {
        victim = index;
        victim_offset = (*reader)->DataOffset(index);
        break;
      }
    }
    REQUIRE(victim != 0);
  }
  std::vector<uint8_t> bytes = ReadFileBytes(path);
  bytes[victim_offset + 1234] ^= 0x10;
  WriteFileBytes(path, bytes);

  auto reader = SnapshotFileReader::Open(path);
  REQUIRE(reader.ok());
  std::vector<uint8_t> page(kPage, 0xAA);
  absl::Status status = (*reader)->ReadPage(victim, page.data());
  INFO(status.ToString());
  CHECK(absl::IsDataLoss(status));
  CHECK(status.message().find("page " + std::to_string(victim) + ": checksum mismatch") !=
        std::string::npos);
  CHECK(page == std::vector<uint8_t>(kPage));

  absl::StatusOr<uint32_t> actual = (*reader)->ReadStoredPage(victim, page.data());
  REQUIRE(actual.ok());
  CHECK(*actual != (*reader)->checksum(victim));
  CHECK(*actual == PageChecksum(page.data(), kPage));

  for (uint64_t index = 0; index < plan.size(); ++index) {
    if (index == victim || plan[index].stored == SnapshotPageKind::kLost) continue;
    INFO("page " << index);
    REQUIRE((*reader)->ReadPage(index, page.data()).ok());
    if (plan[index].stored == SnapshotPageKind::kData) REQUIRE(page == plan[index].bytes);
  }
}

TEST_CASE("a damaged header, page table or trailer fails to open") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<PlannedPage> plan = MixedPlan(100, 3);
  WriteSnapshot(path, plan);
  const std::vector<uint8_t> whole = ReadFileBytes(path);
  const uint64_t table_offset = kPage * (1 + StoredDataPages(plan));
  const uint64_t trailer_offset = table_offset + plan.size() * kTableEntrySize;

  const std::vector<std::pair<uint64_t, std::string>> flips = {
      {0, "not a faultline snapshot file"},
      {7, "not a faultline snapshot file"},
      {kHeaderVersionOffset, "snapshot format version 65"},
      {kHeaderPageSizeOffset + 1, "header is corrupt"},
      {20, "header is corrupt"},
      {40, "header is corrupt"},
      {kHeaderTableCrcOffset, "header is corrupt"},
      {kHeaderCrcOffset + 3, "header is corrupt"},
      {2000, "header is corrupt"},
      {kPage - 1, "header is corrupt"},
      {table_offset, "page table is corrupt"},
      {table_offset + 50 * kTableEntrySize + 2, "page table is corrupt"},
      {trailer_offset - 1, "page table is corrupt"},
      {trailer_offset, "trailer is corrupt"},
      {trailer_offset + 12, "trailer is corrupt"},
      {trailer_offset + kTrailerSize - 1, "trailer is corrupt"},
  };
  for (const auto& [offset, expected] : flips) {
    INFO("byte " << offset << " flipped");
    std::vector<uint8_t> bytes = whole;
    bytes[offset] ^= 0x40;
    WriteFileBytes(path, bytes);
    const std::string error = OpenError(path);
    INFO(error);
    CHECK(error.find(expected) != std::string::npos);
  }
}

TEST_CASE("a well-sealed file with contents this reader does not accept fails to open") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<PlannedPage> plan = MixedPlan(100, 5);
  WriteSnapshot(path, plan);
  const std::vector<uint8_t> whole = ReadFileBytes(path);
  const uint64_t table_offset = kPage * (1 + StoredDataPages(plan));

  SECTION("a later format version") {
    std::vector<uint8_t> bytes = whole;
    StoreU32(bytes, kHeaderVersionOffset, 2);
    ResealHeader(bytes);
    WriteFileBytes(path, bytes);
    auto reader = SnapshotFileReader::Open(path);
    CHECK(absl::IsInvalidArgument(reader.status()));
    CHECK(reader.status().message().find("version 2, but this faultline reads only version 1") !=
          std::string::npos);
  }
  SECTION("another page size") {
    std::vector<uint8_t> bytes = whole;
    StoreU32(bytes, kHeaderPageSizeOffset, 8192);
    ResealHeader(bytes);
    WriteFileBytes(path, bytes);
    CHECK(OpenError(path).find("fields contradict each other") != std::string::npos);
  }
  SECTION("a page table entry of an unknown kind") {
    std::vector<uint8_t> bytes = whole;
    bytes[table_offset + 3 * kTableEntrySize] = 7;
    const uint32_t table_crc = Crc32c(bytes.data() + table_offset, plan.size() * kTableEntrySize);
    StoreU32(bytes, kHeaderTableCrcOffset, table_crc);
    ResealHeader(bytes);
    // The trailer repeats the header's checksum: this file would need a new trailer too.
    const uint64_t trailer_offset = bytes.size() - kTrailerSize;
    StoreU32(bytes, trailer_offset + 24, LoadU32(bytes, kHeaderCrcOffset));
    StoreU32(bytes, trailer_offset + 28, Crc32c(bytes.data() + trailer_offset, 28));
    WriteFileBytes(path, bytes);
    CHECK(OpenError(path).find("page table entry 3 is invalid (kind 7") != std::string::npos);
  }
  SECTION("a trailer from another snapshot") {
    std::vector<uint8_t> bytes = whole;
    const uint64_t trailer_offset = bytes.size() - kTrailerSize;
    StoreU32(bytes, trailer_offset + 24, LoadU32(bytes, kHeaderCrcOffset) ^ 1);
    StoreU32(bytes, trailer_offset + 28, Crc32c(bytes.data() + trailer_offset, 28));
    WriteFileBytes(path, bytes);
    CHECK(OpenError(path).find("trailer does not match the header") != std::string::npos);
  }
  SECTION("not a snapshot at all") {
    WriteFileBytes(path, std::vector<uint8_t>(10000, 'x'));
    auto reader = SnapshotFileReader::Open(path);
    CHECK(absl::IsInvalidArgument(reader.status()));
    CHECK(reader.status().message().find("not a faultline snapshot file") != std::string::npos);
  }
  SECTION("a directory") {
    CHECK(OpenError(directory.File("")).find("not a regular file") != std::string::npos);
  }
  SECTION("no file") {
    auto reader = SnapshotFileReader::Open(directory.File("none"));
    CHECK(absl::IsNotFound(reader.status()));
    CHECK(reader.status().message() == directory.File("none") + ": No such file or directory");
  }
}

TEST_CASE("the writer reports where it cannot write") {
  TemporaryDirectory directory;
  SECTION("a missing directory") {
    const std::string path = directory.File("none/snap");
    auto writer = SnapshotFileWriter::Create(path, 10, kPage, 0);
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.status().message() ==
          path + ": cannot create a temporary file beside it: No such file or directory");
  }
  SECTION("a file where the directory should be") {
    WriteFileBytes(directory.File("file"), {1});
    auto writer = SnapshotFileWriter::Create(directory.File("file/snap"), 10, kPage, 0);
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.status().message().find("Not a directory") != std::string::npos);
  }
  SECTION("a directory at the path") {
    auto writer = SnapshotFileWriter::Create(directory.File(""), 10, kPage, 0);
    REQUIRE_FALSE(writer.ok());
    CHECK(writer.status().message().find("Is a directory") != std::string::npos);
  }
  SECTION("sizes the format does not hold") {
    CHECK(absl::IsInvalidArgument(
        SnapshotFileWriter::Create(directory.File("snap"), 10, 8192, 0).status()));
    CHECK(absl::IsInvalidArgument(
        SnapshotFileWriter::Create(directory.File("snap"), 0, kPage, 0).status()));
    CHECK(absl::IsInvalidArgument(
        SnapshotFileWriter::Create(directory.File("snap"), uint64_t{1} << 62, kPage, 0).status()));
  }
  for (const std::string& name : directory.Entries()) CHECK(name.find(".partial-") == name.npos);
}

TEST_CASE("an unfinished snapshot leaves nothing behind, and the previous file intact") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  const std::vector<uint8_t> previous = {'o', 'l', 'd'};
  const bool had_previous = GENERATE(false, true);
  if (had_previous) WriteFileBytes(path, previous);
  std::vector<uint8_t> page(kPage, 0x5A);
  {
    auto writer = SnapshotFileWriter::Create(path, 500, kPage, 0);
    REQUIRE(writer.ok());
    for (int index = 0; index < 200; ++index) {
      REQUIRE((*writer)->AddPage(SnapshotPageKind::kData, page.data()).ok());
    }
    CHECK(directory.Entries().size() == (had_previous ? 2u : 1u));  // the temporary file
    CHECK(absl::IsFailedPrecondition((*writer)->Finish()));
  }
  if (had_previous) {
    CHECK(directory.Entries() == std::vector<std::string>{"snap"});
    CHECK(ReadFileBytes(path) == previous);
  } else {
    CHECK(directory.Entries().empty());
  }
}

TEST_CASE("a finished snapshot replaces the file at its path") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  WriteFileBytes(path, {'o', 'l', 'd'});
  WriteSnapshot(path, MixedPlan(10, 1));
  CHECK(directory.Entries() == std::vector<std::string>{"snap"});
  CHECK(SnapshotFileReader::Open(path).ok());
}

TEST_CASE("the writer refuses calls out of contract") {
  TemporaryDirectory directory;
  auto writer = SnapshotFileWriter::Create(directory.File("snap"), 2, kPage, 0);
  REQUIRE(writer.ok());
  std::vector<uint8_t> page(kPage, 1);
  CHECK(absl::IsInvalidArgument((*writer)->AddPage(SnapshotPageKind::kData, nullptr)));
  CHECK(absl::IsInvalidArgument((*writer)->AddPage(SnapshotPageKind::kZero, page.data())));
  CHECK(absl::IsInvalidArgument((*writer)->AddPage(static_cast<SnapshotPageKind>(3), nullptr)));
  CHECK(absl::IsFailedPrecondition((*writer)->Finish()));
  REQUIRE((*writer)->AddPage(SnapshotPageKind::kData, page.data()).ok());
  REQUIRE((*writer)->AddPage(SnapshotPageKind::kLost, nullptr).ok());
  CHECK(absl::IsFailedPrecondition((*writer)->AddPage(SnapshotPageKind::kZero, nullptr)));
  REQUIRE((*writer)->Finish().ok());
  CHECK(absl::IsFailedPrecondition((*writer)->Finish()));
  auto reader = SnapshotFileReader::Open(directory.File("snap"));
  REQUIRE(reader.ok());
  CHECK((*reader)->page_count() == 2);
}

// RLIMIT_FSIZE makes a write past the limit fail with EFBIG (SIGXFSZ ignored): a write error in
// the middle of a snapshot, without a full disk.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(getrlimit(RLIMIT_FSIZE, &previous_) == 0);
    previous_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit limit = previous_;
    limit.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &previous_);
    signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit previous_{};
  sighandler_t previous_handler_;
};

TEST_CASE("a write error fails the snapshot and removes the temporary file") {
  TemporaryDirectory directory;
  const std::string path = directory.File("snap");
  // Big enough for the data pages, too small for the table: the error comes at Finish(), or
  // (when the limit is below the data) at an AddPage() that writes a batch.
  const uint64_t limit_pages = GENERATE(10, 1 + 256);
  std::vector<uint8_t> page(kPage, 0x33);
  {
    FileSizeLimit limit(limit_pages * kPage);
    auto writer = SnapshotFileWriter::Create(path, 10000, kPage, 0);
    REQUIRE(writer.ok());
    absl::Status first_error;
    for (int index = 0; index < 10000 && first_error.ok(); ++index) {
      first_error =
          (*writer)->AddPage(index < 256 ? SnapshotPageKind::kData : SnapshotPageKind::kZero,
                             index < 256 ? page.data() : nullptr);
    }
    if (first_error.ok()) {
      first_error = (*writer)->Finish();
    } else {
      CHECK((*writer)->AddPage(SnapshotPageKind::kZero, nullptr) == first_error);
      CHECK((*writer)->Finish() == first_error);
    }
    INFO(first_error.ToString());
    CHECK(first_error.message().find("File too large") != std::string::npos);
    CHECK(first_error.message().find(path + ".partial-") != std::string::npos);
  }
  CHECK(directory.Entries().empty());
}

}  // namespace
}  // namespace faultline
