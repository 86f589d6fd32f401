// What the program does to its own mappings (Runtime, "the interposer's entry points"): adopting
// new mappings, unmapping, mremap, and fork (madvise: runtime_advice.cc). docs/design.md,
// "Programs under LD_PRELOAD", has the reasoning; the rules that keep this safe:
//
//  - A region's shape never changes: when the program unmaps or moves part of it, the surviving
//    parts become new regions with copies of their page words (Reshape), and the old region goes.
//    That happens only while the old region has no I/O in flight (WithQuiescedRegions), so no
//    completion that names the old region's id can belong to a page that lives on.
//  - The new regions are published in the registry's fork view before the program's system call
//    and the old one unpublished after it: a child forked at any instant finds every page.
//  - Everything here that faultline's threads will read is allocated on the internal heap; the
//    registry's write lock is held only around code that touches no managed memory.
#include <linux/userfaultfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include "core/runtime.h"
#include "kernel/uffd.h"
#include "util/check.h"
#include "util/errno_name.h"
#include "util/log.h"
#include "util/raw_memory.h"

namespace faultline {
namespace {

constexpr int64_t kQuiesceWaitNs = 20'000;

}  // namespace

void Runtime::PauseForOtherThreads() noexcept {
  timespec pause{0, kQuiesceWaitNs};
  nanosleep(&pause, nullptr);
}

void Runtime::NoteManaged() {
  int64_t managed = 0;
  for (int state = 0; state < kPageStateCount; ++state) {
    managed += counters_.Get(static_cast<PageState>(state));
  }
  stats_.peak_managed_pages.Max(static_cast<uint64_t>(std::max<int64_t>(0, managed)));
}

template <typename Fn>
void Runtime::WithQuiescedRegions(uintptr_t begin, uintptr_t end, Fn fn, uintptr_t also_begin,
                                  uintptr_t also_end) {
  auto for_each = [&](RegionRegistry::Writer& writer, auto visit) {
    writer.ForEachOverlap(begin, end, visit);
    if (also_begin < also_end) writer.ForEachOverlap(also_begin, also_end, visit);
  };
  for (;;) {
    {
      RegionRegistry::Writer writer(registry_);
      bool busy = false;
      for_each(writer, [&](Region& r) {
        if (r.pages.Count(PageState::kLoading) + r.pages.Count(PageState::kEvicting) > 0) {
          r.reshaping.store(true, std::memory_order_relaxed);
          busy = true;
        }
      });
      if (!busy) {
        fn(writer);
        // A region that is still there (the program's call failed, or it was not cut) is the
        // evictor's again.
        for_each(writer, [](Region& r) { r.reshaping.store(false, std::memory_order_relaxed); });
        return;
      }
    }
    PauseForOtherThreads();
  }
}

template <typename Change>
bool Runtime::Reshape(RegionRegistry::Writer& writer, Region* region, const Piece* pieces,
                      int count, Change change, Region** made) {
  std::unique_ptr<Region> created[3];
  FL_CHECK(count <= 3, "a region is cut into at most three pieces");
  // Snapshots of the region get the bytes they wait for now: its pages change hands. A snapshot's
  // own region (the program unmapped part of its mapping) is completed first, for the same reason.
  pager_->DetachSnapshots(writer, *region);
  pager_->CompleteSnapshot(writer, *region);
  for (int i = 0; i < count; ++i) {
    const Piece& piece = pieces[i];
    // Bookkeeping memory for a region that exists already in the program: losing track of it
    // would lose its evicted pages, so running out here is fatal.
    try {
      created[i] = writer.Create(piece.base, piece.count + piece.grow, &counters_, region->uffd,
                                 region->self_paging);
    } catch (const std::bad_alloc&) {
      FL_CHECK(false, "out of memory for the page table of a region being reshaped");
    }
    created[i]->shared_anonymous = region->shared_anonymous;
    created[i]->prot = region->prot;
    created[i]->backing = region->backing;
    created[i]->read_only = region->read_only;
    for (uint64_t p = 0; p < piece.count; ++p) {
      created[i]->pages.Inherit(p, region->pages.Peek(piece.first + p));
    }
    if (piece.grow > 0 && piece.count > 0) {
      // Grown pages take the advice of the page they extend, as a grown VMA keeps its flags.
      PageWord grown =
          PageWord().WithAdvice(region->pages.Peek(piece.first + piece.count - 1).advice());
      for (uint64_t p = piece.count; p < piece.count + piece.grow; ++p) {
        created[i]->pages.Inherit(p, grown);
      }
    }
  }
  if (!change()) {
    int err = errno;
    for (int i = 0; i < count; ++i) writer.Discard(std::move(created[i]));
    errno = err;
    return false;
  }
  uint64_t next = 0;
  for (int i = 0; i <= count; ++i) {
    uint64_t gap_end = i < count ? pieces[i].first : region->pages.size();
    if (gap_end > next) {
      pager_->ReleaseSlots(*region, next, gap_end - next);
      DropPins(*region, next, gap_end - next);
    }
    if (i < count) next = pieces[i].first + pieces[i].count;
  }
  std::unique_ptr<Region> old = writer.Take(region);
  for (int i = 0; i < count; ++i) {
    Region* inserted = writer.Insert(std::move(created[i]));
    if (made != nullptr) made[i] = inserted;
  }
  return true;
}

int Runtime::Adopt(void* address, size_t length, int prot, bool shared_anonymous) noexcept {
  // Whatever faultline thought was here is gone: the kernel has just handed out the range.
  Forget(address, length);
  bool lock_failed = false;
  if (int rc = PrepareRange(uffd_, address, length, &lock_failed); rc != 0) return rc;
  try {
    RegionRegistry::Writer writer(registry_);
    Region* region = writer.Add(reinterpret_cast<uintptr_t>(address), length >> kPageShift,
                                &counters_, uffd_, false);
    region->shared_anonymous = shared_anonymous;
    region->prot = prot;
  } catch (const std::bad_alloc&) {
    uffd::Unregister(uffd_, address, length);
    RawMunlock(address, length);
    return -ENOMEM;
  }
  stats_.regions_adopted.Add();
  NoteManaged();
  if (pin_future_.load(std::memory_order_relaxed)) {
    // mlockall(MCL_FUTURE): pinned like the kernel would lock it; over the pin budget the mapping
    // stays unpinned (the kernel would refuse the mmap; faultline keeps the program running).
    Pin(address, length, pin_future_on_fault_.load(std::memory_order_relaxed));
  }
  return 0;
}

bool Runtime::Overlaps(const void* address, size_t length) const {
  uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  RegionRegistry::Reader regions(registry_);
  return regions.FirstOverlap(begin, begin + length) != nullptr;
}

bool Runtime::FirstManagedPart(uintptr_t begin, uintptr_t end, uintptr_t* part_begin,
                               uintptr_t* part_end) const {
  RegionRegistry::Reader regions(registry_);
  Region* region = regions.FirstOverlap(begin, end);
  if (region == nullptr) return false;
  *part_begin = std::max(begin, region->base);
  *part_end = std::min(end, region->end());
  return true;
}

void Runtime::RelockRegions() noexcept {
  // The eviction staging area too: UFFDIO_MOVE needs source and destination locked alike.
  RawMlock2(evict_staging_->ChunkAddress(0),
            size_t{evict_staging_->chunks()} * evict_staging_->chunk_bytes(), MLOCK_ONFAULT);
  RegionRegistry::Reader regions(registry_);
  regions.ForEachOverlap(0, UINTPTR_MAX, [](Region& r) {
    RawMlock2(reinterpret_cast<void*>(r.base), r.bytes(), MLOCK_ONFAULT);
  });
}

void Runtime::Forget(const void* address, size_t length) {
  uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  uintptr_t end = begin + length;
  {
    RegionRegistry::Reader regions(registry_);
    if (regions.FirstOverlap(begin, end) == nullptr) return;
  }
  WithQuiescedRegions(begin, end,
                      [&](RegionRegistry::Writer& writer) { ForgetLocked(writer, begin, end); });
}

void Runtime::ForgetLocked(RegionRegistry::Writer& writer, uintptr_t begin, uintptr_t end) {
  while (Region* region = writer.FirstOverlap(begin, end)) {
    Piece pieces[2];
    int count = 0;
    if (region->base < begin) {
      pieces[count++] = Piece{0, (begin - region->base) >> kPageShift, region->base, 0};
    }
    if (region->end() > end) {
      uint64_t first = (end - region->base) >> kPageShift;
      pieces[count++] = Piece{first, region->pages.size() - first, end, 0};
    }
    Reshape(
        writer, region, pieces, count, [] { return true; }, nullptr);
  }
}

bool Runtime::ReplaceMappings(void* address, size_t length, absl::FunctionRef<bool()> change) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  const uintptr_t end = begin + length;
  bool changed = false;
  int error = 0;
  WithQuiescedRegions(begin, end, [&](RegionRegistry::Writer& writer) {
    DetachSnapshotsIn(writer, begin, end);
    changed = change();
    error = errno;
    if (changed) ForgetLocked(writer, begin, end);
  });
  errno = error;
  return changed;
}

void Runtime::SplitAt(RegionRegistry::Writer& writer, uintptr_t at) {
  Region* region = writer.FirstOverlap(at, at + 1);
  if (region == nullptr || region->base == at) return;
  const uint64_t first = (at - region->base) >> kPageShift;
  const Piece pieces[2] = {Piece{0, first, region->base, 0},
                           Piece{first, region->pages.size() - first, at, 0}};
  Reshape(
      writer, region, pieces, 2, [] { return true; }, nullptr);
}

void Runtime::DetachSnapshotsIn(RegionRegistry::Writer& writer, uintptr_t begin, uintptr_t end) {
  writer.ForEachOverlap(begin, end, [&](Region& region) {
    pager_->DetachSnapshots(writer, region);
    pager_->CompleteSnapshot(writer, region);
  });
}

void Runtime::PrepareUnmap(const void* address, size_t length) noexcept {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(address);
  const uintptr_t end = begin + length;
  bool waited_for = false;
  {
    RegionRegistry::Reader regions(registry_);
    regions.ForEachOverlap(begin, end, [&](Region& region) {
      waited_for |= region.snapshot_source != 0;  // a snapshot's own pages wait
      regions.ForEachSnapshotOf(region.id, [&](Region&) { waited_for = true; });
    });
  }
  if (!waited_for) return;
  RegionRegistry::Writer writer(registry_);
  DetachSnapshotsIn(writer, begin, end);
}

void* Runtime::Remap(void* old_address, size_t old_size, size_t new_size, int flags,
                     void* new_address) {
  const uintptr_t old_begin = reinterpret_cast<uintptr_t>(old_address);
  auto round_up = [](size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); };
  old_size = round_up(old_size);
  new_size = round_up(new_size);
  if (old_size == 0 || new_size == 0 || (flags & MREMAP_DONTUNMAP) != 0) {
    // Not meaningful for private memory (the kernel refuses the first two); MREMAP_DONTUNMAP
    // would leave a managed range behind without its pages. Nothing is changed.
    if ((flags & MREMAP_DONTUNMAP) != 0) {
      Log().warn("mremap(MREMAP_DONTUNMAP) of memory managed by faultline is not supported");
    }
    errno = EINVAL;
    return MAP_FAILED;
  }
  // MREMAP_FIXED: the target is replaced by the kernel's own mremap, and only then forgotten (in
  // the same write-locked section): a move that fails leaves the target as it was. The target's
  // regions are quiesced with the source's and cut at its edges first, so that it is made of
  // whole regions, none of them the one that moves.
  const bool fixed = (flags & MREMAP_FIXED) != 0;
  const uintptr_t fixed_target = reinterpret_cast<uintptr_t>(new_address);
  if (fixed && (fixed_target % kPageSize != 0 ||
                (fixed_target < old_begin + old_size && old_begin < fixed_target + new_size))) {
    errno = EINVAL;
    return MAP_FAILED;
  }

  void* result = MAP_FAILED;
  int error = 0;
  auto quiesced = [&](RegionRegistry::Writer& writer) {
    // The program's system call of each attempt; true when it succeeded.
    auto move = [&](uintptr_t target, int attempt_flags) {
      result = RawMremap(old_address, old_size, new_size, attempt_flags,
                         reinterpret_cast<void*>(target));
      if (result == MAP_FAILED) return false;
      if (fixed) ForgetLocked(writer, fixed_target, fixed_target + new_size);
      return true;
    };
    if (fixed) {
      SplitAt(writer, fixed_target);
      SplitAt(writer, fixed_target + new_size);
      DetachSnapshotsIn(writer, fixed_target, fixed_target + new_size);
    }
    Region* region = writer.FirstOverlap(old_begin, old_begin + old_size);
    if (region == nullptr || region->base > old_begin || region->end() < old_begin + old_size) {
      // Not inside one region, hence not inside one mapping: the kernel refuses such a call.
      move(fixed_target, flags);
      error = errno;
      return;
    }
    const uint64_t first = (old_begin - region->base) >> kPageShift;
    const uint64_t old_pages = old_size >> kPageShift;
    const uint64_t new_pages = new_size >> kPageShift;
    const uint64_t kept = std::min(old_pages, new_pages);
    auto attempt = [&](uintptr_t target, int attempt_flags) {
      Piece pieces[3];
      int count = 0;
      if (first > 0) pieces[count++] = Piece{0, first, region->base, 0};
      int moved = count;
      pieces[count++] = Piece{first, kept, target, new_pages - kept};
      if (first + old_pages < region->pages.size()) {
        pieces[count++] = Piece{first + old_pages, region->pages.size() - first - old_pages,
                                old_begin + old_size, 0};
      }
      Region* made[3];
      bool done = Reshape(
          writer, region, pieces, count, [&] { return move(target, attempt_flags); }, made);
      if (!done) return false;
      if (target != old_begin) {
        // A moved mapping has lost its registration and its write protection (no
        // UFFD_EVENT_REMAP): register it again, with the uffd it had (a self-paging region's
        // own), and treat its clean and FREEABLE pages as plain dirty ones, since a write to
        // them would no longer be seen.
        Region* moved_region = made[moved];
        bool lock_failed = false;
        int rc = PrepareRange(moved_region->uffd, reinterpret_cast<void*>(target), new_size,
                              &lock_failed);
        FL_CHECK(rc == 0, "registering a moved mapping again failed");
        for (uint64_t p = 0; p < kept; ++p) {
          PageWord word = moved_region->pages.Lock(p);
          if (word.clean()) {
            slots_->Free(word.payload());
            moved_region->pages.Transition(p, word, word.With(PageState::kResident, 0));
          } else {
            moved_region->pages.Unlock(p, word.WithFlag(PageWord::kFreeable, false));
          }
        }
      }
      return true;
    };
    bool may_move = (flags & MREMAP_MAYMOVE) != 0;
    if (fixed) {
      attempt(fixed_target, flags);
    } else if (!attempt(old_begin, 0) && errno == ENOMEM && may_move) {
      // It cannot grow in place: reserve the new place first, so that the new region's address
      // is known (and published) before the pages move there.
      void* reserved =
          RawMmap(nullptr, new_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (reserved != MAP_FAILED &&
          !attempt(reinterpret_cast<uintptr_t>(reserved), MREMAP_MAYMOVE | MREMAP_FIXED)) {
        int err = errno;
        RawMunmap(reserved, new_size);
        errno = err;
      }
    }
    error = errno;
  };
  WithQuiescedRegions(old_begin, old_begin + old_size, quiesced, fixed ? fixed_target : 0,
                      fixed ? fixed_target + new_size : 0);
  if (result == MAP_FAILED) {
    errno = error;
  } else {
    NoteManaged();
  }
  return result;
}

void Runtime::ShareBeforeFork() {
  for (;;) {
    uintptr_t begin = 0;
    uintptr_t end = 0;
    {
      RegionRegistry::Reader regions(registry_);
      for (Region* r = regions.FirstOverlap(0, UINTPTR_MAX); r != nullptr;
           r = regions.FirstOverlap(r->end(), UINTPTR_MAX)) {
        if (r->shared_anonymous) {
          begin = r->base;
          end = r->end();
          break;
        }
      }
    }
    if (begin == end) return;
    WithQuiescedRegions(begin, end, [&](RegionRegistry::Writer& writer) {
      Region* region = writer.FirstOverlap(begin, end);
      if (region != nullptr && region->base == begin && region->shared_anonymous) {
        ShareRegion(writer, region);
      }
    });
  }
}

void Runtime::ShareRegion(RegionRegistry::Writer& writer, Region* region) {
  pager_->DetachSnapshots(writer, *region);  // snapshots of it keep their bytes
  const size_t bytes = region->bytes();
  void* base = reinterpret_cast<void*>(region->base);
  int memfd = memfd_create("faultline-shared-anonymous", MFD_CLOEXEC);
  void* buffer = RawAnonymous(kPageSize);
  if (memfd < 0 || ftruncate(memfd, static_cast<off_t>(bytes)) != 0 || buffer == MAP_FAILED) {
    Log().error(
        "fork: cannot make shared memory for the MAP_SHARED mapping at {} ({}): parent "
        "and child will each have a private copy",
        base, ErrnoName(errno));
    region->shared_anonymous = false;
    if (memfd >= 0) close(memfd);
    if (buffer != MAP_FAILED) RawMunmap(buffer, kPageSize);
    return;
  }
  // From here on the program's writes fault, and wait: the fault handlers wait for this lock.
  uffd::WriteProtect(region->uffd, base, bytes, true);
  auto put = [&](uint64_t index, const char* source) {
    off_t offset = static_cast<off_t>(index << kPageShift);
    if (pwrite(memfd, source, kPageSize, offset) != static_cast<ssize_t>(kPageSize)) {
      Log().error("fork: copying page {} into shared memory failed ({})",
                  static_cast<void*>(region->PageAddress(index)), ErrnoName(errno));
    }
  };
  for (uint64_t i = 0; i < region->pages.size(); ++i) {
    PageWord word = region->pages.Peek(i);
    switch (word.state()) {
      case PageState::kResident:
        put(i, region->PageAddress(i));
        break;
      case PageState::kEvicting:
        put(i, evict_staging_->PageAddress(word.payload()));
        break;
      case PageState::kSwapped:
        if (!pager_->ReadSlot(word.payload(), static_cast<char*>(buffer))) {
          Log().error(
              "fork: page {} could not be read back from swap; it reads as zeros in the "
              "shared memory",
              static_cast<void*>(region->PageAddress(i)));
          break;
        }
        put(i, static_cast<const char*>(buffer));
        break;
      case PageState::kPoisoned:
        Log().error("fork: page {} was lost before; it reads as zeros in the shared memory",
                    static_cast<void*>(region->PageAddress(i)));
        break;
      default:  // EMPTY reads as zeros there too; LOADING cannot be (the region is quiesced)
        break;
    }
  }
  RawMunmap(buffer, kPageSize);
  void* mapped = RawMmap(base, bytes, region->prot, MAP_SHARED | MAP_FIXED, memfd, 0);
  close(memfd);
  FL_CHECK(mapped == base, "mapping shared memory over a shared anonymous region failed");
  pager_->ReleaseRegionSlots(*region);
  DropPins(*region, 0, region->pages.size());
  std::unique_ptr<Region> gone = writer.Take(region);
}

void Runtime::PrepareFork() noexcept {
  ShareBeforeFork();
  fork_pipe_ = fork_holds_->Begin();
  if (fork_pipe_.read_fd < 0) {
    Log().warn(
        "fork: no pipe for the child's swap-slot hold; pages the parent evicts while the "
        "child reads may be reported lost in the child");
  }
  pager_->PauseEviction();
}

void Runtime::ParentAfterFork() noexcept {
  stats_.forks.Add();
  pager_->ResumeEviction();
  fork_holds_->Watch(fork_pipe_);
  fork_pipe_ = ForkHolds::Pipe{};
}

void Runtime::ChildAfterFork() noexcept {
  ForkHolds::ChildStarted(fork_pipe_);
  pager_->MaterializeInChild(registry_);
  ForkHolds::ChildDone(fork_pipe_);
  // Nothing of the parent's runtime is used here again. Its threads do not exist in the child;
  // its descriptors are the parent's userfaultfds and rings, which the child must not touch.
  for (int fd : {uffd_, staging_uffd_, self_paging_uffd_, stop_fd_, evictor_wake_fd_,
                 mailbox_wake_fd_, swap_->fd()}) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace faultline
