// Logging through spdlog, to stderr, prefixed "faultline". Levels: 0 trace .. 6 off. Log only on
// control paths and rare events of the data path (I/O errors, corruption, swap full): a log call
// formats and may allocate.
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
