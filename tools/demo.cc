// faultline-demo: the experiment of "Memory Management: the Abstraction and the Machinery" made
// real. It reserves 512 MiB in a managed region under a 128 MiB limit, writes every page, reads
// every page back verifying each byte, and prints as it goes what the kernel reports for the
// process (VSZ, RSS, minor and major faults, from /proc) beside faultline's own counters: RSS
// holds near the limit while all 512 MiB stay in use.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "faultline/faultline.hpp"
#include "util/proc_memory.h"

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMiB = 1 << 20;

uint64_t Word(uint64_t page, uint64_t i) { return (page * 0x9e3779b97f4a7c15ULL) ^ (i + 1); }

void PrintHeader() {
  std::printf("%-22s %9s %9s %9s %7s | %9s %9s %9s %10s %9s %9s\n", "phase", "VSZ MiB", "RSS MiB",
              "minflt", "majflt", "res MiB", "swap MiB", "zerofill", "swapins", "evicted",
              "p99 us");
}

void PrintRow(const faultline::Runtime& runtime, const std::string& phase) {
  faultline::ProcMemory p = faultline::ReadProcMemory();
  faultline::Stats s = runtime.stats();
  std::printf("%-22s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %7" PRIu64 " | %9" PRIu64 " %9" PRIu64
              " %9" PRIu64 " %10" PRIu64 " %9" PRIu64 " %9.1f\n",
              phase.c_str(), p.vsz_bytes / kMiB, p.rss_bytes / kMiB, p.minor_faults, p.major_faults,
              s.resident_pages * kPage / kMiB, s.swapped_pages * kPage / kMiB, s.faults_zero_fill,
              s.faults_swap_in, s.evictions, s.fault_latency_p99_ns / 1000.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  size_t region_mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512;
  size_t limit_mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 128;
  try {
    faultline::Runtime runtime(faultline::Config().memory_limit(limit_mib * kMiB));
    std::printf("faultline demo: %zu MiB managed region under a %zu MiB limit (pid %d)\n\n",
                region_mib, limit_mib, static_cast<int>(getpid()));
    PrintHeader();
    PrintRow(runtime, "start");
    faultline::Region region(region_mib * kMiB);
    PrintRow(runtime, "reserved");
    auto* base = static_cast<uint64_t*>(region.data());
    const size_t pages = region.size() / kPage;
    const size_t words = kPage / 8;
    for (size_t page = 0; page < pages; ++page) {
      for (size_t i = 0; i < words; ++i) base[page * words + i] = Word(page, i);
      if ((page + 1) % (64 * kMiB / kPage) == 0) {
        PrintRow(runtime, "written " + std::to_string((page + 1) * kPage / kMiB) + " MiB");
      }
    }
    size_t wrong = 0;
    for (size_t page = 0; page < pages; ++page) {
      for (size_t i = 0; i < words; ++i) {
        if (base[page * words + i] != Word(page, i)) {
          if (wrong++ == 0) std::printf("MISMATCH at page %zu word %zu\n", page, i);
          break;
        }
      }
      if ((page + 1) % (64 * kMiB / kPage) == 0) {
        PrintRow(runtime, "verified " + std::to_string((page + 1) * kPage / kMiB) + " MiB");
      }
    }
    faultline::Stats s = runtime.stats();
    std::printf("\n%s: %zu MiB written and read back through a %zu MiB limit; %zu wrong pages.\n",
                wrong == 0 ? "OK" : "FAILED", region_mib, limit_mib, wrong);
    std::printf("swap: %.1f MiB written, %.1f MiB read; fault latency p50 %.1f us, p99 %.1f us\n",
                s.bytes_written / double(kMiB), s.bytes_read / double(kMiB),
                s.fault_latency_p50_ns / 1000.0, s.fault_latency_p99_ns / 1000.0);
    return wrong == 0 ? 0 : 1;
  } catch (const faultline::Error& e) {
    std::fprintf(stderr, "faultline-demo: %s\n", e.what());
    return 2;
  }
}
