// faultline C++ API: RAII over the C API in faultline.h. Everything here is inline and calls only
// the C API, so it carries no ABI of its own.
//
//   faultline::Runtime runtime(faultline::Config().memory_limit(128 << 20));
//   faultline::Region region(512 << 20);   // managed, zero-filled on first touch
//   std::span<std::byte> bytes = region.bytes();
//   faultline::Stats stats = runtime.stats();
//
// Failures throw faultline::Error (a std::system_error carrying the errno and fl_last_error()'s
// text). Destructors never throw.
#ifndef FAULTLINE_FAULTLINE_HPP_
#define FAULTLINE_FAULTLINE_HPP_

#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "faultline/faultline.h"

namespace faultline {

class Error : public std::system_error {
 public:
  explicit Error(int negative_errno)
      : std::system_error(-negative_errno, std::generic_category(), fl_last_error()) {}
};

inline void ThrowIfError(int rc) {
  if (rc < 0) throw Error(rc);
}

class Config {
 public:
  Config() { fl_config_init(&config_); }
  Config& memory_limit(uint64_t bytes) {
    config_.memory_limit = bytes;
    return *this;
  }
  // The string must outlive the Runtime's construction.
  Config& swap_path(const char* path) {
    config_.swap_path = path;
    return *this;
  }
  Config& max_swap(uint64_t bytes) {
    config_.max_swap = bytes;
    return *this;
  }
  Config& fault_threads(uint32_t n) {
    config_.fault_threads = n;
    return *this;
  }
  Config& evict_batch_pages(uint32_t n) {
    config_.evict_batch_pages = n;
    return *this;
  }
  Config& fault_around_pages(uint32_t n) {
    config_.fault_around_pages = n;
    return *this;
  }
  Config& readahead_pages(uint32_t n) {
    config_.readahead_pages = n;
    return *this;
  }
  Config& spin_us(int32_t us) {
    config_.spin_us = us;
    return *this;
  }
  Config& log_level(int32_t level) {
    config_.log_level = level;
    return *this;
  }
  const fl_config& get() const { return config_; }

 private:
  fl_config config_;
};

using Stats = fl_stats;

// The process's runtime: fl_init() in the constructor, fl_shutdown() in the destructor.
class Runtime {
 public:
  explicit Runtime(const Config& config) { ThrowIfError(fl_init(&config.get())); }
  ~Runtime() { fl_shutdown(); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Stats stats() const {
    Stats s;
    ThrowIfError(fl_get_stats(&s));
    return s;
  }
};

// A managed region: fl_map_flags() in the constructor, fl_unmap() in the destructor. Movable.
// `flags`: FL_MAP_* (faultline.h).
class Region {
 public:
  explicit Region(size_t bytes, unsigned flags = 0) : size_(bytes) {
    ThrowIfError(fl_map_flags(bytes, flags, &data_));
  }
  ~Region() { reset(); }
  Region(Region&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Region& operator=(Region&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {static_cast<std::byte*>(data_), size_}; }
  // Unmaps now (the destructor does nothing afterwards).
  void reset() noexcept {
    if (data_ != nullptr) fl_unmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace faultline

#endif  // FAULTLINE_FAULTLINE_HPP_
