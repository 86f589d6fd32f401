// Per-fault latency: several threads touch disjoint pages of one region, each access timed alone
// with NowNs(). Used for the kernel's and faultline's latency modes alike, so that both sides run
// the same loop.
#ifndef FAULTLINE_BENCH_TIMED_TOUCH_H_
#define FAULTLINE_BENCH_TIMED_TOUCH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace faultline_bench {

enum class Access {
  kStore,  // one byte stored: a first touch, resolved by a zero fill
  kLoad,   // one byte loaded: a re-touch of a page that was paged out
};

// Which pages each thread touches, in order: plan[t] belongs to thread t. The lists are disjoint.
using TouchPlan = std::vector<std::vector<uint32_t>>;

// Pages 0 .. pages-1 cut into `threads` contiguous slices, each touched in increasing order.
TouchPlan ContiguousSlices(size_t pages, uint32_t threads);

// The first page of every `stride`-page block of `stride * samples` pages, shuffled with a fixed
// seed and dealt out to `threads` threads. The untouched pages between them keep the kernel's
// swap readahead (an aligned cluster of 2^vm.page-cluster slots around the faulting one) from
// serving a later timed access out of its swap cache: every timed access is a fault of its own.
TouchPlan StridedShuffled(size_t samples, size_t stride, uint32_t threads);

// Every page of a plan, in plan order.
std::vector<uint32_t> AllPages(const TouchPlan& plan);

struct TimedTouches {
  std::vector<uint32_t> samples_ns;  // one per access, all threads together, unsorted
  uint64_t elapsed_ns = 0;           // from the common start to the end of the last thread
};

// Starts one thread per plan entry; they wait for a common start, then each touches its pages of
// `base` (4 KiB pages), timing each access alone. The threads block the cleanup signals
// (kernel_swap.h), so that a cleanup handler runs on the thread that owns the resources.
TimedTouches TimeTouches(char* base, const TouchPlan& plan, Access access);

// How many of `pages` are in memory (mapped, or in the kernel's swap cache), by mincore(2).
size_t CountResident(const char* base, const std::vector<uint32_t>& pages);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_TIMED_TOUCH_H_
