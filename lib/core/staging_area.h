// StagingArea: page buffers for swap I/O, handed out in chunks of `chunk_pages` contiguous pages.
//
// Two kinds:
//  - kEvictionTarget: the destination of UFFDIO_MOVE when pages leave a region. UFFDIO_MOVE needs
//    its destination registered with the userfaultfd that issues it, so this area is registered,
//    in WP mode only (never MISSING: nobody serves faults on it), with the runtime's separate
//    staging userfaultfd, which has no events: MADV_DONTNEED on it, after each write, never
//    blocks on a fault-handler thread. Chunks are emptied (MADV_DONTNEED) before reuse, because
//    UFFDIO_MOVE refuses a populated destination.
//  - kReadBuffer: plain memory for O_DIRECT reads; pages are copied out with UFFDIO_COPY, so
//    chunks stay populated and are reused without faults.
// Chunks are shared out among `owners` threads, `chunks_per_owner` each: a thread takes only its
// own (Acquire(owner)), so a thread that finds all of them taken knows they hold its own I/O in
// flight, which it can finish itself, and never waits for another thread's (docs/design.md,
// "Lock order"). Thread-safe. Acquire() never blocks: it returns -1 when every chunk of the owner
// is taken.
#ifndef FAULTLINE_LIB_CORE_STAGING_AREA_H_
#define FAULTLINE_LIB_CORE_STAGING_AREA_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace faultline {

class StagingArea {
 public:
  enum class Kind { kEvictionTarget, kReadBuffer };

  // `staging_uffd` is used only for kEvictionTarget.
  static absl::StatusOr<std::unique_ptr<StagingArea>> Create(Kind kind, uint32_t owners,
                                                             uint32_t chunks_per_owner,
                                                             uint32_t chunk_pages,
                                                             int staging_uffd);
  ~StagingArea();
  StagingArea(const StagingArea&) = delete;
  StagingArea& operator=(const StagingArea&) = delete;

  // A free chunk of `owner` (< owners), or -1.
  int Acquire(uint32_t owner) ABSL_LOCKS_EXCLUDED(mutex_);
  // Returns a chunk to its owner; for kEvictionTarget it is emptied first (MADV_DONTNEED).
  void Release(int chunk) ABSL_LOCKS_EXCLUDED(mutex_);

  char* ChunkAddress(int chunk) const { return base_ + chunk * chunk_bytes(); }
  // Global page index <-> address, for page words that point into the area (EVICTING).
  uint64_t PageIndexOf(const char* page) const { return (page - base_) >> 12; }
  char* PageAddress(uint64_t page_index) const { return base_ + (page_index << 12); }
  uint32_t chunks() const { return chunks_; }
  uint32_t chunk_pages() const { return chunk_pages_; }
  size_t chunk_bytes() const { return size_t{chunk_pages_} << 12; }

 private:
  StagingArea(Kind kind, char* base, uint32_t owners, uint32_t chunks_per_owner,
              uint32_t chunk_pages);
  const Kind kind_;
  char* const base_;
  const uint32_t chunks_per_owner_;
  const uint32_t chunks_;
  const uint32_t chunk_pages_;
  absl::Mutex mutex_;
  std::vector<std::vector<int>> free_ ABSL_GUARDED_BY(mutex_);  // by owner
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_STAGING_AREA_H_
