// The swap directory's own 4 KiB read latency: the floor under any swap-in fault, faultline's or
// the kernel's, measured in the same run as they are.
#ifndef FAULTLINE_BENCH_DEVICE_READ_H_
#define FAULTLINE_BENCH_DEVICE_READ_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "timed_touch.h"

namespace faultline_bench {

// Writes `file_bytes` of data to an unnamed file in `dir` (O_TMPFILE: nothing is left behind,
// even after SIGKILL), then times `samples` O_DIRECT 4 KiB preads at queue depth 1 at page
// offsets shuffled with a fixed seed. The data is written for real (O_DIRECT writes, then
// fdatasync) because a read of an unwritten extent returns zeros without touching the device.
// On failure returns false with the reason in *why.
bool TimeDeviceReads(const std::string& dir, size_t file_bytes, size_t samples,
                     TimedTouches* result, std::string* why);

}  // namespace faultline_bench

#endif  // FAULTLINE_BENCH_DEVICE_READ_H_
