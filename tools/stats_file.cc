#include "stats_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace faultline {
namespace {

absl::StatusOr<std::string> ReadFileAt(int dir_fd, const std::string& name,
                                       const std::string& context) {
  int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, context);
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
  if (n < 0) return ErrnoError(read_errno, context);
  return text;
}

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

}  // namespace

StatsDirectory::~StatsDirectory() {
  if (path_.empty()) return;
  // Whatever is there: processes that outlived the command may still be adding files, which
  // then fail quietly once the directory is gone.
  for (int round = 0; round < 3 && rmdir(path_.c_str()) != 0 && errno == ENOTEMPTY; ++round) {
    std::unique_ptr<DIR, DirCloser> dir(opendir(path_.c_str()));
    if (dir == nullptr) return;
    while (dirent* entry = readdir(dir.get())) {
      if (std::string_view(entry->d_name) == "." || std::string_view(entry->d_name) == "..")
        continue;
      unlinkat(dirfd(dir.get()), entry->d_name, 0);
    }
  }
}

absl::Status StatsDirectory::Create(const std::optional<std::string>& user_path) {
  if (user_path.has_value()) {
    int fd = open(user_path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, absl::StrCat("--stats ", *user_path));
    close(fd);
    char absolute[PATH_MAX];
    if (realpath(user_path->c_str(), absolute) == nullptr) return ErrnoError(errno, *user_path);
    user_path_ = absolute;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = absl::StrCat(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp",
                                  "/faultline-stats.XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return ErrnoError(errno, absl::StrCat("temporary statistics directory ", path));
  }
  path_ = path;
  char absolute[PATH_MAX];
  if (realpath(path.c_str(), absolute) == nullptr) return ErrnoError(errno, path);
  path_ = absolute;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StatsEntry>> StatsDirectory::Read() const {
  std::unique_ptr<DIR, DirCloser> dir(opendir(path_.c_str()));
  if (dir == nullptr) return ErrnoError(errno, path_);
  std::vector<StatsEntry> entries;
  while (dirent* entry = readdir(dir.get())) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || !absl::EndsWith(name, ".json")) continue;
    absl::StatusOr<std::string> text =
        ReadFileAt(dirfd(dir.get()), name, absl::StrCat(path_, "/", name));
    if (!text.ok()) return text.status();
    entries.push_back(StatsEntry{name, *std::move(text)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const StatsEntry& a, const StatsEntry& b) { return a.name < b.name; });
  return entries;
}

absl::Status StatsDirectory::Keep(const std::string& text) const {
  if (!user_path_.has_value()) return absl::OkStatus();
  int fd = open(user_path_->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, *user_path_);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int write_errno = errno;
      close(fd);
      return ErrnoError(write_errno, *user_path_);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return ErrnoError(errno, *user_path_);
  return absl::OkStatus();
}

}  // namespace faultline
