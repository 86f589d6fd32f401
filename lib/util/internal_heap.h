// InternalHeap: where faultline allocates what its threads touch after start-up (regions, the
// registry's nodes), instead of malloc.
//
// Under LD_PRELOAD, malloc may be an allocator (jemalloc) whose memory faultline itself manages:
// an object that a fault-handler thread reads could then sit on an evicted page that only that
// thread can bring back. The heap takes its memory from RawAnonymous (util/raw_memory.h), which
// faultline never manages. Size classes of powers of two from 32 bytes to 4 KiB, each with a free
// list, carved from 64 KiB blocks; larger requests get their own mapping. Thread-safe; memory
// goes back to the size class, never to the system (the objects are few and small).
#ifndef FAULTLINE_LIB_UTIL_INTERNAL_HEAP_H_
#define FAULTLINE_LIB_UTIL_INTERNAL_HEAP_H_

#include <cstddef>
#include <new>

namespace faultline {

// Throw std::bad_alloc when the system refuses memory (control paths only).
void* InternalAllocate(size_t bytes);
void InternalFree(void* pointer, size_t bytes) noexcept;

// A standard allocator over the internal heap, for containers faultline's threads read.
template <typename T>
struct InternalAllocator {
  using value_type = T;
  InternalAllocator() = default;
  template <typename U>
  InternalAllocator(const InternalAllocator<U>&) noexcept {}  // NOLINT: allocator rebinding
  T* allocate(size_t n) { return static_cast<T*>(InternalAllocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { InternalFree(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const InternalAllocator<U>&) const noexcept {
    return true;
  }
};

// Base class giving a type class-specific operator new/delete on the internal heap.
struct InternallyAllocated {
  static void* operator new(size_t bytes) { return InternalAllocate(bytes); }
  static void operator delete(void* pointer, size_t bytes) noexcept {
    InternalFree(pointer, bytes);
  }
};

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_INTERNAL_HEAP_H_
