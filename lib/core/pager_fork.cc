// Fork support of the Pager (see pager.h): pausing eviction around fork() in the parent, and
// giving the child its own copy of every managed page.
//
// Why the child materializes: a child's copy of a registered range is not registered (faultline's
// userfaultfd has no UFFD_EVENT_FORK: that needs CAP_SYS_PTRACE, and would leave the child's
// faults to the parent, which may exit first). Its resident pages were copied by fork(); every
// page that was out of memory would read as zeros. So before the child runs anything else of its
// own, it reads those pages back: from the swap file (the parent holds their slots for it) or from
// its copy of the eviction staging buffers. The child then runs without a pager, its memory
// ordinary kernel memory (docs/design.md, "fork").
//
// The copy of memory the child starts from was taken at one instant while faultline's threads
// were running. Eviction is paused, so no page is half moved out; a fault being served may be
// anywhere between its UFFDIO_COPY and its state change, and a program thread may be discarding
// pages. So the child trusts what its page table (mincore) shows: a page present there is the
// page. Only missing pages are filled, from the slot or staging page their word names, and only
// if the address is still mapped.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "core/pager.h"
#include "kernel/uffd.h"
#include "kernel/uffd_abi.h"
#include "snapshot/snapshot_file.h"
#include "swap/checksum.h"
#include "util/errno_name.h"
#include "util/log.h"

namespace faultline {
namespace {

constexpr uint64_t kMincorePages = 512;

// Writes into this process's memory whatever the protection of the pages (a read-only or
// PROT_NONE page of the program's must get its contents too). Returns false when the range is not
// mapped.
bool WriteOwnMemory(int mem_fd, char* address, const char* source, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = pwrite(mem_fd, source + done, bytes - done,
                       static_cast<off_t>(reinterpret_cast<uintptr_t>(address + done)));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Poisons one page of the child: an access raises SIGBUS, as it would have in the parent. The
// child has no userfaultfd of its own; one is opened for this and kept (closing it would not
// remove the marker, but keeps nothing from going wrong either).
void PoisonInChild(char* address) {
  static int uffd = -1;
  if (uffd < 0) {
    absl::StatusOr<int> opened = uffd::Open(UFFD_FEATURE_POISON);
    if (!opened.ok()) return;
    uffd = *opened;
  }
  if (uffd::Register(uffd, address, kPageSize, UFFDIO_REGISTER_MODE_MISSING) != 0) return;
  size_t done = 0;
  uffd::Poison(uffd, address, kPageSize, true, &done);
}

}  // namespace

bool Pager::ReadSlot(uint64_t slot, char* page) const noexcept {
  return pread(r_.swap->fd(), page, kPageSize, static_cast<off_t>(r_.swap->SlotOffset(slot))) ==
             static_cast<ssize_t>(kPageSize) &&
         PageChecksum(page, kPageSize) == checksums_[slot];
}

void Pager::PauseEviction() noexcept {
  eviction_pauses_.fetch_add(1);
  while (batches_in_progress_.load() > 0) sched_yield();
}

void Pager::ResumeEviction() noexcept {
  eviction_pauses_.fetch_sub(1);
  WakeEvictorIfNeeded();
}

uint64_t Pager::MaterializeInChild(const RegionRegistry& registry) noexcept {
  int mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (mem_fd < 0) {
    Log().critical("fork: cannot open /proc/self/mem ({}); the child's evicted pages are lost",
                   ErrnoName(errno));
    return 0;
  }
  // The child's own copy of a read buffer (aligned for the swap file's O_DIRECT).
  char* buffer = r_.read_staging->ChunkAddress(0);
  const uint32_t max_run = r_.read_staging->chunk_pages();
  uint64_t pages_read = 0;

  registry.ForEachPublished([&](const Region& region) {
    unsigned char present[kMincorePages];
    for (uint64_t first = 0; first < region.pages.size(); first += kMincorePages) {
      uint64_t n = std::min<uint64_t>(kMincorePages, region.pages.size() - first);
      if (mincore(region.PageAddress(first), n << kPageShift, present) != 0) {
        // Part of the range is no longer mapped (the program was unmapping it): page by page.
        for (uint64_t i = 0; i < n; ++i) {
          if (mincore(region.PageAddress(first + i), kPageSize, present + i) != 0) {
            present[i] = 1;  // unmapped: nothing to fill
          }
        }
      }
      for (uint64_t i = 0; i < n;) {
        uint64_t index = first + i;
        PageWord word = region.pages.Peek(index);
        bool missing = !(present[i] & 1);
        if (missing && word.state() == PageState::kEmpty && word.backed()) {
          if (region.backing->ReadPageVerified(word.payload(), buffer)) {
            WriteOwnMemory(mem_fd, region.PageAddress(index), buffer, kPageSize);
          } else {
            Log().error("fork: page {} of an opened snapshot is lost in the child",
                        static_cast<void*>(region.PageAddress(index)));
            PoisonInChild(region.PageAddress(index));
          }
          ++i;
          continue;
        }
        if (missing && word.state() == PageState::kEvicting) {
          WriteOwnMemory(mem_fd, region.PageAddress(index),
                         r_.evict_staging->PageAddress(word.payload()), kPageSize);
          ++i;
          continue;
        }
        bool in_slot = word.state() == PageState::kSwapped || word.state() == PageState::kLoading;
        if (!missing || !in_slot) {
          ++i;
          continue;
        }
        // A run of missing pages in consecutive slots: one read.
        uint64_t slot = word.payload();
        uint32_t run = 1;
        while (run < max_run && i + run < n && !(present[i + run] & 1)) {
          PageWord next = region.pages.Peek(index + run);
          bool next_in_slot =
              next.state() == PageState::kSwapped || next.state() == PageState::kLoading;
          if (!next_in_slot || next.payload() != slot + run) break;
          ++run;
        }
        size_t bytes = size_t{run} << kPageShift;
        bool read_ok =
            pread(r_.swap->fd(), buffer, bytes, static_cast<off_t>(r_.swap->SlotOffset(slot))) ==
            static_cast<ssize_t>(bytes);
        for (uint32_t p = 0; p < run; ++p) {
          char* address = region.PageAddress(index + p);
          const char* page = buffer + (size_t{p} << kPageShift);
          if (read_ok && PageChecksum(page, kPageSize) == checksums_[slot + p]) {
            WriteOwnMemory(mem_fd, address, page, kPageSize);
            ++pages_read;
            continue;
          }
          Log().error(
              "fork: page {} could not be read back from swap slot {} in the child: its "
              "contents are lost and an access raises SIGBUS",
              static_cast<void*>(address), slot + p);
          PoisonInChild(address);
        }
        i += run;
      }
    }
  });
  close(mem_fd);
  return pages_read;
}

}  // namespace faultline
