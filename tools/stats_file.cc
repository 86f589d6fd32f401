#include "stats_file.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace faultline {

StatsFile::~StatsFile() {
  if (temporary_) unlink(path_.c_str());
}

absl::Status StatsFile::Create(const std::optional<std::string>& user_path) {
  std::string path;
  int fd;
  if (user_path.has_value()) {
    path = *user_path;
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, absl::StrCat("--stats ", path));
  } else {
    const char* tmpdir = std::getenv("TMPDIR");
    path = absl::StrCat(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp",
                        "/faultline-stats.XXXXXX");
    fd = mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, absl::StrCat("temporary statistics file ", path));
    temporary_ = true;
  }
  close(fd);
  path_ = path;
  char absolute[PATH_MAX];
  if (realpath(path.c_str(), absolute) == nullptr) return ErrnoError(errno, path);
  path_ = absolute;
  return absl::OkStatus();
}

absl::StatusOr<std::string> StatsFile::Read() const {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoError(errno, path_);
  }
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) != 0) {
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
    } else if (errno != EINTR) {
      break;
    }
  }
  int read_errno = errno;
  close(fd);
  if (n < 0) return ErrnoError(read_errno, path_);
  return text;
}

}  // namespace faultline
