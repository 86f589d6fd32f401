#include "support/test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "api/internal.h"

namespace faultline::test {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t Stamp(int thread, int round, size_t page, size_t word) {
  return (uint64_t(thread) << 56) ^ (uint64_t(round) << 48) ^ (page * 131 + word * 7 + 1);
}

sigjmp_buf g_sigbus_jump;
volatile sig_atomic_t g_sigbus_code = 0;
void* volatile g_sigbus_address = nullptr;

void OnCaughtSigbus(int, siginfo_t* info, void*) {
  g_sigbus_code = info->si_code;
  g_sigbus_address = info->si_addr;
  siglongjmp(g_sigbus_jump, 1);
}

int CountEntries(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

}  // namespace

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

size_t Scaled(size_t bytes) {
  const char* scale = std::getenv("FAULTLINE_TEST_SCALE");
  long divisor = scale != nullptr ? std::strtol(scale, nullptr, 10) : 1;
  return divisor > 1 ? bytes / static_cast<size_t>(divisor) : bytes;
}

void SkipUnlessUserfaultfd() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC));
  if (fd < 0) {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
      close(dev);
      return;
    }
    const bool ci = InCi();
    std::fprintf(stderr,
                 "%s: no full userfaultfd here (needs root, CAP_SYS_PTRACE or access to "
                 "/dev/userfaultfd): %s%s\n",
                 ci ? "FAIL" : "SKIP", std::strerror(errno),
                 ci ? " (CI=true: a test that needs userfaultfd may not skip)" : "");
    std::exit(ci ? 1 : 77);
  }
  close(fd);
}

fl_config TestConfig(uint64_t limit) {
  fl_config config;
  fl_config_init(&config);
  config.memory_limit = limit;
  const char* dir = std::getenv("FAULTLINE_TEST_SWAP_DIR");
  config.swap_path = dir != nullptr && *dir != '\0' ? dir : "/var/tmp";
  return config;
}

ScopedRuntime::ScopedRuntime(fl_config config) {
  int rc = fl_init(&config);
  INFO(fl_last_error());
  REQUIRE(rc == 0);
}

ScopedRuntime::~ScopedRuntime() { fl_shutdown(); }

fl_stats Stats() {
  fl_stats s;
  REQUIRE(fl_get_stats(&s) == 0);
  return s;
}

void* Map(size_t bytes) {
  void* p = nullptr;
  int rc = fl_map(bytes, &p);
  INFO(fl_last_error());
  REQUIRE(rc == 0);
  return p;
}

void FillPage(void* page, uint64_t page_index, uint64_t seed) {
  auto* words = static_cast<uint64_t*>(page);
  uint64_t base = Mix(seed * 0x9e3779b97f4a7c15ULL + page_index);
  for (size_t i = 0; i < kPage / 8; ++i) words[i] = base + i * 0x9e3779b97f4a7c15ULL;
}

int64_t VerifyPage(const void* page, uint64_t page_index, uint64_t seed) {
  const auto* words = static_cast<const uint64_t*>(page);
  uint64_t base = Mix(seed * 0x9e3779b97f4a7c15ULL + page_index);
  for (size_t i = 0; i < kPage / 8; ++i) {
    uint64_t expected = base + i * 0x9e3779b97f4a7c15ULL;
    if (words[i] != expected) {
      const auto* got = reinterpret_cast<const unsigned char*>(&words[i]);
      const auto* want = reinterpret_cast<const unsigned char*>(&expected);
      for (int b = 0; b < 8; ++b) {
        if (got[b] != want[b]) return static_cast<int64_t>(i * 8 + b);
      }
    }
  }
  return -1;
}

uint64_t VerifyPages(const void* base, size_t bytes, uint64_t seed, std::string* first_error) {
  uint64_t wrong = 0;
  for (size_t p = 0; p < bytes / kPage; ++p) {
    const char* page = static_cast<const char*>(base) + p * kPage;
    int64_t offset = VerifyPage(page, p, seed);
    if (offset < 0) continue;
    if (wrong++ == 0 && first_error != nullptr) {
      char text[160];
      std::snprintf(text, sizeof(text), "page %zu (%p) differs at byte %lld", p,
                    static_cast<const void*>(page), static_cast<long long>(offset));
      *first_error = text;
    }
  }
  return wrong;
}

uint64_t RunOverlappingStamps(void* base, size_t bytes, int threads, int rounds,
                              std::string* first_wrong) {
  const size_t pages = bytes / kPage;
  const size_t words_per_slice = kPage / 8 / static_cast<size_t>(threads);
  auto* words = static_cast<uint64_t*>(base);
  std::atomic<uint64_t> wrong{0};
  std::mutex first_wrong_mutex;
  std::barrier start(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<size_t> order(pages);
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng(t);
      start.arrive_and_wait();
      for (int round = 1; round <= rounds; ++round) {
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t page : order) {
          uint64_t* slice = words + page * (kPage / 8) + t * words_per_slice;
          for (size_t w = 0; w < words_per_slice; ++w) slice[w] = Stamp(t, round, page, w);
        }
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t page : order) {
          const uint64_t* slice = words + page * (kPage / 8) + t * words_per_slice;
          for (size_t w = 0; w < words_per_slice; ++w) {
            if (slice[w] == Stamp(t, round, page, w)) continue;
            if (wrong.fetch_add(1) == 0 && first_wrong != nullptr) {
              std::lock_guard<std::mutex> lock(first_wrong_mutex);
              std::ostringstream text;
              text << "thread " << t << " round " << round << " page " << page << " word " << w
                   << ": got " << std::hex << slice[w] << ", want " << Stamp(t, round, page, w)
                   << ", previous round " << Stamp(t, round - 1, page, w);
              *first_wrong = text.str();
            }
            break;
          }
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return wrong.load();
}

SigbusCatcher::SigbusCatcher() {
  struct sigaction action {};
  action.sa_sigaction = OnCaughtSigbus;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, &previous_);
}

SigbusCatcher::~SigbusCatcher() { sigaction(SIGBUS, &previous_, nullptr); }

bool SigbusCatcher::ReadRaises(const volatile char* address) {
  g_sigbus_code = 0;
  g_sigbus_address = nullptr;
  volatile bool raised = false;
  if (sigsetjmp(g_sigbus_jump, 1) == 0) {
    (void)*address;
  } else {
    raised = true;
  }
  return raised;
}

int SigbusCatcher::code() const { return g_sigbus_code; }
const void* SigbusCatcher::address() const { return g_sigbus_address; }

int OpenManagedSwapFile() {
  std::string path = "/proc/self/fd/" + std::to_string(faultline::ManagedSwapFd());
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

void FlipSwappedByte(const void* page, size_t offset, unsigned char mask) {
  auto info = faultline::InspectManagedPage(page);
  REQUIRE(info.ok());
  REQUIRE(info->state == faultline::PageState::kSwapped);
  int fd = OpenManagedSwapFile();
  off_t at = static_cast<off_t>(faultline::ManagedSwapOffset(info->slot) + offset);
  unsigned char byte;
  REQUIRE(pread(fd, &byte, 1, at) == 1);
  byte ^= mask;
  REQUIRE(pwrite(fd, &byte, 1, at) == 1);
  REQUIRE(fdatasync(fd) == 0);
  close(fd);
}

int CountOpenFds() { return CountEntries("/proc/self/fd"); }
int CountThreads() { return CountEntries("/proc/self/task"); }

}  // namespace faultline::test
