#include "workloads.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace faultline_bench {
namespace {

constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);

// The word of page `page` that the re-read phases check: it walks through the page so that the
// checks do not all hit the same cache line offset.
size_t CheckedWord(uint64_t page) { return page % kWordsPerPage; }

}  // namespace

ManagedRegion::~ManagedRegion() {
  if (base_ != nullptr) fl_unmap(base_, bytes_);
  if (running_) fl_shutdown();
}

bool ManagedRegion::Open(const Knobs& knobs, const std::string& swap_dir, size_t bytes,
                         std::string* error) {
  fl_config config;
  fl_config_init(&config);
  config.memory_limit = knobs.memory_limit;
  config.swap_path = swap_dir.c_str();
  config.fault_threads = knobs.fault_threads;
  config.evict_batch_pages = knobs.evict_batch_pages;
  config.fault_around_pages = knobs.fault_around_pages;
  config.readahead_pages = knobs.readahead_pages;
  config.spin_us = knobs.spin_us;
  int rc = fl_init(&config);
  if (rc != 0) {
    *error = std::string("fl_init: ") + fl_last_error();
    return false;
  }
  running_ = true;
  void* addr = nullptr;
  rc = fl_map_flags(bytes, knobs.map_flags, &addr);
  if (rc != 0) {
    *error = std::string("fl_map: ") + fl_last_error();
    fl_shutdown();
    running_ = false;
    return false;
  }
  base_ = static_cast<char*>(addr);
  bytes_ = bytes;
  return true;
}

fl_stats ManagedRegion::Stats() const {
  fl_stats stats{};
  fl_get_stats(&stats);
  return stats;
}

AnonRegion::~AnonRegion() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

bool AnonRegion::Open(size_t bytes, std::string* error) {
  void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) {
    *error = std::string("mmap: ") + std::strerror(errno);
    return false;
  }
  // 4 KiB pages on both sides: faultline resolves 4 KiB pages only.
  if (madvise(addr, bytes, MADV_NOHUGEPAGE) != 0) {
    *error = std::string("madvise(MADV_NOHUGEPAGE): ") + std::strerror(errno);
    munmap(addr, bytes);
    return false;
  }
  base_ = static_cast<char*>(addr);
  bytes_ = bytes;
  return true;
}

PinToCurrentCpu::PinToCurrentCpu() {
  if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) return;
  int cpu = sched_getcpu();
  if (cpu < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ok_ = sched_setaffinity(0, sizeof(one), &one) == 0;
}

PinToCurrentCpu::~PinToCurrentCpu() {
  if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
}

LatencySummary TimeEachFirstStore(char* base, size_t bytes) {
  size_t pages = bytes / kPage;
  // Value-initialised, so the vector's own pages are touched before the sweep starts.
  std::vector<uint32_t> samples(pages);
  uint64_t sweep_start = NowNs();
  for (size_t p = 0; p < pages; ++p) {
    volatile char* target = base + p * kPage;
    uint64_t start = NowNs();
    *target = 1;
    uint64_t end = NowNs();
    samples[p] = static_cast<uint32_t>(std::min<uint64_t>(end - start, UINT32_MAX));
  }
  return Summarize(&samples, NowNs() - sweep_start);
}

double TimeFirstTouch(char* base, size_t bytes) {
  uint64_t start = NowNs();
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    *static_cast<volatile char*>(base + offset) = 1;
  }
  return static_cast<double>(NowNs() - start) / 1e9;
}

PhaseResult WritePages(char* base, size_t bytes, const char* label) {
  PhaseResult result;
  result.pages = bytes / kPage;
  ProgressTicker ticker(label, result.pages);
  uint64_t start = NowNs();
  for (uint64_t p = 0; p < result.pages; ++p) {
    auto* words = reinterpret_cast<uint64_t*>(base + p * kPage);
    uint64_t value = PagePattern(p);
    for (size_t i = 0; i < kWordsPerPage; ++i) words[i] = value;
    ticker.Tick(p);
  }
  result.seconds = static_cast<double>(NowNs() - start) / 1e9;
  return result;
}

PhaseResult ReadSequential(char* base, size_t bytes, const char* label) {
  PhaseResult result;
  result.pages = bytes / kPage;
  ProgressTicker ticker(label, result.pages);
  uint64_t start = NowNs();
  for (uint64_t p = 0; p < result.pages; ++p) {
    const auto* words = reinterpret_cast<const volatile uint64_t*>(base + p * kPage);
    if (words[CheckedWord(p)] != PagePattern(p)) ++result.verify_errors;
    ticker.Tick(p);
  }
  result.seconds = static_cast<double>(NowNs() - start) / 1e9;
  return result;
}

PhaseResult ReadInOrder(char* base, const std::vector<uint32_t>& order, const char* label) {
  PhaseResult result;
  result.pages = order.size();
  ProgressTicker ticker(label, result.pages);
  uint64_t start = NowNs();
  for (uint64_t i = 0; i < order.size(); ++i) {
    uint64_t p = order[i];
    const auto* words = reinterpret_cast<const volatile uint64_t*>(base + p * kPage);
    if (words[CheckedWord(p)] != PagePattern(p)) ++result.verify_errors;
    ticker.Tick(i);
  }
  result.seconds = static_cast<double>(NowNs() - start) / 1e9;
  return result;
}

std::vector<uint32_t> ShuffledPages(size_t pages) {
  std::vector<uint32_t> order(pages);
  for (size_t i = 0; i < pages; ++i) order[i] = static_cast<uint32_t>(i);
  std::mt19937_64 random(20240601);
  std::shuffle(order.begin(), order.end(), random);
  return order;
}

void SetFaultlineCounters(const fl_stats& before, const fl_stats& after, PhaseResult* phase) {
  phase->swap_ins = after.faults_swap_in - before.faults_swap_in;
  phase->readahead_pages = after.pages_readahead - before.pages_readahead;
  phase->bytes_read = after.bytes_read - before.bytes_read;
  phase->bytes_written = after.bytes_written - before.bytes_written;
  phase->evictions = after.evictions - before.evictions;
  phase->evictions_clean = after.evictions_clean - before.evictions_clean;
  phase->direct_reclaims = after.direct_reclaims - before.direct_reclaims;
}

}  // namespace faultline_bench
