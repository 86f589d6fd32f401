// Shared helpers for faultline's tests: skipping without userfaultfd, reading what the kernel says
// about memory (/proc/self/smaps, /proc/self/stat), and page patterns that detect any wrong byte.
#ifndef FAULTLINE_TEST_SUPPORT_TEST_SUPPORT_H_
#define FAULTLINE_TEST_SUPPORT_TEST_SUPPORT_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "faultline/faultline.h"
#include "util/proc_memory.h"

namespace faultline::test {

inline constexpr size_t kPage = 4096;

// Whether the suite runs in CI (CI=true), where a test that needs userfaultfd must not skip.
bool InCi();

// `bytes` divided by $FAULTLINE_TEST_SCALE (default 1). The largest paging tests size both their
// working set and their limit with it, so the ratio between them, which is what they test, stays.
// Sanitizer builds set 4 (test/meson.build): they check the same code paths on less data.
size_t Scaled(size_t bytes);

// Exits with 77 (meson's SKIP) and a message when this process cannot open a full userfaultfd;
// in CI it fails instead (exit 1): a CI run in which nothing was paged is no pass. Other reasons
// to skip (no memory cgroup, a program not installed) still skip in CI.
void SkipUnlessUserfaultfd();

// A config with `limit` bytes and the test swap directory ($FAULTLINE_TEST_SWAP_DIR, else
// /var/tmp: a disk file system, since swap needs O_DIRECT).
fl_config TestConfig(uint64_t limit);

// The kernel's own account (util/proc_memory.h): SmapsRssOf(region) is the region's resident
// bytes from /proc/self/smaps.
using faultline::ReadProcMemory;
using faultline::SmapsRssOf;

// fl_init() for the scope of a test (REQUIRE-d), fl_shutdown() at its end.
struct ScopedRuntime {
  explicit ScopedRuntime(fl_config config);
  ~ScopedRuntime();
};

// fl_get_stats(), REQUIRE-d to succeed.
fl_stats Stats();

// fl_map(), REQUIRE-d to succeed (the failure message includes fl_last_error()).
void* Map(size_t bytes);

// Fills the page with words derived from (seed, page_index); Verify returns the offset of the
// first wrong byte, or -1 when the page is exactly as filled.
void FillPage(void* page, uint64_t page_index, uint64_t seed);
int64_t VerifyPage(const void* page, uint64_t page_index, uint64_t seed);
// Verifies every page of [base, base + bytes); returns the number of wrong pages and describes
// the first one in *first_error.
uint64_t VerifyPages(const void* base, size_t bytes, uint64_t seed, std::string* first_error);

// `threads` threads each own one slice of every page of [base, base + bytes) and, `rounds`
// times, stamp their slice of every page in a shuffled order, then verify it in another: every
// thread faults on every page, overlapping the others. Returns the number of wrong slices seen
// and describes the first in *first_wrong (zeros mean a lost page, the previous round's stamp a
// lost write, anything else bytes from elsewhere, such as a slot mix-up).
uint64_t RunOverlappingStamps(void* base, size_t bytes, int threads, int rounds,
                              std::string* first_wrong);

// For the duration of its scope, catches SIGBUS (then restores the handler installed before):
// the faulting access is abandoned and the signal recorded. Installed before a self-paging region
// is mapped, it is the program's own handler, which faultline's passes foreign SIGBUS on to.
class SigbusCatcher {
 public:
  SigbusCatcher();
  ~SigbusCatcher();
  SigbusCatcher(const SigbusCatcher&) = delete;
  SigbusCatcher& operator=(const SigbusCatcher&) = delete;

  // Reads the byte at `address`; returns whether that raised SIGBUS, whose si_code and si_addr
  // code() and address() then give.
  bool ReadRaises(const volatile char* address);
  int code() const;
  const void* address() const;

 private:
  struct sigaction previous_ {};
};

// Opens the running runtime's (unlinked) swap file a second time, read-write, through /proc.
int OpenManagedSwapFile();
// Corrupts the swap slot of the SWAPPED page at `page` (REQUIRE-d): flips the bits of `mask` in
// its byte `offset`, on disk.
void FlipSwappedByte(const void* page, size_t offset, unsigned char mask);

// Number of open file descriptors and threads of this process (to check nothing leaks).
int CountOpenFds();
int CountThreads();

}  // namespace faultline::test

#endif  // FAULTLINE_TEST_SUPPORT_TEST_SUPPORT_H_
