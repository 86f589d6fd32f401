#include "util/check.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace faultline {

void CheckFailed(const char* file, int line, const char* condition, const char* message) noexcept {
  char buffer[512];
  int n = std::snprintf(buffer, sizeof(buffer), "faultline: check failed at %s:%d: %s (%s)\n", file,
                        line, condition, message);
  if (n > 0) {
    ssize_t ignored = write(
        STDERR_FILENO, buffer,
        static_cast<size_t>(n) < sizeof(buffer) ? static_cast<size_t>(n) : sizeof(buffer) - 1);
    (void)ignored;
  }
  std::abort();
}

}  // namespace faultline
