#include "util/log.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace faultline {
namespace {

constexpr std::string_view kLevelNames[] = {"trace", "debug",    "info", "warning",
                                            "error", "critical", "off"};

}  // namespace

size_t Logger::Prefix(LogLevel level, char* line) noexcept {
  constexpr std::string_view kProgram = "faultline: ";
  std::string_view name = kLevelNames[static_cast<int>(level)];
  size_t n = 0;
  std::memcpy(line + n, kProgram.data(), kProgram.size());
  n += kProgram.size();
  std::memcpy(line + n, name.data(), name.size());
  n += name.size();
  line[n++] = ':';
  line[n++] = ' ';
  return n;
}

void Logger::Emit(char* line, size_t start, size_t message_size, size_t room) noexcept {
  size_t end = start + (message_size < room ? message_size : room);
  if (message_size > room) std::memcpy(line + end - 3, "...", 3);
  line[end++] = '\n';
  for (size_t done = 0; done < end;) {
    ssize_t n = write(STDERR_FILENO, line + done, end - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

Logger& Log() noexcept {
  // Constant-initialised and never destroyed: threads may log during process exit.
  static constinit Logger logger;
  return logger;
}

bool SetLogLevel(int level) {
  if (level < 0) {
    const char* env = std::getenv("FAULTLINE_LOG");
    level = static_cast<int>(LogLevel::kWarning);
    if (env != nullptr && *env != '\0') {
      std::string_view text(env);
      if (text.size() == 1 && text[0] >= '0' && text[0] <= '6') {
        level = text[0] - '0';
      } else if (text == "warn") {
        level = static_cast<int>(LogLevel::kWarning);
      } else if (text == "err") {
        level = static_cast<int>(LogLevel::kError);
      } else {
        level = -1;
        for (int i = 0; i <= static_cast<int>(LogLevel::kOff); ++i) {
          if (text == kLevelNames[i]) level = i;
        }
        if (level < 0) return false;
      }
    }
  }
  if (level > static_cast<int>(LogLevel::kOff)) return false;
  Log().set_level(static_cast<LogLevel>(level));
  return true;
}

}  // namespace faultline
