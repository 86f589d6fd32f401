// The page-state machine of faultline: every managed page is in exactly one state, held in one
// 64-bit word of its region's page table. This header is the one place that defines the states,
// the allowed transitions and who may perform them; PageTable::Transition() (page_table.h) is the
// one function that performs and checks them.
//
// Word layout (PageWord):
//   bits 0..2   state (PageState)
//   bit  3      LOCKED      held by one thread across at most one kernel call (COPY, MOVE, POISON,
//                           WRITEPROTECT) for this page; other threads that need the page spin
//   bit  4      REFERENCED  the page came back by a refault (swap-in); the clock policy gives it
//                           one more sweep before evicting it
//   bit  5      PINNED      pinned (fl_pin, mlock): never evicted
//   bit  6      FREEABLE    RESIDENT page the program gave up with MADV_FREE: it is
//                           write-protected; eviction drops it without I/O (-> EMPTY); a write
//                           clears the bit. Any transition clears it (With keeps only LOCKED,
//                           REFERENCED, PINNED and the readahead advice)
//   bits 7..8   ADVICE      the swap-in readahead the program advised for this page
//                           (ReadaheadAdvice: MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM); kept
//                           by every transition, like the kernel keeps it on the VMA
//   bit  9      SNAPSHOT    a snapshot (core/pager_snapshot.cc) waits for this page's bytes. On a
//                           page of the snapshotted range: RESIDENT and write-protected; its
//                           bytes are copied to the waiting snapshots before they change (write,
//                           eviction, discard, unmap), which clears the bit. On a page of a
//                           snapshot's own region: EMPTY; its bytes are the source page's. Any
//                           transition clears it.
//   bit  10     BACKED      EMPTY page of a region opened from a saved snapshot
//                           (fl_snapshot_open): its bytes are page `payload` of the region's
//                           snapshot file, read on first touch. Any transition clears it
//   bits 16..63 payload     swap slot (SWAPPED, LOADING, clean RESIDENT), staging index
//                           (EVICTING) or snapshot-file page (EMPTY + BACKED); 0 otherwise
//
// States and transitions (thread: F = fault handler, E = evictor or a fault handler reclaiming
// directly, U = the thread unmapping the region, under the registry's write lock, D = a program
// thread discarding pages: madvise(MADV_DONTNEED or MADV_FREE) through the interposer):
//
//   EMPTY     never touched, or dropped while all zero; no memory, no slot; a fault gives zeros
//             (BACKED: the page's bytes from its snapshot file).
//             -> RESIDENT (F: UFFDIO_COPY of zeros, fault-around; BACKED: of the file's page)
//             -> POISONED (F: BACKED, and the file's page fails its checksum or cannot be read)
//   RESIDENT  mapped in the region. payload = slot: clean, the slot holds the same bytes and the
//             page is write-protected (uffd-wp) so the first write is seen; payload 0: dirty.
//             -> RESIDENT (F: first write to a clean page frees its slot, payload 0)
//             -> EMPTY    (E: moved out and found all zero, or FREEABLE: no I/O)
//             -> SWAPPED  (E: clean page moved out and dropped: no I/O)
//             -> EVICTING (E: dirty page moved out to a staging buffer, write submitted; a page
//                          found in staging after a move that reported an error counts as moved)
//             -> EMPTY    (D: dropped; a clean page's slot is freed)
//             -> POISONED (F or E: a missing fault, or the move out, finds no page in the kernel
//                          (UFFDIO_POISON succeeds where a present page refuses it). Nothing of
//                          faultline's drops a RESIDENT page without its lock and a transition,
//                          and the program's MADV_DONTNEED and munmap go through D and U, so the
//                          bytes are lost: SIGBUS and a log line, never zeros)
//   EVICTING  not mapped; its bytes sit in staging buffer `payload` while the write is in flight.
//             -> RESIDENT (F: a fault copies it back from staging at once: the write result is
//                          then discarded and its slot freed)
//             -> SWAPPED  (E: write completed; payload becomes the slot)
//             -> RESIDENT (E: write failed: copied back from staging, dirty; never lost)
//             -> EMPTY    (E: write failed, and the address takes no copy back: the program
//                          unmapped it or mapped over it, which dropped its bytes)
//             -> EMPTY    (D: discarded; the write's completion finds the page changed and
//                          frees the slot it wrote)
//   SWAPPED   only in the swap file, slot `payload`, checksum in SwapStore.
//             -> LOADING  (F: swap-in or readahead read submitted)
//             -> EMPTY    (D: discarded; slot freed)
//   LOADING   read of slot `payload` in flight; faults on the page wait for the same read.
//             -> RESIDENT (F: read verified, UFFDIO_COPY)
//             -> POISONED (F: I/O error or checksum mismatch: UFFDIO_POISON, log line)
//             -> SWAPPED  (F: read verified, but the page's address no longer takes it (the
//                          program changed the mapping meanwhile); the slot keeps it)
//   POISONED  unrecoverable: access raises SIGBUS. Left only by unmapping.
//
// Any state -> gone (U: fl_unmap, or the program unmapping or moving memory through the
// interposer, which rebuilds the surviving pages into new regions; slots freed, in-flight I/O
// completes into a missing region and is discarded by its completion).
//
// Locking: a transition of a page is performed only by the thread holding its LOCKED bit
// (PageTable::Lock). LOADING and EVICTING are long-lived states, not locks: the page is unlocked
// while its I/O is in flight, and only the thread that owns the I/O completes the transition.
//
// Counting invariant (PageCounters, over all regions of the runtime):
//   empty + resident + evicting + swapped + loading + poisoned == managed pages
// and the memory limit governs `charged = resident + loading` (pages in the regions, or about to
// be once their read completes).
#ifndef FAULTLINE_LIB_CORE_PAGE_STATE_H_
#define FAULTLINE_LIB_CORE_PAGE_STATE_H_

#include <array>
#include <cstddef>
#include <cstdint>

namespace faultline {

// faultline manages 4 KiB pages (x86_64); Runtime::Init refuses other page sizes.
inline constexpr int kPageShift = 12;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;

// The readahead advice of a page (madvise NORMAL / SEQUENTIAL / RANDOM), two bits of its word.
enum class ReadaheadAdvice : uint8_t {
  kNormal = 0,      // a window that grows along a sequential stream of faults
  kSequential = 1,  // always the largest window, and drop-behind
  kRandom = 2,      // no readahead
};

enum class PageState : uint8_t {
  kEmpty = 0,
  kResident = 1,
  kEvicting = 2,
  kSwapped = 3,
  kLoading = 4,
  kPoisoned = 5,
};
inline constexpr int kPageStateCount = 6;

const char* PageStateName(PageState state) noexcept;

// Whether `from -> to` is one of the transitions documented above.
constexpr bool IsAllowedTransition(PageState from, PageState to) noexcept {
  using S = PageState;
  switch (from) {
    case S::kEmpty:
      return to == S::kResident || to == S::kPoisoned;
    case S::kResident:
      return to == S::kResident || to == S::kEmpty || to == S::kSwapped || to == S::kEvicting ||
             to == S::kPoisoned;
    case S::kEvicting:
      return to == S::kResident || to == S::kSwapped || to == S::kEmpty;
    case S::kSwapped:
      return to == S::kLoading || to == S::kEmpty;
    case S::kLoading:
      return to == S::kResident || to == S::kPoisoned || to == S::kSwapped;
    case S::kPoisoned:
      return false;
  }
  return false;
}

class PageWord {
 public:
  static constexpr uint64_t kStateMask = 0x7;
  static constexpr uint64_t kLocked = 1u << 3;
  static constexpr uint64_t kReferenced = 1u << 4;
  static constexpr uint64_t kPinned = 1u << 5;
  static constexpr uint64_t kFreeable = 1u << 6;
  static constexpr uint64_t kSnapshot = 1u << 9;
  static constexpr uint64_t kBacked = 1u << 10;
  static constexpr int kAdviceShift = 7;
  static constexpr uint64_t kAdviceMask = uint64_t{3} << kAdviceShift;
  static constexpr int kPayloadShift = 16;

  constexpr PageWord() = default;
  constexpr explicit PageWord(uint64_t raw) : raw_(raw) {}
  static constexpr PageWord Make(PageState state, uint64_t payload) {
    return PageWord((payload << kPayloadShift) | static_cast<uint64_t>(state));
  }

  constexpr uint64_t raw() const { return raw_; }
  constexpr PageState state() const { return static_cast<PageState>(raw_ & kStateMask); }
  constexpr uint64_t payload() const { return raw_ >> kPayloadShift; }
  constexpr bool locked() const { return raw_ & kLocked; }
  constexpr bool referenced() const { return raw_ & kReferenced; }
  constexpr bool pinned() const { return raw_ & kPinned; }
  constexpr bool freeable() const { return raw_ & kFreeable; }
  constexpr bool snapshot() const { return raw_ & kSnapshot; }
  constexpr bool backed() const { return raw_ & kBacked; }
  constexpr ReadaheadAdvice advice() const {
    return static_cast<ReadaheadAdvice>((raw_ & kAdviceMask) >> kAdviceShift);
  }
  // RESIDENT with a valid slot: the swap file holds the same bytes, the page is write-protected.
  constexpr bool clean() const { return state() == PageState::kResident && payload() != 0; }

  constexpr PageWord With(PageState state, uint64_t payload) const {
    return PageWord((raw_ & (kLocked | kReferenced | kPinned | kAdviceMask)) |
                    (payload << kPayloadShift) | static_cast<uint64_t>(state));
  }
  constexpr PageWord WithAdvice(ReadaheadAdvice advice) const {
    return PageWord((raw_ & ~kAdviceMask) | (static_cast<uint64_t>(advice) << kAdviceShift));
  }
  constexpr PageWord WithFlag(uint64_t flag, bool on) const {
    return PageWord(on ? (raw_ | flag) : (raw_ & ~flag));
  }

 private:
  uint64_t raw_ = 0;
};

static_assert(PageWord::Make(PageState::kSwapped, (1ull << 48) - 1).payload() == (1ull << 48) - 1);

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_PAGE_STATE_H_
