#include "advice_scan.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "faultline/faultline.h"

namespace faultline_bench {
namespace {

static_assert(FL_ADVICE_NORMAL == MADV_NORMAL && FL_ADVICE_RANDOM == MADV_RANDOM &&
                  FL_ADVICE_SEQUENTIAL == MADV_SEQUENTIAL && FL_ADVICE_WILLNEED == MADV_WILLNEED &&
                  FL_ADVICE_PAGEOUT == MADV_PAGEOUT,
              "one advice value serves fl_advise and madvise");

constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);

IoCounters FaultlineCounters() {
  fl_stats stats{};
  fl_get_stats(&stats);
  return {stats.faults_swap_in, stats.bytes_read, stats.pages_prefetched};
}

IoCounters KernelIoCounters() {
  KernelCounters counters = ReadKernelCounters();
  return {counters.major_faults, counters.swapped_in * kPage, kNoValue};
}

int KernelAdvise(void* addr, size_t length, int advice) {
  return madvise(addr, length, advice) == 0 ? 0 : -errno;
}

void SetError(ScanResult* result, const std::string& what) {
  std::snprintf(result->error, sizeof(result->error), "%s", what.c_str());
}

// Pages of [base, base + bytes) in memory (mincore: mapped, or in the swap cache); kNoValue when
// mincore fails.
uint64_t ResidentPages(char* base, size_t bytes) {
  std::vector<unsigned char> in_core(bytes / kPage);
  if (mincore(base, bytes, in_core.data()) != 0) return kNoValue;
  return static_cast<uint64_t>(
      std::count_if(in_core.begin(), in_core.end(), [](unsigned char c) { return (c & 1) != 0; }));
}

// Pages of [base, base + bytes) mapped (bit 63, "present", of /proc/self/pagemap); kNoValue when
// pagemap cannot be read.
uint64_t MappedPages(char* base, size_t bytes) {
  constexpr uint64_t kPresent = uint64_t{1} << 63;
  std::vector<uint64_t> entries(bytes / kPage);
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kNoValue;
  const size_t size = entries.size() * sizeof(uint64_t);
  const auto offset =
      static_cast<off_t>(reinterpret_cast<uintptr_t>(base) / kPage * sizeof(uint64_t));
  bool ok = pread(fd, entries.data(), size, offset) == static_cast<ssize_t>(size);
  close(fd);
  if (!ok) return kNoValue;
  return static_cast<uint64_t>(std::count_if(entries.begin(), entries.end(),
                                             [](uint64_t e) { return (e & kPresent) != 0; }));
}

// Advises WILLNEED on the kWillNeedWindow from page `first` on, clipped to the region.
int AdviseWindow(const Side& side, char* base, size_t bytes, uint64_t first) {
  size_t begin = first * kPage;
  if (begin >= bytes) return 0;
  return side.advise(base + begin, std::min(kWillNeedWindow, bytes - begin), MADV_WILLNEED);
}

// Reads word `page % 512` of every page in order (so the checks cover every offset of a page),
// checks it against PagePattern, and times each access alone to count the waits. With
// `willneed_ahead` it first advises WILLNEED on the first window, then at the start of each
// window on the window after it; those calls count in the scan's time and in advise_seconds.
void Scan(const Side& side, char* base, size_t bytes, bool willneed_ahead, ScanResult* result) {
  const uint64_t pages = bytes / kPage;
  const uint64_t window_pages = kWillNeedWindow / kPage;
  ProgressTicker ticker(std::string(side.name) + ": scan", pages);
  uint64_t wait_ns = 0;
  uint64_t advise_ns = 0;
  int rc = 0;
  // Advises the window from page `first` on, unless an earlier call failed.
  auto advise = [&](uint64_t first) {
    if (rc != 0) return;
    const uint64_t before = NowNs();
    rc = AdviseWindow(side, base, bytes, first);
    advise_ns += NowNs() - before;
  };
  const uint64_t start = NowNs();
  if (willneed_ahead) advise(0);
  for (uint64_t p = 0; p < pages; ++p) {
    if (willneed_ahead && p % window_pages == 0) advise(p + window_pages);
    const auto* words = reinterpret_cast<const volatile uint64_t*>(base + p * kPage);
    const uint64_t before = NowNs();
    const uint64_t value = words[p % kWordsPerPage];
    if (uint64_t took = NowNs() - before; took >= kWaitNs) {
      ++result->waits;
      wait_ns += took;
    }
    if (value != PagePattern(p) && result->verify_errors++ == 0) {
      result->first_bad_page = p;
      result->first_bad_value = value;
    }
    ticker.Tick(p);
  }
  result->seconds = static_cast<double>(NowNs() - start) / 1e9;
  result->wait_seconds = static_cast<double>(wait_ns) / 1e9;
  result->advise_seconds = static_cast<double>(advise_ns) / 1e9;
  if (rc != 0) SetError(result, std::string("WILLNEED during the scan: ") + std::strerror(-rc));
}

// Moves `size` bytes through a pipe across EINTR and short transfers. False when the other end
// went away first.
template <typename Transfer, typename Bytes>
bool TransferAll(Transfer transfer, int fd, Bytes* bytes, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = transfer(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The kernel's side of one run, in the child that has joined the cgroup.
[[noreturn]] void KernelChild(int report_fd, size_t bytes, const AdviceMode& mode) {
  ScanResult result;
  AnonRegion region;
  std::string error;
  if (region.Open(bytes, &error)) {
    result = WriteEvictScan(kKernelSide, region.data(), bytes, mode);
  } else {
    SetError(&result, error);
  }
  TransferAll(write, report_fd, reinterpret_cast<const char*>(&result), sizeof(result));
  _exit(0);
}

}  // namespace

const Side kFaultlineSide = {"faultline", fl_advise, FaultlineCounters};
const Side kKernelSide = {"kernel", KernelAdvise, KernelIoCounters};

ScanResult WriteEvictScan(const Side& side, char* base, size_t bytes, const AdviceMode& mode) {
  ScanResult result;
  WritePages(base, bytes, (std::string(side.name) + ": write").c_str());
  for (int advice : {MADV_PAGEOUT, mode.region_advice}) {
    if (int rc = side.advise(base, bytes, advice); rc != 0) {
      SetError(&result, "advice " + std::to_string(advice) + ": " + std::strerror(-rc));
      return result;
    }
  }
  result.resident_pages_at_start = ResidentPages(base, bytes);
  result.mapped_pages_at_start = MappedPages(base, bytes);
  const IoCounters before = side.counters();
  Scan(side, base, bytes, mode.willneed_ahead, &result);
  const IoCounters after = side.counters();
  result.io.read_faults = after.read_faults - before.read_faults;
  result.io.bytes_read = after.bytes_read - before.bytes_read;
  if (before.prefetched_pages != kNoValue) {
    result.io.prefetched_pages = after.prefetched_pages - before.prefetched_pages;
  }
  return result;
}

bool RunFaultlineScan(const Knobs& knobs, const std::string& swap_dir, size_t bytes,
                      const AdviceMode& mode, ScanResult* result, std::string* why) {
  ManagedRegion region;
  if (!region.Open(knobs, swap_dir, bytes, why)) return false;
  *result = WriteEvictScan(kFaultlineSide, region.data(), bytes, mode);
  return true;
}

bool RunKernelScan(KernelSwapPeer* peer, size_t bytes, const AdviceMode& mode, ScanResult* result,
                   std::string* why) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *why = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  pid_t pid = peer->ForkIntoCgroup(why);
  if (pid == 0) {
    close(fds[0]);
    KernelChild(fds[1], bytes, mode);
  }
  close(fds[1]);
  bool reported =
      pid > 0 && TransferAll(read, fds[0], reinterpret_cast<char*>(result), sizeof(*result));
  close(fds[0]);
  if (pid < 0) return false;
  int status = peer->WaitForChild(pid);
  if (!reported) {
    *why = WIFSIGNALED(status)
               ? "the child died of signal " + std::to_string(WTERMSIG(status)) +
                     " (SIGKILL: the cgroup's OOM killer?)"
               : "the child exited without a report (status " + std::to_string(status) + ")";
  }
  return reported;
}

}  // namespace faultline_bench
