// Logging to stderr, one line per call: "faultline: <level>: <message>". Levels: 0 trace, 1 debug,
// 2 info, 3 warning, 4 error, 5 critical, 6 off. Log only on control paths and on rare events of
// the data path (I/O errors, corruption, swap full).
//
// Any thread may log, faultline's own included: a line is formatted (fmt, checked at compile
// time) into a buffer on the caller's stack and written with one write(2). Nothing allocates,
// takes a lock, reads the clock or the locale, or goes through stdio. A library thread must not
// allocate: under LD_PRELOAD malloc's memory may be managed by the very thread that would have to
// page it in (docs/design.md, "faultline must never page itself"). Lines longer than
// kMaxLogLine bytes are cut, and end in "...". Arguments are evaluated even when the level is
// off, so they must be as safe as the rest (errno text: util/errno_name.h, never strerror).
#ifndef FAULTLINE_LIB_UTIL_LOG_H_
#define FAULTLINE_LIB_UTIL_LOG_H_

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <utility>

namespace faultline {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarning, kError, kCritical, kOff };

inline constexpr size_t kMaxLogLine = 512;

class Logger {
 public:
  template <typename... Args>
  void trace(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kTrace, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kDebug, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kInfo, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kWarning, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kError, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void critical(fmt::format_string<Args...> format, Args&&... args) noexcept {
    Write(LogLevel::kCritical, format, std::forward<Args>(args)...);
  }

  bool should_log(LogLevel level) const noexcept {
    return level != LogLevel::kOff &&
           static_cast<int>(level) >= level_.load(std::memory_order_relaxed);
  }
  void set_level(LogLevel level) noexcept {
    level_.store(static_cast<int>(level), std::memory_order_relaxed);
  }

 private:
  template <typename... Args>
  void Write(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    if (!should_log(level)) return;
    char line[kMaxLogLine];
    size_t start = Prefix(level, line);
    size_t room = sizeof(line) - start - 1;  // one byte kept for the newline
    auto result = fmt::format_to_n(line + start, room, format, std::forward<Args>(args)...);
    Emit(line, start, result.size, room);
  }
  // Writes "faultline: <level>: " into `line`; returns its length.
  static size_t Prefix(LogLevel level, char* line) noexcept;
  // Ends the line (cut to `room` message bytes, marked "...") and writes it.
  static void Emit(char* line, size_t start, size_t message_size, size_t room) noexcept;

  // Relaxed: a level change may reach other threads a few lines late.
  std::atomic<int> level_{static_cast<int>(LogLevel::kWarning)};
};

// Sets the level; `level` < 0 reads FAULTLINE_LOG (a number or trace/debug/info/warn/error/
// critical/off), defaulting to warn. Returns false if FAULTLINE_LOG holds something else.
bool SetLogLevel(int level);
Logger& Log() noexcept;

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_LOG_H_
