// Helpers for tests that drive a Runtime directly (test/mappings_test.cc, test/snapshot_test.cc),
// so that they also run in the sanitizer builds: making a runtime, mappings adopted as the
// interposer adopts them, page patterns over ranges, and fork as the interposer follows it.
#ifndef FAULTLINE_TEST_SUPPORT_RUNTIME_HELPERS_H_
#define FAULTLINE_TEST_SUPPORT_RUNTIME_HELPERS_H_

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>

#include "core/runtime.h"
#include "support/test_support.h"
#include "util/raw_memory.h"

namespace faultline::test {

inline constexpr size_t kMiB = size_t{1} << 20;

inline std::unique_ptr<Runtime> MakeRuntime(uint64_t limit) {
  absl::StatusOr<std::unique_ptr<Runtime>> runtime = Runtime::Create(TestConfig(limit));
  REQUIRE(runtime.ok());
  return std::move(*runtime);
}

// A mapping made the way the interposer makes one, then adopted.
inline char* MapAdopted(Runtime& runtime, size_t bytes, bool shared_anonymous = false) {
  void* p = RawMmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(p != MAP_FAILED);
  REQUIRE(runtime.Adopt(p, bytes, PROT_READ | PROT_WRITE, shared_anonymous) == 0);
  return static_cast<char*>(p);
}

inline void Fill(char* base, size_t bytes, uint64_t seed, uint64_t first_page = 0) {
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    FillPage(base + offset, first_page + offset / kPage, seed);
  }
}

// Number of wrong pages in [base, base + bytes), whose first page has index first_page.
inline uint64_t Wrong(const char* base, size_t bytes, uint64_t seed, uint64_t first_page = 0) {
  uint64_t wrong = 0;
  for (size_t offset = 0; offset < bytes; offset += kPage) {
    if (VerifyPage(base + offset, first_page + offset / kPage, seed) >= 0) ++wrong;
  }
  return wrong;
}

inline bool AllZero(const char* base, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) {
    if (base[i] != 0) return false;
  }
  return true;
}

// Forks as the interposer's pthread_atfork handlers would; the child runs child() and exits 0
// when it returns true. Returns the child's wait status.
template <typename Child>
int ForkAs(Runtime& runtime, Child child) {
  runtime.PrepareFork();
  pid_t pid = fork();
  if (pid == 0) {
    runtime.ChildAfterFork();
    _exit(child() ? 0 : 1);
  }
  runtime.ParentAfterFork();
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return status;
}

inline fl_stats StatsOf(const Runtime& runtime) {
  fl_stats s;
  runtime.GetStats(&s);
  return s;
}

}  // namespace faultline::test

#endif  // FAULTLINE_TEST_SUPPORT_RUNTIME_HELPERS_H_
