// SwapFile: the file behind the swap slots.
//
// Opened with O_DIRECT. Given a directory, it creates an anonymous file there (O_TMPFILE, or a
// mkstemp name unlinked at once), so nothing is left behind on exit or crash. Given any other path,
// it creates that file (O_EXCL: an existing file is never overwritten) and unlinks it at once too.
// The file is sized to max_bytes (sparse) at open. Open checks everything a later write would
// find wrong (missing, not a directory, not writable, read-only, no O_DIRECT support, no room for
// the size) and returns a status naming the path and the cause.
#ifndef FAULTLINE_LIB_SWAP_SWAP_FILE_H_
#define FAULTLINE_LIB_SWAP_SWAP_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace faultline {

class SwapFile {
 public:
  // max_bytes for "as large as the disk allows": 3/4 of the free space, at most kAutomaticLimit.
  static constexpr uint64_t kAutomaticSize = 0;
  static constexpr uint64_t kAutomaticLimit = uint64_t{64} << 30;

  // `page_size`: slot size; `max_bytes` is rounded down to a multiple of it and must hold >= 1
  // slot and fit in the free space (or be kAutomaticSize).
  static absl::StatusOr<std::unique_ptr<SwapFile>> Open(const std::string& path, uint64_t max_bytes,
                                                        uint32_t page_size);
  ~SwapFile();
  SwapFile(const SwapFile&) = delete;
  SwapFile& operator=(const SwapFile&) = delete;

  int fd() const { return fd_; }
  uint64_t slot_count() const { return slot_count_; }
  // File offset of slot `slot` (1-based; see SwapSlotAllocator).
  uint64_t SlotOffset(uint64_t slot) const { return (slot - 1) * page_size_; }
  // Smallest alignment O_DIRECT needs for buffer addresses (from statx STATX_DIOALIGN, else 4096).
  uint32_t dio_mem_align() const { return dio_mem_align_; }
  // For log lines: the directory or path the user gave and how the file was made.
  const std::string& description() const { return description_; }

 private:
  SwapFile(int fd, uint64_t slot_count, uint32_t page_size, uint32_t dio_mem_align,
           std::string description);
  int fd_;
  uint64_t slot_count_;
  uint32_t page_size_;
  uint32_t dio_mem_align_;
  std::string description_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_SWAP_SWAP_FILE_H_
