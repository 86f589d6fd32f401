#include "core/page_table.h"

#include <sched.h>

#include <algorithm>
#include <new>

#include "util/check.h"
#include "util/raw_memory.h"

namespace faultline {

const char* PageStateName(PageState state) noexcept {
  switch (state) {
    case PageState::kEmpty:
      return "EMPTY";
    case PageState::kResident:
      return "RESIDENT";
    case PageState::kEvicting:
      return "EVICTING";
    case PageState::kSwapped:
      return "SWAPPED";
    case PageState::kLoading:
      return "LOADING";
    case PageState::kPoisoned:
      return "POISONED";
  }
  return "?";
}

namespace {
size_t WordBytes(uint64_t pages) { return std::max<size_t>(1, pages) * sizeof(uint64_t); }
}  // namespace

// A zero word is an unlocked EMPTY page, so fresh anonymous memory is a table of EMPTY pages.
static_assert(PageWord().state() == PageState::kEmpty && !PageWord().locked());

PageTable::PageTable(uint64_t pages, PageCounters* counters) : pages_(pages), counters_(counters) {
  void* words = RawAnonymous(WordBytes(pages));
  if (words == MAP_FAILED) throw std::bad_alloc();
  words_ = static_cast<std::atomic<uint64_t>*>(words);
  counts_[static_cast<int>(PageState::kEmpty)].store(static_cast<int64_t>(pages));
  counters_->Add(PageState::kEmpty, static_cast<int64_t>(pages));
}

PageTable::~PageTable() {
  for (int state = 0; state < kPageStateCount; ++state) {
    counters_->Add(static_cast<PageState>(state), -counts_[state].load());
  }
  RawMunmap(words_, WordBytes(pages_));
}

void PageTable::Count(PageState from, PageState to) noexcept {
  if (from == to) return;
  counters_->Add(from, -1);
  counters_->Add(to, +1);
  counts_[static_cast<int>(from)].fetch_sub(1, std::memory_order_relaxed);
  counts_[static_cast<int>(to)].fetch_add(1, std::memory_order_relaxed);
}

void PageTable::Inherit(uint64_t index, PageWord word) noexcept {
  FL_CHECK(Peek(index).raw() == 0, "inheriting into a page that is not EMPTY");
  Count(PageState::kEmpty, word.state());
  words_[index].store(word.raw() & ~PageWord::kLocked, std::memory_order_release);
}

PageWord PageTable::Lock(uint64_t index) noexcept {
  std::atomic<uint64_t>& slot = words_[index];
  for (int spins = 0;; ++spins) {
    uint64_t raw = slot.load(std::memory_order_relaxed);
    if (!(raw & PageWord::kLocked) &&
        slot.compare_exchange_weak(raw, raw | PageWord::kLocked, std::memory_order_acquire,
                                   std::memory_order_relaxed)) {
      return PageWord(raw);
    }
    // The holder is inside one kernel call (a few microseconds); on 2 CPUs it may be preempted,
    // so yield after a short spin rather than burn its CPU.
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
}

bool PageTable::TryLock(uint64_t index, PageWord* word) noexcept {
  uint64_t raw = words_[index].load(std::memory_order_relaxed);
  if (raw & PageWord::kLocked) return false;
  if (!words_[index].compare_exchange_strong(
          raw, raw | PageWord::kLocked, std::memory_order_acquire, std::memory_order_relaxed)) {
    return false;
  }
  *word = PageWord(raw);
  return true;
}

void PageTable::Transition(uint64_t index, PageWord locked, PageWord next) noexcept {
  FL_CHECK(IsAllowedTransition(locked.state(), next.state()), PageStateName(next.state()));
  Count(locked.state(), next.state());
  words_[index].store(next.raw() & ~PageWord::kLocked, std::memory_order_release);
}

void PageTable::Unlock(uint64_t index, PageWord word) noexcept {
  words_[index].store(word.raw() & ~PageWord::kLocked, std::memory_order_release);
}

void PageTable::SetFlag(uint64_t index, uint64_t flag, bool on) noexcept {
  if (on) {
    words_[index].fetch_or(flag, std::memory_order_relaxed);
  } else {
    words_[index].fetch_and(~flag, std::memory_order_relaxed);
  }
}

}  // namespace faultline
