// What the kernel reports about this process's memory (/proc/self/status, /proc/self/stat,
// /proc/self/smaps): an account independent of faultline's own counters, for the demo, the tools
// and the tests.
#ifndef FAULTLINE_LIB_UTIL_PROC_MEMORY_H_
#define FAULTLINE_LIB_UTIL_PROC_MEMORY_H_

#include <cstdint>

namespace faultline {

struct ProcMemory {
  uint64_t vsz_bytes = 0;
  uint64_t rss_bytes = 0;
  uint64_t minor_faults = 0;
  uint64_t major_faults = 0;
};

// Reads VmSize, VmRSS and the fault counters; fields it cannot read stay 0.
ProcMemory ReadProcMemory();

// Resident bytes of the mapping that starts exactly at `start` (its "Rss:" in smaps), or -1 when
// no mapping starts there.
int64_t SmapsRssOf(const void* start);

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_PROC_MEMORY_H_
