// Logging through spdlog, to stderr, prefixed "faultline". Levels: 0 trace .. 6 off. Log only on
// control paths and rare events of the data path (I/O errors, corruption, swap full).
//
// Lines carry no timestamp: formatting one calls localtime(), whose first call allocates (tzset).
// A fault-handler thread must not allocate (under LD_PRELOAD malloc's memory may be managed by
// the very thread that would have to page it in), and spdlog formats a line of up to 250 bytes
// without allocating: keep lines logged on the data path well below that.
#ifndef FAULTLINE_LIB_UTIL_LOG_H_
#define FAULTLINE_LIB_UTIL_LOG_H_

#include <spdlog/spdlog.h>

namespace faultline {

// Sets the level; `level` < 0 reads FAULTLINE_LOG (a number or trace/debug/info/warn/error/off),
// defaulting to warn. Returns false if FAULTLINE_LOG holds something else.
bool SetLogLevel(int level);
spdlog::logger& Log();

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_LOG_H_
