#include "out_of_core.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "faultline/faultline.h"
#include "workloads.h"

namespace faultline_bench {

const WorkloadInfo kWorkloads[4] = {
    {Workload::kSequential, "sequential", "one pass in address order"},
    {Workload::kUniform, "random", "uniform random pages, one access per page of the region"},
    {Workload::kZipf, "zipf", "Zipf(0.99) ranks scattered over the region, as many accesses"},
    {Workload::kLoop, "loop", "3 passes in address order (a looping scan)"},
};

namespace {

constexpr uint64_t kUniformSeed = 20261127;
constexpr uint64_t kZipfSeed = 20261128;
constexpr uint64_t kZipfScatterSeed = 20261129;
constexpr double kZipfTheta = 0.99;
constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);

// Ranks 0 .. items-1 drawn with probability proportional to 1 / (rank + 1)^theta: the generator
// of Gray et al., "Quickly generating billion-record synthetic databases" (SIGMOD 1994), as YCSB
// uses it.
class ZipfRanks {
 public:
  ZipfRanks(size_t items, double theta, uint64_t seed)
      : items_(static_cast<double>(items)), theta_(theta), random_(seed) {
    double zeta_2 = 1.0 + std::pow(0.5, theta);
    zeta_n_ = 0;
    for (size_t i = 1; i <= items; ++i) zeta_n_ += std::pow(static_cast<double>(i), -theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / items_, 1.0 - theta)) / (1.0 - zeta_2 / zeta_n_);
  }

  size_t Next() {
    double u = uniform_(random_);
    double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    size_t rank = static_cast<size_t>(items_ * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return std::min(rank, static_cast<size_t>(items_) - 1);
  }

 private:
  double items_;
  double theta_;
  double zeta_n_;
  double alpha_;
  double eta_;
  std::mt19937_64 random_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

// Each access loads one word of its page and checks it; every fourth also stores the word back,
// so that those pages are dirty and must be written again before they can be evicted. Each access
// is timed alone to count those that waited.
void Access(char* base, const std::vector<uint32_t>& sequence, const char* label,
            OutOfCoreResult* result) {
  ProgressTicker ticker(label, sequence.size());
  uint64_t start = NowNs();
  for (size_t i = 0; i < sequence.size(); ++i) {
    uint64_t page = sequence[i];
    auto* word = reinterpret_cast<volatile uint64_t*>(base + page * kPage) + page % kWordsPerPage;
    uint64_t before = NowNs();
    uint64_t value = *word;
    if ((i & 3) == 3) *word = value;
    uint64_t after = NowNs();
    if (value != PagePattern(page)) ++result->verify_errors;
    if (after - before >= kWaitThresholdNs) ++result->waits;
    ticker.Tick(i);
  }
  result->seconds = static_cast<double>(NowNs() - start) / 1e9;
  result->accesses = sequence.size();
}

bool KernelChild(const std::vector<uint32_t>& sequence, size_t region_bytes, std::string* report,
                 std::string* why) {
  AnonRegion region;
  if (!region.Open(region_bytes, why)) return false;
  OutOfCoreResult result;
  result.fill_seconds = WritePages(region.data(), region_bytes, "kernel: fill");
  KernelCounters before = ReadKernelCounters();
  Access(region.data(), sequence, "kernel: accesses", &result);
  KernelCounters after = ReadKernelCounters();
  result.io_faults = after.major_faults - before.major_faults;
  result.bytes_read = (after.swapped_in - before.swapped_in) * kPage;
  result.bytes_written = (after.swapped_out - before.swapped_out) * kPage;
  report->append(reinterpret_cast<const char*>(&result), sizeof(result));
  return true;
}

}  // namespace

std::vector<uint32_t> AccessSequence(Workload workload, size_t pages) {
  std::vector<uint32_t> sequence;
  switch (workload) {
    case Workload::kSequential:
    case Workload::kLoop: {
      int passes = workload == Workload::kLoop ? kLoopPasses : 1;
      sequence.reserve(pages * passes);
      for (int pass = 0; pass < passes; ++pass) {
        for (size_t p = 0; p < pages; ++p) sequence.push_back(static_cast<uint32_t>(p));
      }
      break;
    }
    case Workload::kUniform: {
      std::mt19937_64 random(kUniformSeed);
      std::uniform_int_distribution<uint32_t> page(0, static_cast<uint32_t>(pages - 1));
      sequence.resize(pages);
      for (uint32_t& p : sequence) p = page(random);
      break;
    }
    case Workload::kZipf: {
      // Rank r is page scatter[r]: the hot pages are spread over the region, not packed at its
      // start, where they would share readahead windows.
      std::vector<uint32_t> scatter(pages);
      for (size_t p = 0; p < pages; ++p) scatter[p] = static_cast<uint32_t>(p);
      std::mt19937_64 shuffle(kZipfScatterSeed);
      std::shuffle(scatter.begin(), scatter.end(), shuffle);
      ZipfRanks ranks(pages, kZipfTheta, kZipfSeed);
      sequence.resize(pages);
      for (uint32_t& p : sequence) p = scatter[ranks.Next()];
      break;
    }
  }
  return sequence;
}

bool RunFaultlineWorkload(const std::vector<uint32_t>& sequence, size_t region_bytes,
                          uint64_t limit, const std::string& swap_dir, OutOfCoreResult* result,
                          std::string* why) {
  Knobs knobs;
  knobs.memory_limit = limit;
  ManagedRegion region;
  if (!region.Open(knobs, swap_dir, region_bytes, why)) return false;
  result->fill_seconds = WritePages(region.data(), region_bytes, "faultline: fill");
  fl_stats before = region.Stats();
  Access(region.data(), sequence, "faultline: accesses", result);
  fl_stats after = region.Stats();
  result->io_faults = after.faults_swap_in - before.faults_swap_in;
  result->bytes_read = after.bytes_read - before.bytes_read;
  result->bytes_written = after.bytes_written - before.bytes_written;
  return true;
}

bool RunKernelWorkload(const std::vector<uint32_t>& sequence, size_t region_bytes, uint64_t limit,
                       SharedKernelPeer* kernel_peer, OutOfCoreResult* result, std::string* why) {
  KernelSwapPeer* peer = kernel_peer->Get(why);
  if (peer == nullptr || !peer->SetLimit(limit, why)) return false;
  std::string report;
  auto body = [&](std::string* out, std::string* reason) {
    return KernelChild(sequence, region_bytes, out, reason);
  };
  if (!peer->RunInChild(body, &report, why)) return false;
  if (report.size() != sizeof(*result)) {
    *why = "malformed report from the kernel child";
    return false;
  }
  std::memcpy(result, report.data(), sizeof(*result));
  return true;
}

}  // namespace faultline_bench
