// Copy-on-write snapshots on the pager's side (page_state.h, SNAPSHOT bit;
// core/runtime_snapshots.cc makes and releases them). A snapshot is a read-only region of its own,
// so its pages are paged like any other (they count against the limit and go to swap):
//   - a source page the swap file already holds (SWAPPED, LOADING, clean RESIDENT) is shared by
//     its slot: the snapshot's page is SWAPPED with the same slot (SwapSlotAllocator::Share);
//   - a source page being written out (EVICTING) is copied from its staging buffer at once;
//   - a dirty RESIDENT source page is write-protected, and it and the snapshot's page get the
//     SNAPSHOT bit; its bytes are copied into the snapshot (CopyToSnapshots) before they change:
//     on the first write, when it is evicted, discarded, or its region is cut or unmapped; or
//     when the snapshot's page is read first (FillSnapshotPage).
// Transitions: the snapshot's pages are built with PageTable::Inherit (any state, as when a
// region is rebuilt) and leave EMPTY + SNAPSHOT by EMPTY -> RESIDENT (the copy).
#include <cstring>

#include "core/pager.h"
#include "kernel/uffd.h"
#include "snapshot/snapshot_file.h"
#include "swap/checksum.h"
#include "util/check.h"

namespace faultline {

template <typename Registry>
PageWord Pager::CopyToSnapshots(const Registry& regions, Region& source, uint64_t index,
                                PageWord word, const char* bytes) noexcept {
  if (!word.snapshot()) return word;
  const bool zero = IsZeroPage(bytes, kPageSize);
  bool copied = false;
  regions.ForEachSnapshotOf(source.id, [&](Region& snapshot) {
    if (index < snapshot.snapshot_first ||
        index - snapshot.snapshot_first >= snapshot.pages.size()) {
      return;
    }
    const uint64_t at = index - snapshot.snapshot_first;
    PageWord waiting = snapshot.pages.Lock(at);
    if (!waiting.snapshot()) {
      snapshot.pages.Unlock(at, waiting);
      return;
    }
    FL_CHECK(waiting.state() == PageState::kEmpty, "a snapshot page waits but is not EMPTY");
    if (zero) {  // an EMPTY page reads as zeros already
      snapshot.pages.Unlock(at, waiting.WithFlag(PageWord::kSnapshot, false));
      return;
    }
    size_t done = CopyIn(snapshot.uffd, snapshot.PageAddress(at), bytes, kPageSize, false);
    FL_CHECK(done == kPageSize, "copying a page into its snapshot failed");
    snapshot.pages.Transition(at, waiting, waiting.With(PageState::kResident, 0));
    r_.stats->snapshot_pages_copied.Add();
    copied = true;
  });
  if (copied) WakeEvictorIfNeeded();
  return word.WithFlag(PageWord::kSnapshot, false);
}

template PageWord Pager::CopyToSnapshots(const RegionRegistry::Reader&, Region&, uint64_t, PageWord,
                                         const char*) noexcept;
template PageWord Pager::CopyToSnapshots(const RegionRegistry::Writer&, Region&, uint64_t, PageWord,
                                         const char*) noexcept;

template <typename Registry>
void Pager::FillSnapshotPage(const Registry& regions, Region& snapshot, uint64_t at) noexcept {
  Region* source = regions.FindById(snapshot.snapshot_source);
  FL_CHECK(source != nullptr, "a snapshot page waits for a region that is gone");
  const uint64_t index = snapshot.snapshot_first + at;
  PageWord word = source->pages.Lock(index);
  if (word.snapshot()) {
    FL_CHECK(word.state() == PageState::kResident, "a snapshotted page left memory uncopied");
    word = CopyToSnapshots(regions, *source, index, word, source->PageAddress(index));
  }
  source->pages.Unlock(index, word);
}

template void Pager::FillSnapshotPage(const RegionRegistry::Reader&, Region&, uint64_t) noexcept;
template void Pager::FillSnapshotPage(const RegionRegistry::Writer&, Region&, uint64_t) noexcept;

uint64_t Pager::FillNewSnapshot(Region& source, uint64_t first, Region& snapshot) noexcept {
  const uint64_t count = snapshot.pages.size();
  uint64_t waiting = 0;
  // Dirty pages are write-protected by runs of adjacent ones: one ioctl per run.
  uint64_t run_first = 0, run_pages = 0;
  auto protect_run = [&] {
    if (run_pages == 0) return;
    uffd::WriteProtect(source.uffd, source.PageAddress(first + run_first), run_pages << kPageShift,
                       true);
    run_pages = 0;
  };
  for (uint64_t at = 0; at < count; ++at) {
    const uint64_t index = first + at;
    PageWord word = source.pages.Lock(index);
    PageWord copy;  // EMPTY: zeros
    switch (word.state()) {
      case PageState::kEmpty:
        // A page of an opened snapshot file not read yet: the same file page (the snapshot
        // shares the source's backing).
        if (word.backed()) {
          copy =
              PageWord::Make(PageState::kEmpty, word.payload()).WithFlag(PageWord::kBacked, true);
        }
        break;
      case PageState::kResident:
        if (word.clean()) {
          r_.slots->Share(word.payload());
          copy = PageWord::Make(PageState::kSwapped, word.payload());
          break;
        }
        word = word.WithFlag(PageWord::kSnapshot, true);
        copy = copy.WithFlag(PageWord::kSnapshot, true);
        ++waiting;
        if (run_pages > 0 && run_first + run_pages != at) protect_run();
        if (run_pages == 0) run_first = at;
        ++run_pages;
        break;
      case PageState::kSwapped:
      case PageState::kLoading:
        r_.slots->Share(word.payload());
        copy = PageWord::Make(PageState::kSwapped, word.payload());
        break;
      case PageState::kEvicting: {
        size_t done = CopyIn(snapshot.uffd, snapshot.PageAddress(at),
                             r_.evict_staging->PageAddress(word.payload()), kPageSize, false);
        FL_CHECK(done == kPageSize, "copying a page in flight into its snapshot failed");
        copy = PageWord::Make(PageState::kResident, 0);
        r_.stats->snapshot_pages_copied.Add();
        break;
      }
      case PageState::kPoisoned:
        copy = PageWord::Make(PageState::kPoisoned, 0);
        break;
    }
    source.pages.Unlock(index, word);
    snapshot.pages.Inherit(at, copy);
  }
  protect_run();
  return waiting;
}

void Pager::DetachSnapshots(RegionRegistry::Writer& writer, Region& source) noexcept {
  // Collected first: completing a snapshot unlinks it from the table being walked.
  Region* snapshots[kMaxLinkedSnapshots];
  uint32_t linked = 0;
  writer.ForEachSnapshotOf(source.id, [&](Region& snapshot) { snapshots[linked++] = &snapshot; });
  for (uint32_t s = 0; s < linked; ++s) CompleteSnapshot(writer, *snapshots[s]);
}

void Pager::CompleteSnapshot(RegionRegistry::Writer& writer, Region& snapshot) noexcept {
  if (snapshot.snapshot_source == 0) return;
  for (uint64_t at = 0; at < snapshot.pages.size(); ++at) {
    if (snapshot.pages.Peek(at).snapshot()) FillSnapshotPage(writer, snapshot, at);
  }
  snapshot.snapshot_source = 0;
  writer.UnlinkSnapshot(&snapshot);
}

void Pager::ForgetSnapshot(RegionRegistry::Writer& writer, Region& snapshot) noexcept {
  if (snapshot.snapshot_source == 0) return;
  Region* source = writer.FindById(snapshot.snapshot_source);
  FL_CHECK(source != nullptr, "a snapshot waits for a region that is gone");
  for (uint64_t at = 0; at < snapshot.pages.size(); ++at) {
    if (!snapshot.pages.Peek(at).snapshot()) continue;
    const uint64_t index = snapshot.snapshot_first + at;
    bool others_wait = false;
    writer.ForEachSnapshotOf(source->id, [&](Region& other) {
      others_wait |= &other != &snapshot && index >= other.snapshot_first &&
                     index - other.snapshot_first < other.pages.size() &&
                     other.pages.Peek(index - other.snapshot_first).snapshot();
    });
    if (others_wait) continue;
    PageWord word = source->pages.Lock(index);
    source->pages.Unlock(index, word.WithFlag(PageWord::kSnapshot, false));
  }
  snapshot.snapshot_source = 0;
  writer.UnlinkSnapshot(&snapshot);
}

Pager::SnapshotPage Pager::ReadSnapshotPage(const RegionRegistry::Reader& regions, Region& snapshot,
                                            uint64_t at, char* out) noexcept {
  for (;;) {
    if (snapshot.snapshot_source != 0 && snapshot.pages.Peek(at).snapshot()) {
      // Still the source's bytes: read them under the source page's lock, which a write to it
      // waits for.
      Region* source = regions.FindById(snapshot.snapshot_source);
      FL_CHECK(source != nullptr, "a snapshot page waits for a region that is gone");
      const uint64_t index = snapshot.snapshot_first + at;
      PageWord word = source->pages.Lock(index);
      bool still_waiting = snapshot.pages.Peek(at).snapshot();
      if (still_waiting) std::memcpy(out, source->PageAddress(index), kPageSize);
      source->pages.Unlock(index, word);
      if (still_waiting) return SnapshotPage::kData;
      continue;  // copied meanwhile: read the copy
    }
    PageWord word = snapshot.pages.Lock(at);
    SnapshotPage result = SnapshotPage::kData;
    switch (word.state()) {
      case PageState::kEmpty:
        if (!word.backed()) {
          result = SnapshotPage::kZero;
        } else if (!snapshot.backing->ReadPageVerified(word.payload(), out)) {
          result = SnapshotPage::kLost;
        }
        break;
      case PageState::kResident:
        std::memcpy(out, snapshot.PageAddress(at), kPageSize);
        break;
      case PageState::kEvicting:
        std::memcpy(out, r_.evict_staging->PageAddress(word.payload()), kPageSize);
        break;
      case PageState::kSwapped:
      case PageState::kLoading:
        if (!ReadSlot(word.payload(), out)) result = SnapshotPage::kLost;
        break;
      case PageState::kPoisoned:
        result = SnapshotPage::kLost;
        break;
    }
    snapshot.pages.Unlock(at, word);
    return result;
  }
}

}  // namespace faultline
