// ZeroedArray: a fixed-size array of zero-initialised trivial values in its own anonymous mapping
// (util/raw_memory.h: never managed by faultline).
// Pages are only backed once written, so an array sized for the largest case (a checksum for
// every slot of a 64 GiB swap file: 64 MiB) costs memory in proportion to what is used.
#ifndef FAULTLINE_LIB_UTIL_ZEROED_ARRAY_H_
#define FAULTLINE_LIB_UTIL_ZEROED_ARRAY_H_

#include <cstddef>
#include <new>
#include <type_traits>

#include "util/raw_memory.h"

namespace faultline {

template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Throws std::bad_alloc when the mapping cannot be made (control path only).
  explicit ZeroedArray(size_t size) : size_(size) {
    void* p = RawAnonymous(bytes());
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  ~ZeroedArray() { RawMunmap(data_, bytes()); }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }

 private:
  size_t bytes() const { return size_ == 0 ? sizeof(T) : size_ * sizeof(T); }
  size_t size_;
  T* data_;
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_ZEROED_ARRAY_H_
