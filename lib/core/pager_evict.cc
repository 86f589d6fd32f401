// Eviction: taking a batch of resident pages out of memory, and the completion of their writes.
// Transitions performed here (page_state.h): RESIDENT -> SWAPPED (clean), RESIDENT -> EMPTY (all
// zero), RESIDENT -> EVICTING (write submitted), RESIDENT -> POISONED (missing from the kernel),
// EVICTING -> SWAPPED (written), EVICTING -> RESIDENT (write failed: put back).
//
// Why UFFDIO_MOVE: moving a page out of the region is atomic with respect to the program's
// threads. A write that lands before the move is in the moved page; an access after it faults,
// and the fault is served from the staging buffer (EVICTING rescue). No write can fall between a
// copy and a drop, which a memcpy + MADV_DONTNEED scheme would have to prevent with
// write-protection first, and the move itself costs no copy (KERNEL.md: 0.94 us per page).
#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/pager.h"
#include "kernel/uffd.h"
#include "swap/checksum.h"
#include "util/check.h"
#include "util/errno_name.h"
#include "util/log.h"
#include "util/raw_memory.h"

namespace faultline {
namespace {
constexpr uint32_t kMaxBatch = 512;

// UFFDIO_MOVE refuses (EINVAL) a source whose protection differs from the eviction staging
// area's rw-: a JIT's rwx code (a JVM's code cache), memory the program made read-only with
// mprotect, or a run that crosses from one such mapping into another. Those pages leave by copy
// instead: write-protect them (a store now waits in a write-protect fault, which cannot be served
// while this thread holds the page locks), copy them into staging with process_vm_readv, which
// stops with an error where a page cannot be read (mprotect'ed PROT_NONE) instead of faulting,
// and drop them. A page that came back later is installed by UFFDIO_COPY, which takes any
// protection. Pages after the copied ones stay; those whose word does not need write protection
// (dirty, not freeable, no snapshot waiting) lose it again, so that a self-paging region's
// SIGBUS handler never meets a protected dirty page. Returns the bytes, from the first page, that
// left the region. REQUIRES: pages [index, index + count) are locked RESIDENT, with `words`.
size_t EvictByCopy(Region& region, uint64_t index, uint32_t count, const PageWord* words,
                   char* staging) noexcept {
  char* source = region.PageAddress(index);
  const size_t bytes = size_t{count} << kPageShift;
  if (uffd::WriteProtect(region.uffd, source, bytes, true) != 0) return 0;
  iovec local{staging, bytes};
  iovec remote{source, bytes};
  ssize_t read = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  size_t copied = read > 0 ? static_cast<size_t>(read) & ~(size_t{kPageSize} - 1) : 0;
  if (copied > 0) RawMadvise(source, copied, MADV_DONTNEED_LOCKED);
  for (uint32_t p = static_cast<uint32_t>(copied >> kPageShift); p < count; ++p) {
    if (!words[p].clean() && !words[p].freeable() && !words[p].snapshot()) {
      uffd::WriteProtect(region.uffd, region.PageAddress(index + p), kPageSize, false);
    }
  }
  return copied;
}

// Whether a page of the eviction staging area holds a page. A chunk is empty when taken
// (StagingArea::Release discards it), and only this batch's moves and copies fill it; mincore
// looks at the page table without touching the page.
bool StagingPagePresent(char* staging_page) noexcept {
  unsigned char present = 0;
  return mincore(staging_page, kPageSize, &present) == 0 && (present & 1) != 0;
}
}  // namespace

uint32_t Pager::LockVictims(const RegionRegistry::Reader& regions, VictimCandidate* candidates,
                            uint32_t count, PageWord* words) noexcept {
  (void)regions;
  // With every slot in use (or retired after failed writes), a dirty page could only be moved
  // out and copied back: only clean and MADV_FREE'd pages can leave. (An all-zero dirty page
  // could too, but telling one costs the move.)
  const bool swap_full = r_.slots->used() == r_.slots->total();
  uint32_t locked = 0;
  for (uint32_t i = 0; i < count; ++i) {
    VictimCandidate c = candidates[i];
    PageWord word;
    if (c.region->reshaping.load(std::memory_order_relaxed)) continue;
    if (!c.region->pages.TryLock(c.index, &word)) continue;
    if (word.state() != PageState::kResident || word.pinned() ||
        (swap_full && !word.clean() && !word.freeable())) {
      c.region->pages.Unlock(c.index, word);
      continue;
    }
    candidates[locked] = c;
    words[locked] = word;
    ++locked;
  }
  return locked;
}

uint32_t Pager::ReclaimBatch(IoContext& ctx, const RegionRegistry::Reader& regions, uint32_t want,
                             bool* staging_busy, const VictimCandidate* chosen,
                             uint32_t chosen_count) noexcept {
  uint32_t batch = std::min({want, config_.evict_batch_pages, kMaxBatch});
  if (batch == 0) return 0;
  batches_in_progress_.fetch_add(1);
  struct BatchEnd {
    std::atomic<int>& in_progress;
    ~BatchEnd() { in_progress.fetch_sub(1); }
  } batch_end{batches_in_progress_};
  if (eviction_pauses_.load() > 0) return 0;
  int chunk = r_.evict_staging->Acquire(0);
  if (chunk < 0) {
    if (staging_busy != nullptr) *staging_busy = true;
    return 0;
  }
  VictimCandidate victims[kMaxBatch];
  PageWord words[kMaxBatch];
  uint32_t count;
  if (chosen != nullptr) {
    count = std::min(chosen_count, batch);
    std::copy_n(chosen, count, victims);
  } else {
    count = static_cast<uint32_t>(r_.policy->SelectVictims(regions, victims, batch));
  }
  count = LockVictims(regions, victims, count, words);
  if (count == 0) {
    r_.evict_staging->Release(chunk);
    return 0;
  }
  char* staging = r_.evict_staging->ChunkAddress(chunk);
  auto staged = [&](uint32_t p) { return staging + (size_t{p} << kPageShift); };

  // 1. Move out, one UFFDIO_MOVE per run of adjacent pages; by copy where the protection differs
  //    from staging's (EvictByCopy). A page that can leave neither way (EBUSY: pinned by I/O in
  //    flight, or shared with a child after fork; PROT_NONE) stays resident. A page that is not
  //    there at all (ENOENT: a hole, which UFFDIO_MOVE no longer skips) was lost: poisoned.
  bool moved[kMaxBatch];
  bool lost[kMaxBatch];
  std::fill_n(moved, count, false);
  std::fill_n(lost, count, false);
  for (uint32_t first = 0; first < count;) {
    uint32_t end = first + 1;
    while (end < count && victims[end].region == victims[first].region &&
           victims[end].index == victims[end - 1].index + 1) {
      ++end;
    }
    uint32_t p = first;
    if (victims[first].region->read_only) {
      // A snapshot's region: nothing writes to it, so a copy then a discard moves the pages out
      // as surely as UFFDIO_MOVE would (which refuses a read-only source).
      Region& region = *victims[first].region;
      size_t bytes = size_t{end - first} << kPageShift;
      std::memcpy(staged(first), region.PageAddress(victims[first].index), bytes);
      RawMadvise(region.PageAddress(victims[first].index), bytes, MADV_DONTNEED_LOCKED);
      std::fill(moved + first, moved + end, true);
      p = end;
    }
    while (p < end) {
      size_t done = 0;
      Region& region = *victims[p].region;
      const size_t bytes = size_t{end - p} << kPageShift;
      int rc = uffd::Move(r_.staging_uffd, staged(p), region.PageAddress(victims[p].index), bytes,
                          &done);
      const bool by_move = !(rc == -EINVAL && done == 0);
      if (!by_move) {
        done = EvictByCopy(region, victims[p].index, end - p, words + p, staged(p));
        rc = done == bytes ? 0 : -EFAULT;
      }
      uint32_t pages = static_cast<uint32_t>(done >> kPageShift);
      std::fill_n(moved + p, pages, true);
      p += pages;
      if (rc == 0) break;
      // (Not after a copy: a copy that stopped fills staging without taking the page away.)
      if (by_move && rc != -EAGAIN && StagingPagePresent(staged(p))) {
        // The page is in staging although the move was not reported: its bytes are there, and
        // the region no longer has them (a retried move would find a hole and poison it). Taken
        // as moved.
        Log().info("page {} reached staging although UFFDIO_MOVE reported {}: taken as moved",
                   static_cast<void*>(region.PageAddress(victims[p].index)), ErrnoName(rc));
        moved[p] = true;
        ++p;
        continue;
      }
      if (rc == -ENOENT && PoisonIfMissing(region, victims[p].index, words[p], "eviction")) {
        lost[p] = true;  // a hole where a resident page should be: poisoned, never zeros
        ++p;
      } else if (rc != -EAGAIN) {
        // This page cannot leave now: it stays resident.
        Log().debug("page {} stays resident: {}",
                    static_cast<void*>(region.PageAddress(victims[p].index)), ErrnoName(rc));
        ++p;
      }
    }
    first = end;
  }

  // 2. Classify: clean pages and all-zero pages need no I/O; the others get slots.
  WriteBatch& writes = write_batches_[chunk];
  writes.writes = 0;
  uint32_t left = 0;
  uint64_t run_slot = kNoSlot;
  uint32_t run_left = 0;
  uint32_t dirty_left = 0;
  bool zero[kMaxBatch];
  for (uint32_t p = 0; p < count; ++p) {
    // Snapshots waiting for a page get its bytes before it leaves.
    if (moved[p]) {
      words[p] =
          CopyToSnapshots(regions, *victims[p].region, victims[p].index, words[p], staged(p));
    }
    zero[p] =
        moved[p] && !words[p].clean() && !words[p].freeable() && IsZeroPage(staged(p), kPageSize);
    if (moved[p] && !words[p].clean() && !words[p].freeable() && !zero[p]) ++dirty_left;
  }
  for (uint32_t p = 0; p < count; ++p) {
    Region& region = *victims[p].region;
    uint64_t index = victims[p].index;
    PageWord word = words[p];
    if (lost[p]) continue;  // POISONED and unlocked already
    if (!moved[p]) {
      region.pages.Unlock(index, word);
      continue;
    }
    if (word.freeable()) {
      // MADV_FREE'd and not written since: dropped, as the kernel would under pressure.
      if (word.clean()) r_.slots->Free(word.payload());
      region.pages.Transition(index, word, word.With(PageState::kEmpty, 0));
      r_.stats->pages_freed.Add();
      ++left;
      continue;
    }
    if (word.clean()) {
      region.pages.Transition(index, word, word.With(PageState::kSwapped, word.payload()));
      r_.stats->evictions_clean.Add();
      ++left;
      continue;
    }
    if (zero[p]) {
      region.pages.Transition(index, word, word.With(PageState::kEmpty, 0));
      r_.stats->evictions_zero.Add();
      ++left;
      continue;
    }
    if (run_left == 0) {
      uint32_t got = 0;
      run_slot = r_.slots->AllocateRun(ctx.thread_index, dirty_left, &got);
      run_left = got;
    }
    if (run_slot == kNoSlot) {
      // Swap full: the page goes back where it was; nothing is lost, the limit gives.
      PutBack(region, index, word, staged(p));
      r_.stats->swap_full_events.Add();
      if (!swap_full_logged_.exchange(true)) {
        Log().warn("the swap file is full ({} slots): dirty pages stay in memory, over the limit",
                   r_.slots->total());
      }
      continue;
    }
    uint64_t slot = run_slot++;
    --run_left;
    --dirty_left;
    checksums_[slot] = PageChecksum(staged(p), kPageSize);
    WriteRun* last = writes.writes > 0 ? &writes.write[writes.writes - 1] : nullptr;
    const EvictVictim* prev =
        last != nullptr ? &writes.victim[last->first + last->count - 1] : nullptr;
    if (last != nullptr && last->first + last->count == p && prev->slot + 1 == slot) {
      ++last->count;
    } else {
      writes.write[writes.writes++] = WriteRun{p, 1};
    }
    writes.victim[p] = EvictVictim{region.id, index, slot};
    uint64_t staging_index = r_.evict_staging->PageIndexOf(staged(p));
    region.pages.Transition(index, word, word.With(PageState::kEvicting, staging_index));
    ++left;
  }
  r_.stats->evictions.Add(left);

  // 3. Write each run of adjacent staging pages with adjacent slots in one I/O.
  writes.writes_pending = writes.writes;
  if (writes.writes == 0) {
    ReleaseWriteChunk(chunk);
    return left;
  }
  for (uint32_t w = 0; w < writes.writes; ++w) {
    const WriteRun& run = writes.write[w];
    uint64_t slot = writes.victim[run.first].slot;
    uint64_t user_data = MakeUserData(IoKind::kWrite, (static_cast<uint64_t>(chunk) << 16) | w);
    while (!ctx.ring->QueueWrite(r_.swap->fd(), staged(run.first), run.count << kPageShift,
                                 r_.swap->SlotOffset(slot), user_data)) {
      ctx.ring->Submit();
    }
  }
  int rc = ctx.ring->Submit();
  FL_CHECK(rc >= 0, "io_uring submit of swap writes failed");
  return left;
}

void Pager::FinishWrite(const RegionRegistry::Reader& regions, int chunk, uint32_t write,
                        int32_t result) noexcept {
  WriteBatch& batch = write_batches_[chunk];
  const WriteRun run = batch.write[write];
  char* staging = r_.evict_staging->ChunkAddress(chunk);
  bool ok = result == static_cast<int32_t>(run.count << kPageShift);
  if (ok) {
    r_.stats->bytes_written.Add(static_cast<uint64_t>(result));
  } else {
    // The run's slots are retired, not freed: handed out again they would fail again (a bad
    // block, a hole in a full file system), and every later batch would pay for it.
    r_.stats->io_errors.Add();
    r_.slots->RetireRun(batch.victim[run.first].slot, run.count);
    const uint64_t failed = failed_writes_.fetch_add(1, std::memory_order_relaxed) + 1;
    if ((failed & (failed - 1)) == 0) {
      Log().error(
          "swap write of {} pages failed ({}): the pages stay in memory and their slots are "
          "not used again ({} failed writes, {} of {} slots retired so far)",
          run.count, result < 0 ? ErrnoName(result) : "short write", failed, r_.slots->retired(),
          r_.slots->total());
    }
  }
  for (uint32_t p = run.first; p < run.first + run.count; ++p) {
    const EvictVictim& victim = batch.victim[p];
    Region* region = regions.FindById(victim.region);
    char* staged = staging + (size_t{p} << kPageShift);
    uint64_t staging_index = r_.evict_staging->PageIndexOf(staged);
    PageWord word;
    if (region != nullptr) word = region->pages.Lock(victim.index);
    if (region == nullptr || word.state() != PageState::kEvicting ||
        word.payload() != staging_index) {
      // Unmapped, or rescued by a fault meanwhile (the page is back in memory and dirty).
      if (region != nullptr) region->pages.Unlock(victim.index, word);
      if (ok) r_.slots->Free(victim.slot);
    } else if (ok) {
      region->pages.Transition(victim.index, word, word.With(PageState::kSwapped, victim.slot));
    } else {
      PutBack(*region, victim.index, word, staged);
    }
  }
  if (--batch.writes_pending == 0) ReleaseWriteChunk(chunk);
}

void Pager::PutBack(Region& region, uint64_t index, PageWord word,
                    const char* staging_page) noexcept {
  size_t done = 0;
  int rc;
  do {
    rc = uffd::Copy(region.uffd, region.PageAddress(index), staging_page, kPageSize, false, &done);
  } while (rc == -EAGAIN);
  FL_CHECK(rc == 0 || rc == -ENOENT || rc == -ESRCH, "putting an evicted page back failed");
  if (rc != 0) {
    // The address takes no copy: the program unmapped it or mapped something else over it
    // (ENOENT), or is exiting (ESRCH). Its old bytes went with that mapping; RESIDENT here would
    // be a page faultline counts as present that the kernel does not have.
    Log().debug("page {} could not be put back ({}): the program replaced its mapping",
                static_cast<void*>(region.PageAddress(index)), ErrnoName(rc));
    region.pages.Transition(index, word, word.With(PageState::kEmpty, 0));
    return;
  }
  region.pages.Transition(index, word, word.With(PageState::kResident, 0));
}

void Pager::ReleaseWriteChunk(int chunk) noexcept { r_.evict_staging->Release(chunk); }

}  // namespace faultline
