// The fault path of the Pager: what a fault-handler thread does with one fault message, and the
// completion of the swap reads it starts. Transitions performed here (page_state.h):
// EMPTY -> RESIDENT, RESIDENT -> RESIDENT (first write), RESIDENT -> POISONED (missing from the
// kernel), EVICTING -> RESIDENT (rescue), SWAPPED -> LOADING, LOADING -> RESIDENT | POISONED.
#include <linux/userfaultfd.h>
#include <sys/mman.h>

#include <algorithm>

#include "core/pager.h"
#include "kernel/uffd.h"
#include "snapshot/snapshot_file.h"
#include "swap/checksum.h"
#include "util/check.h"
#include "util/errno_name.h"
#include "util/log.h"

namespace faultline {
namespace {

constexpr uint32_t kMaxPagesPerFault = 512;

}  // namespace

size_t CopyIn(int uffd, char* dst, const char* src, size_t len, bool write_protect) noexcept {
  size_t total = 0;
  while (total < len) {
    size_t done = 0;
    int rc = uffd::Copy(uffd, dst + total, src + total, len - total, write_protect, &done);
    total += done;
    if (rc == 0) break;
    if (rc == -EAGAIN) continue;
    if (rc == -EEXIST) {
      uffd::Wake(uffd, dst + total, kPageSize);
      total += kPageSize;
      continue;
    }
    if (rc != -ENOENT && rc != -ESRCH) {
      Log().error("UFFDIO_COPY to {} failed: {}", static_cast<void*>(dst + total), ErrnoName(rc));
    }
    break;
  }
  return std::min(total, len);
}

void Pager::HandleFault(IoContext& ctx, const RegionRegistry::Reader& regions, uintptr_t address,
                        uint64_t flags, uint64_t start_ns) noexcept {
  uintptr_t page = address & ~(uintptr_t{kPageSize} - 1);
  Region* region = regions.Find(page);
  if (region == nullptr) {
    // Unmapped while the fault was queued: let the thread retry against the new address space.
    uffd::Wake(r_.uffd, reinterpret_cast<void*>(page), kPageSize);
    return;
  }
  uint64_t index = (page - region->base) >> kPageShift;
  if (flags & UFFD_PAGEFAULT_FLAG_WP) {
    // A snapshot waiting for the page gets a copy of it: room first, as for a missing page.
    if (region->pages.Peek(index).snapshot()) EnsureRoom(ctx, regions, 1);
    HandleWriteProtect(regions, *region, index, start_ns);
  } else {
    HandleMissing(ctx, regions, *region, index, flags & UFFD_PAGEFAULT_FLAG_WRITE, start_ns);
  }
}

Pager::SigbusAction Pager::ResolveOnFaultingThread(const RegionRegistry::Reader& regions,
                                                   Region& region, uint64_t index, bool write,
                                                   uint64_t start_ns,
                                                   uint64_t* forward_flags) noexcept {
  *forward_flags = write ? UFFD_PAGEFAULT_FLAG_WRITE : 0;
  PageWord peek = region.pages.Peek(index);
  if (peek.state() == PageState::kPoisoned) return SigbusAction::kPoisoned;
  if (peek.state() == PageState::kResident && write && peek.snapshot()) {
    // A snapshot waits for the page's bytes: the copy may need reclaim, a handler's job. Sent
    // as the write-protect fault it is, not as a missing page (which a handler only wakes).
    *forward_flags |= UFFD_PAGEFAULT_FLAG_WP;
    return SigbusAction::kForward;
  }
  if (peek.state() == PageState::kResident && (peek.clean() || peek.freeable()) && write) {
    HandleWriteProtect(regions, region, index, start_ns);
    r_.stats->faults_self_paged.Add();
    return SigbusAction::kResolved;
  }
  // Zero fill only while it needs no reclaim: evicting takes an io_uring ring, which belongs to a
  // fault-handler thread.
  if (peek.state() != PageState::kEmpty || peek.backed() ||
      r_.counters->charged() >= static_cast<int64_t>(config_.limit_pages)) {
    return SigbusAction::kForward;
  }
  PageWord word;
  if (!region.pages.TryLock(index, &word)) return SigbusAction::kForward;
  if (word.state() != PageState::kEmpty || word.backed()) {
    region.pages.Unlock(index, word);
    return SigbusAction::kForward;
  }
  ZeroFill(region, index, word, start_ns);
  r_.stats->faults_self_paged.Add();
  return SigbusAction::kResolved;
}

void Pager::HandleMissing(IoContext& ctx, const RegionRegistry::Reader& regions, Region& region,
                          uint64_t index, bool write, uint64_t start_ns) noexcept {
  if (region.snapshot_source != 0 && region.pages.Peek(index).snapshot()) {
    FillSnapshotPage(regions, region, index);  // then served as the page it has become
  }
  // Make room and take a read buffer before taking the page: both may wait for I/O, and no page
  // lock may be held while waiting (another thread may need it to finish its own I/O).
  PageState expected = region.pages.Peek(index).state();
  if (expected == PageState::kEmpty || expected == PageState::kSwapped ||
      expected == PageState::kEvicting) {
    EnsureRoom(ctx, regions, 1);
  }
  int chunk = -1;
  PageWord word;
  for (;;) {
    if (chunk < 0 && region.pages.Peek(index).state() == PageState::kSwapped) {
      chunk = AcquireReadChunk(ctx, regions);
    }
    word = region.pages.Lock(index);
    if (word.state() != PageState::kSwapped || chunk >= 0) break;
    region.pages.Unlock(index, word);
  }
  if (word.state() == PageState::kSwapped) {
    StartSwapIn(ctx, region, index, word, write, chunk, start_ns);
    return;
  }
  if (chunk >= 0) r_.read_staging->Release(chunk);
  char* address = region.PageAddress(index);
  switch (word.state()) {
    case PageState::kEmpty:
      if (word.backed()) {
        LoadBacked(region, index, word, start_ns);
      } else {
        ZeroFill(region, index, word, start_ns);
      }
      return;
    case PageState::kSwapped:  // served above
      return;
    case PageState::kEvicting: {
      // The page's bytes are in the eviction staging buffer while the write is in flight: serve
      // the fault from there at once; the write's completion sees the page RESIDENT and frees
      // the slot it was writing.
      const char* staged = r_.evict_staging->PageAddress(word.payload());
      r_.stats->faults_in_flight_rescue.Add();
      if (CopyIn(region.uffd, address, staged, kPageSize, false) != kPageSize) {
        // The address takes no copy (the program changed the mapping meanwhile): the page stays
        // EVICTING, and its write's completion keeps it in its slot. RESIDENT here would be a
        // page missing from the kernel that faultline counts as present.
        region.pages.Unlock(index, word);
        uffd::Wake(region.uffd, address, kPageSize);
        return;
      }
      region.pages.Transition(index, word, word.With(PageState::kResident, 0));
      r_.stats->fault_latency.Record(MonotonicNanos() - start_ns);
      return;
    }
    case PageState::kResident:
      // Usually a second fault on a page resolved meanwhile: the page is there, and the poison
      // attempt only finds it (EEXIST). A page that is not there was lost; SIGBUS, not zeros.
      if (!PoisonIfMissing(region, index, word, "a fault")) {
        uffd::Wake(region.uffd, address, kPageSize);
        region.pages.Unlock(index, word);
      }
      return;
    case PageState::kLoading:
      // The read in flight resolves this fault too: its UFFDIO_COPY wakes every waiter.
      region.pages.Unlock(index, word);
      return;
    case PageState::kPoisoned: {
      // Poisoned already (EEXIST) when another thread did it: a fault queued before that still
      // waits, and is woken here.
      size_t done = 0;
      if (uffd::Poison(region.uffd, address, kPageSize, true, &done) != 0) {
        uffd::Wake(region.uffd, address, kPageSize);
      }
      region.pages.Unlock(index, word);
      return;
    }
  }
}

void Pager::HandleWriteProtect(const RegionRegistry::Reader& regions, Region& region,
                               uint64_t index, uint64_t start_ns) noexcept {
  PageWord word = region.pages.Lock(index);
  char* address = region.PageAddress(index);
  if (word.state() != PageState::kResident) {
    // Moved out after the fault was raised; the retried write faults as MISSING.
    region.pages.Unlock(index, word);
    uffd::Wake(region.uffd, address, kPageSize);
    return;
  }
  // Snapshots taken since the page was last written keep its bytes as they are now.
  word = CopyToSnapshots(regions, region, index, word, address);
  r_.stats->faults_write_protect.Add();
  // Un-protecting wakes the writer. A page already dirty means another thread's fault on it was
  // served first: un-protecting again is harmless and wakes this one.
  uffd::WriteProtect(region.uffd, address, kPageSize, false);
  if (word.clean()) {
    r_.slots->Free(word.payload());
    region.pages.Transition(index, word, word.With(PageState::kResident, 0));
  } else {
    // A write cancels MADV_FREE.
    region.pages.Unlock(index, word.WithFlag(PageWord::kFreeable, false));
  }
  r_.stats->fault_latency.Record(MonotonicNanos() - start_ns);
}

void Pager::ZeroFill(Region& region, uint64_t index, PageWord word, uint64_t start_ns) noexcept {
  uint32_t window = RoomFor(
      region.zero_fill_window.Next(index, std::min(config_.fault_around_pages, kMaxPagesPerFault)));
  PageWord words[kMaxPagesPerFault];
  words[0] = word;
  uint32_t count =
      1 + region.pages.TryLockRun(index + 1, window - 1, words + 1, [](PageWord w, uint32_t) {
        return w.state() == PageState::kEmpty && !w.snapshot() && !w.backed();
      });
  r_.stats->faults_zero_fill.Add();
  size_t copied = CopyIn(region.uffd, region.PageAddress(index), r_.zero_source,
                         size_t{count} * kPageSize, false);
  if (copied == 0 && count > 1) {
    // The window crosses into another mapping (the program changed the protection of part of
    // the region, or unmapped it): resolve the faulting page alone.
    for (uint32_t i = 1; i < count; ++i) region.pages.Unlock(index + i, words[i]);
    count = 1;
    copied = CopyIn(region.uffd, region.PageAddress(index), r_.zero_source, kPageSize, false);
  }
  uint32_t resolved = static_cast<uint32_t>(copied >> kPageShift);
  for (uint32_t i = 0; i < count; ++i) {
    if (i < resolved) {
      region.pages.Transition(index + i, words[i], words[i].With(PageState::kResident, 0));
    } else {
      region.pages.Unlock(index + i, words[i]);
    }
  }
  region.zero_fill_window.Resolved(index, count);
  if (resolved > 1) r_.stats->pages_fault_around.Add(resolved - 1);
  r_.stats->fault_latency.Record(MonotonicNanos() - start_ns);
  WakeEvictorIfNeeded();
}

void Pager::LoadBacked(Region& region, uint64_t index, PageWord word, uint64_t start_ns) noexcept {
  // A plain read on this thread: a page of a saved snapshot is read once, on its first touch.
  alignas(kPageSize) static thread_local char page[kPageSize];
  char* address = region.PageAddress(index);
  if (!region.backing->ReadPageVerified(word.payload(), page)) {
    Log().error(
        "page {} of an opened snapshot (file page {}) is lost: it fails its checksum or cannot "
        "be read; an access raises SIGBUS",
        static_cast<void*>(address), word.payload());
    r_.stats->checksum_errors.Add();
    region.pages.Transition(index, word, word.With(PageState::kPoisoned, 0));
    size_t done = 0;
    uffd::Poison(region.uffd, address, kPageSize, true, &done);
    return;
  }
  r_.stats->bytes_read.Add(kPageSize);
  r_.stats->faults_swap_in.Add();
  if (CopyIn(region.uffd, address, page, kPageSize, false) != kPageSize) {
    region.pages.Unlock(index, word);  // the address takes no copy: the page stays in its file
    uffd::Wake(region.uffd, address, kPageSize);
    return;
  }
  region.pages.Transition(index, word, word.With(PageState::kResident, 0));
  r_.stats->fault_latency.Record(MonotonicNanos() - start_ns);
  WakeEvictorIfNeeded();
}

int Pager::AcquireReadChunk(IoContext& ctx, const RegionRegistry::Reader& regions) noexcept {
  // Only this thread's own buffers: when all are taken, each holds one of its reads in flight,
  // which it finishes here. A buffer of another thread's would be waited for under the registry's
  // read lock, while that thread needs the lock anew to finish its read: with a writer queued
  // (absl::Mutex then lets no new reader in), a deadlock (docs/design.md, "Lock order").
  int chunk;
  while ((chunk = r_.read_staging->Acquire(ctx.thread_index)) < 0) {
    FL_CHECK(WaitForOwnIo(ctx, regions), "every read buffer is taken, none by a read in flight");
  }
  return chunk;
}

void Pager::StartSwapIn(IoContext& ctx, Region& region, uint64_t index, PageWord word, bool write,
                        int chunk, uint64_t start_ns, bool prefetch) noexcept {
  uint64_t slot = word.payload();
  const uint32_t max_window = std::min(config_.readahead_pages, r_.read_staging->chunk_pages());
  const ReadaheadAdvice advice = word.advice();
  uint32_t window = 1;
  switch (prefetch ? ReadaheadAdvice::kSequential : advice) {
    case ReadaheadAdvice::kRandom:
      window = 1;
      break;
    case ReadaheadAdvice::kSequential:
      window = max_window;
      break;
    case ReadaheadAdvice::kNormal:
      window = region.swap_in_window.Next(index, max_window);
      break;
  }
  window = RoomFor(window);
  // Readahead follows the region forward while the next pages sit in the next slots and, unless
  // prefetching, have the same advice (the kernel's readahead stops at the end of the VMA the
  // advice split off): one read.
  PageWord words[kMaxPagesPerFault];
  words[0] = word;
  uint32_t count = 1 + region.pages.TryLockRun(index + 1, window - 1, words + 1,
                                               [slot, advice, prefetch](PageWord w, uint32_t i) {
                                                 return w.state() == PageState::kSwapped &&
                                                        w.payload() == slot + 1 + i &&
                                                        (prefetch || w.advice() == advice);
                                               });
  for (uint32_t i = 0; i < count; ++i) {
    region.pages.Transition(index + i, words[i], words[i].With(PageState::kLoading, slot + i));
  }
  region.swap_in_window.Resolved(index, count);
  const uint64_t fault_index = prefetch ? UINT64_MAX : index;
  read_ops_[chunk] = ReadOp{region.id, index, count, slot, fault_index, write, start_ns};
  char* buffer = r_.read_staging->ChunkAddress(chunk);
  uint64_t user_data = MakeUserData(IoKind::kRead, static_cast<uint64_t>(chunk));
  while (!ctx.ring->QueueRead(r_.swap->fd(), buffer, count << kPageShift, r_.swap->SlotOffset(slot),
                              user_data)) {
    ctx.ring->Submit();
  }
  int rc = ctx.ring->Submit();
  FL_CHECK(rc >= 0, "io_uring submit of a swap read failed");
  if (prefetch) {
    r_.stats->pages_prefetched.Add(count);
    return;
  }
  if (advice == ReadaheadAdvice::kSequential) {
    // Drop-behind: the stream has reached `index`, so the window before it was read in order and
    // will not be needed again soon; it leaves memory before anything else. Nor does the refault
    // earn the page a second chance: the kernel's reclaim likewise ignores the accessed bits of
    // MADV_SEQUENTIAL memory.
    if (index >= max_window) r_.policy->MarkCold(region, index - max_window, index);
  } else {
    r_.policy->OnRefault(region, index);
  }
  r_.stats->faults_swap_in.Add();
  if (count > 1) r_.stats->pages_readahead.Add(count - 1);
}

void Pager::FinishRead(const RegionRegistry::Reader& regions, int chunk, int32_t result) noexcept {
  const ReadOp op = read_ops_[chunk];
  const char* buffer = r_.read_staging->ChunkAddress(chunk);
  Region* region = regions.FindById(op.region);
  if (region != nullptr) {
    bool io_ok = result == static_cast<int32_t>(op.count << kPageShift);
    if (io_ok) {
      r_.stats->bytes_read.Add(static_cast<uint64_t>(result));
    } else {
      r_.stats->io_errors.Add();
    }
    uint32_t run_start = 0;
    for (uint32_t i = 0; i < op.count; ++i) {
      bool good = io_ok && PageChecksum(buffer + (size_t{i} << kPageShift), kPageSize) ==
                               checksums_[op.first_slot + i];
      if (good) continue;
      InstallLoaded(*region, op, buffer, run_start, i - run_start);
      if (io_ok) r_.stats->checksum_errors.Add();
      PoisonLoaded(*region, op, i,
                   io_ok ? "checksum mismatch" : ErrnoName(result < 0 ? result : EIO));
      run_start = i + 1;
    }
    InstallLoaded(*region, op, buffer, run_start, op.count - run_start);
  }
  r_.read_staging->Release(chunk);
}

void Pager::InstallLoaded(Region& region, const ReadOp& op, const char* staging, uint32_t from,
                          uint32_t count) noexcept {
  if (count == 0) return;
  PageWord words[kMaxPagesPerFault];
  for (uint32_t i = 0; i < count; ++i) {
    words[i] = region.pages.Lock(op.first_index + from + i);
    FL_CHECK(
        words[i].state() == PageState::kLoading && words[i].payload() == op.first_slot + from + i,
        "page changed while its read was in flight");
  }
  // Pages are installed write-protected (clean: the slot keeps a valid copy), except the page of
  // a write fault, which is dirty at once and gets no write-protect fault on top.
  uint32_t end = from + count;
  bool fault_in_run =
      op.fault_index >= op.first_index + from && op.fault_index < op.first_index + end;
  uint32_t dirty_at =
      fault_in_run && op.write_fault ? static_cast<uint32_t>(op.fault_index - op.first_index) : end;
  auto install = [&](uint32_t first, uint32_t n, bool clean) {
    if (n == 0) return;
    size_t copied = CopyIn(region.uffd, region.PageAddress(op.first_index + first),
                           staging + (size_t{first} << kPageShift), size_t{n} << kPageShift, clean);
    for (uint32_t p = first; p < first + n; ++p) {
      PageWord w = words[p - from];
      uint64_t slot = w.payload();
      size_t offset = size_t{p - first} << kPageShift;
      // A run that crosses into another mapping (the program changed part of the region's
      // protection meanwhile) is installed page by page; a page whose address takes no copy at
      // all stays in its slot.
      if (offset >= copied && CopyIn(region.uffd, region.PageAddress(op.first_index + p),
                                     staging + (size_t{p} << kPageShift), kPageSize, clean) == 0) {
        region.pages.Transition(op.first_index + p, w, w.With(PageState::kSwapped, slot));
        continue;
      }
      if (!clean) r_.slots->Free(slot);
      region.pages.Transition(op.first_index + p, w,
                              w.With(PageState::kResident, clean ? slot : 0));
    }
  };
  if (dirty_at < end) {
    install(from, dirty_at - from, true);
    install(dirty_at, 1, false);
    install(dirty_at + 1, end - dirty_at - 1, true);
  } else {
    install(from, count, true);
  }
  if (fault_in_run) r_.stats->fault_latency.Record(MonotonicNanos() - op.start_ns);
  WakeEvictorIfNeeded();
}

void Pager::PoisonLoaded(Region& region, const ReadOp& op, uint32_t position,
                         const char* why) noexcept {
  uint64_t index = op.first_index + position;
  PageWord word = region.pages.Lock(index);
  FL_CHECK(word.state() == PageState::kLoading, "poisoning a page that is not loading");
  char* address = region.PageAddress(index);
  Log().error(
      "page {} could not be read back from swap slot {}: {}; it is lost, and an access "
      "raises SIGBUS",
      static_cast<void*>(address), word.payload(), why);
  r_.slots->Free(word.payload());
  // POISONED before the poison wakes its waiters (stats.h); a fault in between poisons too.
  region.pages.Transition(index, word, word.With(PageState::kPoisoned, 0));
  size_t done = 0;
  uffd::Poison(region.uffd, address, kPageSize, true, &done);
}

bool Pager::PoisonIfMissing(Region& region, uint64_t index, PageWord word,
                            const char* where) noexcept {
  char* address = region.PageAddress(index);
  size_t done = 0;
  // The poison is the test: the kernel refuses it (EEXIST) for a page that is there. Waiters are
  // woken only once the page is POISONED and counted.
  if (uffd::Poison(region.uffd, address, kPageSize, false, &done) != 0) return false;
  Log().error(
      "page {} is missing from memory although faultline holds it resident (found by {}); its "
      "bytes are lost, and an access raises SIGBUS",
      static_cast<void*>(address), where);
  if (word.clean()) r_.slots->Free(word.payload());
  region.pages.Transition(index, word, word.With(PageState::kPoisoned, 0));
  uffd::Wake(region.uffd, address, kPageSize);
  return true;
}

}  // namespace faultline
