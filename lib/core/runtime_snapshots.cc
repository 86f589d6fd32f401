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

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "core/runtime.h"
#include "kernel/uffd.h"
#include "snapshot/snapshot_file.h"
#include "util/log.h"
#include "util/raw_memory.h"
#include "util/status.h"

namespace faultline {
namespace {

// The snapshot region named `snapshot` (the address of its mapping), or nullptr. `Registry` is a
// RegionRegistry::Reader or Writer held by the caller.
template <typename Registry>
Region* FindSnapshot(const Registry& regions, const void* snapshot) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(snapshot);
  Region* region = regions.FirstOverlap(base, base + 1);
  return region != nullptr && region->read_only && region->base == base ? region : nullptr;
}

}  // namespace

absl::StatusOr<void*> Runtime::TakeSnapshot(void* address, size_t length) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  if (begin % kPageSize != 0 || length == 0 || length % kPageSize != 0) {
    return ErrnoError(EINVAL, "fl_snapshot_create",
                      "address and length must be page-aligned, length > 0");
  }
  const uintptr_t end = begin + length;
  // The snapshot's own region: read-only for the program, registered like any region.
  absl::StatusOr<void*> prepared = MapPrepared(uffd_, length, PROT_READ, "fl_snapshot_create");
  if (!prepared.ok()) return prepared.status();
  void* mapped = *prepared;
  // Room for sharing every page's slot, made before the registry's write lock is taken: nothing
  // may allocate (or touch the program's memory) while faults wait for that lock.
  try {
    slots_->ReserveShares(length >> kPageShift);
  } catch (const std::bad_alloc&) {
    uffd::Unregister(uffd_, mapped, length);
    RawMunmap(mapped, length);
    return ErrnoError(ENOMEM, "fl_snapshot_create", "out of memory for shared slots");
  }
  // Under the lock only flags are set: an error's message allocates.
  enum class Outcome { kTaken, kNotInOneRegion, kNoMemory, kTooMany } outcome = Outcome::kTaken;
  {
    RegionRegistry::Writer writer(registry_);
    Region* source = writer.FirstOverlap(begin, end);
    Region* snapshot = nullptr;
    if (source == nullptr || source->base > begin || source->end() < end || source->read_only) {
      outcome = Outcome::kNotInOneRegion;
    } else {
      try {
        snapshot = writer.Add(reinterpret_cast<uintptr_t>(mapped), length >> kPageShift, &counters_,
                              uffd_, false);
      } catch (const std::bad_alloc&) {
        outcome = Outcome::kNoMemory;
      }
    }
    if (snapshot != nullptr) {
      const uint64_t first = (begin - source->base) >> kPageShift;
      snapshot->read_only = true;
      snapshot->prot = PROT_READ;
      snapshot->snapshot_source = source->id;
      snapshot->snapshot_first = first;
      snapshot->backing = source->backing;  // its EMPTY + BACKED pages read the same file
      if (!writer.LinkSnapshot(snapshot)) {
        writer.Take(snapshot);
        outcome = Outcome::kTooMany;
      } else if (pager_->FillNewSnapshot(*source, first, *snapshot) == 0) {
        // Nothing waits for the source: the snapshot is complete on its own.
        snapshot->snapshot_source = 0;
        writer.UnlinkSnapshot(snapshot);
      }
    }
  }
  if (outcome != Outcome::kTaken) {
    uffd::Unregister(uffd_, mapped, length);
    RawMunmap(mapped, length);
  }
  switch (outcome) {
    case Outcome::kTaken:
      break;
    case Outcome::kNotInOneRegion:
      return ErrnoError(
          EINVAL, "fl_snapshot_create",
          absl::StrFormat("[%p, +%u) is not inside one managed region", address, length));
    case Outcome::kNoMemory:
      return ErrnoError(ENOMEM, "fl_snapshot_create", "out of memory for the page table");
    case Outcome::kTooMany:
      return ErrnoError(
          ENOSPC, "fl_snapshot_create",
          absl::StrFormat("%u snapshots already wait for copies of pages; release one",
                          kMaxLinkedSnapshots));
  }
  snapshots_.fetch_add(1, std::memory_order_relaxed);
  NoteManaged();
  return mapped;
}

Pager::SnapshotPage Runtime::ReadSnapshotPage(const void* snapshot, uint64_t at, char* page,
                                              absl::Status* error) {
  // The lock is held for this page only, and the page goes to `page` (not the program's memory,
  // which may be managed: touching it under the lock could wait for a fault that waits for the
  // lock's writer).
  RegionRegistry::Reader regions(registry_);
  Region* region = FindSnapshot(regions, snapshot);
  if (region == nullptr) {
    *error = ErrnoError(EINVAL, "snapshot", "not a snapshot (or released meanwhile)");
    return Pager::SnapshotPage::kLost;
  }
  if (at >= region->pages.size()) {
    *error = ErrnoError(EINVAL, "snapshot", "past the snapshot's end");
    return Pager::SnapshotPage::kLost;
  }
  Pager::SnapshotPage kind = pager_->ReadSnapshotPage(regions, *region, at, page);
  if (kind == Pager::SnapshotPage::kLost) {
    Log().error("snapshot page {} was lost (I/O error or checksum mismatch)",
                static_cast<void*>(region->PageAddress(at)));
    *error = ErrnoError(EIO, "snapshot", absl::StrFormat("page %u of the snapshot was lost", at));
  }
  return kind;
}

absl::Status Runtime::ReadSnapshot(const void* snapshot, size_t offset, void* buf, size_t length) {
  size_t bytes = 0;
  {
    RegionRegistry::Reader regions(registry_);
    Region* region = FindSnapshot(regions, snapshot);
    if (region == nullptr) return ErrnoError(EINVAL, "fl_snapshot_read", "not a snapshot");
    bytes = region->bytes();
  }
  if (offset > bytes || length > bytes - offset) {
    return ErrnoError(
        EINVAL, "fl_snapshot_read",
        absl::StrFormat("[%u, +%u) is outside the snapshot's %u bytes", offset, length, bytes));
  }
  alignas(kPageSize) static thread_local char page[kPageSize];
  char* out = static_cast<char*>(buf);
  while (length > 0) {
    const size_t in_page = offset & (kPageSize - 1);
    const size_t n = std::min(length, kPageSize - in_page);
    absl::Status error;
    switch (ReadSnapshotPage(snapshot, offset >> kPageShift, page, &error)) {
      case Pager::SnapshotPage::kZero:
        std::memset(out, 0, n);
        break;
      case Pager::SnapshotPage::kData:
        std::memcpy(out, page + in_page, n);
        break;
      case Pager::SnapshotPage::kLost:
        return error;
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
    if (Region* region = FindSnapshot(writer, snapshot)) {
      pager_->ForgetSnapshot(writer, *region);
      gone = writer.Take(region);
    }
  }
  if (gone == nullptr) return ErrnoError(EINVAL, "fl_snapshot_release", "not a snapshot");
  pager_->ReleaseRegionSlots(*gone);
  uffd::Unregister(gone->uffd, reinterpret_cast<void*>(gone->base), gone->bytes());
  RawMunmap(reinterpret_cast<void*>(gone->base), gone->bytes());
  snapshots_.fetch_sub(1, std::memory_order_relaxed);
  if (gone->backing != nullptr) {  // a snapshot of an opened snapshot
    gone.reset();
    CloseUnusedSnapshotFiles();
  }
  return absl::OkStatus();
}

absl::Status Runtime::SaveSnapshot(const void* snapshot, const std::string& path) {
  uint64_t pages = 0;
  {
    RegionRegistry::Reader regions(registry_);
    Region* region = FindSnapshot(regions, snapshot);
    if (region == nullptr) return ErrnoError(EINVAL, "fl_snapshot_save", "not a snapshot");
    pages = region->pages.size();
  }
  absl::StatusOr<std::unique_ptr<SnapshotFileWriter>> file =
      SnapshotFileWriter::Create(path, pages, kPageSize, reinterpret_cast<uintptr_t>(snapshot));
  if (!file.ok()) return ErrnoError(EIO, "fl_snapshot_save", file.status().message());
  alignas(kPageSize) static thread_local char page[kPageSize];
  for (uint64_t at = 0; at < pages; ++at) {
    absl::Status error;
    absl::Status added;
    switch (ReadSnapshotPage(snapshot, at, page, &error)) {
      case Pager::SnapshotPage::kZero:
        added = (*file)->AddPage(SnapshotPageKind::kZero, nullptr);
        break;
      case Pager::SnapshotPage::kData:
        added = (*file)->AddPage(SnapshotPageKind::kData, page);
        break;
      case Pager::SnapshotPage::kLost:
        if (faultline::ErrnoOf(error) != EIO) return error;          // released meanwhile
        added = (*file)->AddPage(SnapshotPageKind::kLost, nullptr);  // saved as lost, logged
        break;
    }
    if (!added.ok()) return ErrnoError(EIO, "fl_snapshot_save", added.message());
  }
  absl::Status finished = (*file)->Finish();
  return finished.ok() ? absl::OkStatus() : ErrnoError(EIO, "fl_snapshot_save", finished.message());
}

absl::StatusOr<void*> Runtime::OpenSnapshotFile(const std::string& path, size_t* length) {
  absl::StatusOr<std::unique_ptr<SnapshotFileReader>> file = SnapshotFileReader::Open(path);
  if (!file.ok()) return ErrnoError(EINVAL, "fl_snapshot_open", file.status().message());
  const uint64_t pages = (*file)->page_count();
  const size_t bytes = pages << kPageShift;
  absl::StatusOr<void*> prepared =
      MapPrepared(uffd_, bytes, PROT_READ | PROT_WRITE, "fl_snapshot_open");
  if (!prepared.ok()) return prepared.status();
  void* address = *prepared;
  try {
    absl::MutexLock files(&opened_files_mutex_);
    opened_files_.reserve(opened_files_.size() + 1);
    RegionRegistry::Writer writer(registry_);
    Region* region =
        writer.Add(reinterpret_cast<uintptr_t>(address), pages, &counters_, uffd_, false);
    region->backing = file->get();
    // Pages with bytes (or lost ones) read from the file on first touch; zero pages stay EMPTY.
    for (uint64_t i = 0; i < pages; ++i) {
      if ((*file)->kind(i) == SnapshotPageKind::kZero) continue;
      region->pages.Inherit(i,
                            PageWord::Make(PageState::kEmpty, i).WithFlag(PageWord::kBacked, true));
    }
    opened_files_.push_back(std::move(*file));
  } catch (const std::bad_alloc&) {
    uffd::Unregister(uffd_, address, bytes);
    RawMunmap(address, bytes);
    return ErrnoError(ENOMEM, "fl_snapshot_open", "out of memory for the page table");
  }
  NoteManaged();
  *length = bytes;
  return address;
}

void Runtime::CloseUnusedSnapshotFiles() {
  absl::MutexLock files(&opened_files_mutex_);
  // Whether each file is still read from, decided under the registry's lock; the unused ones
  // are closed after it (freeing memory may touch the program's heap).
  std::vector<bool> used(opened_files_.size(), false);
  {
    RegionRegistry::Reader regions(registry_);
    regions.ForEachOverlap(0, UINTPTR_MAX, [&](Region& region) {
      for (size_t i = 0; i < opened_files_.size(); ++i) {
        if (region.backing == opened_files_[i].get()) used[i] = true;
      }
    });
  }
  for (size_t i = opened_files_.size(); i-- > 0;) {
    if (!used[i]) opened_files_.erase(opened_files_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace faultline
