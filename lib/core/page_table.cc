#include "core/page_table.h"

#include <sched.h>

#include "util/check.h"

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

PageTable::PageTable(uint64_t pages, PageCounters* counters)
    : pages_(pages), counters_(counters), words_(new std::atomic<uint64_t>[pages]) {
  for (uint64_t i = 0; i < pages; ++i) words_[i].store(0, std::memory_order_relaxed);
  counters_->Add(PageState::kEmpty, static_cast<int64_t>(pages));
}

PageTable::~PageTable() {
  for (uint64_t i = 0; i < pages_; ++i) {
    PageWord word = Peek(i);
    FL_CHECK(!word.locked(), "page table destroyed with a page locked");
    counters_->Add(word.state(), -1);
  }
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
  if (locked.state() != next.state()) {
    counters_->Add(locked.state(), -1);
    counters_->Add(next.state(), +1);
  }
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
