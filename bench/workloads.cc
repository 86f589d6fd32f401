#include "workloads.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace faultline_bench {
namespace {

constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);

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

double TimeFirstTouch(char* base, size_t bytes) {
  uint64_t start = NowNs();
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    *static_cast<volatile char*>(base + offset) = 1;
  }
  return static_cast<double>(NowNs() - start) / 1e9;
}

double WritePages(char* base, size_t bytes, const char* label) {
  const uint64_t pages = bytes / kPage;
  ProgressTicker ticker(label, pages);
  uint64_t start = NowNs();
  for (uint64_t p = 0; p < pages; ++p) {
    auto* words = reinterpret_cast<uint64_t*>(base + p * kPage);
    uint64_t value = PagePattern(p);
    for (size_t i = 0; i < kWordsPerPage; ++i) words[i] = value;
    ticker.Tick(p);
  }
  return static_cast<double>(NowNs() - start) / 1e9;
}

}  // namespace faultline_bench
