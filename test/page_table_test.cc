// The page-state machine: transitions, counting invariant and locking (page_state.h).
#include "core/page_table.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <thread>
#include <vector>

using faultline::PageCounters;
using faultline::PageState;
using faultline::PageTable;
using faultline::PageWord;

namespace {
int64_t Total(const PageCounters& c) {
  int64_t total = 0;
  for (int s = 0; s < faultline::kPageStateCount; ++s) total += c.Get(static_cast<PageState>(s));
  return total;
}
}  // namespace

TEST_CASE("allowed transitions are exactly the documented ones", "[page_state]") {
  using S = PageState;
  CHECK(faultline::IsAllowedTransition(S::kEmpty, S::kResident));
  CHECK_FALSE(faultline::IsAllowedTransition(S::kEmpty, S::kSwapped));
  CHECK(faultline::IsAllowedTransition(S::kResident, S::kEvicting));
  CHECK(faultline::IsAllowedTransition(S::kResident, S::kSwapped));
  CHECK(faultline::IsAllowedTransition(S::kResident, S::kEmpty));
  CHECK_FALSE(faultline::IsAllowedTransition(S::kResident, S::kLoading));
  CHECK(faultline::IsAllowedTransition(S::kEvicting, S::kSwapped));
  CHECK(faultline::IsAllowedTransition(S::kEvicting, S::kResident));
  CHECK(faultline::IsAllowedTransition(S::kEvicting, S::kEmpty));
  CHECK(faultline::IsAllowedTransition(S::kSwapped, S::kLoading));
  CHECK(faultline::IsAllowedTransition(S::kSwapped, S::kEmpty));
  CHECK_FALSE(faultline::IsAllowedTransition(S::kSwapped, S::kEvicting));
  CHECK_FALSE(faultline::IsAllowedTransition(S::kSwapped, S::kResident));
  CHECK(faultline::IsAllowedTransition(S::kLoading, S::kResident));
  CHECK(faultline::IsAllowedTransition(S::kLoading, S::kPoisoned));
  CHECK(faultline::IsAllowedTransition(S::kLoading, S::kSwapped));
  CHECK_FALSE(faultline::IsAllowedTransition(S::kLoading, S::kEmpty));
  for (int to = 0; to < faultline::kPageStateCount; ++to) {
    CHECK_FALSE(faultline::IsAllowedTransition(S::kPoisoned, static_cast<S>(to)));
  }
}

TEST_CASE("transitions keep the counting invariant", "[page_table]") {
  PageCounters counters;
  {
    PageTable table(100, &counters);
    CHECK(counters.Get(PageState::kEmpty) == 100);
    PageWord w = table.Lock(7);
    table.Transition(7, w, w.With(PageState::kResident, 0));
    w = table.Lock(7);
    CHECK(w.state() == PageState::kResident);
    table.Transition(7, w, w.With(PageState::kEvicting, 3));
    w = table.Lock(7);
    table.Transition(7, w, w.With(PageState::kSwapped, 42));
    CHECK(table.Peek(7).payload() == 42);
    CHECK(counters.Get(PageState::kSwapped) == 1);
    CHECK(counters.Get(PageState::kEmpty) == 99);
    CHECK(Total(counters) == 100);
    w = table.Lock(7);
    table.Transition(7, w, w.With(PageState::kLoading, 42));
    CHECK(counters.charged() == 1);
  }
  CHECK(Total(counters) == 0);
}

TEST_CASE("a forbidden transition aborts", "[page_table]") {
  pid_t child = fork();
  if (child == 0) {
    signal(SIGABRT, SIG_DFL);  // not Catch2's handler: the abort is the expected outcome
    PageCounters counters;
    PageTable table(1, &counters);
    PageWord w = table.Lock(0);
    table.Transition(0, w, w.With(PageState::kSwapped, 1));  // EMPTY -> SWAPPED
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("the page lock excludes other threads", "[page_table]") {
  PageCounters counters;
  PageTable table(4, &counters);
  uint64_t unguarded = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        PageWord w = table.Lock(2);
        ++unguarded;
        table.Unlock(2, w);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(unguarded == 80000);
  PageWord w;
  REQUIRE(table.TryLock(1, &w));
  PageWord other;
  CHECK_FALSE(table.TryLock(1, &other));
  table.Unlock(1, w);
}
