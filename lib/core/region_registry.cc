#include "core/region_registry.h"

#include "util/check.h"

namespace faultline {

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

Region* RegionRegistry::Add(uintptr_t base, uint64_t pages, PageCounters* counters, int uffd,
                            bool self_paging) {
  absl::MutexLock lock(&mutex_);
  RegionId id = next_id_++;
  FL_CHECK(id != 0, "region ids exhausted");
  auto region = std::make_unique<Region>(id, base, pages, counters, uffd, self_paging);
  Region* raw = region.get();
  auto [it, inserted] = by_base_.emplace(base, std::move(region));
  FL_CHECK(inserted, "region added twice");
  by_id_.emplace(id, raw);
  return raw;
}

std::unique_ptr<Region> RegionRegistry::Remove(uintptr_t base, uint64_t pages) {
  absl::MutexLock lock(&mutex_);
  auto it = by_base_.find(base);
  if (it == by_base_.end() || it->second->pages.size() != pages) return nullptr;
  std::unique_ptr<Region> region = std::move(it->second);
  by_base_.erase(it);
  by_id_.erase(region->id);
  return region;
}

std::map<uintptr_t, std::unique_ptr<Region>> RegionRegistry::RemoveAll() {
  absl::MutexLock lock(&mutex_);
  by_id_.clear();
  return std::exchange(by_base_, {});
}

uint64_t RegionRegistry::count() const {
  absl::MutexLock lock(&mutex_);
  return by_base_.size();
}

}  // namespace faultline
