// PageTable: one PageWord per page of a region (8 bytes per 4 KiB page), and the one function that
// changes a page's state. See page_state.h for the states, transitions and locking rules.
#ifndef FAULTLINE_LIB_CORE_PAGE_TABLE_H_
#define FAULTLINE_LIB_CORE_PAGE_TABLE_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "core/page_state.h"

namespace faultline {

// Pages per state over all regions of a runtime. Atomic because every fault-handler thread and
// the evictor update them; relaxed ordering suffices: they are statistics and limit estimates, the
// page words themselves carry the synchronisation.
class PageCounters {
 public:
  void Add(PageState state, int64_t delta) noexcept {
    counts_[static_cast<int>(state)].fetch_add(delta, std::memory_order_relaxed);
  }
  int64_t Get(PageState state) const noexcept {
    return counts_[static_cast<int>(state)].load(std::memory_order_relaxed);
  }
  // Pages that count against the memory limit: mapped, or about to be (their read is in flight).
  int64_t charged() const noexcept { return Get(PageState::kResident) + Get(PageState::kLoading); }

 private:
  std::array<std::atomic<int64_t>, kPageStateCount> counts_{};
};

class PageTable {
 public:
  // All pages start EMPTY and are counted in `counters`. The words live in their own mapping
  // (util/raw_memory.h), backed only where touched: a large reservation that is never used costs
  // no memory. Throws std::bad_alloc when the mapping cannot be made.
  PageTable(uint64_t pages, PageCounters* counters);
  // Takes the pages out of `counters` in whatever state they are. REQUIRES: no page locked.
  ~PageTable();
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  uint64_t size() const { return pages_; }

  // An unlocked snapshot of the word; may be stale by the time it is used.
  PageWord Peek(uint64_t index) const noexcept {
    return PageWord(words_[index].load(std::memory_order_acquire));
  }

  // Sets the LOCKED bit, spinning (then yielding) while another thread holds it. Returns the word
  // as it was when locked (without LOCKED).
  PageWord Lock(uint64_t index) noexcept;
  // Like Lock, but gives up at once when the page is locked; returns false then.
  bool TryLock(uint64_t index, PageWord* word) noexcept;

  // Extends a run of locked pages: try-locks pages first, first+1, ... while `matches(word, i)`
  // (i counting from 0) and fewer than `max` are taken, storing their words in words[i]. Stops at
  // the first page that is locked elsewhere or does not match (left unlocked). Returns the count.
  template <typename Matches>
  uint32_t TryLockRun(uint64_t first, uint32_t max, PageWord* words, Matches matches) noexcept {
    uint32_t count = 0;
    while (count < max && first + count < pages_) {
      PageWord word;
      if (!TryLock(first + count, &word)) break;
      if (!matches(word, count)) {
        Unlock(first + count, word);
        break;
      }
      words[count++] = word;
    }
    return count;
  }

  // Performs `locked.state() -> next` (aborting on a transition page_state.h does not allow),
  // updates the counters and releases the lock. REQUIRES: the caller holds the lock and `locked`
  // is the word Lock() returned (flags may differ only as set by this function).
  void Transition(uint64_t index, PageWord locked, PageWord next) noexcept;
  // Releases the lock without changing the state (flags in `word` are kept).
  void Unlock(uint64_t index, PageWord word) noexcept;

  // Sets or clears a flag bit without the lock (REFERENCED is a hint; races are harmless).
  void SetFlag(uint64_t index, uint64_t flag, bool on) noexcept;

  // Gives an EMPTY page of a table that no other thread can reach yet the state `word` (unlocked),
  // as when a region is rebuilt from another one's pages (Runtime, reshaping a region).
  void Inherit(uint64_t index, PageWord word) noexcept;

  // Pages of this table in `state` (a recent value: other threads change them).
  int64_t Count(PageState state) const noexcept {
    return counts_[static_cast<int>(state)].load(std::memory_order_relaxed);
  }

 private:
  void Count(PageState from, PageState to) noexcept;

  const uint64_t pages_;
  PageCounters* const counters_;
  std::atomic<uint64_t>* words_;
  std::array<std::atomic<int64_t>, kPageStateCount> counts_{};
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_CORE_PAGE_TABLE_H_
