#include "preload/env_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "util/errno_name.h"

namespace faultline {
namespace {

// Consumes leading decimal digits into *value; false when there are none or on overflow.
bool ConsumeDigits(std::string_view* text, uint64_t* value, int* digits) {
  uint64_t v = 0;
  int n = 0;
  while (!text->empty() && (*text)[0] >= '0' && (*text)[0] <= '9') {
    uint64_t digit = static_cast<uint64_t>((*text)[0] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
    ++n;
    text->remove_prefix(1);
  }
  *value = v;
  *digits = n;
  return n > 0;
}

// 128 bits: RAM in bytes times millionths of a percent overflows 64 bits above 180 GiB.
__extension__ typedef unsigned __int128 Uint128;

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool ParsePercent(std::string_view text, uint64_t total_ram, uint64_t* bytes) {
  text.remove_suffix(1);  // '%'
  uint64_t whole = 0;
  int digits = 0;
  if (!ConsumeDigits(&text, &whole, &digits)) return false;
  // Fraction in millionths of a percent: enough for any RAM size, no floating point.
  uint64_t micro = 0;
  if (!text.empty() && text[0] == '.') {
    text.remove_prefix(1);
    uint64_t fraction = 0;
    int fraction_digits = 0;
    if (!ConsumeDigits(&text, &fraction, &fraction_digits) || fraction_digits > 6) return false;
    micro = fraction;
    for (int i = fraction_digits; i < 6; ++i) micro *= 10;
  }
  if (!text.empty() || whole > 100 || (whole == 100 && micro > 0)) return false;
  Uint128 total = static_cast<Uint128>(total_ram) * (whole * 1000000 + micro) / 100000000;
  if (total == 0) return false;
  *bytes = static_cast<uint64_t>(total);
  return true;
}

// snprintf into the caller's buffer: no allocation.
template <typename... Args>
bool Fail(char* error, size_t error_size, const char* format, Args... args) {
  if (error_size > 0) std::snprintf(error, error_size, format, args...);
  return false;
}

}  // namespace

bool ParseSize(std::string_view text, uint64_t total_ram, uint64_t* bytes) {
  if (!text.empty() && text.back() == '%') {
    return total_ram > 0 && ParsePercent(text, total_ram, bytes);
  }
  uint64_t value = 0;
  int digits = 0;
  if (!ConsumeDigits(&text, &value, &digits)) return false;
  int shift = 0;
  if (!text.empty()) {
    switch (Lower(text[0])) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      case 'b':
        shift = -1;
        break;  // a bare "B": bytes
      default:
        return false;
    }
    text.remove_prefix(1);
    if (shift > 0) {
      if (!text.empty() && Lower(text[0]) == 'i') text.remove_prefix(1);
      if (!text.empty() && Lower(text[0]) == 'b') text.remove_prefix(1);
    } else {
      shift = 0;
    }
  }
  if (!text.empty() || value == 0) return false;
  if (shift > 0 && value > (UINT64_MAX >> shift)) return false;
  *bytes = value << shift;
  return true;
}

bool ReadPreloadConfig(EnvLookup lookup, uint64_t total_ram, PreloadConfig* config, char* error,
                       size_t error_size) {
  PreloadConfig c;
  const char* limit = lookup("FAULTLINE_LIMIT");
  if (limit == nullptr || *limit == '\0') {
    return Fail(error, error_size,
                "FAULTLINE_LIMIT is not set: give the memory limit, e.g. 128M or 25%%");
  }
  if (!ParseSize(limit, total_ram, &c.limit_bytes)) {
    return Fail(error, error_size,
                "FAULTLINE_LIMIT=%s is not a size: use bytes with an optional K, M, G or T "
                "suffix (128M), or a percentage of RAM up to 100%% (25%%)",
                limit);
  }
  const char* min_region = lookup("FAULTLINE_MIN_REGION");
  c.min_region_bytes = kDefaultMinRegionBytes;
  if (min_region != nullptr && *min_region != '\0' &&
      !ParseSize(min_region, 0, &c.min_region_bytes)) {
    return Fail(error, error_size,
                "FAULTLINE_MIN_REGION=%s is not a size: use bytes with an optional K, M, G or T "
                "suffix (1M)",
                min_region);
  }
  const char* swap_dir = lookup("FAULTLINE_SWAP_DIR");
  if (swap_dir != nullptr && *swap_dir != '\0') {
    struct stat st {};
    if (stat(swap_dir, &st) != 0) {
      return Fail(error, error_size, "FAULTLINE_SWAP_DIR=%s: %s", swap_dir,
                  ErrnoDescription(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return Fail(error, error_size, "FAULTLINE_SWAP_DIR=%s is not a directory", swap_dir);
    }
    if (access(swap_dir, W_OK | X_OK) != 0) {
      return Fail(error, error_size, "FAULTLINE_SWAP_DIR=%s is not writable: %s", swap_dir,
                  ErrnoDescription(errno));
    }
    c.swap_dir = swap_dir;
  }
  const char* stats = lookup("FAULTLINE_STATS");
  if (stats != nullptr && *stats != '\0') c.stats_path = stats;
  *config = c;
  return true;
}

}  // namespace faultline
