// Snapshots on the runtime's side (fl_snapshot_* in faultline.h): making, reading, saving and
// releasing them, and opening a saved one. The paging of a snapshot is the pager's
// (core/pager_snapshot.cc).
//
// Consistency. TakeSnapshot fills the snapshot under the registry's write lock: no fault of any
// thread is served meanwhile, and each page it passes is left write-protected or out of memory,
// so a write to it faults and waits for the lock. A page's bytes therefore do not change between
// the moment the walk reaches it and the moment the call returns: the snapshot is the memory at
// that return, for every thread, as fork() gives (whose page-table copy blocks faults the same
// way). Writes to pages the walk has not reached yet are in it; none is half in.
#include <sys/mman.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "core/runtime.h"
#include "kernel/uffd.h"
#include "util/log.h"
#include "util/raw_memory.h"
#include "util/status.h"

namespace faultline {

absl::StatusOr<void*> Runtime::TakeSnapshot(void* address, size_t length) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  if (begin % kPageSize != 0 || length == 0 || length % kPageSize != 0) {
    return ErrnoError(EINVAL, "fl_snapshot_create",
                      "address and length must be page-aligned, length > 0");
  }
  const uintptr_t end = begin + length;
  // The snapshot's own region: read-only for the program, registered like any region.
  void* mapped =
      RawMmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapped == MAP_FAILED) return ErrnoError(errno, "fl_snapshot_create: mmap");
  bool lock_failed = false;
  if (int rc = PrepareRange(uffd_, mapped, length, &lock_failed); rc != 0) {
    RawMunmap(mapped, length);
    return ErrnoError(-rc, lock_failed ? "fl_snapshot_create: mlock2(MLOCK_ONFAULT)"
                                       : "fl_snapshot_create: registering with userfaultfd");
  }
  absl::Status status;
  {
    RegionRegistry::Writer writer(registry_);
    Region* source = writer.FirstOverlap(begin, end);
    if (source == nullptr || source->base > begin || source->end() < end || source->read_only) {
      status = ErrnoError(
          EINVAL, "fl_snapshot_create",
          absl::StrFormat("[%p, +%u) is not inside one managed region", address, length));
    } else {
      const uint64_t first = (begin - source->base) >> kPageShift;
      const uint64_t pages = length >> kPageShift;
      Region* snapshot = nullptr;
      try {
        slots_->ReserveShares(pager_->CountSharedSlots(*source, first, pages));
        snapshot = writer.Add(reinterpret_cast<uintptr_t>(mapped), pages, &counters_, uffd_, false);
      } catch (const std::bad_alloc&) {
        status = ErrnoError(ENOMEM, "fl_snapshot_create", "out of memory for the page table");
      }
      if (snapshot != nullptr) {
        snapshot->read_only = true;
        snapshot->prot = PROT_READ;
        snapshot->snapshot_source = source->id;
        snapshot->snapshot_first = first;
        if (!writer.LinkSnapshot(snapshot)) {
          writer.Take(snapshot);
          status = ErrnoError(ENOSPC, "fl_snapshot_create",
                              absl::StrFormat("%u snapshots already wait for copies of pages; "
                                              "release one",
                                              kMaxLinkedSnapshots));
        } else if (pager_->FillNewSnapshot(*source, first, *snapshot) == 0) {
          // Nothing waits for the source: the snapshot is complete on its own.
          snapshot->snapshot_source = 0;
          writer.UnlinkSnapshot(snapshot);
        }
      }
    }
  }
  if (!status.ok()) {
    uffd::Unregister(uffd_, mapped, length);
    RawMunmap(mapped, length);
    return status;
  }
  snapshots_.fetch_add(1, std::memory_order_relaxed);
  NoteManaged();
  return mapped;
}

absl::Status Runtime::ReadSnapshot(const void* snapshot, size_t offset, void* buf, size_t length) {
  RegionRegistry::Reader regions(registry_);
  Region* region = regions.Find(reinterpret_cast<uintptr_t>(snapshot));
  if (region == nullptr || !region->read_only ||
      region->base != reinterpret_cast<uintptr_t>(snapshot)) {
    return ErrnoError(EINVAL, "fl_snapshot_read", "not a snapshot");
  }
  if (offset > region->bytes() || length > region->bytes() - offset) {
    return ErrnoError(EINVAL, "fl_snapshot_read",
                      absl::StrFormat("[%u, +%u) is outside the snapshot's %u bytes", offset,
                                      length, region->bytes()));
  }
  alignas(kPageSize) static thread_local char page[kPageSize];
  char* out = static_cast<char*>(buf);
  while (length > 0) {
    const uint64_t at = offset >> kPageShift;
    const size_t in_page = offset & (kPageSize - 1);
    const size_t n = std::min(length, kPageSize - in_page);
    switch (pager_->ReadSnapshotPage(regions, *region, at, page)) {
      case Pager::SnapshotPage::kZero:
        std::memset(out, 0, n);
        break;
      case Pager::SnapshotPage::kData:
        std::memcpy(out, page + in_page, n);
        break;
      case Pager::SnapshotPage::kLost:
        Log().error("snapshot page {} was lost (I/O error or checksum mismatch)",
                    static_cast<void*>(region->PageAddress(at)));
        return ErrnoError(EIO, "fl_snapshot_read",
                          absl::StrFormat("page %u of the snapshot was lost", at));
    }
    out += n;
    offset += n;
    length -= n;
  }
  return absl::OkStatus();
}

absl::Status Runtime::ReleaseSnapshot(const void* snapshot) {
  std::unique_ptr<Region> gone;
  {
    RegionRegistry::Writer writer(registry_);
    Region* region = writer.FirstOverlap(reinterpret_cast<uintptr_t>(snapshot),
                                         reinterpret_cast<uintptr_t>(snapshot) + 1);
    if (region == nullptr || !region->read_only ||
        region->base != reinterpret_cast<uintptr_t>(snapshot)) {
      return ErrnoError(EINVAL, "fl_snapshot_release", "not a snapshot");
    }
    pager_->ForgetSnapshot(writer, *region);
    gone = writer.Take(region);
  }
  pager_->ReleaseRegionSlots(*gone);
  uffd::Unregister(gone->uffd, reinterpret_cast<void*>(gone->base), gone->bytes());
  RawMunmap(reinterpret_cast<void*>(gone->base), gone->bytes());
  snapshots_.fetch_sub(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace faultline
