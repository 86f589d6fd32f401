// The kernel reclaiming a faultline process (a memory cgroup limit plus a kernel swap file, as for
// a program run in a container on a machine with swap) must never reach the pages faultline
// manages: faultline is their pager. Before regions were mlocked, pages the kernel had swapped out
// read back as zeros after UFFDIO_MOVE took them for eviction (docs/design.md, "Locked memory").
//
// The child runs in a memory cgroup whose limit is well above faultline's but far below what the
// child uses, because a ballast of plain anonymous memory is rewritten alongside: the kernel must
// swap all the time, and its LRU sees faultline's pages next to the ballast.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "faultline/faultline.h"
#include "kernel_swap.h"
#include "support/test_support.h"

using faultline::test::kPage;

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr uint64_t kCgroupLimit = 36 * kMiB;
constexpr uint64_t kFaultlineLimit = 16 * kMiB;
constexpr size_t kRegionBytes = 128 * kMiB;
constexpr size_t kBallastBytes = 32 * kMiB;
constexpr uint64_t kKernelSwapBytes = 512 * kMiB;
constexpr size_t kPacingBytes = 64 * 1024;

// Runs in the cgroup; the exit code is the verdict (0 every byte right, 1 wrong data, 2 setup
// failed), with the details on stderr.
[[noreturn]] void RunWorkloadInCgroup() {
  fl_config config = faultline::test::TestConfig(kFaultlineLimit);
  if (fl_init(&config) != 0) {
    std::fprintf(stderr, "fl_init: %s\n", fl_last_error());
    _exit(2);
  }
  void* region = nullptr;
  if (fl_map(kRegionBytes, &region) != 0) {
    std::fprintf(stderr, "fl_map: %s\n", fl_last_error());
    _exit(2);
  }
  void* ballast =
      mmap(nullptr, kBallastBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ballast == MAP_FAILED) {
    std::perror("mmap of the ballast");
    _exit(2);
  }
  std::atomic<bool> stop{false};
  std::thread pressure([&] {
    auto* bytes = static_cast<volatile char*>(ballast);
    // Paced: memcg v1 reclaim cannot wait for swap writeback, so a ballast faulted in at full
    // speed gets the group OOM-killed while its pages are still being written out.
    for (char pass = 1; !stop.load(std::memory_order_relaxed); ++pass) {
      for (size_t offset = 0; offset < kBallastBytes; offset += kPage) {
        bytes[offset] = pass;
        if (offset % kPacingBytes == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
  });
  std::string first_wrong;
  uint64_t wrong = faultline::test::RunOverlappingStamps(region, kRegionBytes, 4, 2, &first_wrong);
  stop.store(true);
  pressure.join();
  fl_stats stats;
  fl_get_stats(&stats);
  std::fprintf(
      stderr, "child: %llu wrong slices; faultline evictions %llu (all-zero %llu), swap-ins %llu\n",
      static_cast<unsigned long long>(wrong), static_cast<unsigned long long>(stats.evictions),
      static_cast<unsigned long long>(stats.evictions_zero),
      static_cast<unsigned long long>(stats.faults_swap_in));
  if (wrong != 0) std::fprintf(stderr, "child: first wrong: %s\n", first_wrong.c_str());
  fl_shutdown();
  _exit(wrong == 0 ? 0 : 1);
}

}  // namespace

TEST_CASE("managed pages survive the kernel reclaiming the process in a memory cgroup",
          "[kernel-reclaim]") {
  faultline::test::SkipUnlessUserfaultfd();
  if (geteuid() != 0 || access("/sys/fs/cgroup/memory", F_OK) != 0) {
    std::fprintf(stderr, "SKIP: needs root and the cgroup v1 memory controller (swapon, memcg)\n");
    std::exit(77);
  }
  faultline_bench::InstallCleanupHandlers();
  faultline_bench::KernelSwapPeer peer;
  std::string why;
  const std::string swap_dir = faultline::test::TestConfig(kFaultlineLimit).swap_path;
  bool ready = peer.Setup(swap_dir, kKernelSwapBytes, kCgroupLimit, &why);
  INFO(why);
  REQUIRE(ready);
  const uint64_t swapped_out_before = faultline_bench::ReadKernelCounters().swapped_out;
  pid_t child = peer.ForkIntoCgroup(&why);
  if (child == 0) RunWorkloadInCgroup();
  REQUIRE(child > 0);
  int status = peer.WaitForChild(child);
  const uint64_t kernel_swapped_out =
      faultline_bench::ReadKernelCounters().swapped_out - swapped_out_before;
  peer.Teardown();
  INFO("wait status " << status << "; the kernel swapped out " << kernel_swapped_out << " pages");
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Otherwise the kernel never reclaimed and the test proved nothing.
  CHECK(kernel_swapped_out * kPage >= kBallastBytes - (kCgroupLimit - kFaultlineLimit));
}
