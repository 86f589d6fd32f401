// Bad input and missing permissions: each gives a clear error, changes nothing and leaves nothing
// half-initialised (no file descriptor, thread or file left behind; a valid fl_init works after).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "faultline/faultline.h"
#include "support/test_support.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;

int CountDirEntries(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// Runs fl_init with `config`, expects `expected_errno`, a message containing `words`, and that
// nothing is left behind.
void ExpectInitFails(const fl_config& config, int expected_errno, const std::string& words) {
  int fds = faultline::test::CountOpenFds();
  int threads = faultline::test::CountThreads();
  int rc = fl_init(&config);
  std::string message = fl_last_error();
  INFO("fl_init returned " << rc << " (" << fl_strerror(rc) << "): " << message);
  CHECK(rc == -expected_errno);
  CHECK(message.find(words) != std::string::npos);
  void* p = nullptr;
  CHECK(fl_map(4096, &p) == -ENXIO);
  CHECK(faultline::test::CountOpenFds() == fds);
  CHECK(faultline::test::CountThreads() == threads);
}

}  // namespace

TEST_CASE("invalid configurations are refused", "[errors]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(0);
  ExpectInitFails(config, EINVAL, "memory_limit");
  config = faultline::test::TestConfig(4096);
  ExpectInitFails(config, EINVAL, "memory_limit");
  config = faultline::test::TestConfig(64 * kMiB);
  config.fault_threads = 1000;
  ExpectInitFails(config, EINVAL, "fault_threads");
  config = faultline::test::TestConfig(64 * kMiB);
  config.evict_batch_pages = 100000;
  ExpectInitFails(config, EINVAL, "evict_batch_pages");
  config = faultline::test::TestConfig(64 * kMiB);
  config.max_swap = 100;
  ExpectInitFails(config, EINVAL, "max_swap");
  CHECK(fl_init(nullptr) == -EINVAL);
}

TEST_CASE("unusable swap locations are refused", "[errors]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(64 * kMiB);
  config.swap_path = "/nonexistent/faultline-swap-dir";
  ExpectInitFails(config, ENOENT, "/nonexistent");
  config.swap_path = "/etc/hostname/swap";
  ExpectInitFails(config, ENOTDIR, "/etc/hostname");
  // Not writable even for root.
  config.swap_path = "/proc";
  int rc = fl_init(&config);
  CHECK(rc < 0);
  CHECK(std::string(fl_last_error()).find("/proc") != std::string::npos);
  if (rc == 0) fl_shutdown();
  // tmpfs has no O_DIRECT: swap there would only be RAM anyway.
  if (CountDirEntries("/dev/shm") >= 0) {
    config.swap_path = "/dev/shm";
    rc = fl_init(&config);
    CHECK(rc < 0);
    CHECK(std::string(fl_last_error()).find("O_DIRECT") != std::string::npos);
    if (rc == 0) fl_shutdown();
  }
}

TEST_CASE("a swap directory is left as it was found", "[errors]") {
  faultline::test::SkipUnlessUserfaultfd();
  char dir[] = "/var/tmp/faultline-test-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  fl_config config = faultline::test::TestConfig(8 * kMiB);
  config.swap_path = dir;
  REQUIRE(fl_init(&config) == 0);
  void* p = nullptr;
  REQUIRE(fl_map(32 * kMiB, &p) == 0);
  memset(p, 0x5a, 32 * kMiB);
  CHECK(CountDirEntries(dir) == 0);  // the swap file is unlinked at once
  REQUIRE(fl_shutdown() == 0);
  CHECK(CountDirEntries(dir) == 0);
  rmdir(dir);
}

TEST_CASE("bad map and unmap requests change nothing", "[errors]") {
  faultline::test::SkipUnlessUserfaultfd();
  fl_config config = faultline::test::TestConfig(8 * kMiB);
  REQUIRE(fl_init(&config) == 0);
  CHECK(fl_init(&config) == -EALREADY);
  void* p = nullptr;
  CHECK(fl_map(0, &p) == -EINVAL);
  CHECK(fl_map(4095, &p) == -EINVAL);
  CHECK(fl_map(4096 + 1, &p) == -EINVAL);
  CHECK(fl_map(size_t{1} << 62, &p) == -ENOMEM);
  CHECK(std::string(fl_last_error()).find("fl_map") != std::string::npos);
  CHECK(fl_map(4096, nullptr) == -EINVAL);
  REQUIRE(fl_map(16 * kMiB, &p) == 0);
  char* base = static_cast<char*>(p);
  memset(base, 7, 16 * kMiB);
  CHECK(fl_unmap(base, 8 * kMiB) == -EINVAL);          // part of a region
  CHECK(fl_unmap(base + 4096, 16 * kMiB) == -EINVAL);  // not its start
  CHECK(fl_unmap(base + 1, 16 * kMiB) == -EINVAL);     // unaligned
  CHECK(fl_unmap(&config, 4096) == -EINVAL);           // not managed at all
  fl_stats s;
  REQUIRE(fl_get_stats(&s) == 0);
  CHECK(s.regions == 1);
  for (size_t i = 0; i < 16 * kMiB; i += 4096) REQUIRE(base[i] == 7);
  REQUIRE(fl_unmap(base, 16 * kMiB) == 0);
  CHECK(fl_unmap(base, 16 * kMiB) == -EINVAL);  // twice
  REQUIRE(fl_shutdown() == 0);
  CHECK(fl_shutdown() == -ENXIO);
  CHECK(std::string(fl_strerror(-EINVAL)) == strerror(EINVAL));
}

TEST_CASE("without userfaultfd permission, fl_init says what is missing", "[errors]") {
  faultline::test::SkipUnlessUserfaultfd();
  if (geteuid() != 0) {
    WARN("not root: cannot drop to an unprivileged user to check this");
    return;
  }
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // An ordinary user (nobody), as setpriv --reuid=65534 --regid=65534 --clear-groups would make.
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    fl_config config = faultline::test::TestConfig(8 * kMiB);
    int rc = fl_init(&config);
    std::string message = fl_last_error();
    bool explains = message.find("userfaultfd") != std::string::npos &&
                    message.find("CAP_SYS_PTRACE") != std::string::npos;
    _exit(rc == -EPERM && explains ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
