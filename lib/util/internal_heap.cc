#include "util/internal_heap.h"

#include <array>
#include <bit>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "util/raw_memory.h"

namespace faultline {
namespace {

constexpr size_t kMinClassBytes = 32;
constexpr size_t kMaxClassBytes = 4096;
constexpr size_t kBlockBytes = 64 * 1024;
constexpr int kClassCount = std::countr_zero(kMaxClassBytes) - std::countr_zero(kMinClassBytes) + 1;

struct FreeNode {
  FreeNode* next;
};

// Constant-initialised, so usable before and after static constructors and destructors run.
ABSL_CONST_INIT absl::Mutex heap_mutex(absl::kConstInit);
ABSL_CONST_INIT std::array<FreeNode*, kClassCount> free_lists ABSL_GUARDED_BY(heap_mutex) = {};

int ClassOf(size_t bytes) {
  size_t rounded = std::bit_ceil(bytes < kMinClassBytes ? kMinClassBytes : bytes);
  return std::countr_zero(rounded) - std::countr_zero(kMinClassBytes);
}

size_t RoundToPages(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }

}  // namespace

void* InternalAllocate(size_t bytes) {
  if (bytes > kMaxClassBytes) {
    void* p = RawAnonymous(RoundToPages(bytes));
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
  }
  int cls = ClassOf(bytes);
  size_t class_bytes = kMinClassBytes << cls;
  absl::MutexLock lock(&heap_mutex);
  if (free_lists[cls] == nullptr) {
    void* block = RawAnonymous(kBlockBytes);
    if (block == MAP_FAILED) throw std::bad_alloc();
    char* base = static_cast<char*>(block);
    for (size_t offset = kBlockBytes; offset >= class_bytes; offset -= class_bytes) {
      auto* node = reinterpret_cast<FreeNode*>(base + offset - class_bytes);
      node->next = free_lists[cls];
      free_lists[cls] = node;
    }
  }
  FreeNode* node = free_lists[cls];
  free_lists[cls] = node->next;
  return node;
}

void InternalFree(void* pointer, size_t bytes) noexcept {
  if (pointer == nullptr) return;
  if (bytes > kMaxClassBytes) {
    RawMunmap(pointer, RoundToPages(bytes));
    return;
  }
  int cls = ClassOf(bytes);
  absl::MutexLock lock(&heap_mutex);
  auto* node = static_cast<FreeNode*>(pointer);
  node->next = free_lists[cls];
  free_lists[cls] = node;
}

}  // namespace faultline
