// The saved-snapshot file: SnapshotFileWriter streams a snapshot to disk, SnapshotFileReader opens
// one, validates it, and reads its pages one at a time.
//
// Layout, format version 1. Integers are little-endian; checksums are CRC-32C (swap/checksum.h).
//
//   offset                 size            contents
//   0                      page_size       header (below); the bytes after its fields are zero
//   data_offset            data_page_count data pages, page_size bytes each, in page-index order;
//     (= page_size)          * page_size     page-aligned, so they can be read with O_DIRECT
//   table_offset           page_count * 8  page table: one entry per page, in page-index order
//   trailer_offset         32              trailer (below); the file ends with it
//
// Header (at offset 0; header_crc covers the whole header page, taken with header_crc = 0):
//    0  char[8]  magic "FLSNAP01"         48  u64  data_offset
//    8  u32      version (1)              56  u64  table_offset
//   12  u32      page_size (4096)         64  u64  trailer_offset
//   16  u64      page_count               72  u64  file_size (= trailer_offset + 32)
//   24  u64      data_page_count          80  u32  table_crc: CRC of the whole page table
//   32  u64      source_address           84  u32  header_crc
//   40  u64      created_unix_seconds     88  ...  zero up to page_size
//
// Page table entry (8 bytes): u8 kind (SnapshotPageKind), 3 zero bytes, u32 checksum:
// PageChecksum() of the page for kData (never 0), 0 for kZero and kLost. The k-th kData entry's
// bytes are at data_offset + k * page_size.
//
// Trailer (32 bytes): char[8] magic "FLSNAPND", u64 page_count, u64 file_size, u32 header_crc
// (the header's), u32 trailer_crc (CRC of the trailer's first 28 bytes). It ties the end of the
// file to its header, so that a file cut short, or extended, is caught at open.
//
// Versioning: the magic never changes. A change that old readers would misread bumps `version`;
// readers refuse versions they do not know rather than guess.
//
// The writer writes the data pages first, then the table, the trailer, and the header last, all
// into a temporary file that is renamed onto the final path only when complete; so a file found
// at a snapshot path is either whole or damaged after the fact, never half written.
#ifndef FAULTLINE_LIB_SNAPSHOT_SNAPSHOT_FILE_H_
#define FAULTLINE_LIB_SNAPSHOT_SNAPSHOT_FILE_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "util/internal_heap.h"

namespace faultline {

inline constexpr uint32_t kSnapshotFormatVersion = 1;
// The only page size format version 1 stores.
inline constexpr uint32_t kSnapshotPageSize = 4096;

enum class SnapshotPageKind : uint8_t {
  kZero = 0,  // the page was all zeros (never touched, or dropped): no data stored
  kData = 1,  // page_size bytes of data stored, with its checksum
  kLost = 2,  // the page was unreadable (poisoned) when the snapshot was taken: reads give SIGBUS
};

// "zero", "data" or "lost".
const char* SnapshotPageKindName(SnapshotPageKind kind);

// Not thread-safe: one thread adds the pages and finishes.
class SnapshotFileWriter {
 public:
  // Starts writing a snapshot of `page_count` (>= 1) pages of `page_size` bytes (kSnapshotPageSize)
  // taken of memory at `source_address` (informational) to `path`. Writes go to a temporary file
  // "<path>.partial-XXXXXX" (mode 0600: it holds a process's memory), renamed onto `path` by
  // Finish(). An existing file at `path` stays untouched until then. Errors name the path and
  // the cause.
  static absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> Create(const std::string& path,
                                                                    uint64_t page_count,
                                                                    uint32_t page_size,
                                                                    uint64_t source_address);
  ~SnapshotFileWriter();  // without a successful Finish(): removes the temporary file
  SnapshotFileWriter(const SnapshotFileWriter&) = delete;
  SnapshotFileWriter& operator=(const SnapshotFileWriter&) = delete;

  // Appends the next page, in index order. `data`: page_size bytes (any alignment) for kData,
  // nullptr otherwise. A kData page whose bytes are all zero is stored as kZero: it reads back
  // the same and takes no room. Pages are written out in batches, so an I/O error may surface
  // at a later call. After an error every later call returns it.
  absl::Status AddPage(SnapshotPageKind kind, const void* data);

  // After exactly page_count AddPage calls: writes the last data pages, the page table, the
  // trailer and the header, fsyncs the file, renames it onto `path` and fsyncs the directory.
  absl::Status Finish();

 private:
  struct FreeBuffer {
    void operator()(uint8_t* buffer) const { std::free(buffer); }
  };
  SnapshotFileWriter(std::string path, std::string temporary_path, int fd, uint64_t page_count,
                     uint32_t page_size, uint64_t source_address);
  absl::Status FlushDataPages();
  absl::Status WriteTail();
  absl::Status Fail(absl::Status status);

  const std::string path_;
  std::string temporary_path_;  // empty once renamed onto path_
  int fd_;
  const uint64_t page_count_;
  const uint32_t page_size_;
  const uint64_t source_address_;
  const uint64_t created_unix_seconds_;
  std::vector<uint8_t> table_;  // the page table as it will be written: 8 bytes per page added
  uint64_t data_pages_written_ = 0;
  // Data pages added but not yet written (batch_pages_ of them), so that the file gets one write
  // per batch rather than per page. Page-aligned.
  std::unique_ptr<uint8_t, FreeBuffer> batch_;
  uint32_t batch_pages_ = 0;
  absl::Status error_;  // the first error; every later call returns it
};

// Thread-safe once opened: every method is const and reads with pread. The object and its page
// table live on the internal heap (util/internal_heap.h), because a fault-handler thread reads
// them to load a page of an opened snapshot (ReadPageVerified).
class SnapshotFileReader : public InternallyAllocated {
 public:
  // Opens `path` and validates it: magic, version, page size, the header's checksum and fields,
  // the file's length against the header (a truncated or extended file is an error here), the
  // trailer, the page table's checksum and entries. Reads the header, the table and the trailer,
  // never the data pages. Errors: NotFound and the like from open(2) naming the path;
  // InvalidArgument for a file that is not a faultline snapshot or of an unknown version;
  // DataLoss for a truncated or corrupt one. The message says which part is wrong.
  static absl::StatusOr<std::unique_ptr<SnapshotFileReader>> Open(const std::string& path);
  ~SnapshotFileReader();
  SnapshotFileReader(const SnapshotFileReader&) = delete;
  SnapshotFileReader& operator=(const SnapshotFileReader&) = delete;

  uint64_t page_count() const { return pages_.size(); }
  uint32_t page_size() const { return page_size_; }
  uint64_t source_address() const { return source_address_; }
  uint64_t data_page_count() const { return data_page_count_; }
  uint64_t created_unix_seconds() const { return created_unix_seconds_; }
  uint64_t file_size() const { return file_size_; }
  int fd() const { return fd_; }  // open read-only, O_CLOEXEC

  // REQUIRES: index < page_count() (for these three).
  SnapshotPageKind kind(uint64_t index) const;
  // PageChecksum() of a kData page; 0 for the other kinds.
  uint32_t checksum(uint64_t index) const;
  // File offset of a kData page's bytes (a multiple of page_size). REQUIRES: kind(index) == kData.
  uint64_t DataOffset(uint64_t index) const;

  // Reads page `index` into `page` (page_size bytes, any alignment): zeros for kZero; for kData,
  // the stored bytes, verified against their checksum (DataLoss on a mismatch or a short read);
  // kLost gives DataLoss too. On an error `page` is left zeroed, never holding unverified bytes.
  // REQUIRES: index < page_count().
  absl::Status ReadPage(uint64_t index, void* page) const;
  // ReadPage for the fault path: allocates nothing and touches only the reader and `page`.
  // Returns false (page zeroed) where ReadPage returns an error.
  bool ReadPageVerified(uint64_t index, void* page) const noexcept;

  // Reads a kData page's stored bytes into `page` without verifying them and returns their
  // PageChecksum(), for tools that report what they found. DataLoss on a short read.
  // REQUIRES: kind(index) == kData.
  absl::StatusOr<uint32_t> ReadStoredPage(uint64_t index, void* page) const;

 private:
  // 16 bytes of memory per page: 4 MiB for a 1 GiB snapshot.
  struct PageRecord {
    uint64_t data_index;  // kData: position among the data pages; otherwise 0
    uint32_t checksum;
    SnapshotPageKind kind;
  };
  SnapshotFileReader() = default;

  std::string path_;
  int fd_ = -1;
  uint32_t page_size_ = 0;
  uint64_t source_address_ = 0;
  uint64_t data_page_count_ = 0;
  uint64_t created_unix_seconds_ = 0;
  uint64_t data_offset_ = 0;
  uint64_t file_size_ = 0;
  std::vector<PageRecord, InternalAllocator<PageRecord>> pages_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_SNAPSHOT_SNAPSHOT_FILE_H_
