#include "core/region_registry.h"

#include <algorithm>
#include <new>

#include "util/check.h"
#include "util/raw_memory.h"

namespace faultline {

RegionRegistry::RegionRegistry() {
  void* view = RawAnonymous(kViewSlots * sizeof(std::atomic<const Region*>));
  if (view == MAP_FAILED) throw std::bad_alloc();
  view_ = static_cast<std::atomic<const Region*>*>(view);
}

RegionRegistry::~RegionRegistry() {
  RawMunmap(view_, kViewSlots * sizeof(std::atomic<const Region*>));
}

Region* RegionRegistry::Reader::Find(uintptr_t addr) const {
  registry_.mutex_.AssertReaderHeld();
  auto it = registry_.by_base_.upper_bound(addr);
  if (it == registry_.by_base_.begin()) return nullptr;
  --it;
  Region* region = it->second.get();
  return region->Contains(addr) ? region : nullptr;
}

Region* RegionRegistry::Reader::FindById(RegionId id) const {
  registry_.mutex_.AssertReaderHeld();
  auto it = registry_.by_id_.find(id);
  return it == registry_.by_id_.end() ? nullptr : it->second;
}

Region* RegionRegistry::Reader::NextAfter(RegionId after) const {
  registry_.mutex_.AssertReaderHeld();
  if (registry_.by_id_.empty()) return nullptr;
  auto it = registry_.by_id_.upper_bound(after);
  if (it == registry_.by_id_.end()) it = registry_.by_id_.begin();
  return it->second;
}

Region* RegionRegistry::Reader::FirstOverlap(uintptr_t begin, uintptr_t end) const {
  registry_.mutex_.AssertReaderHeld();
  return FirstOverlapIn(registry_.by_base_, begin, end);
}

Region* RegionRegistry::Writer::FirstOverlap(uintptr_t begin, uintptr_t end) const {
  return FirstOverlapIn(registry_.by_base_, begin, end);
}

Region* RegionRegistry::FirstOverlapIn(const ByBase& regions, uintptr_t begin, uintptr_t end) {
  // An empty range overlaps nothing, not even a region that starts at `begin` (ForEachOverlap
  // ends with the range [end of the last region, end), which may be empty).
  if (begin >= end) return nullptr;
  auto it = regions.upper_bound(begin);
  if (it != regions.begin()) {
    auto previous = std::prev(it);
    if (previous->second->Contains(begin)) return previous->second.get();
  }
  return it != regions.end() && it->first < end ? it->second.get() : nullptr;
}

Region* RegionRegistry::Writer::Add(uintptr_t base, uint64_t pages, PageCounters* counters,
                                    int uffd, bool self_paging) {
  return registry_.AddLocked(base, pages, counters, uffd, self_paging);
}

std::unique_ptr<Region> RegionRegistry::Writer::Take(Region* region) {
  return registry_.TakeLocked(region);
}

Region* RegionRegistry::Add(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
                            bool self_paging) {
  absl::MutexLock lock(&mutex_);
  return AddLocked(base, pages, counters, uffd, self_paging);
}

Region* RegionRegistry::AddLocked(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
                                  bool self_paging) {
  return InsertLocked(CreateLocked(base, pages, counters, uffd, self_paging));
}

std::unique_ptr<Region> RegionRegistry::CreateLocked(uintptr_t base, uint64_t pages,
                                                     PageCounters* counters, int uffd,
                                                     bool self_paging) {
  uint32_t slot = view_free_hint_;
  for (uint32_t tried = 0; view_[slot].load(std::memory_order_relaxed) != nullptr; ++tried) {
    if (tried == kViewSlots) throw std::bad_alloc();
    slot = (slot + 1) % kViewSlots;
  }
  RegionId id = next_id_++;
  FL_CHECK(id != 0, "region ids exhausted");
  auto region = std::make_unique<Region>(id, base, pages, counters, uffd, self_paging);
  region->view_slot = slot;
  view_free_hint_ = (slot + 1) % kViewSlots;
  view_[slot].store(region.get(), std::memory_order_release);
  if (slot >= view_end_.load(std::memory_order_relaxed)) {
    view_end_.store(slot + 1, std::memory_order_release);
  }
  return region;
}

Region* RegionRegistry::InsertLocked(std::unique_ptr<Region> region) {
  Region* raw = region.get();
  RegionId id = raw->id;
  auto [it, inserted] = by_base_.emplace(raw->base, std::move(region));
  FL_CHECK(inserted, "region added twice");
  try {
    by_id_.emplace(id, raw);
  } catch (...) {
    region = std::move(it->second);
    by_base_.erase(it);
    view_[raw->view_slot].store(nullptr, std::memory_order_release);
    throw;
  }
  return raw;
}

std::unique_ptr<Region> RegionRegistry::Writer::Create(uintptr_t base, uint64_t pages,
                                                       PageCounters* counters, int uffd,
                                                       bool self_paging) {
  return registry_.CreateLocked(base, pages, counters, uffd, self_paging);
}

Region* RegionRegistry::Writer::Insert(std::unique_ptr<Region> region) {
  return registry_.InsertLocked(std::move(region));
}

void RegionRegistry::Writer::Discard(std::unique_ptr<Region> region) {
  registry_.view_[region->view_slot].store(nullptr, std::memory_order_release);
}

Region* RegionRegistry::Writer::FindById(RegionId id) const {
  auto it = registry_.by_id_.find(id);
  return it != registry_.by_id_.end() ? it->second : nullptr;
}

bool RegionRegistry::Writer::LinkSnapshot(Region* snapshot) {
  if (registry_.linked_count_ == kMaxLinkedSnapshots) return false;
  registry_.linked_[registry_.linked_count_++] = snapshot;
  return true;
}

void RegionRegistry::Writer::UnlinkSnapshot(Region* snapshot) {
  auto& linked = registry_.linked_;
  auto end = linked.begin() + registry_.linked_count_;
  auto it = std::find(linked.begin(), end, snapshot);
  if (it == end) return;
  std::move(it + 1, end, it);
  --registry_.linked_count_;
}

std::unique_ptr<Region> RegionRegistry::TakeLocked(Region* region) {
  auto it = by_base_.find(region->base);
  FL_CHECK(it != by_base_.end() && it->second.get() == region, "taking a region not registered");
  std::unique_ptr<Region> owned = std::move(it->second);
  by_base_.erase(it);
  by_id_.erase(owned->id);
  view_[owned->view_slot].store(nullptr, std::memory_order_release);
  return owned;
}

std::unique_ptr<Region> RegionRegistry::Remove(uintptr_t base, uint64_t pages) {
  absl::MutexLock lock(&mutex_);
  auto it = by_base_.find(base);
  if (it == by_base_.end() || it->second->pages.size() != pages) return nullptr;
  return TakeLocked(it->second.get());
}

std::vector<std::unique_ptr<Region>> RegionRegistry::RemoveAll() {
  absl::MutexLock lock(&mutex_);
  std::vector<std::unique_ptr<Region>> all;
  all.reserve(by_base_.size());
  while (!by_base_.empty()) all.push_back(TakeLocked(by_base_.begin()->second.get()));
  return all;
}

uint64_t RegionRegistry::count() const {
  absl::MutexLock lock(&mutex_);
  return by_base_.size();
}

}  // namespace faultline
