// Internal access to the process's runtime for faultline's own tests and tools (not installed,
// not exported from libfaultline.so).
#ifndef FAULTLINE_LIB_API_INTERNAL_H_
#define FAULTLINE_LIB_API_INTERNAL_H_

#include "absl/status/statusor.h"
#include "core/runtime.h"

namespace faultline {

// Makes the fl_* API serve `runtime`, which the caller (the LD_PRELOAD library) owns, so that a
// program running under faultline can use snapshots, pins and advice through the API: fl_init
// then fails with -EALREADY, fl_shutdown with -EBUSY, and a forked child (which has no runtime)
// gets -ENXIO.
void ServeApiFrom(Runtime* runtime);

// Where the page at `address` is kept (state and swap slot). Fails when not running or unmanaged.
absl::StatusOr<Runtime::PageInfo> InspectManagedPage(const void* address);
// The swap file's descriptor and the file offset of a slot; -1 / error when not running.
int ManagedSwapFd();
uint64_t ManagedSwapOffset(uint64_t slot);

}  // namespace faultline

#endif  // FAULTLINE_LIB_API_INTERNAL_H_
