// faultline-bench: the kernel and faultline side by side, in one run.
//   1. isolated first-store fault latency (kernel first touch vs faultline zero fill, one page per
//      fault, for three spin settings, and with the whole process on one CPU);
//   2. sequential first-touch throughput over fault_around_pages;
//   3. out-of-core at a limit (write, sequential re-read, random re-read) with faultline's
//      counters, plus a short sweep of evict_batch_pages and fault_threads;
//   4. the same out-of-core phases under the kernel's own swap in a memory cgroup (root only).
// Tables go to stdout (JSON with --json), progress to stderr.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "faultline/faultline.h"
#include "kernel_swap.h"
#include "workloads.h"

namespace faultline_bench {
namespace {

// Latency rows: spin_us (0 = library default), whether the whole process runs on one CPU, and
// whether the region is self-paging (FL_MAP_SELF_PAGING: faults resolved on the faulting thread).
struct LatencyConfig {
  int32_t spin_us;
  bool one_cpu;
  bool self_paging;
};
constexpr LatencyConfig kLatencyConfigs[] = {
    {0, false, false}, {-1, false, false}, {1000, false, false}, {-1, true, false},
    {0, true, false},  {0, false, true},   {0, true, true}};
constexpr int32_t kDefaultSpinUs = 200;  // what spin_us = 0 means (faultline.h)
constexpr uint32_t kFaultAround[] = {1, 16, 64, 256, 512};
constexpr uint32_t kDefaultFaultAround = 256;  // what fault_around_pages = 0 means
constexpr uint32_t kEvictBatches[] = {16, 64, 256};
constexpr uint32_t kThreadCounts[] = {1, 2};
constexpr double kLatencyTarget = 6.0;
constexpr double kThroughputTarget = 1.0;
constexpr const char* kPhaseNames[3] = {"sequential write", "sequential re-read", "random re-read"};

struct Options {
  bool quick = false;
  bool json = false;
  std::string swap_dir = "/var/tmp";
};

struct Sizes {
  size_t latency_bytes;
  size_t touch_bytes;
  int touch_runs;  // first-touch rows report the median of this many runs
  size_t ooc_bytes;
  size_t ooc_limit;
  size_t sweep_bytes;
  size_t swap_file_bytes;
};

Sizes SizesFor(bool quick) {
  if (quick) return {16 * kMiB, 256 * kMiB, 1, 128 * kMiB, 16 * kMiB, 128 * kMiB, 2 * kGiB};
  return {64 * kMiB, kGiB, 3, kGiB, 64 * kMiB, 512 * kMiB, 2 * kGiB};
}

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      options->quick = true;
    } else if (arg == "--json") {
      options->json = true;
    } else if (arg == "--swap-dir" && i + 1 < argc) {
      options->swap_dir = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--json] [--swap-dir DIR]\n"
                   "  --quick          small sizes, a run of under 20 s\n"
                   "  --json           print the results as JSON instead of tables\n"
                   "  --swap-dir DIR   where faultline's and the kernel's swap files go "
                   "(default /var/tmp)\n",
                   argv[0]);
      return false;
    }
  }
  return true;
}

std::string MiB(size_t bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

double GiBPerSecond(size_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / kGiB / seconds : NAN;
}

uint64_t ToMiB(uint64_t bytes) { return bytes == kNoValue ? kNoValue : bytes / kMiB; }

Table RunInfo(const Options& options, const Sizes& sizes) {
  Table table = RunTable();
  table.AddRow({Text("mode"), Text(options.quick ? "quick" : "full")});
  table.AddRow({Text("swap dir"), Text(options.swap_dir)});
  table.AddRow({Text("timer pair overhead ns"), Int(TimerOverheadNs())});
  table.AddRow({Text("latency sweep"), Text(MiB(sizes.latency_bytes))});
  table.AddRow({Text("first-touch sweep"),
                Text(MiB(sizes.touch_bytes) + ", median of " + std::to_string(sizes.touch_runs))});
  table.AddRow(
      {Text("out-of-core"), Text(MiB(sizes.ooc_bytes) + " under a " + MiB(sizes.ooc_limit) +
                                 " limit; sweep " + MiB(sizes.sweep_bytes))});
  table.AddRow({Text("kernel swap settings"), Text(KernelSwapSettings())});
  return table;
}

// Section 1. Sets *ratio to faultline's default-spin p50 over the kernel's, and *self_paging_ratio
// to that of a self-paging region (NaN if missing).
Table RunLatency(const Options& options, const Sizes& sizes, Table* skipped, double* ratio,
                 double* self_paging_ratio) {
  Table table("latency",
              "1. Isolated fault latency: one timed store per fresh 4 KiB page, " +
                  MiB(sizes.latency_bytes) + " in order",
              {{"mode", "mode"},
               {"spin_us", "spin us"},
               {"samples", "samples"},
               {"p50_us", "p50 us"},
               {"p90_us", "p90 us"},
               {"p99_us", "p99 us"},
               {"p999_us", "p99.9 us"},
               {"max_us", "max us"},
               {"faults_per_s", "faults/s"},
               {"p50_vs_kernel", "p50 x kernel"},
               {"handler_p50_us", "handler p50 us"},
               {"handler_p99_us", "handler p99 us"}});
  auto add = [&](const char* mode, Cell spin, const LatencySummary& s, double kernel_p50,
                 uint64_t handler_p50_ns, uint64_t handler_p99_ns) {
    table.AddRow({Text(mode), spin, Int(s.samples), Num(s.p50_us, 2), Num(s.p90_us, 2),
                  Num(s.p99_us, 2), Num(s.p999_us, 2), Num(s.max_us, 1), Num(s.faults_per_s, 0),
                  Num(s.p50_us / kernel_p50, 2),
                  Num(handler_p50_ns == kNoValue ? NAN : handler_p50_ns / 1000.0, 2),
                  Num(handler_p99_ns == kNoValue ? NAN : handler_p99_ns / 1000.0, 2)});
  };
  *ratio = NAN;
  *self_paging_ratio = NAN;
  double kernel_p50 = NAN;
  std::string error;
  Progress("1/4 isolated fault latency: kernel first touch");
  {
    AnonRegion region;
    if (region.Open(sizes.latency_bytes, &error)) {
      LatencySummary s = TimeEachFirstStore(region.data(), sizes.latency_bytes);
      kernel_p50 = s.p50_us;
      add("kernel first touch", Cell(), s, kernel_p50, kNoValue, kNoValue);
    } else {
      skipped->AddRow({Text("latency: kernel first touch"), Text(error)});
    }
  }
  for (const LatencyConfig& config : kLatencyConfigs) {
    const int32_t spin = config.spin_us;
    std::string mode = std::string("faultline zero fill") +
                       (config.self_paging ? ", self-paging"
                        : spin == 0        ? ", default spin"
                                           : "") +
                       (config.one_cpu ? ", all on one CPU" : "");
    Progress("1/4 isolated fault latency: %s, spin_us %d", mode.c_str(), spin);
    Knobs knobs;
    knobs.memory_limit = 2 * sizes.latency_bytes;
    knobs.fault_around_pages = 1;
    knobs.spin_us = spin;
    knobs.map_flags = config.self_paging ? FL_MAP_SELF_PAGING : 0;
    std::optional<PinToCurrentCpu> pin;
    if (config.one_cpu && !pin.emplace().ok()) {
      skipped->AddRow({Text("latency: " + mode), Text("could not pin to one CPU")});
      continue;
    }
    ManagedRegion region;
    if (!region.Open(knobs, options.swap_dir, sizes.latency_bytes, &error)) {
      skipped->AddRow({Text("latency: " + mode), Text(error)});
      continue;
    }
    LatencySummary s = TimeEachFirstStore(region.data(), sizes.latency_bytes);
    fl_stats stats = region.Stats();
    add(mode.c_str(), Num(spin == 0 ? kDefaultSpinUs : spin, 0), s, kernel_p50,
        stats.fault_latency_p50_ns, stats.fault_latency_p99_ns);
    if (spin == 0 && !config.one_cpu) {
      *(config.self_paging ? self_paging_ratio : ratio) = s.p50_us / kernel_p50;
    }
  }
  table.AddNote(
      "fault_around_pages = 1 and no eviction: every faultline store is one uffd round "
      "trip (UFFDIO_COPY of a zero page). spin 200 is the library default. \"all on one "
      "CPU\": the process (so the handler and evictor threads too) pinned to one CPU before "
      "fl_init. \"self-paging\": an FL_MAP_SELF_PAGING region, whose faults the faulting "
      "thread resolves itself in faultline's SIGBUS handler (no handler thread involved).");
  table.AddNote(
      "handler p50/p99: faultline's own service time (message read to page mapped), "
      "from fl_get_stats.");
  return table;
}

struct TouchRow {
  double median = NAN, low = NAN, high = NAN;  // GiB/s over the runs
  uint64_t faults = kNoValue;                  // faults of the last run
};

TouchRow Aggregate(std::vector<double> rates, uint64_t faults) {
  TouchRow row;
  if (rates.empty()) return row;
  std::sort(rates.begin(), rates.end());
  row.median = rates[rates.size() / 2];
  row.low = rates.front();
  row.high = rates.back();
  row.faults = faults;
  return row;
}

// Section 2. Sets *best_ratio / *default_ratio (NaN if missing) and *best_fault_around.
Table RunFirstTouch(const Options& options, const Sizes& sizes, Table* skipped, double* best_ratio,
                    uint32_t* best_fault_around, double* default_ratio) {
  Table table("first_touch",
              "2. Sequential first-touch throughput: one store per 4 KiB page over " +
                  MiB(sizes.touch_bytes) + " (no eviction)",
              {{"mode", "mode"},
               {"fault_around_pages", "fault-around"},
               {"gib_per_s", "GiB/s"},
               {"gib_per_s_min", "min"},
               {"gib_per_s_max", "max"},
               {"vs_kernel", "x kernel"},
               {"faults", "faults"},
               {"pages_per_fault", "pages/fault"}});
  const size_t bytes = sizes.touch_bytes;
  const uint64_t pages = bytes / kPage;
  std::string error;
  std::vector<double> rates;
  Progress("2/4 first-touch throughput: kernel");
  for (int run = 0; run < sizes.touch_runs; ++run) {
    AnonRegion region;
    if (!region.Open(bytes, &error)) break;
    rates.push_back(GiBPerSecond(bytes, TimeFirstTouch(region.data(), bytes)));
  }
  TouchRow kernel = Aggregate(rates, pages);
  if (rates.empty()) {
    skipped->AddRow({Text("first touch: kernel"), Text(error)});
  } else {
    table.AddRow({Text("kernel 4 KiB first touch"), Cell(), Num(kernel.median, 3),
                  Num(kernel.low, 3), Num(kernel.high, 3), Num(1.0, 2), Int(kernel.faults),
                  Num(1.0, 1)});
  }
  *best_ratio = NAN;
  *default_ratio = NAN;
  *best_fault_around = 0;
  for (uint32_t around : kFaultAround) {
    Progress("2/4 first-touch throughput: faultline fault_around_pages %u", around);
    rates.clear();
    uint64_t faults = kNoValue;
    for (int run = 0; run < sizes.touch_runs; ++run) {
      Knobs knobs;
      knobs.memory_limit = bytes + 64 * kMiB;
      knobs.fault_around_pages = around;
      ManagedRegion region;
      if (!region.Open(knobs, options.swap_dir, bytes, &error)) break;
      rates.push_back(GiBPerSecond(bytes, TimeFirstTouch(region.data(), bytes)));
      faults = region.Stats().faults_zero_fill;
    }
    if (rates.empty()) {
      skipped->AddRow(
          {Text("first touch: faultline fault_around " + std::to_string(around)), Text(error)});
      continue;
    }
    TouchRow row = Aggregate(rates, faults);
    double ratio = row.median / kernel.median;
    if (std::isnan(*best_ratio) || ratio > *best_ratio) {
      *best_ratio = ratio;
      *best_fault_around = around;
    }
    if (around == kDefaultFaultAround) *default_ratio = ratio;
    table.AddRow(
        {Text(around == kDefaultFaultAround ? "faultline (default fault-around)" : "faultline"),
         Int(around), Num(row.median, 3), Num(row.low, 3), Num(row.high, 3), Num(ratio, 2),
         Int(row.faults), Num(faults > 0 ? static_cast<double>(pages) / faults : NAN, 1)});
  }
  table.AddNote(
      "faultline's window grows by doubling along a sequential stream of faults, up to "
      "fault_around_pages; default spin (200 us).");
  return table;
}

struct OutOfCore {
  bool ran = false;
  PhaseResult phases[3];
  uint64_t limit_overshoot_pages = kNoValue;  // faultline only, over all three phases
};

// Section 3, first half: faultline with its defaults at the limit.
OutOfCore RunFaultlineOutOfCore(const Options& options, const Sizes& sizes, Table* skipped) {
  OutOfCore result;
  Knobs knobs;
  knobs.memory_limit = sizes.ooc_limit;
  ManagedRegion region;
  std::string error;
  Progress("3/4 out-of-core: faultline, %s under %s", MiB(sizes.ooc_bytes).c_str(),
           MiB(sizes.ooc_limit).c_str());
  if (!region.Open(knobs, options.swap_dir, sizes.ooc_bytes, &error)) {
    skipped->AddRow({Text("out-of-core: faultline (all three phases)"), Text(error)});
    return result;
  }
  std::vector<uint32_t> order = ShuffledPages(sizes.ooc_bytes / kPage);
  fl_stats before = region.Stats();
  result.phases[0] = WritePages(region.data(), sizes.ooc_bytes, "faultline: write");
  fl_stats after_write = region.Stats();
  result.phases[1] = ReadSequential(region.data(), sizes.ooc_bytes, "faultline: sequential read");
  fl_stats after_read = region.Stats();
  result.phases[2] = ReadInOrder(region.data(), order, "faultline: random read");
  fl_stats after_random = region.Stats();
  SetFaultlineCounters(before, after_write, &result.phases[0]);
  SetFaultlineCounters(after_write, after_read, &result.phases[1]);
  SetFaultlineCounters(after_read, after_random, &result.phases[2]);
  result.limit_overshoot_pages = after_random.limit_overshoot_pages;
  result.ran = true;
  return result;
}

// Section 3, second half: evict_batch_pages x fault_threads, write and sequential re-read only.
Table RunSweep(const Options& options, const Sizes& sizes, Table* skipped) {
  Table table("sweep",
              "3b. Out-of-core knob sweep: " + MiB(sizes.sweep_bytes) + " under " +
                  MiB(sizes.ooc_limit) + ", sequential write then sequential re-read",
              {{"evict_batch_pages", "evict batch"},
               {"fault_threads", "threads"},
               {"write_gib_per_s", "write GiB/s"},
               {"reread_gib_per_s", "re-read GiB/s"},
               {"verify_errors", "verify errors"},
               {"mib_written", "MiB written"},
               {"evictions", "evictions"},
               {"swap_ins", "swap-ins"},
               {"readahead_pages", "readahead"},
               {"mib_read", "MiB read"},
               {"direct_reclaims", "direct reclaims"},
               {"limit_overshoot_pages", "overshoot pages"}});
  for (uint32_t batch : kEvictBatches) {
    for (uint32_t threads : kThreadCounts) {
      Progress("3/4 sweep: evict_batch_pages %u, fault_threads %u", batch, threads);
      Knobs knobs;
      knobs.memory_limit = sizes.ooc_limit;
      knobs.evict_batch_pages = batch;
      knobs.fault_threads = threads;
      ManagedRegion region;
      std::string error;
      if (!region.Open(knobs, options.swap_dir, sizes.sweep_bytes, &error)) {
        skipped->AddRow({Text("sweep: evict_batch " + std::to_string(batch) + ", threads " +
                              std::to_string(threads)),
                         Text(error)});
        continue;
      }
      fl_stats before = region.Stats();
      PhaseResult write = WritePages(region.data(), sizes.sweep_bytes, "sweep: write");
      fl_stats middle = region.Stats();
      PhaseResult read = ReadSequential(region.data(), sizes.sweep_bytes, "sweep: read");
      fl_stats after = region.Stats();
      SetFaultlineCounters(before, middle, &write);
      SetFaultlineCounters(middle, after, &read);
      table.AddRow(
          {Int(batch), Int(threads), Num(GiBPerSecond(sizes.sweep_bytes, write.seconds), 3),
           Num(GiBPerSecond(sizes.sweep_bytes, read.seconds), 3),
           Int(write.verify_errors + read.verify_errors), Int(ToMiB(write.bytes_written)),
           Int(write.evictions + read.evictions), Int(read.swap_ins), Int(read.readahead_pages),
           Int(ToMiB(read.bytes_read)), Int(write.direct_reclaims + read.direct_reclaims),
           Int(after.limit_overshoot_pages)});
    }
  }
  table.AddNote("defaults: fault_around_pages 256 (zero fill), readahead_pages 64 (swap-in).");
  return table;
}

// Section 4: the kernel's swap, in a child held to the same limit by a memory cgroup.
OutOfCore RunKernelOutOfCore(const Options& options, const Sizes& sizes, Table* skipped) {
  OutOfCore result;
  Progress("4/4 out-of-core: kernel swap, %s under a %s memory cgroup",
           MiB(sizes.ooc_bytes).c_str(), MiB(sizes.ooc_limit).c_str());
  KernelSwapPeer peer;
  std::string why;
  if (!peer.Setup(options.swap_dir, sizes.swap_file_bytes, sizes.ooc_limit, &why) ||
      !peer.RunOutOfCore(sizes.ooc_bytes, result.phases, &why)) {
    skipped->AddRow({Text("out-of-core: kernel swap (all three phases)"), Text(why)});
    return result;
  }
  peer.Teardown();
  result.ran = true;
  return result;
}

Table OutOfCoreTable(const Sizes& sizes, const OutOfCore& faultline, const OutOfCore& kernel) {
  Table table("out_of_core",
              "3/4. Out-of-core: " + MiB(sizes.ooc_bytes) + " under a " + MiB(sizes.ooc_limit) +
                  " limit (faultline defaults vs kernel swap in a memory cgroup)",
              {{"mode", "mode"},
               {"phase", "phase"},
               {"seconds", "s"},
               {"gib_per_s", "GiB/s"},
               {"pages_per_s", "pages/s"},
               {"vs_kernel_swap", "x kernel swap"},
               {"verify_errors", "verify errors"},
               {"swap_ins", "swap-ins"},
               {"readahead_pages", "readahead"},
               {"mib_read", "MiB read"},
               {"mib_written", "MiB written"},
               {"evictions", "evictions"},
               {"evictions_clean", "evict clean"},
               {"direct_reclaims", "direct reclaims"}});
  auto add = [&](const char* mode, const OutOfCore& side, const OutOfCore& other) {
    if (!side.ran) return;
    for (int i = 0; i < 3; ++i) {
      const PhaseResult& p = side.phases[i];
      double rate = p.seconds > 0 ? p.pages / p.seconds : NAN;
      double bytes = static_cast<double>(p.pages * kPage);
      double other_rate = other.ran && other.phases[i].seconds > 0
                              ? other.phases[i].pages / other.phases[i].seconds
                              : NAN;
      table.AddRow({Text(mode), Text(kPhaseNames[i]), Num(p.seconds, 3),
                    Num(p.seconds > 0 ? bytes / kGiB / p.seconds : NAN, 3), Num(rate, 0),
                    Num(rate / other_rate, 2), Int(p.verify_errors), Int(p.swap_ins),
                    Int(p.readahead_pages), Int(ToMiB(p.bytes_read)), Int(ToMiB(p.bytes_written)),
                    Int(p.evictions), Int(p.evictions_clean), Int(p.direct_reclaims)});
    }
  };
  add("faultline", faultline, kernel);
  OutOfCore none;
  add("kernel swap", kernel, none);
  if (faultline.ran) {
    table.AddNote("faultline limit_overshoot_pages (most pages ever resident above the limit): " +
                  std::to_string(faultline.limit_overshoot_pages));
  }
  table.AddNote(
      "re-reads read one word per page and check it. Kernel counters: swap-ins = major "
      "faults of the child; readahead = pswpin - major faults; MiB read/written = "
      "pswpin/pswpout; evictions = pgsteal_anon (system-wide, from /proc/vmstat).");
  return table;
}

Cell Verdict(double value, bool pass) {
  return Text(std::isnan(value) ? "not measured" : pass ? "met" : "missed");
}

Table TargetsTable(double latency_ratio, double self_paging_ratio, double best_ratio,
                   uint32_t best_around, double default_ratio) {
  Table table(
      "targets", "Targets",
      {{"check", "check"}, {"measured", "measured"}, {"target", "target"}, {"verdict", "verdict"}});
  table.AddRow({Text("isolated zero-fill p50 / kernel first-touch p50 (default spin)"),
                Num(latency_ratio, 2), Text("<= 6.0"),
                Verdict(latency_ratio, latency_ratio <= kLatencyTarget)});
  table.AddRow({Text("isolated zero-fill p50 / kernel first-touch p50 (self-paging region)"),
                Num(self_paging_ratio, 2), Text("<= 6.0"),
                Verdict(self_paging_ratio, self_paging_ratio <= kLatencyTarget)});
  std::string best = best_around == 0 ? "none" : std::to_string(best_around);
  table.AddRow({Text("first-touch GiB/s / kernel, best fault-around (" + best + ")"),
                Num(best_ratio, 2), Text(">= 1.0"),
                Verdict(best_ratio, best_ratio >= kThroughputTarget)});
  table.AddRow({Text("first-touch GiB/s / kernel, default fault-around (256)"),
                Num(default_ratio, 2), Text(">= 1.0"),
                Verdict(default_ratio, default_ratio >= kThroughputTarget)});
  return table;
}

int Run(const Options& options) {
  Sizes sizes = SizesFor(options.quick);
  Table skipped("skipped", "Skipped rows", {{"rows", "rows"}, {"reason", "reason"}});
  std::vector<Table> tables;
  tables.push_back(RunInfo(options, sizes));
  double latency_ratio = NAN;
  double self_paging_ratio = NAN;
  tables.push_back(RunLatency(options, sizes, &skipped, &latency_ratio, &self_paging_ratio));
  double best_ratio = NAN;
  double default_ratio = NAN;
  uint32_t best_around = 0;
  tables.push_back(
      RunFirstTouch(options, sizes, &skipped, &best_ratio, &best_around, &default_ratio));
  OutOfCore faultline = RunFaultlineOutOfCore(options, sizes, &skipped);
  Table sweep = RunSweep(options, sizes, &skipped);
  OutOfCore kernel = RunKernelOutOfCore(options, sizes, &skipped);
  tables.push_back(OutOfCoreTable(sizes, faultline, kernel));
  tables.push_back(std::move(sweep));
  tables.push_back(
      TargetsTable(latency_ratio, self_paging_ratio, best_ratio, best_around, default_ratio));
  tables.front().AddRow({Text("load average at end"), Text(LoadAverage())});
  if (!skipped.empty()) tables.push_back(std::move(skipped));

  PrintTables(tables, options.json);
  return 0;
}

}  // namespace
}  // namespace faultline_bench

int main(int argc, char** argv) {
  faultline_bench::Options options;
  if (!faultline_bench::ParseArgs(argc, argv, &options)) return 2;
  faultline_bench::InstallCleanupHandlers();
  return faultline_bench::Run(options);
}
