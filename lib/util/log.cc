#include "util/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <string_view>

namespace faultline {

spdlog::logger& Log() {
  // Built on first use and never destroyed: threads may log during process exit.
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger("faultline", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("faultline: %l: %v");
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return *logger;
}

bool SetLogLevel(int level) {
  if (level < 0) {
    const char* env = std::getenv("FAULTLINE_LOG");
    level = static_cast<int>(spdlog::level::warn);
    if (env != nullptr && *env != '\0') {
      std::string_view text(env);
      if (text.size() == 1 && text[0] >= '0' && text[0] <= '6') {
        level = text[0] - '0';
      } else {
        auto parsed = spdlog::level::from_str(std::string(text));
        if (parsed == spdlog::level::off && text != "off") return false;
        level = static_cast<int>(parsed);
      }
    }
  }
  if (level > static_cast<int>(spdlog::level::off)) return false;
  Log().set_level(static_cast<spdlog::level::level_enum>(level));
  return true;
}

}  // namespace faultline
