#include "swap/slot_allocator.h"

#include <algorithm>
#include <utility>

#include "util/check.h"

namespace faultline {
namespace {

constexpr uint32_t kWordsPerCluster = kSlotsPerCluster / 64;
static_assert(kSlotsPerCluster % 64 == 0, "a cluster is a whole number of bitmap words");

uint32_t ClusterCountFor(uint64_t total_slots) {
  FL_CHECK(total_slots > 0, "a swap slot allocator needs at least one slot");
  const uint64_t clusters = (total_slots + kSlotsPerCluster - 1) / kSlotsPerCluster;
  FL_CHECK(clusters < UINT32_MAX, "too many swap slots");
  return static_cast<uint32_t>(clusters);
}

}  // namespace

SwapSlotAllocator::SwapSlotAllocator(uint64_t total_slots, uint32_t streams)
    : total_(total_slots),
      cluster_count_(ClusterCountFor(total_slots)),
      bitmap_(static_cast<size_t>(cluster_count_) * kWordsPerCluster, 0),
      cluster_free_(cluster_count_, kSlotsPerCluster),
      cluster_owner_(cluster_count_, kNone),
      streams_(streams),
      held_frees_(bitmap_.size(), 0) {
  FL_CHECK(streams > 0, "a swap slot allocator needs at least one stream");
  absl::MutexLock lock(&mutex_);
  const uint32_t last = cluster_count_ - 1;
  cluster_free_[last] = ClusterSlots(last);
  for (uint64_t index = total_; index < uint64_t{cluster_count_} * kSlotsPerCluster; ++index) {
    bitmap_[index / 64] |= uint64_t{1} << (index % 64);
  }
  wholly_free_clusters_ = cluster_count_;
}

uint32_t SwapSlotAllocator::ClusterSlots(uint32_t cluster) const {
  const uint64_t first = uint64_t{cluster} * kSlotsPerCluster;
  return static_cast<uint32_t>(std::min<uint64_t>(kSlotsPerCluster, total_ - first));
}

// Index (within the cluster) of the first free slot at or after `from`, or kSlotsPerCluster.
uint32_t SwapSlotAllocator::FirstFree(uint32_t cluster, uint32_t from) const {
  const uint64_t* words = &bitmap_[size_t{cluster} * kWordsPerCluster];
  for (uint32_t index = from; index < kSlotsPerCluster; index = (index | 63) + 1) {
    const uint64_t free_bits = ~words[index / 64] >> (index % 64);
    if (free_bits != 0) return index + static_cast<uint32_t>(__builtin_ctzll(free_bits));
  }
  return kSlotsPerCluster;
}

// How many slots from `start` (which is free) on are free, counting at most `limit`.
uint32_t SwapSlotAllocator::FreeRunLength(uint32_t cluster, uint32_t start, uint32_t limit) const {
  const uint64_t* words = &bitmap_[size_t{cluster} * kWordsPerCluster];
  uint32_t index = start;
  while (index < kSlotsPerCluster && index - start < limit) {
    const uint64_t used_bits = words[index / 64] >> (index % 64);
    if (used_bits != 0) {
      index += static_cast<uint32_t>(__builtin_ctzll(used_bits));
      break;
    }
    index = (index | 63) + 1;
  }
  return std::min(index - start, limit);
}

uint32_t SwapSlotAllocator::FindWhollyFreeCluster(uint32_t stream) {
  if (wholly_free_clusters_ == 0) return kNone;
  for (uint32_t step = 0; step < cluster_count_; ++step) {
    const uint32_t cluster = (free_cluster_hint_ + step) % cluster_count_;
    const uint32_t owner = cluster_owner_[cluster];
    if (cluster_free_[cluster] == ClusterSlots(cluster) && (owner == kNone || owner == stream)) {
      free_cluster_hint_ = (cluster + 1) % cluster_count_;
      return cluster;
    }
  }
  return kNone;
}

// The cluster with the most free slots, preferring one no other stream allocates in.
uint32_t SwapSlotAllocator::FindMostFreeCluster(uint32_t stream) const {
  for (bool include_owned : {false, true}) {
    uint32_t best = kNone;
    for (uint32_t cluster = 0; cluster < cluster_count_; ++cluster) {
      const uint32_t owner = cluster_owner_[cluster];
      if (!include_owned && owner != kNone && owner != stream) continue;
      if (cluster_free_[cluster] > 0 &&
          (best == kNone || cluster_free_[cluster] > cluster_free_[best])) {
        best = cluster;
      }
    }
    if (best != kNone) return best;
  }
  return kNone;
}

uint64_t SwapSlotAllocator::TakeRun(uint32_t stream, uint32_t cluster, uint32_t start,
                                    uint32_t length) {
  if (cluster_free_[cluster] == ClusterSlots(cluster)) --wholly_free_clusters_;
  const uint64_t first_index = uint64_t{cluster} * kSlotsPerCluster + start;
  for (uint64_t index = first_index; index < first_index + length; ++index) {
    bitmap_[index / 64] |= uint64_t{1} << (index % 64);
  }
  cluster_free_[cluster] -= length;
  used_ += length;
  if (cluster_owner_[cluster] == stream) {
    streams_[stream].cursor = start + length;
    if (start + length == ClusterSlots(cluster)) {
      // Nothing left ahead of the cursor: let other streams take the cluster once it is free.
      cluster_owner_[cluster] = kNone;
      streams_[stream].cluster = kNone;
    }
  }
  return first_index + 1;
}

uint64_t SwapSlotAllocator::AllocateRun(uint32_t stream, uint32_t count, uint32_t* got) {
  FL_CHECK(count > 0, "AllocateRun needs a count > 0");
  absl::MutexLock lock(&mutex_);
  FL_CHECK(stream < streams_.size(), "AllocateRun: no such stream");
  *got = 0;
  if (used_ == total_) return kNoSlot;
  Stream& current = streams_[stream];

  if (current.cluster != kNone) {
    const uint32_t start = FirstFree(current.cluster, current.cursor);
    if (start < kSlotsPerCluster) {
      *got = FreeRunLength(current.cluster, start, count);
      return TakeRun(stream, current.cluster, start, *got);
    }
    cluster_owner_[current.cluster] = kNone;
    current.cluster = kNone;
  }

  uint32_t cluster = FindWhollyFreeCluster(stream);
  if (cluster != kNone) {
    cluster_owner_[cluster] = stream;
    current.cluster = cluster;
    *got = std::min(count, ClusterSlots(cluster));
    return TakeRun(stream, cluster, 0, *got);
  }

  cluster = FindMostFreeCluster(stream);
  FL_CHECK(cluster != kNone, "swap slot counts disagree with the cluster free counts");
  uint32_t best_start = 0;
  uint32_t best_length = 0;
  for (uint32_t start = FirstFree(cluster, 0); start < kSlotsPerCluster;) {
    const uint32_t length = FreeRunLength(cluster, start, kSlotsPerCluster);
    if (length > best_length) {
      best_start = start;
      best_length = length;
    }
    start = FirstFree(cluster, start + length);
  }
  if (cluster_owner_[cluster] == kNone) {
    cluster_owner_[cluster] = stream;
    current.cluster = cluster;
  }
  *got = std::min(count, best_length);
  return TakeRun(stream, cluster, best_start, *got);
}

void SwapSlotAllocator::ReleaseLocked(uint64_t slot) {
  FL_CHECK(slot != kNoSlot && slot <= total_, "freeing a swap slot that does not exist");
  const uint64_t index = slot - 1;
  const uint64_t bit = uint64_t{1} << (index % 64);
  FL_CHECK((bitmap_[index / 64] & bit) != 0, "freeing a swap slot that is not allocated");
  bitmap_[index / 64] &= ~bit;
  const auto cluster = static_cast<uint32_t>(index / kSlotsPerCluster);
  if (++cluster_free_[cluster] == ClusterSlots(cluster)) ++wholly_free_clusters_;
  --used_;
}

void SwapSlotAllocator::Share(uint64_t slot) {
  absl::MutexLock lock(&mutex_);
  FL_CHECK(slot != kNoSlot && slot <= total_ &&
               (bitmap_[(slot - 1) / 64] & (uint64_t{1} << ((slot - 1) % 64))) != 0,
           "sharing a swap slot that is not allocated");
  ++extra_holders_[slot];
}

void SwapSlotAllocator::ReserveShares(uint64_t count) {
  absl::MutexLock lock(&mutex_);
  extra_holders_.reserve(extra_holders_.size() + count);
}

void SwapSlotAllocator::FreeLocked(uint64_t slot) {
  if (!extra_holders_.empty()) {
    // Erasing from the map does not allocate.
    auto it = extra_holders_.find(slot);
    if (it != extra_holders_.end()) {
      if (--it->second == 0) extra_holders_.erase(it);
      return;
    }
  }
  if (holds_ == 0) {
    ReleaseLocked(slot);
    return;
  }
  FL_CHECK(slot != kNoSlot && slot <= total_, "freeing a swap slot that does not exist");
  const uint64_t index = slot - 1;
  const uint64_t bit = uint64_t{1} << (index % 64);
  FL_CHECK((bitmap_[index / 64] & bit) != 0 && (held_frees_[index / 64] & bit) == 0,
           "freeing a swap slot that is not allocated");
  held_frees_[index / 64] |= bit;
}

void SwapSlotAllocator::Free(uint64_t slot) {
  absl::MutexLock lock(&mutex_);
  FreeLocked(slot);
}

void SwapSlotAllocator::FreeRun(uint64_t first, uint32_t count) {
  absl::MutexLock lock(&mutex_);
  for (uint32_t i = 0; i < count; ++i) FreeLocked(first + i);
}

void SwapSlotAllocator::RetireRun(uint64_t first, uint32_t count) {
  absl::MutexLock lock(&mutex_);
  for (uint64_t slot = first; slot < first + count; ++slot) {
    FL_CHECK(slot != kNoSlot && slot <= total_ &&
                 (bitmap_[(slot - 1) / 64] & (uint64_t{1} << ((slot - 1) % 64))) != 0,
             "retiring a swap slot that is not allocated");
    FL_CHECK(extra_holders_.empty() || !extra_holders_.contains(slot),
             "retiring a shared swap slot");
  }
  retired_ += count;
}

void SwapSlotAllocator::BeginHold() {
  absl::MutexLock lock(&mutex_);
  ++holds_;
}

void SwapSlotAllocator::EndHold() {
  absl::MutexLock lock(&mutex_);
  FL_CHECK(holds_ > 0, "ending a fork hold that was not begun");
  if (--holds_ > 0) return;
  for (size_t word = 0; word < held_frees_.size(); ++word) {
    for (uint64_t bits = std::exchange(held_frees_[word], 0); bits != 0; bits &= bits - 1) {
      ReleaseLocked(word * 64 + static_cast<uint64_t>(__builtin_ctzll(bits)) + 1);
    }
  }
}

bool SwapSlotAllocator::IsAllocated(uint64_t slot) const {
  if (slot == kNoSlot || slot > total_) return false;
  absl::MutexLock lock(&mutex_);
  const uint64_t index = slot - 1;
  return (bitmap_[index / 64] >> (index % 64)) & 1;
}

uint64_t SwapSlotAllocator::used() const {
  absl::MutexLock lock(&mutex_);
  return used_;
}

uint64_t SwapSlotAllocator::retired() const {
  absl::MutexLock lock(&mutex_);
  return retired_;
}

}  // namespace faultline
