// faultline-bench-advice: a sequential scan over swapped-out memory under paging advice (issue 4),
// faultline against the kernel's own swap held to the same limit.
//
// Every run writes a fresh region, pages it all out, gives a mode's advice and scans it once from
// the start (advice_scan.h): NORMAL, SEQUENTIAL or RANDOM for the whole region, or WILLNEED on
// the next 8 MiB window as the scan proceeds. faultline runs in this process (fl_init with
// memory_limit = the limit, defaults otherwise); the kernel runs in a child that joins a cgroup
// v1 memory group of the same limit, with a swap file next to faultline's (KernelSwapPeer: root
// only). Each repetition runs the eight modes in turn, so that a disturbance of the machine falls
// on all of them; a row gives medians over the repetitions.
// Tables go to stdout (JSON with --json), progress and failures to stderr. Exits 1 when a word
// read back was wrong or a run failed, 2 on a usage error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "advice_scan.h"
#include "bench_util.h"
#include "kernel_swap.h"

namespace faultline_bench {
namespace {

constexpr uint64_t kKernelSwapBytes = 2 * kGiB;

constexpr char kUsage[] =
    "usage: %s [--quick] [--json] [--swap-dir DIR]\n"
    "  --quick          256 MiB instead of 512 MiB (limit 64 MiB), one repetition instead of 3\n"
    "  --json           print the results as JSON instead of tables\n"
    "  --swap-dir DIR   where faultline's and the kernel's swap files go (default /var/tmp)\n"
    "The kernel rows need root and a cgroup v1 memory controller; without them they are skipped\n"
    "and the table \"Skipped rows\" says why.\n";

struct Options {
  bool quick = false;
  bool json = false;
  std::string swap_dir = "/var/tmp";
  size_t region_bytes = 512 * kMiB;
  size_t limit_bytes = 64 * kMiB;
  int repetitions = 3;
};

// Fills *options; returns nothing to go on with the run, else the exit status (0 after --help).
std::optional<int> ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      options->quick = true;
      options->region_bytes = 256 * kMiB;
      options->repetitions = 1;
    } else if (arg == "--json") {
      options->json = true;
    } else if (arg == "--swap-dir" && i + 1 < argc) {
      options->swap_dir = argv[++i];
    } else {
      bool help = arg == "--help" || arg == "-h";
      std::fprintf(help ? stdout : stderr, kUsage, argv[0]);
      return help ? 0 : 2;
    }
  }
  return std::nullopt;
}

std::string MiB(size_t bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

double Counted(uint64_t value) { return value == kNoValue ? NAN : static_cast<double>(value); }

// The median of `field` over the runs that have it (not NaN); NaN when none has.
template <typename Field>
double Median(const std::vector<ScanResult>& runs, Field field) {
  std::vector<double> values;
  for (const ScanResult& run : runs) {
    if (double value = field(run); !std::isnan(value)) values.push_back(value);
  }
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

constexpr const Side* kSides[] = {&kFaultlineSide, &kKernelSide};

// The runs of one side in one mode.
struct ModeRuns {
  std::vector<ScanResult> good;  // ran to the end with every word right
  int attempts = 0;
  std::string skipped;  // why the row did not run at all; empty when it ran
};

class AdviceBench {
 public:
  explicit AdviceBench(const Options& options) : options_(options) {}

  // Runs every repetition and prints the tables; returns the exit status.
  int Run();

 private:
  static int SideIndex(const Side& side) { return &side == &kKernelSide ? 1 : 0; }
  ModeRuns& RunsOf(const Side& side, int mode) { return runs_[SideIndex(side)][mode]; }
  const ModeRuns& RunsOf(const Side& side, int mode) const { return runs_[SideIndex(side)][mode]; }
  static std::string Label(const Side& side, int mode);

  void SkipKernel(const std::string& why);
  void RunRepetition(int repetition);
  // Keeps a run that ended well; reports any other as a failure.
  void Record(const Side& side, int mode, const ScanResult& result);
  void Fail(const std::string& what);
  Table RunInfo() const;
  Table ScanTable() const;
  void AddRow(const Side& side, int mode, Table* table) const;

  const Options& options_;
  KernelSwapPeer peer_;
  ModeRuns runs_[2][kAdviceModeCount];  // [SideIndex][mode]
  std::vector<std::string> loads_;      // the load average after each repetition
  Table skipped_{"skipped", "Skipped rows", {{"rows", "rows"}, {"reason", "reason"}}};
  Table failures_{"failures", "FAILURES", {{"failure", "failure"}}};
  int failure_count_ = 0;
};

std::string AdviceBench::Label(const Side& side, int mode) {
  return std::string(side.name) + " " + kAdviceModes[mode].name;
}

void AdviceBench::Fail(const std::string& what) {
  std::fprintf(stderr, "\n*** faultline-bench-advice: FAILED: %s ***\n\n", what.c_str());
  failures_.AddRow({Text(what)});
  ++failure_count_;
}

void AdviceBench::SkipKernel(const std::string& why) {
  Progress("kernel rows skipped: %s", why.c_str());
  for (int mode = 0; mode < kAdviceModeCount; ++mode) {
    RunsOf(kKernelSide, mode).skipped = why;
    skipped_.AddRow({Text(Label(kKernelSide, mode)), Text(why)});
  }
}

void AdviceBench::Record(const Side& side, int mode, const ScanResult& result) {
  const std::string label = Label(side, mode);
  if (result.verify_errors > 0) {
    char detail[160];
    std::snprintf(detail, sizeof(detail),
                  "%llu words read back WRONG; the first at page %llu: %#llx instead of %#llx",
                  static_cast<unsigned long long>(result.verify_errors),
                  static_cast<unsigned long long>(result.first_bad_page),
                  static_cast<unsigned long long>(result.first_bad_value),
                  static_cast<unsigned long long>(PagePattern(result.first_bad_page)));
    Fail(label + ": " + detail);
  } else if (result.error[0] != '\0') {
    Fail(label + ": " + result.error);
  } else {
    Progress("  %s: %.3f s, %.0f MiB/s, %llu waits", label.c_str(), result.seconds,
             static_cast<double>(options_.region_bytes) / kMiB / result.seconds,
             static_cast<unsigned long long>(result.waits));
    RunsOf(side, mode).good.push_back(result);
  }
}

void AdviceBench::RunRepetition(int repetition) {
  Progress("repetition %d of %d", repetition, options_.repetitions);
  Knobs knobs;
  knobs.memory_limit = options_.limit_bytes;
  for (int mode = 0; mode < kAdviceModeCount; ++mode) {
    for (const Side* side : kSides) {
      ModeRuns& runs = RunsOf(*side, mode);
      if (!runs.skipped.empty()) continue;
      const std::string label = Label(*side, mode);
      Progress("%s", label.c_str());
      ++runs.attempts;
      ScanResult result;
      std::string why;
      if (side == &kFaultlineSide) {
        if (RunFaultlineScan(knobs, options_.swap_dir, options_.region_bytes, kAdviceModes[mode],
                             &result, &why)) {
          Record(*side, mode, result);
        } else {
          runs.skipped = why;
          skipped_.AddRow({Text(label), Text(why)});
        }
      } else if (RunKernelScan(&peer_, options_.region_bytes, kAdviceModes[mode], &result, &why)) {
        Record(*side, mode, result);
      } else {
        Fail(label + ": " + why);
      }
    }
  }
  loads_.push_back(LoadAverage());
}

Table AdviceBench::RunInfo() const {
  Table table = RunTable();
  table.AddRow({Text("mode"), Text(options_.quick ? "quick" : "full")});
  table.AddRow({Text("region"), Text(MiB(options_.region_bytes))});
  table.AddRow({Text("limit"), Text(MiB(options_.limit_bytes))});
  table.AddRow({Text("repetitions"), Int(static_cast<uint64_t>(options_.repetitions))});
  table.AddRow({Text("swap dir"), Text(options_.swap_dir)});
  table.AddRow({Text("kernel swap settings"), Text(KernelSwapSettings())});
  for (size_t i = 0; i < loads_.size(); ++i) {
    table.AddRow({Text("load average after repetition " + std::to_string(i + 1)), Text(loads_[i])});
  }
  return table;
}

void AdviceBench::AddRow(const Side& side, int mode, Table* table) const {
  const ModeRuns& runs = RunsOf(side, mode);
  if (!runs.skipped.empty()) return;
  const std::vector<ScanResult>& good = runs.good;
  auto median = [&good](auto field) { return Median(good, field); };
  auto seconds = [](const ScanResult& r) { return r.seconds; };
  const double mib = static_cast<double>(options_.region_bytes) / kMiB;
  const double rate = mib / median(seconds);
  const double kernel_rate = mib / Median(RunsOf(kKernelSide, mode).good, seconds);
  double low = NAN, high = NAN;
  for (const ScanResult& r : good) {
    low = std::isnan(low) ? r.seconds : std::min(low, r.seconds);
    high = std::isnan(high) ? r.seconds : std::max(high, r.seconds);
  }
  const double faults = median([](const ScanResult& r) { return Counted(r.io.read_faults); });
  const double pages_read =
      median([](const ScanResult& r) { return Counted(r.io.bytes_read); }) / kPage;
  auto mib_of_pages = [](uint64_t pages) { return Counted(pages) * kPage / kMiB; };
  table->AddRow(
      {Text(Label(side, mode)),
       Text(std::to_string(good.size()) + "/" + std::to_string(runs.attempts)), Num(rate, 0),
       Num(median(seconds), 3), Num(low, 3), Num(high, 3), Num(rate / kernel_rate, 2),
       Num(median([](const ScanResult& r) { return Counted(r.waits); }), 0),
       Num(median([](const ScanResult& r) { return r.wait_seconds; }), 3),
       Num(median([](const ScanResult& r) { return r.advise_seconds; }), 3), Num(faults, 0),
       Num(pages_read * kPage / kMiB, 0), Num(pages_read / faults, 1),
       Num(median([](const ScanResult& r) { return Counted(r.io.prefetched_pages); }), 0),
       Num(median([&](const ScanResult& r) { return mib_of_pages(r.resident_pages_at_start); }), 1),
       Num(median([&](const ScanResult& r) { return mib_of_pages(r.mapped_pages_at_start); }), 1)});
}

Table AdviceBench::ScanTable() const {
  Table table("scan",
              "Sequential scan of " + MiB(options_.region_bytes) + " paged out, limit " +
                  MiB(options_.limit_bytes) + ": one checked 8-byte word per 4 KiB page",
              {{"mode", "mode"},
               {"runs_ok", "runs ok"},
               {"mib_per_s", "MiB/s"},
               {"scan_s", "scan s"},
               {"scan_min_s", "min"},
               {"scan_max_s", "max"},
               {"vs_kernel", "x kernel"},
               {"waits", "waits"},
               {"wait_s", "wait s"},
               {"advise_s", "advise s"},
               {"read_faults", "read faults"},
               {"mib_read", "MiB read"},
               {"pages_read_per_read_fault", "pages read/fault"},
               {"prefetched_pages", "prefetched"},
               {"in_memory_mib_at_start", "in memory MiB at start"},
               {"mapped_mib_at_start", "mapped MiB at start"}});
  for (int mode = 0; mode < kAdviceModeCount; ++mode) {
    for (const Side* side : kSides) AddRow(*side, mode, &table);
  }
  table.AddNote(
      "Each run: write every word of every page of a fresh region, PAGEOUT the whole region "
      "(fl_advise / madvise), give the mode's advice for the whole region, scan from the start. "
      "WILLNEED ahead: NORMAL, and at each 8 MiB window start WILLNEED on the next window (the "
      "calls are timed with the scan). faultline: fl_init with the limit, defaults otherwise. "
      "kernel: a child in a memory cgroup of the same limit, anonymous mmap, MADV_NOHUGEPAGE.");
  table.AddNote(
      "Medians over the runs, but min/max (of scan s). x kernel: MiB/s over the kernel's in the "
      "same mode. waits: accesses of the scan that took 10 us or more, timed alone; wait s: "
      "their total. advise s: time in the WILLNEED calls during the scan. read faults: faults that "
      "started a read (faultline faults_swap_in, kernel "
      "ru_majflt of the child); a fault on a page whose read is already in flight also waits "
      "but counts on neither side. MiB read: faultline bytes_read, kernel pswpin (system-wide). "
      "prefetched: faultline pages_prefetched. At start (after the page-out and the advice): in "
      "memory = mincore (mapped, or in the kernel's swap cache); mapped = /proc/self/pagemap.");
  return table;
}

int AdviceBench::Run() {
  std::string why;
  if (!peer_.Setup(options_.swap_dir, kKernelSwapBytes, options_.limit_bytes, &why)) {
    SkipKernel(why);
  }
  for (int repetition = 1; repetition <= options_.repetitions; ++repetition) {
    RunRepetition(repetition);
  }
  peer_.Teardown();
  std::vector<Table> tables = {RunInfo(), ScanTable()};
  if (!skipped_.empty()) tables.push_back(skipped_);
  if (failure_count_ > 0) tables.push_back(failures_);
  PrintTables(tables, options_.json);
  return failure_count_ > 0 ? 1 : 0;
}

}  // namespace
}  // namespace faultline_bench

int main(int argc, char** argv) {
  faultline_bench::Options options;
  if (std::optional<int> status = faultline_bench::ParseArgs(argc, argv, &options)) return *status;
  faultline_bench::InstallCleanupHandlers();
  return faultline_bench::AdviceBench(options).Run();
}
