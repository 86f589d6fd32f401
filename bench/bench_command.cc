#include "bench_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench_options.h"
#include "bench_util.h"
#include "cdf_plot.h"
#include "first_touch.h"
#include "kernel_swap.h"
#include "latency_modes.h"
#include "out_of_core.h"

namespace faultline_bench {
namespace {

constexpr int kExitVerifyFailed = 1;
constexpr int kExitUsage = 2;

// The targets (bench/README.md, "Targets").
constexpr double kZeroFillLatencyRatio = 6.0;  // faultline zero-fill p50 / kernel first-touch p50
constexpr double kFirstTouchThroughputRatio = 1.3;  // faultline with fault-around / kernel
constexpr double kSwapInOverDeviceUs = 15.0;        // faultline swap-in p50 - device 4 KiB read p50
constexpr double kOutOfCoreThroughputRatio = 1.0;   // faultline / kernel on seq, random, zipf

// The kernel's swap file holds twice the largest region swapped to it, plus this: with swap more
// than half full (vm_swap_full()) the kernel frees a page's slot when it reads the page back, and
// must write it again at its next eviction; the bench measures the kernel's usual regime.
constexpr uint64_t kSwapFileHeadroom = 256 * kMiB;

std::string MiB(uint64_t bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

std::string Threads(uint32_t threads) {
  return std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

uint64_t ToMiB(uint64_t bytes) { return bytes == kNoValue ? kNoValue : bytes / kMiB; }

double Micros(uint64_t ns) { return ns == kNoValue ? NAN : static_cast<double>(ns) / 1000.0; }

// Rows that could not run, with the reason; printed last.
class SkippedRows {
 public:
  void Add(std::string what, std::string why) {
    Progress("skipped %s: %s", what.c_str(), why.c_str());
    table_.AddRow({Text(std::move(what)), Text(std::move(why))});
  }
  Table Take() { return std::move(table_); }

 private:
  Table table_{"skipped", "Skipped", {{"what", "what"}, {"reason", "reason"}}};
};

struct LatencyResults {
  std::vector<LatencyRow> rows;

  const LatencyRow* Find(LatencyMode mode, uint32_t threads) const {
    for (const LatencyRow& row : rows) {
      if (row.mode == mode && row.threads == threads) return &row;
    }
    return nullptr;
  }
  double P50(LatencyMode mode, uint32_t threads) const {
    const LatencyRow* row = Find(mode, threads);
    return row == nullptr ? NAN : row->summary.p50_us;
  }
};

LatencyResults RunLatency(const BenchOptions& options, SharedKernelPeer* peer,
                          SkippedRows* skipped) {
  LatencySettings settings;
  settings.samples = options.samples;
  settings.swap_dir = options.swap_dir;
  settings.device_file_bytes = options.device_file_bytes;
  LatencyResults results;
  for (LatencyMode mode : options.latency_modes) {
    const char* name = InfoOf(mode).name;
    for (uint32_t threads : options.threads) {
      // The device is read at queue depth 1, by one thread.
      if (mode == LatencyMode::kDeviceRead && threads != options.threads.front()) break;
      Progress("latency: %s, %s, %zu faults", name, Threads(threads).c_str(), options.samples);
      LatencyRow row;
      std::string why;
      if (!RunLatencyMode(mode, threads, settings, peer, &row, &why)) {
        skipped->Add(std::string(name) + " (" + Threads(threads) + ")", why);
        // The reason does not depend on the thread count.
        break;
      }
      results.rows.push_back(std::move(row));
    }
  }
  return results;
}

Table LatencyTable(const BenchOptions& options, const LatencyResults& results) {
  Table table("latency",
              "Fault latency: each fault timed alone (" + std::to_string(options.samples) +
                  " per row, over all its threads; threads touch disjoint pages)",
              {{"mode", "mode"},
               {"threads", "threads"},
               {"samples", "samples"},
               {"p50_us", "p50 us"},
               {"p90_us", "p90 us"},
               {"p99_us", "p99 us"},
               {"p999_us", "p99.9 us"},
               {"max_us", "max us"},
               {"faults_per_s", "faults/s"},
               {"p50_x_kernel_first_touch", "p50 x kernel 1st touch"},
               {"p50_minus_device_us", "p50 - device us"},
               {"io_faults", "I/O faults"},
               {"resident_before", "resident before"},
               {"handler_p50_us", "handler p50 us"}});
  const double device_p50 = results.P50(LatencyMode::kDeviceRead, 1);
  for (const LatencyRow& row : results.rows) {
    const LatencySummary& s = row.summary;
    bool zero_fill = row.mode == LatencyMode::kFaultlineZeroFill ||
                     row.mode == LatencyMode::kFaultlineSelfPaging;
    bool swap_in =
        row.mode == LatencyMode::kKernelSwapIn || row.mode == LatencyMode::kFaultlineSwapIn;
    double kernel_p50 = results.P50(LatencyMode::kKernelFirstTouch, row.threads);
    table.AddRow({Text(InfoOf(row.mode).name), Int(row.threads), Int(s.samples), Num(s.p50_us, 2),
                  Num(s.p90_us, 2), Num(s.p99_us, 2), Num(s.p999_us, 2), Num(s.max_us, 1),
                  Num(s.faults_per_s, 0), Num(zero_fill ? s.p50_us / kernel_p50 : NAN, 2),
                  Num(swap_in ? s.p50_us - device_p50 : NAN, 2), Int(row.io_faults),
                  Int(row.resident_before), Num(Micros(row.handler_p50_ns), 2)});
  }
  table.AddNote(
      "zero-fill modes: fault_around_pages = 1, no eviction: every store is one fault. "
      "faultline-zero-fill is a default fl_map region (faults served by the handler thread, "
      "spin_us 200); faultline-self-paging resolves each fault on the faulting thread.");
  table.AddNote(
      "swap-in modes: a region of " + std::to_string(kSwapInStride) +
      " pages per sample is written and paged out (faultline: fl_advise PAGEOUT; kernel: "
      "MADV_PAGEOUT, then the cgroup limit is lowered to 1 MiB so the swap cache is freed, and "
      "raised again), then one page in " +
      std::to_string(kSwapInStride) +
      " is loaded, in a shuffled order: no timed load can be served by the kernel's cluster "
      "readahead or faultline's readahead. 'resident before': timed pages still in memory "
      "(mincore) when timing started. 'I/O faults': faultline faults_swap_in, kernel major "
      "faults.");
  table.AddNote(
      "device-read: O_DIRECT 4 KiB pread at QD1 of a file written in the swap directory, the "
      "floor under every swap-in. 'handler p50': faultline's own service time (fl_get_stats).");
  return table;
}

// One colour per mode, one dash type per thread count.
std::vector<CdfCurve> CdfCurves(const LatencyResults& results,
                                const std::vector<uint32_t>& thread_counts) {
  std::vector<CdfCurve> curves;
  for (const LatencyRow& row : results.rows) {
    std::string title = std::string(InfoOf(row.mode).name) + ", " + Threads(row.threads);
    int color = 1 + static_cast<int>(row.mode);
    int dash_type =
        1 + static_cast<int>(std::find(thread_counts.begin(), thread_counts.end(), row.threads) -
                             thread_counts.begin());
    curves.push_back({title, &row.sorted_ns, color, dash_type});
  }
  return curves;
}

struct FirstTouchRatios {
  double best = NAN;
  uint32_t best_fault_around = 0;
  double at_default = NAN;
};

Table FirstTouchTable(const BenchOptions& options, const FirstTouchResult& result,
                      FirstTouchRatios* ratios) {
  Table table("first_touch",
              "Sequential first touch: one store per 4 KiB page over " +
                  MiB(options.first_touch_bytes) + ", median of " +
                  std::to_string(options.first_touch_runs) + " (no eviction)",
              {{"side", "side"},
               {"fault_around_pages", "fault-around"},
               {"gib_per_s", "GiB/s"},
               {"gib_per_s_min", "min"},
               {"gib_per_s_max", "max"},
               {"x_kernel", "x kernel"},
               {"faults", "faults"}});
  double kernel = NAN;
  for (const FirstTouchRow& row : result.rows) {
    if (row.fault_around_pages == 0) kernel = row.median_gib_per_s;
  }
  for (const FirstTouchRow& row : result.rows) {
    bool is_kernel = row.fault_around_pages == 0;
    double ratio = row.median_gib_per_s / kernel;
    if (!is_kernel && (std::isnan(ratios->best) || ratio > ratios->best)) {
      ratios->best = ratio;
      ratios->best_fault_around = row.fault_around_pages;
    }
    if (row.fault_around_pages == kDefaultFaultAroundPages) ratios->at_default = ratio;
    table.AddRow({Text(is_kernel ? "kernel 4 KiB" : "faultline"),
                  is_kernel ? Cell() : Int(row.fault_around_pages), Num(row.median_gib_per_s, 3),
                  Num(row.min_gib_per_s, 3), Num(row.max_gib_per_s, 3), Num(ratio, 2),
                  Int(row.faults)});
  }
  table.AddNote(
      "faultline's zero-fill window grows by doubling along a sequential stream of "
      "faults, up to fault_around_pages (default " +
      std::to_string(kDefaultFaultAroundPages) + ").");
  return table;
}

struct OutOfCoreRow {
  Workload workload;
  std::optional<OutOfCoreResult> faultline;
  std::optional<OutOfCoreResult> kernel;
};

const char* NameOf(Workload workload) {
  for (const WorkloadInfo& info : kWorkloads) {
    if (info.workload == workload) return info.name;
  }
  return "";
}

std::vector<OutOfCoreRow> RunOutOfCore(const BenchOptions& options, SharedKernelPeer* peer,
                                       SkippedRows* skipped) {
  std::vector<OutOfCoreRow> rows;
  const size_t pages = options.region / kPage;
  for (Workload workload : options.workloads) {
    const char* name = NameOf(workload);
    std::vector<uint32_t> sequence = AccessSequence(workload, pages);
    OutOfCoreRow row{workload, std::nullopt, std::nullopt};
    OutOfCoreResult result;
    std::string why;
    Progress("out of core: %s, faultline, %s under %s", name, MiB(options.region).c_str(),
             MiB(options.limit).c_str());
    if (RunFaultlineWorkload(sequence, options.region, options.limit, options.swap_dir, &result,
                             &why)) {
      row.faultline = result;
    } else {
      skipped->Add(std::string(name) + ": faultline", why);
    }
    result = OutOfCoreResult();
    Progress("out of core: %s, kernel swap, %s under a %s memory cgroup", name,
             MiB(options.region).c_str(), MiB(options.limit).c_str());
    if (RunKernelWorkload(sequence, options.region, options.limit, peer, &result, &why)) {
      row.kernel = result;
    } else {
      skipped->Add(std::string(name) + ": kernel swap", why);
    }
    rows.push_back(row);
  }
  return rows;
}

double AccessesPerSecond(const std::optional<OutOfCoreResult>& r) {
  return r.has_value() && r->seconds > 0 ? static_cast<double>(r->accesses) / r->seconds : NAN;
}

Table OutOfCoreTable(const BenchOptions& options, const std::vector<OutOfCoreRow>& rows,
                     uint64_t* verify_errors) {
  Table table("out_of_core",
              "Out of core: " + MiB(options.region) + " under a " + MiB(options.limit) +
                  " limit (faultline defaults against kernel swap in a memory cgroup)",
              {{"workload", "workload"},
               {"side", "side"},
               {"accesses", "accesses"},
               {"fill_s", "fill s"},
               {"seconds", "s"},
               {"accesses_per_s", "accesses/s"},
               {"mib_per_s", "MiB/s"},
               {"x_kernel", "x kernel"},
               {"io_faults", "I/O faults"},
               {"waits", "waits"},
               {"mib_read", "MiB read"},
               {"mib_written", "MiB written"},
               {"verify_errors", "verify errors"}});
  *verify_errors = 0;
  for (const OutOfCoreRow& row : rows) {
    double kernel_rate = AccessesPerSecond(row.kernel);
    for (bool is_faultline : {true, false}) {
      const std::optional<OutOfCoreResult>& side = is_faultline ? row.faultline : row.kernel;
      if (!side.has_value()) continue;
      double rate = AccessesPerSecond(side);
      *verify_errors += side->verify_errors;
      table.AddRow({Text(NameOf(row.workload)), Text(is_faultline ? "faultline" : "kernel swap"),
                    Int(side->accesses), Num(side->fill_seconds, 2), Num(side->seconds, 3),
                    Num(rate, 0), Num(rate * kPage / kMiB, 1),
                    Num(is_faultline ? rate / kernel_rate : NAN, 2), Int(side->io_faults),
                    Int(side->waits), Int(ToMiB(side->bytes_read)), Int(ToMiB(side->bytes_written)),
                    Int(side->verify_errors)});
    }
  }
  table.AddNote(
      "each access loads one word of its page and checks it; every fourth stores it back (the "
      "page becomes dirty). Same access sequence on both sides (fixed seeds). The region is "
      "filled first ('fill s', not in the throughput).");
  table.AddNote(
      "'I/O faults': faults that started a read (faultline faults_swap_in, kernel major faults "
      "of the child). 'waits': accesses that took 10 us or more, each timed alone, the same "
      "measure on both sides. Kernel MiB read/written: pswpin/pswpout from /proc/vmstat, "
      "system-wide.");
  return table;
}

Cell Verdict(double measured, bool met) {
  return Text(std::isnan(measured) ? "not measured" : met ? "met" : "missed");
}

// `format` with two numbers, or "-" when either was not measured.
std::string Format(const char* format, double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return "-";
  char text[160];
  std::snprintf(text, sizeof(text), format, a, b);
  return text;
}

bool Selected(const BenchOptions& options, LatencyMode mode) {
  return std::find(options.latency_modes.begin(), options.latency_modes.end(), mode) !=
         options.latency_modes.end();
}

// The checks whose modes were selected; "not measured" where a selected mode was skipped.
Table TargetsTable(const BenchOptions& options, const LatencyResults& latency,
                   const FirstTouchRatios& first_touch,
                   const std::vector<OutOfCoreRow>& out_of_core) {
  const uint32_t threads = options.threads.front();
  Table table("targets",
              "Targets (ratios from this run; latency rows with " + std::to_string(threads) +
                  " faulting thread" + (threads == 1 ? ")" : "s)"),
              {{"target", "target"},
               {"measured", "measured"},
               {"goal", "goal"},
               {"verdict", "verdict"},
               {"detail", "detail"}});
  const double kernel_touch = latency.P50(LatencyMode::kKernelFirstTouch, threads);
  for (LatencyMode mode : {LatencyMode::kFaultlineZeroFill, LatencyMode::kFaultlineSelfPaging}) {
    if (!Selected(options, mode) || !Selected(options, LatencyMode::kKernelFirstTouch)) continue;
    double p50 = latency.P50(mode, threads);
    double ratio = p50 / kernel_touch;
    table.AddRow({Text(std::string(InfoOf(mode).name) + " p50 / kernel-first-touch p50"),
                  Num(ratio, 2), Text("<= 6"), Verdict(ratio, ratio <= kZeroFillLatencyRatio),
                  Text(Format("%.2f us / %.2f us", p50, kernel_touch))});
  }
  if (options.first_touch) {
    table.AddRow(
        {Text("first touch, faultline fault-around " + std::to_string(kDefaultFaultAroundPages) +
              " (default) / kernel 4 KiB"),
         Num(first_touch.at_default, 2), Text(">= 1.3"),
         Verdict(first_touch.at_default, first_touch.at_default >= kFirstTouchThroughputRatio),
         Text("GiB/s, medians")});
    table.AddRow({Text("first touch, faultline best fault-around (" +
                       std::to_string(first_touch.best_fault_around) + ") / kernel 4 KiB"),
                  Num(first_touch.best, 2), Text(">= 1.3"),
                  Verdict(first_touch.best, first_touch.best >= kFirstTouchThroughputRatio),
                  Text("GiB/s, medians")});
  }
  if (Selected(options, LatencyMode::kFaultlineSwapIn) &&
      Selected(options, LatencyMode::kDeviceRead)) {
    const double device = latency.P50(LatencyMode::kDeviceRead, 1);
    const double swap_in = latency.P50(LatencyMode::kFaultlineSwapIn, threads);
    table.AddRow({Text("faultline-swap-in p50 - device-read p50 (us)"), Num(swap_in - device, 2),
                  Text("<= 15"), Verdict(swap_in - device, swap_in - device <= kSwapInOverDeviceUs),
                  Text(Format("%.2f us - %.2f us", swap_in, device))});
  }
  for (const OutOfCoreRow& row : out_of_core) {
    if (row.workload == Workload::kLoop) {
      double faultline = row.faultline ? static_cast<double>(row.faultline->io_faults) : NAN;
      double kernel = row.kernel ? static_cast<double>(row.kernel->io_faults) : NAN;
      table.AddRow({Text("loop: faultline I/O faults / kernel major faults"),
                    Num(faultline / kernel, 3), Text("<= 1"),
                    Verdict(faultline / kernel, faultline <= kernel),
                    Text(Format("%.0f / %.0f", faultline, kernel))});
      continue;
    }
    double ratio = AccessesPerSecond(row.faultline) / AccessesPerSecond(row.kernel);
    table.AddRow({Text(std::string(NameOf(row.workload)) + ": faultline / kernel throughput"),
                  Num(ratio, 2), Text(">= 1"), Verdict(ratio, ratio >= kOutOfCoreThroughputRatio),
                  Text(Format("%.0f / %.0f accesses/s", AccessesPerSecond(row.faultline),
                              AccessesPerSecond(row.kernel)))});
  }
  return table;
}

Table RunInfo(const BenchOptions& options, uint64_t swap_file_bytes) {
  Table table = RunTable();
  std::string threads;
  for (uint32_t t : options.threads) threads += (threads.empty() ? "" : ",") + std::to_string(t);
  table.AddRow({Text("sizes"), Text(options.quick ? "quick" : "full")});
  table.AddRow({Text("swap dir"), Text(options.swap_dir)});
  table.AddRow({Text("timer pair overhead ns"), Int(TimerOverheadNs())});
  table.AddRow({Text("latency"),
                Text(std::to_string(options.samples) + " faults per row; threads " + threads)});
  table.AddRow({Text("out of core"),
                Text(MiB(options.region) + " region, " + MiB(options.limit) + " limit")});
  table.AddRow({Text("kernel swap file"), Text(MiB(swap_file_bytes))});
  table.AddRow({Text("kernel swap settings"), Text(KernelSwapSettings())});
  return table;
}

int Run(const BenchOptions& options) {
  // Twice the largest region the kernel swaps out in this run (kSwapFileHeadroom).
  const bool kernel_swap_in = std::find(options.latency_modes.begin(), options.latency_modes.end(),
                                        LatencyMode::kKernelSwapIn) != options.latency_modes.end();
  const uint64_t swap_file_bytes =
      2 * std::max<uint64_t>(kernel_swap_in ? options.samples * kSwapInStride * kPage : 0,
                             options.workloads.empty() ? 0 : options.region) +
      kSwapFileHeadroom;
  SharedKernelPeer peer(options.swap_dir, swap_file_bytes);
  SkippedRows skipped;
  std::vector<Table> tables;
  tables.push_back(RunInfo(options, swap_file_bytes));

  LatencyResults latency = RunLatency(options, &peer, &skipped);
  if (!options.latency_modes.empty()) tables.push_back(LatencyTable(options, latency));
  if (!options.plot_path.empty()) {
    std::string why;
    if (PlotLatencyCdf(CdfCurves(latency, options.threads), "faultline bench: fault latency CDF",
                       options.plot_path, &why)) {
      Progress("latency CDF plot written to %s", options.plot_path.c_str());
    } else {
      skipped.Add("plot " + options.plot_path, why);
    }
  }

  FirstTouchRatios first_touch_ratios;
  if (options.first_touch) {
    FirstTouchResult result =
        RunFirstTouch(options.first_touch_bytes, options.first_touch_runs, options.swap_dir);
    for (auto& [what, why] : result.skipped) skipped.Add(what, why);
    tables.push_back(FirstTouchTable(options, result, &first_touch_ratios));
  }

  std::vector<OutOfCoreRow> out_of_core = RunOutOfCore(options, &peer, &skipped);
  peer.Teardown();
  uint64_t verify_errors = 0;
  if (!out_of_core.empty()) tables.push_back(OutOfCoreTable(options, out_of_core, &verify_errors));

  tables.push_back(TargetsTable(options, latency, first_touch_ratios, out_of_core));
  tables.front().AddRow({Text("load average at end"), Text(LoadAverage())});
  tables.push_back(skipped.Take());
  PrintTables(tables, options.json);
  if (verify_errors > 0) {
    std::fprintf(stderr, "faultline bench: %llu out-of-core accesses read back wrong data\n",
                 static_cast<unsigned long long>(verify_errors));
    return kExitVerifyFailed;
  }
  return 0;
}

}  // namespace

int BenchCommand(std::span<char* const> args) {
  absl::StatusOr<BenchOptions> options = ParseBenchOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "faultline bench: %s\nTry 'faultline bench --help'.\n",
                 std::string(options.status().message()).c_str());
    return kExitUsage;
  }
  if (options->help) {
    std::fputs(kBenchUsage, stdout);
    return 0;
  }
  InstallCleanupHandlers();
  return Run(*options);
}

}  // namespace faultline_bench
