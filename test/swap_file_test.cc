#include "swap/swap_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util/status.h"

namespace faultline {
namespace {

constexpr uint32_t kPage = 4096;

bool IsTmpfs(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

// Names in a directory other than . and ..; an unreadable directory lists as {"?"}.
std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return {"?"};
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  return names;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// A fresh directory on a disk file system ($TMPDIR unless that is tmpfs, else /var/tmp), removed
// with whatever is left in it.
class TempDir {
 public:
  TempDir() {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string base =
        tmpdir != nullptr && *tmpdir != '\0' && !IsTmpfs(tmpdir) ? tmpdir : "/var/tmp";
    std::string templ = base + "/swap_file_test.XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    for (const std::string& name : ListDirectory(path_)) unlink((path_ + "/" + name).c_str());
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

off_t FileSize(int fd) {
  struct stat st {};
  REQUIRE(fstat(fd, &st) == 0);
  return st.st_size;
}

bool Contains(const absl::Status& status, const std::string& text) {
  return status.message().find(text) != absl::string_view::npos;
}

TEST_CASE("a directory gets an anonymous file that leaves nothing behind") {
  const bool trailing_slash = GENERATE(false, true);
  TempDir dir;
  const std::string given = trailing_slash ? dir.path() + "/" : dir.path();
  {
    auto swap = SwapFile::Open(given, 64 * kPage + 100, kPage);
    REQUIRE(swap.ok());
    CHECK((*swap)->fd() >= 0);
    CHECK((*swap)->slot_count() == 64);
    CHECK(FileSize((*swap)->fd()) == 64 * kPage);
    CHECK((*swap)->SlotOffset(1) == 0);
    CHECK((*swap)->SlotOffset(64) == 63 * kPage);
    const uint32_t align = (*swap)->dio_mem_align();
    CHECK(align > 0);
    CHECK(align <= kPage);
    CHECK((align & (align - 1)) == 0);
    CHECK((*swap)->description().find(dir.path()) != std::string::npos);
    CHECK(ListDirectory(dir.path()).empty());

    // The descriptor does O_DIRECT I/O at slot offsets.
    void* out = std::aligned_alloc(kPage, kPage);
    void* in = std::aligned_alloc(kPage, kPage);
    std::memset(out, 0xAB, kPage);
    std::memset(in, 0, kPage);
    CHECK(pwrite((*swap)->fd(), out, kPage, static_cast<off_t>((*swap)->SlotOffset(5))) == kPage);
    CHECK(pread((*swap)->fd(), in, kPage, static_cast<off_t>((*swap)->SlotOffset(5))) == kPage);
    CHECK(std::memcmp(in, out, kPage) == 0);
    std::free(out);
    std::free(in);
  }
  CHECK(ListDirectory(dir.path()).empty());
}

TEST_CASE("a new file path is created and unlinked at once") {
  TempDir dir;
  const std::string path = dir.path() + "/swap";
  {
    auto swap = SwapFile::Open(path, 16 * kPage, kPage);
    REQUIRE(swap.ok());
    CHECK((*swap)->slot_count() == 16);
    CHECK(FileSize((*swap)->fd()) == 16 * kPage);
    CHECK((*swap)->description().find(path) != std::string::npos);
    CHECK_FALSE(Exists(path));
  }
  CHECK_FALSE(Exists(path));
}

TEST_CASE("a process killed with SIGKILL leaves no swap file behind") {
  TempDir dir;
  const std::string path = dir.path() + "/swap";
  const bool named = GENERATE(false, true);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto swap = SwapFile::Open(named ? path : dir.path(), 16 * kPage, kPage);
    raise(swap.ok() ? SIGKILL : SIGABRT);
    _exit(1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(ListDirectory(dir.path()).empty());
}

TEST_CASE("an existing file is never overwritten") {
  TempDir dir;
  const std::string path = dir.path() + "/precious";
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "data", 4) == 4);
  close(fd);

  auto swap = SwapFile::Open(path, 16 * kPage, kPage);
  REQUIRE_FALSE(swap.ok());
  CHECK(swap.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(Contains(swap.status(), path));
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(st.st_size == 4);
}

TEST_CASE("a missing directory is NotFound and names the path") {
  TempDir dir;
  SECTION("directory") {
    const std::string missing = dir.path() + "/missing/";
    auto swap = SwapFile::Open(missing, 16 * kPage, kPage);
    REQUIRE_FALSE(swap.ok());
    CHECK(swap.status().code() == absl::StatusCode::kNotFound);
    CHECK(ErrnoOf(swap.status()) == ENOENT);
    CHECK(Contains(swap.status(), missing));
  }
  SECTION("file inside a missing directory") {
    const std::string parent = dir.path() + "/missing";
    const std::string path = parent + "/swapfile";
    auto swap = SwapFile::Open(path, 16 * kPage, kPage);
    REQUIRE_FALSE(swap.ok());
    CHECK(swap.status().code() == absl::StatusCode::kNotFound);
    CHECK(ErrnoOf(swap.status()) == ENOENT);
    CHECK(Contains(swap.status(), path));
    CHECK(Contains(swap.status(), "its directory " + parent));
    CHECK_FALSE(Exists(parent));
  }
  SECTION("file below a regular file") {
    const std::string file = dir.path() + "/plain";
    const int fd = open(file.c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    auto swap = SwapFile::Open(file + "/swapfile", 16 * kPage, kPage);
    REQUIRE_FALSE(swap.ok());
    CHECK(ErrnoOf(swap.status()) == ENOTDIR);
    CHECK(Contains(swap.status(), file + "/swapfile"));
  }
}

TEST_CASE("a place where files cannot be created is reported as not writable") {
  const std::string place = GENERATE(as<std::string>{}, "/proc", "/sys", "/proc/faultline-swap");
  if (!Exists(place.substr(0, 5))) return;
  auto swap = SwapFile::Open(place, 16 * kPage, kPage);
  REQUIRE_FALSE(swap.ok());
  CAPTURE(swap.status().ToString());
  CHECK(swap.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(swap.status(), place));
  CHECK(Contains(swap.status(), "not writable"));
}

TEST_CASE("a directory without write permission is not writable for a normal user") {
  if (geteuid() == 0) return;  // root ignores permission bits; /proc and /sys cover root
  TempDir dir;
  REQUIRE(chmod(dir.path().c_str(), 0500) == 0);
  auto swap = SwapFile::Open(dir.path(), 16 * kPage, kPage);
  chmod(dir.path().c_str(), 0700);
  REQUIRE_FALSE(swap.ok());
  CHECK(swap.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Contains(swap.status(), "not writable"));
}

TEST_CASE("tmpfs is refused with a message about O_DIRECT") {
  if (!IsTmpfs("/dev/shm")) return;
  SECTION("directory") {
    const std::vector<std::string> before = ListDirectory("/dev/shm");
    auto swap = SwapFile::Open("/dev/shm", 16 * kPage, kPage);
    REQUIRE_FALSE(swap.ok());
    CAPTURE(swap.status().ToString());
    CHECK(swap.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(swap.status(), "O_DIRECT"));
    CHECK(Contains(swap.status(), "/dev/shm"));
    CHECK(ListDirectory("/dev/shm") == before);
  }
  SECTION("file") {
    const std::string path = "/dev/shm/swap_file_test." + std::to_string(getpid());
    auto swap = SwapFile::Open(path, 16 * kPage, kPage);
    REQUIRE_FALSE(swap.ok());
    CHECK(Contains(swap.status(), "O_DIRECT"));
    CHECK_FALSE(Exists(path));
  }
}

TEST_CASE("sizes that cannot work are refused before anything is created") {
  TempDir dir;
  SECTION("less than one page") {
    const uint64_t max_bytes = GENERATE(uint64_t{1}, uint64_t{kPage - 1});
    auto swap = SwapFile::Open(dir.path(), max_bytes, kPage);
    REQUIRE_FALSE(swap.ok());
    CHECK(swap.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(swap.status(), dir.path()));
  }
  SECTION("a page size that is not a power of two") {
    auto swap = SwapFile::Open(dir.path(), 1 << 20, 3000);
    REQUIRE_FALSE(swap.ok());
    CHECK(swap.status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("more than the file system has room for") {
    auto swap = SwapFile::Open(dir.path() + "/huge", uint64_t{1} << 60, kPage);
    REQUIRE_FALSE(swap.ok());
    CAPTURE(swap.status().ToString());
    CHECK(ErrnoOf(swap.status()) == ENOSPC);
    CHECK(Contains(swap.status(), "no room"));
  }
  SECTION("automatic size: most of the free space, at most the automatic limit") {
    auto swap = SwapFile::Open(dir.path(), SwapFile::kAutomaticSize, kPage);
    REQUIRE(swap.ok());
    CHECK((*swap)->slot_count() > 0);
    CHECK((*swap)->slot_count() <= SwapFile::kAutomaticLimit / kPage);
  }
  SECTION("exactly one page") {
    auto swap = SwapFile::Open(dir.path(), kPage, kPage);
    REQUIRE(swap.ok());
    CHECK((*swap)->slot_count() == 1);
  }
  CHECK(ListDirectory(dir.path()).empty());
}

}  // namespace
}  // namespace faultline
