#include <catch2/catch.hpp>

#include "core/eviction_policy.h"

using namespace faultline;

namespace {
void MakeResident(Region& r, uint64_t index) {
  PageWord w = r.pages.Lock(index);
  r.pages.Transition(index, w, w.With(PageState::kResident, 0));
}
}  // namespace

TEST_CASE("clock sweeps resident pages in address order, across regions", "[policy]") {
  PageCounters counters;
  RegionRegistry registry;
  Region* a = registry.Add(0x100000, 8, &counters);
  Region* b = registry.Add(0x900000, 8, &counters);
  for (uint64_t i : {1, 2, 5}) MakeResident(*a, i);
  for (uint64_t i : {0, 7}) MakeResident(*b, i);
  ClockPolicy policy;
  RegionRegistry::Reader reader(registry);
  VictimCandidate out[8];
  REQUIRE(policy.SelectVictims(reader, out, 3) == 3);
  CHECK(out[0].region == a);
  CHECK(out[0].index == 1);
  CHECK(out[1].index == 2);
  CHECK(out[2].index == 5);
  REQUIRE(policy.SelectVictims(reader, out, 8) >= 2);
  CHECK(out[0].region == b);
  CHECK(out[0].index == 0);
  CHECK(out[1].index == 7);
}

TEST_CASE("refaulted pages get a second chance; locked pages are skipped", "[policy]") {
  PageCounters counters;
  RegionRegistry registry;
  Region* a = registry.Add(0x100000, 4, &counters);
  for (uint64_t i = 0; i < 4; ++i) MakeResident(*a, i);
  ClockPolicy policy;
  policy.OnRefault(*a, 0);
  PageWord locked = a->pages.Lock(1);
  RegionRegistry::Reader reader(registry);
  VictimCandidate out[2];
  REQUIRE(policy.SelectVictims(reader, out, 2) == 2);
  CHECK(out[0].index == 2);
  CHECK(out[1].index == 3);
  REQUIRE(policy.SelectVictims(reader, out, 1) == 1);
  CHECK(out[0].index == 0);  // its second chance is used up
  a->pages.Unlock(1, locked);
}
