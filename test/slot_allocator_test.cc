#include "swap/slot_allocator.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace faultline {
namespace {

struct Run {
  uint64_t first;
  uint32_t length;
};

uint64_t ClusterOf(uint64_t slot) { return (slot - 1) / kSlotsPerCluster; }

Run Allocate(SwapSlotAllocator& allocator, uint32_t stream, uint32_t count) {
  uint32_t got = 12345;
  const uint64_t first = allocator.AllocateRun(stream, count, &got);
  if (first == kNoSlot) {
    CHECK(got == 0);
  } else {
    CHECK(got >= 1);
    CHECK(got <= count);
    CHECK(first + got - 1 <= allocator.total());
    CHECK(ClusterOf(first) == ClusterOf(first + got - 1));
  }
  return {first, got};
}

std::vector<Run> AllocateEverything(SwapSlotAllocator& allocator, uint32_t stream, uint32_t count) {
  std::vector<Run> runs;
  for (Run run = Allocate(allocator, stream, count); run.first != kNoSlot;
       run = Allocate(allocator, stream, count)) {
    runs.push_back(run);
  }
  return runs;
}

// Runs `body` in a child process and reports whether the child died of SIGABRT.
bool AbortsInChild(const std::function<void()>& body) {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Catch2's own SIGABRT handler would report a failure of the whole test run from the child.
    std::signal(SIGABRT, SIG_DFL);
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    body();
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

TEST_CASE("filling the allocator hands out every slot exactly once") {
  const uint64_t total =
      GENERATE(uint64_t{1}, uint64_t{511}, uint64_t{512}, uint64_t{3 * 512 + 100});
  const uint32_t count = GENERATE(1u, 64u, 512u, 1000u);
  CAPTURE(total, count);
  SwapSlotAllocator allocator(total, 2);
  CHECK(allocator.total() == total);
  CHECK(allocator.used() == 0);

  std::vector<bool> seen(total + 1, false);
  uint64_t handed_out = 0;
  for (const Run& run : AllocateEverything(allocator, 0, count)) {
    for (uint64_t slot = run.first; slot < run.first + run.length; ++slot) {
      REQUIRE_FALSE(seen[slot]);
      seen[slot] = true;
      CHECK(allocator.IsAllocated(slot));
    }
    handed_out += run.length;
  }
  CHECK(handed_out == total);
  CHECK(allocator.used() == total);
  CHECK(Allocate(allocator, 1, 1).first == kNoSlot);
  CHECK_FALSE(allocator.IsAllocated(kNoSlot));
  CHECK_FALSE(allocator.IsAllocated(total + 1));
}

TEST_CASE("one stream allocates forward through its cluster in contiguous runs") {
  SwapSlotAllocator allocator(4 * kSlotsPerCluster, 1);
  Run previous = Allocate(allocator, 0, 64);
  CHECK(previous.first == 1);
  CHECK(previous.length == 64);
  for (int i = 0; i < 7; ++i) {
    Run run = Allocate(allocator, 0, 64);
    CHECK(run.first == previous.first + previous.length);
    CHECK(run.length == 64);
    previous = run;
  }
  // The cluster is used up: the run does not cross into the next cluster, the next one starts it.
  CHECK(previous.first + previous.length - 1 == kSlotsPerCluster);
  Run next = Allocate(allocator, 0, 64);
  CHECK(ClusterOf(next.first) != 0);
}

TEST_CASE("a run stops at the end of its cluster") {
  SwapSlotAllocator allocator(2 * kSlotsPerCluster, 1);
  CHECK(Allocate(allocator, 0, 500).length == 500);
  Run tail = Allocate(allocator, 0, 64);
  CHECK(tail.first == 501);
  CHECK(tail.length == 12);
}

TEST_CASE("streams allocate in different clusters") {
  constexpr uint32_t kStreams = 4;
  SwapSlotAllocator allocator(8 * kSlotsPerCluster, kStreams);
  std::vector<Run> last(kStreams);
  std::set<uint64_t> clusters;
  for (uint32_t stream = 0; stream < kStreams; ++stream) {
    last[stream] = Allocate(allocator, stream, 16);
    clusters.insert(ClusterOf(last[stream].first));
  }
  CHECK(clusters.size() == kStreams);

  // Interleaved batches still come out contiguous per stream.
  for (int round = 0; round < 5; ++round) {
    for (uint32_t stream = 0; stream < kStreams; ++stream) {
      Run run = Allocate(allocator, stream, 16);
      CHECK(run.first == last[stream].first + last[stream].length);
      last[stream] = run;
    }
  }
}

TEST_CASE("freed slots are reused and used() follows") {
  SwapSlotAllocator allocator(4 * kSlotsPerCluster, 2);
  AllocateEverything(allocator, 0, 64);
  REQUIRE(allocator.used() == allocator.total());

  SECTION("a single slot") {
    allocator.Free(700);
    CHECK_FALSE(allocator.IsAllocated(700));
    CHECK(allocator.used() == allocator.total() - 1);
    Run run = Allocate(allocator, 1, 64);
    CHECK(run.first == 700);
    CHECK(run.length == 1);
    CHECK(allocator.used() == allocator.total());
  }

  SECTION("the longest free run of the emptiest partly used cluster") {
    allocator.FreeRun(600, 3);   // cluster 1
    allocator.FreeRun(700, 7);   // cluster 1
    allocator.FreeRun(1100, 5);  // cluster 2
    allocator.FreeRun(1500, 2);  // cluster 2
    CHECK(allocator.used() == allocator.total() - 17);
    Run run = Allocate(allocator, 1, 64);
    CHECK(run.first == 700);
    CHECK(run.length == 7);
    // The stream then stays in that cluster, moving forward, before it looks elsewhere.
    CHECK(Allocate(allocator, 1, 64).first == 1100);
    CHECK(allocator.used() == allocator.total() - 5);
  }

  SECTION("a wholly free cluster before a partly used one") {
    allocator.Free(10);
    allocator.FreeRun(3 * kSlotsPerCluster + 1, kSlotsPerCluster);
    Run run = Allocate(allocator, 1, 64);
    CHECK(run.first == 3 * kSlotsPerCluster + 1);
    CHECK(run.length == 64);
  }

  SECTION("everything") {
    allocator.FreeRun(1, static_cast<uint32_t>(allocator.total()));
    CHECK(allocator.used() == 0);
    CHECK(AllocateEverything(allocator, 1, 512).size() == 4);
  }
}

TEST_CASE("retired slots are never handed out again") {
  SwapSlotAllocator allocator(kSlotsPerCluster, 1);
  Run bad = Allocate(allocator, 0, 8);
  REQUIRE(bad.length == 8);
  allocator.RetireRun(bad.first, 8);
  CHECK(allocator.retired() == 8);
  CHECK(allocator.used() == 8);
  // Everything else can still be had, and no run ever includes a retired slot.
  std::vector<Run> runs = AllocateEverything(allocator, 0, 64);
  uint64_t got = 0;
  for (const Run& run : runs) {
    CHECK((run.first >= bad.first + 8 || run.first + run.length <= bad.first));
    got += run.length;
  }
  CHECK(got == kSlotsPerCluster - 8);
  uint32_t length = 0;
  CHECK(allocator.AllocateRun(0, 1, &length) == kNoSlot);
  allocator.FreeRun(bad.first + 8, kSlotsPerCluster - 8);
  CHECK(allocator.used() == 8);
  CHECK(allocator.IsAllocated(bad.first));
}

TEST_CASE("a shared slot is freed with its last holder") {
  SwapSlotAllocator allocator(kSlotsPerCluster, 1);
  Run run = Allocate(allocator, 0, 4);
  REQUIRE(run.length == 4);
  const uint64_t slot = run.first + 1;
  allocator.Share(slot);
  allocator.Share(slot);  // three holders
  allocator.Free(slot);
  allocator.Free(slot);
  CHECK(allocator.IsAllocated(slot));
  CHECK(allocator.used() == 4);
  allocator.Free(slot);
  CHECK_FALSE(allocator.IsAllocated(slot));
  CHECK(allocator.used() == 3);
  // Under a fork hold, the last holder's free is deferred as before.
  allocator.Share(run.first);
  allocator.BeginHold();
  allocator.Free(run.first);
  allocator.Free(run.first);
  CHECK(allocator.IsAllocated(run.first));
  allocator.EndHold();
  CHECK_FALSE(allocator.IsAllocated(run.first));
}

TEST_CASE("concurrent streams never hand out a slot twice") {
  constexpr uint32_t kThreads = 4;
  // Fewer clusters than streams, and fewer slots than the threads try to hold: streams share
  // clusters and often find the allocator full.
  constexpr uint64_t kTotal = 2 * kSlotsPerCluster + 77;
  SwapSlotAllocator allocator(kTotal, kThreads);
  std::vector<std::atomic<uint32_t>> owner(kTotal + 1);
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> full_seen{0};
  std::atomic<uint32_t> ready{0};

  auto worker = [&](uint32_t stream) {
    std::mt19937 random(stream + 1);
    std::vector<Run> held;
    ready.fetch_add(1);
    while (ready.load() < kThreads) {
    }
    for (int step = 0; step < 50000; ++step) {
      if (held.empty() || random() % 3 != 0) {
        uint32_t got = 0;
        const uint64_t first = allocator.AllocateRun(stream, 1 + random() % 64, &got);
        if (first == kNoSlot) {
          full_seen.fetch_add(1);
        } else {
          for (uint64_t slot = first; slot < first + got; ++slot) {
            if (owner[slot].exchange(stream + 1) != 0) duplicates.fetch_add(1);
          }
          held.push_back({first, got});
        }
      }
      if (!held.empty() && (random() % 3 == 0 || held.size() > 40)) {
        const size_t pick = random() % held.size();
        const Run run = held[pick];
        held[pick] = held.back();
        held.pop_back();
        for (uint64_t slot = run.first; slot < run.first + run.length; ++slot) {
          if (owner[slot].exchange(0) != stream + 1) duplicates.fetch_add(1);
        }
        if (run.length == 1) {
          allocator.Free(run.first);
        } else {
          allocator.FreeRun(run.first, run.length);
        }
      }
    }
    for (const Run& run : held) {
      for (uint64_t slot = run.first; slot < run.first + run.length; ++slot) owner[slot] = 0;
      allocator.FreeRun(run.first, run.length);
    }
  };

  std::vector<std::thread> threads;
  for (uint32_t stream = 0; stream < kThreads; ++stream) threads.emplace_back(worker, stream);
  for (auto& thread : threads) thread.join();
  CHECK(duplicates.load() == 0);
  CHECK(allocator.used() == 0);
  CHECK(full_seen.load() > 0);
  uint64_t refilled = 0;
  for (const Run& run : AllocateEverything(allocator, 0, 512)) refilled += run.length;
  CHECK(refilled == kTotal);
}

TEST_CASE("freeing a slot that is not allocated aborts") {
  CHECK(AbortsInChild([] {
    SwapSlotAllocator allocator(1024, 1);
    uint32_t got = 0;
    const uint64_t slot = allocator.AllocateRun(0, 1, &got);
    allocator.Free(slot);
    allocator.Free(slot);
  }));
  CHECK(AbortsInChild([] {
    SwapSlotAllocator allocator(1024, 1);
    allocator.Free(5);
  }));
  CHECK(AbortsInChild([] {
    SwapSlotAllocator allocator(1024, 1);
    allocator.Free(1025);
  }));
  CHECK_FALSE(AbortsInChild([] {
    SwapSlotAllocator allocator(1024, 1);
    uint32_t got = 0;
    const uint64_t slot = allocator.AllocateRun(0, 8, &got);
    allocator.FreeRun(slot, got);
  }));
}

}  // namespace
}  // namespace faultline
