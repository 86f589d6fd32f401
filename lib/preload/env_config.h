// Configuration of a program run under faultline, from its environment (issue 3), shared by the
// preload library and the `faultline run` command (which sets these variables):
//   FAULTLINE_LIMIT       required: bytes with an optional K, M, G or T suffix (powers of 1024,
//                         "KiB" etc. accepted too), or a percentage of physical memory ("25%")
//   FAULTLINE_SWAP_DIR    an existing directory for the swap file (default: $TMPDIR, else /var/tmp)
//   FAULTLINE_MIN_REGION  smallest anonymous mapping that is managed, a size as above (default 1M)
//   FAULTLINE_STATS       path of the JSON summary written at exit (default: none)
//   FAULTLINE_LOG         the log level; the library's logger reads it (util/log.h)
//
// Contract: nothing here allocates (the preload library runs this before, and instead of, the
// malloc it may interpose); errors are one line naming the variable and the value, written into
// a caller-provided buffer.
#ifndef FAULTLINE_LIB_PRELOAD_ENV_CONFIG_H_
#define FAULTLINE_LIB_PRELOAD_ENV_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace faultline {

struct PreloadConfig {
  uint64_t limit_bytes = 0;
  const char* swap_dir = nullptr;  // nullptr: the library's default
  uint64_t min_region_bytes = 0;
  const char* stats_path = nullptr;  // nullptr: no summary
};

inline constexpr uint64_t kDefaultMinRegionBytes = uint64_t{1} << 20;

// Parses "<digits>[K|M|G|T][i][B]" (case-insensitive suffix), or, when total_ram > 0,
// "<digits>[.<digits>]%" of total_ram. Returns false, leaving *bytes alone, for anything else,
// for 0, and on overflow.
bool ParseSize(std::string_view text, uint64_t total_ram, uint64_t* bytes);

// Reads the variables above through `lookup` (getenv, or a test's table). Returns false with a
// one-line reason in error[0..error_size) when a value is invalid or FAULTLINE_LIMIT is missing.
using EnvLookup = const char* (*)(const char* name);
bool ReadPreloadConfig(EnvLookup lookup, uint64_t total_ram, PreloadConfig* config, char* error,
                       size_t error_size);

}  // namespace faultline

#endif  // FAULTLINE_LIB_PRELOAD_ENV_CONFIG_H_
