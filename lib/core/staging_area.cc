#include "core/staging_area.h"

#include <sys/mman.h>

#include "kernel/uffd.h"
#include "util/check.h"
#include "util/raw_memory.h"
#include "util/status.h"

namespace faultline {

absl::StatusOr<std::unique_ptr<StagingArea>> StagingArea::Create(Kind kind, uint32_t owners,
                                                                 uint32_t chunks_per_owner,
                                                                 uint32_t chunk_pages,
                                                                 int staging_uffd) {
  size_t bytes = size_t{owners} * chunks_per_owner * chunk_pages << 12;
  void* base = RawMmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return ErrnoError(errno, "mmap of the swap staging area");
  // 4 KiB pages only: UFFDIO_MOVE and O_DIRECT work page by page here.
  RawMadvise(base, bytes, MADV_NOHUGEPAGE);
  if (kind == Kind::kEvictionTarget) {
    // Locked like the regions (Runtime::Map): UFFDIO_MOVE needs source and destination alike.
    if (RawMlock2(base, bytes, MLOCK_ONFAULT) != 0) {
      int err = errno;
      RawMunmap(base, bytes);
      return ErrnoError(err, "mlock of the eviction staging area",
                        "faultline keeps the kernel from reclaiming the memory it manages; raise "
                        "RLIMIT_MEMLOCK or grant CAP_IPC_LOCK");
    }
    int rc = uffd::Register(staging_uffd, base, bytes, UFFDIO_REGISTER_MODE_WP);
    if (rc != 0) {
      RawMunmap(base, bytes);
      return ErrnoError(-rc, "registering the eviction staging area with userfaultfd");
    }
  }
  return std::unique_ptr<StagingArea>(
      new StagingArea(kind, static_cast<char*>(base), owners, chunks_per_owner, chunk_pages));
}

StagingArea::StagingArea(Kind kind, char* base, uint32_t owners, uint32_t chunks_per_owner,
                         uint32_t chunk_pages)
    : kind_(kind),
      base_(base),
      chunks_per_owner_(chunks_per_owner),
      chunks_(owners * chunks_per_owner),
      chunk_pages_(chunk_pages),
      free_(owners) {
  for (uint32_t owner = 0; owner < owners; ++owner) {
    free_[owner].reserve(chunks_per_owner);
    for (uint32_t i = chunks_per_owner; i > 0; --i) {
      free_[owner].push_back(static_cast<int>(owner * chunks_per_owner + i - 1));
    }
  }
}

StagingArea::~StagingArea() { RawMunmap(base_, chunks_ * chunk_bytes()); }

int StagingArea::Acquire(uint32_t owner) {
  absl::MutexLock lock(&mutex_);
  FL_CHECK(owner < free_.size(), "staging owner out of range");
  std::vector<int>& free = free_[owner];
  if (free.empty()) return -1;
  int chunk = free.back();
  free.pop_back();
  return chunk;
}

void StagingArea::Release(int chunk) {
  FL_CHECK(chunk >= 0 && static_cast<uint32_t>(chunk) < chunks_, "staging chunk out of range");
  if (kind_ == Kind::kEvictionTarget) {
    // The area is mlocked (see Create): plain MADV_DONTNEED refuses locked ranges.
    FL_CHECK(RawMadvise(ChunkAddress(chunk), chunk_bytes(), MADV_DONTNEED_LOCKED) == 0,
             "MADV_DONTNEED_LOCKED of a staging chunk");
  }
  absl::MutexLock lock(&mutex_);
  free_[static_cast<uint32_t>(chunk) / chunks_per_owner_].push_back(chunk);
}

}  // namespace faultline
