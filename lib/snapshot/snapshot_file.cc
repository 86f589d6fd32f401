#include "snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "swap/checksum.h"
#include "util/check.h"
#include "util/status.h"

namespace faultline {
namespace {

// The on-disk integers are written and read as the host's own, through memcpy of these structs.
static_assert(std::endian::native == std::endian::little, "the snapshot format is little-endian");

constexpr char kHeaderMagic[8] = {'F', 'L', 'S', 'N', 'A', 'P', '0', '1'};
constexpr char kTrailerMagic[8] = {'F', 'L', 'S', 'N', 'A', 'P', 'N', 'D'};

struct DiskHeader {
  char magic[8];
  uint32_t version;
  uint32_t page_size;
  uint64_t page_count;
  uint64_t data_page_count;
  uint64_t source_address;
  uint64_t created_unix_seconds;
  uint64_t data_offset;
  uint64_t table_offset;
  uint64_t trailer_offset;
  uint64_t file_size;
  uint32_t table_crc;
  uint32_t header_crc;
};
static_assert(offsetof(DiskHeader, page_count) == 16);
static_assert(offsetof(DiskHeader, created_unix_seconds) == 40);
static_assert(offsetof(DiskHeader, file_size) == 72);
static_assert(offsetof(DiskHeader, header_crc) == 84);
static_assert(sizeof(DiskHeader) == 88);

struct DiskPageEntry {
  uint8_t kind;
  uint8_t zero[3];
  uint32_t checksum;
};
static_assert(sizeof(DiskPageEntry) == 8);

struct DiskTrailer {
  char magic[8];
  uint64_t page_count;
  uint64_t file_size;
  uint32_t header_crc;
  uint32_t trailer_crc;
};
static_assert(offsetof(DiskTrailer, trailer_crc) == 28);
static_assert(sizeof(DiskTrailer) == 32);

// Where each part of a file with these counts lies; nullopt when the sizes overflow 64 bits.
struct Layout {
  uint64_t data_offset;
  uint64_t table_offset;
  uint64_t trailer_offset;
  uint64_t file_size;
};

std::optional<Layout> LayoutFor(uint32_t page_size, uint64_t page_count, uint64_t data_page_count) {
  Layout layout{};
  layout.data_offset = page_size;
  uint64_t data_bytes = 0;
  uint64_t table_bytes = 0;
  if (__builtin_mul_overflow(data_page_count, uint64_t{page_size}, &data_bytes) ||
      __builtin_mul_overflow(page_count, uint64_t{sizeof(DiskPageEntry)}, &table_bytes) ||
      __builtin_add_overflow(layout.data_offset, data_bytes, &layout.table_offset) ||
      __builtin_add_overflow(layout.table_offset, table_bytes, &layout.trailer_offset) ||
      __builtin_add_overflow(layout.trailer_offset, uint64_t{sizeof(DiskTrailer)},
                             &layout.file_size)) {
    return std::nullopt;
  }
  return layout;
}

uint32_t TrailerCrc(const DiskTrailer& trailer) {
  return Crc32c(&trailer, offsetof(DiskTrailer, trailer_crc));
}

// The CRC of a header page, taken with its header_crc field as zero.
uint32_t HeaderCrc(std::vector<uint8_t> page) {
  std::memset(page.data() + offsetof(DiskHeader, header_crc), 0, sizeof(uint32_t));
  return Crc32c(page.data(), page.size());
}

absl::Status WriteAll(int fd, const void* data, size_t length, uint64_t offset,
                      const std::string& path) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (length > 0) {
    ssize_t written = pwrite(fd, bytes, length, static_cast<off_t>(offset));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return ErrnoError(written < 0 ? errno : EIO, absl::StrCat("write ", path));
    bytes += written;
    length -= static_cast<size_t>(written);
    offset += static_cast<uint64_t>(written);
  }
  return absl::OkStatus();
}

// Reads up to `length` bytes at `offset`; fewer only at the end of the file. Returns the count, or
// -errno.
ssize_t ReadAll(int fd, void* data, size_t length, uint64_t offset) {
  auto* bytes = static_cast<uint8_t*>(data);
  size_t done = 0;
  while (done < length) {
    ssize_t got = pread(fd, bytes + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -errno;
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes a completed rename durable: the new directory entry reaches the disk.
absl::Status SyncDirectory(const std::string& directory) {
  int fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open directory ", directory));
  int result = fsync(fd);
  int err = errno;
  close(fd);
  if (result != 0) return ErrnoError(err, absl::StrCat("fsync directory ", directory));
  return absl::OkStatus();
}

// A DataLoss status: "<path>: <what...>".
template <typename... Parts>
absl::Status Corrupt(const std::string& path, const Parts&... what) {
  return absl::DataLossError(absl::StrCat(path, ": ", what...));
}

// Reads and checks the header: magic, then version, then checksum, then fields; each check trusts
// only what the ones before it established. Version 1 fixes the header at one 4096-byte page.
absl::StatusOr<DiskHeader> ReadHeader(int fd, const std::string& path) {
  std::vector<uint8_t> header_page(kSnapshotPageSize);
  ssize_t got = ReadAll(fd, header_page.data(), header_page.size(), 0);
  if (got < 0) return ErrnoError(static_cast<int>(-got), path);
  const size_t header_bytes = static_cast<size_t>(got);
  if (header_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, not a faultline snapshot"));
  }
  const size_t magic_bytes = std::min(header_bytes, sizeof(kHeaderMagic));
  if (std::memcmp(header_page.data(), kHeaderMagic, magic_bytes) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a faultline snapshot file (no FLSNAP01 magic)"));
  }
  if (header_bytes < sizeof(DiskHeader)) {
    return Corrupt(path, "truncated in the header: the file has only ", header_bytes, " bytes");
  }
  DiskHeader header;
  std::memcpy(&header, header_page.data(), sizeof(header));
  if (header.version != kSnapshotFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": snapshot format version ", header.version,
                     ", but this faultline reads only version ", kSnapshotFormatVersion));
  }
  if (header_bytes < kSnapshotPageSize) {
    return Corrupt(path, "truncated in the header: the file has only ", header_bytes, " bytes");
  }
  if (HeaderCrc(header_page) != header.header_crc) {
    return Corrupt(path, "the header is corrupt (checksum mismatch)");
  }
  const std::optional<Layout> layout =
      LayoutFor(header.page_size, header.page_count, header.data_page_count);
  if (header.page_size != kSnapshotPageSize || header.page_count == 0 ||
      header.data_page_count > header.page_count || !layout ||
      layout->data_offset != header.data_offset || layout->table_offset != header.table_offset ||
      layout->trailer_offset != header.trailer_offset || layout->file_size != header.file_size) {
    return Corrupt(path, "the header's fields contradict each other");
  }
  return header;
}

// Checks that the file is as long as `header` says and ends with the trailer that matches it.
absl::Status CheckLengthAndTrailer(int fd, const std::string& path, const DiskHeader& header,
                                   off_t file_size) {
  const uint64_t actual_size = static_cast<uint64_t>(file_size);
  if (actual_size < header.file_size) {
    const char* where = actual_size < header.table_offset     ? "data pages"
                        : actual_size < header.trailer_offset ? "page table"
                                                              : "trailer";
    return Corrupt(path, "truncated in the ", where, ": the file has ", actual_size,
                   " bytes, its header says ", header.file_size);
  }
  if (actual_size > header.file_size) {
    return Corrupt(path, "the file has ", actual_size, " bytes, ", actual_size - header.file_size,
                   " more than its header says");
  }
  DiskTrailer trailer;
  ssize_t got = ReadAll(fd, &trailer, sizeof(trailer), header.trailer_offset);
  if (got < 0) return ErrnoError(static_cast<int>(-got), path);
  if (static_cast<size_t>(got) != sizeof(trailer)) return Corrupt(path, "truncated in the trailer");
  if (std::memcmp(trailer.magic, kTrailerMagic, sizeof(trailer.magic)) != 0 ||
      TrailerCrc(trailer) != trailer.trailer_crc) {
    return Corrupt(path, "the trailer is corrupt");
  }
  if (trailer.page_count != header.page_count || trailer.file_size != header.file_size ||
      trailer.header_crc != header.header_crc) {
    return Corrupt(path, "the trailer does not match the header");
  }
  return absl::OkStatus();
}

// Pages buffered before one write: 256 KiB at 4 KiB pages.
constexpr uint32_t kBatchPages = 64;

}  // namespace

const char* SnapshotPageKindName(SnapshotPageKind kind) {
  switch (kind) {
    case SnapshotPageKind::kZero:
      return "zero";
    case SnapshotPageKind::kData:
      return "data";
    case SnapshotPageKind::kLost:
      return "lost";
  }
  return "invalid";
}

// --- SnapshotFileWriter ---

absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> SnapshotFileWriter::Create(
    const std::string& path, uint64_t page_count, uint32_t page_size, uint64_t source_address) {
  if (page_size != kSnapshotPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": page size ", page_size,
                                                   " (snapshot files hold ", kSnapshotPageSize,
                                                   "-byte pages)"));
  }
  if (page_count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a snapshot has at least one page"));
  }
  if (!LayoutFor(page_size, page_count, page_count)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", page_count, " pages is too many"));
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return ErrnoError(EISDIR, path);

  std::string temporary_path = absl::StrCat(path, ".partial-XXXXXX");
  int fd = mkostemp(temporary_path.data(), O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError(errno, absl::StrCat(path, ": cannot create a temporary file beside it"));
  }
  auto writer = std::unique_ptr<SnapshotFileWriter>(new SnapshotFileWriter(
      path, std::move(temporary_path), fd, page_count, page_size, source_address));
  writer->batch_.reset(
      static_cast<uint8_t*>(std::aligned_alloc(page_size, size_t{kBatchPages} * page_size)));
  if (!writer->batch_) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": no memory for the write buffer"));
  }
  return writer;
}

SnapshotFileWriter::SnapshotFileWriter(std::string path, std::string temporary_path, int fd,
                                       uint64_t page_count, uint32_t page_size,
                                       uint64_t source_address)
    : path_(std::move(path)),
      temporary_path_(std::move(temporary_path)),
      fd_(fd),
      page_count_(page_count),
      page_size_(page_size),
      source_address_(source_address),
      created_unix_seconds_(static_cast<uint64_t>(std::time(nullptr))) {}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (fd_ >= 0) close(fd_);
  if (!temporary_path_.empty()) unlink(temporary_path_.c_str());
}

absl::Status SnapshotFileWriter::Fail(absl::Status status) {
  error_ = status;
  return status;
}

absl::Status SnapshotFileWriter::AddPage(SnapshotPageKind kind, const void* data) {
  if (!error_.ok()) return error_;
  const uint64_t pages_added = table_.size() / sizeof(DiskPageEntry);
  if (pages_added == page_count_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": all ", page_count_, " pages were already added"));
  }
  const bool is_data = kind == SnapshotPageKind::kData;
  if (kind != SnapshotPageKind::kZero && !is_data && kind != SnapshotPageKind::kLost) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": page ", pages_added, ": invalid kind ", static_cast<int>(kind)));
  }
  if (is_data != (data != nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": page ", pages_added, ": bytes are given for data pages, and only for them"));
  }

  DiskPageEntry entry{};
  entry.kind = static_cast<uint8_t>(kind);
  if (is_data) {
    uint8_t* slot = batch_.get() + size_t{batch_pages_} * page_size_;
    std::memcpy(slot, data, page_size_);
    if (IsZeroPage(slot, page_size_)) {
      entry.kind = static_cast<uint8_t>(SnapshotPageKind::kZero);
    } else {
      entry.checksum = PageChecksum(slot, page_size_);
      ++batch_pages_;
    }
  }
  const auto* entry_bytes = reinterpret_cast<const uint8_t*>(&entry);
  table_.insert(table_.end(), entry_bytes, entry_bytes + sizeof(entry));
  if (batch_pages_ == kBatchPages) return FlushDataPages();
  return absl::OkStatus();
}

absl::Status SnapshotFileWriter::FlushDataPages() {
  if (batch_pages_ == 0) return absl::OkStatus();
  const uint64_t offset = page_size_ + data_pages_written_ * page_size_;
  if (absl::Status status =
          WriteAll(fd_, batch_.get(), size_t{batch_pages_} * page_size_, offset, temporary_path_);
      !status.ok()) {
    return Fail(std::move(status));
  }
  data_pages_written_ += batch_pages_;
  batch_pages_ = 0;
  return absl::OkStatus();
}

absl::Status SnapshotFileWriter::WriteTail() {
  // Checked by Create() for data_page_count == page_count, the most it can be.
  const Layout layout = *LayoutFor(page_size_, page_count_, data_pages_written_);

  DiskHeader header{};
  std::memcpy(header.magic, kHeaderMagic, sizeof(header.magic));
  header.version = kSnapshotFormatVersion;
  header.page_size = page_size_;
  header.page_count = page_count_;
  header.data_page_count = data_pages_written_;
  header.source_address = source_address_;
  header.created_unix_seconds = created_unix_seconds_;
  header.data_offset = layout.data_offset;
  header.table_offset = layout.table_offset;
  header.trailer_offset = layout.trailer_offset;
  header.file_size = layout.file_size;
  header.table_crc = Crc32c(table_.data(), table_.size());
  std::vector<uint8_t> header_page(page_size_, 0);
  std::memcpy(header_page.data(), &header, sizeof(header));
  header.header_crc = HeaderCrc(header_page);
  std::memcpy(header_page.data(), &header, sizeof(header));

  DiskTrailer trailer{};
  std::memcpy(trailer.magic, kTrailerMagic, sizeof(trailer.magic));
  trailer.page_count = page_count_;
  trailer.file_size = layout.file_size;
  trailer.header_crc = header.header_crc;
  trailer.trailer_crc = TrailerCrc(trailer);
  const auto* trailer_bytes = reinterpret_cast<const uint8_t*>(&trailer);
  table_.insert(table_.end(), trailer_bytes, trailer_bytes + sizeof(trailer));

  // The header goes last: until it is written the file is not a snapshot at all.
  absl::Status status =
      WriteAll(fd_, table_.data(), table_.size(), layout.table_offset, temporary_path_);
  if (status.ok()) {
    status = WriteAll(fd_, header_page.data(), header_page.size(), 0, temporary_path_);
  }
  return status;
}

absl::Status SnapshotFileWriter::Finish() {
  if (!error_.ok()) return error_;
  if (temporary_path_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": already finished"));
  }
  const uint64_t pages_added = table_.size() / sizeof(DiskPageEntry);
  if (pages_added != page_count_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": ", pages_added, " of ", page_count_, " pages were added"));
  }
  if (absl::Status status = FlushDataPages(); !status.ok()) return status;
  if (absl::Status status = WriteTail(); !status.ok()) return Fail(std::move(status));
  if (fsync(fd_) != 0) return Fail(ErrnoError(errno, absl::StrCat("fsync ", temporary_path_)));
  int result = close(fd_);
  fd_ = -1;
  if (result != 0) return Fail(ErrnoError(errno, absl::StrCat("close ", temporary_path_)));
  if (rename(temporary_path_.c_str(), path_.c_str()) != 0) {
    return Fail(ErrnoError(errno, absl::StrCat("rename ", temporary_path_, " to ", path_)));
  }
  temporary_path_.clear();
  return SyncDirectory(DirectoryOf(path_));
}

// --- SnapshotFileReader ---

absl::StatusOr<std::unique_ptr<SnapshotFileReader>> SnapshotFileReader::Open(
    const std::string& path) {
  auto reader = std::unique_ptr<SnapshotFileReader>(new SnapshotFileReader());
  reader->path_ = path;
  reader->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader->fd_ < 0) return ErrnoError(errno, path);
  const int fd = reader->fd_;
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoError(errno, path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  absl::StatusOr<DiskHeader> header_or = ReadHeader(fd, path);
  if (!header_or.ok()) return header_or.status();
  const DiskHeader& header = *header_or;
  if (absl::Status status = CheckLengthAndTrailer(fd, path, header, st.st_size); !status.ok()) {
    return status;
  }

  // The file's size was checked against the table's, so this allocation is backed by real bytes.
  std::vector<DiskPageEntry> table(header.page_count);
  const size_t table_bytes = table.size() * sizeof(DiskPageEntry);
  ssize_t got = ReadAll(fd, table.data(), table_bytes, header.table_offset);
  if (got < 0) return ErrnoError(static_cast<int>(-got), path);
  if (static_cast<size_t>(got) != table_bytes) return Corrupt(path, "truncated in the page table");
  if (Crc32c(table.data(), table_bytes) != header.table_crc) {
    return Corrupt(path, "the page table is corrupt (checksum mismatch)");
  }
  reader->pages_.resize(table.size());
  uint64_t data_index = 0;
  for (uint64_t index = 0; index < table.size(); ++index) {
    const DiskPageEntry& entry = table[index];
    const bool is_data = entry.kind == static_cast<uint8_t>(SnapshotPageKind::kData);
    const bool known_kind = entry.kind <= static_cast<uint8_t>(SnapshotPageKind::kLost);
    if (!known_kind || entry.zero[0] != 0 || entry.zero[1] != 0 || entry.zero[2] != 0 ||
        is_data != (entry.checksum != 0)) {
      return Corrupt(path, "page table entry ", index, " is invalid (kind ", int{entry.kind},
                     ", checksum ", absl::Hex(entry.checksum), ")");
    }
    reader->pages_[index] = PageRecord{is_data ? data_index : 0, entry.checksum,
                                       static_cast<SnapshotPageKind>(entry.kind)};
    if (is_data) ++data_index;
  }
  if (data_index != header.data_page_count) {
    return Corrupt(path, "the page table lists ", data_index, " data pages, the header ",
                   header.data_page_count);
  }

  reader->page_size_ = header.page_size;
  reader->source_address_ = header.source_address;
  reader->data_page_count_ = header.data_page_count;
  reader->created_unix_seconds_ = header.created_unix_seconds;
  reader->data_offset_ = header.data_offset;
  reader->file_size_ = header.file_size;
  return reader;
}

SnapshotFileReader::~SnapshotFileReader() {
  if (fd_ >= 0) close(fd_);
}

SnapshotPageKind SnapshotFileReader::kind(uint64_t index) const {
  FL_CHECK(index < pages_.size(), "snapshot page index out of range");
  return pages_[index].kind;
}

uint32_t SnapshotFileReader::checksum(uint64_t index) const {
  FL_CHECK(index < pages_.size(), "snapshot page index out of range");
  return pages_[index].checksum;
}

uint64_t SnapshotFileReader::DataOffset(uint64_t index) const {
  FL_CHECK(kind(index) == SnapshotPageKind::kData, "only a data page has a file offset");
  return data_offset_ + pages_[index].data_index * page_size_;
}

absl::StatusOr<uint32_t> SnapshotFileReader::ReadStoredPage(uint64_t index, void* page) const {
  const uint64_t offset = DataOffset(index);
  ssize_t got = ReadAll(fd_, page, page_size_, offset);
  if (got < 0) {
    return ErrnoError(static_cast<int>(-got), absl::StrCat(path_, ": read page ", index));
  }
  if (static_cast<size_t>(got) != page_size_) {
    return absl::DataLossError(absl::StrCat(path_, ": page ", index, ": short read (", got, " of ",
                                            page_size_, " bytes): the file was cut short"));
  }
  return PageChecksum(page, page_size_);
}

bool SnapshotFileReader::ReadPageVerified(uint64_t index, void* page) const noexcept {
  switch (kind(index)) {
    case SnapshotPageKind::kZero:
      std::memset(page, 0, page_size_);
      return true;
    case SnapshotPageKind::kLost:
      std::memset(page, 0, page_size_);
      return false;
    case SnapshotPageKind::kData:
      break;
  }
  bool good =
      ReadAll(fd_, page, page_size_, DataOffset(index)) == static_cast<ssize_t>(page_size_) &&
      PageChecksum(page, page_size_) == checksum(index);
  if (!good) std::memset(page, 0, page_size_);
  return good;
}

absl::Status SnapshotFileReader::ReadPage(uint64_t index, void* page) const {
  switch (kind(index)) {
    case SnapshotPageKind::kZero:
      std::memset(page, 0, page_size_);
      return absl::OkStatus();
    case SnapshotPageKind::kLost:
      std::memset(page, 0, page_size_);
      return absl::DataLossError(absl::StrCat(
          path_, ": page ", index, " was lost: it was unreadable when the snapshot was taken"));
    case SnapshotPageKind::kData:
      break;
  }
  absl::StatusOr<uint32_t> actual = ReadStoredPage(index, page);
  absl::Status status = actual.status();
  if (actual.ok() && *actual != checksum(index)) {
    status =
        absl::DataLossError(absl::StrFormat("%s: page %d: checksum mismatch (stored %#010x, "
                                            "read %#010x)",
                                            path_, index, checksum(index), *actual));
  }
  if (!status.ok()) std::memset(page, 0, page_size_);
  return status;
}

}  // namespace faultline
