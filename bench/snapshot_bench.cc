// faultline-bench-snapshot: a copy-on-write snapshot of 1 GiB of resident memory with
// fl_snapshot_create against fork() of the same process (issue 5), in one run.
//
// faultline side: a region of the whole size under a memory limit twice that, every page written
// (resident and dirty). Each repetition first rewrites a fixed random 10% of the pages with no
// snapshot alive (the baseline), then takes a snapshot (the pause), rewrites the same pages again
// (each store's first write after the snapshot is a write-protect fault and a copy), checks that
// the snapshot still holds the bytes from before the rewrite, and releases it. fork side, after
// fl_shutdown: the same on a private anonymous mapping with 4 KiB pages, with fork() as the
// snapshot and a child that sleeps on a pipe (so its pages stay shared) as the snapshot's lifetime;
// the rewrite then takes the kernel's copy-on-write faults. Every store is one 8-byte word, timed
// alone. Tables go to stdout (JSON with --json), progress and failures to stderr. Exits 1 when a
// check failed or a side could not run, 2 on a usage error.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "faultline/faultline.h"
#include "kernel_cow.h"
#include "workloads.h"

namespace faultline_bench {
namespace {

// Every page index of a region of `pages` pages, in a fixed pseudo-random order.
std::vector<uint32_t> ShuffledPages(size_t pages) {
  std::vector<uint32_t> order(pages);
  for (size_t i = 0; i < pages; ++i) order[i] = static_cast<uint32_t>(i);
  std::mt19937_64 random(20240601);
  std::shuffle(order.begin(), order.end(), random);
  return order;
}

constexpr char kUsage[] =
    "usage: %s [--quick] [--json] [--size MIB] [--repetitions N] [--swap-dir DIR]\n"
    "  --quick          256 MiB and 3 repetitions instead of 1024 MiB and 5\n"
    "  --size MIB       the region's size (resident on both sides)\n"
    "  --repetitions N  snapshots (and forks) taken, each followed by a rewrite of 10%% of pages\n"
    "  --json           print the results as JSON instead of tables\n"
    "  --swap-dir DIR   where faultline's swap file goes (default /var/tmp; nothing is evicted)\n";

struct Options {
  bool json = false;
  bool quick = false;
  size_t region_bytes = kGiB;
  int repetitions = 5;
  std::string swap_dir = "/var/tmp";
};

// Fills *options; returns nothing to go on with the run, else the exit status (0 after --help).
std::optional<int> ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool ok = true;
    if (arg == "--quick") {
      options->quick = true;
      options->region_bytes = 256 * kMiB;
      options->repetitions = 3;
    } else if (arg == "--json") {
      options->json = true;
    } else if (arg == "--size" && i + 1 < argc) {
      long mib = std::atol(argv[++i]);
      ok = mib > 0;
      options->region_bytes = static_cast<size_t>(mib) * kMiB;
    } else if (arg == "--repetitions" && i + 1 < argc) {
      options->repetitions = std::atoi(argv[++i]);
      ok = options->repetitions > 0;
    } else if (arg == "--swap-dir" && i + 1 < argc) {
      options->swap_dir = argv[++i];
    } else {
      ok = false;
    }
    if (!ok) {
      bool help = arg == "--help" || arg == "-h";
      std::fprintf(help ? stdout : stderr, kUsage, argv[0]);
      return help ? 0 : 2;
    }
  }
  return std::nullopt;
}

constexpr size_t kWordsPerPage = kPage / sizeof(uint64_t);
// Pages of the rewrite whose snapshot copy is also read through fl_snapshot_data (every rewritten
// page is read through fl_snapshot_read).
constexpr size_t kMappedChecks = 64;

// The word of a page that the rewrites store into; it walks through the page so that the stores do
// not all hit the same cache line offset.
size_t StoredWord(uint64_t page) { return page % kWordsPerPage; }
// What the rewrite under a snapshot (or a forked child) stores: differs from PagePattern, so the
// snapshot's copy of the page tells the bytes before the rewrite from the bytes after it.
uint64_t RewrittenValue(uint64_t page) { return ~PagePattern(page); }

// Stores value(page) into word StoredWord(page) of each page of `pages`, in that order, timing
// each store alone into (*samples_ns)[i]. The time covers whatever fault the store takes: none, a
// write-protect fault and its copy, or a copy-on-write fault. REQUIRES: samples_ns->size() ==
// pages.size(), its memory touched already, so that the pass takes no fault of its own.
template <typename Value>
void TimeStores(char* base, const std::vector<uint32_t>& pages, Value value,
                std::vector<uint32_t>* samples_ns) {
  for (size_t i = 0; i < pages.size(); ++i) {
    const uint64_t page = pages[i];
    volatile uint64_t* word = reinterpret_cast<uint64_t*>(base + page * kPage) + StoredWord(page);
    const uint64_t stored = value(page);
    const uint64_t start = NowNs();
    *word = stored;
    (*samples_ns)[i] = static_cast<uint32_t>(std::min<uint64_t>(NowNs() - start, UINT32_MAX));
  }
}

void Append(const std::vector<uint32_t>& samples, std::vector<uint32_t>* pooled) {
  pooled->insert(pooled->end(), samples.begin(), samples.end());
}

uint64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_minflt);
}

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// The nearest-rank quantile q of `values`: with 5 samples p90 is the largest.
double NearestRank(std::vector<double> values, double q) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double MiBOfKiB(uint64_t kib) { return kib == kNoValue ? NAN : static_cast<double>(kib) / 1024; }

// What one side measured over all repetitions; one entry per repetition in each vector, except
// the pooled store samples.
struct SideResult {
  std::vector<double> pause_ms;
  std::vector<double> extra_mib;       // faultline: resident_pages growth; fork: none
  std::vector<double> pss_growth_mib;  // Pss of every process involved, after - before the rewrite
  std::vector<double> copies;          // faultline snapshot_pages_copied; fork minor faults
  std::vector<uint32_t> rewrite_ns;    // stores while a snapshot (child) was alive
  std::vector<uint32_t> baseline_ns;   // the same stores with none alive
  uint64_t rewrite_faults = 0;         // faultline faults_write_protect; fork minor faults
  uint64_t baseline_faults = 0;
};

class SnapshotBench {
 public:
  explicit SnapshotBench(const Options& options);
  // Runs both sides and prints the tables; returns the exit status.
  int Run();

 private:
  void RunFaultline();
  // Times the repetitions' snapshots and rewrites on a region whose every page holds PagePattern.
  void SnapshotRepetitions(char* base);
  // Checks that `snapshot` holds PagePattern in every rewritten page and that the region holds
  // the rewrite; reports each mismatch as a failure.
  void CheckSnapshot(const fl_snapshot* snapshot, const char* base, int repetition);
  void RunFork();
  void Fail(const std::string& what);
  void NoteLoad(const char* when) { loads_.push_back({when, LoadAverage()}); }

  Table RunInfo() const;
  Table PauseTable() const;
  Table MemoryTable() const;
  Table WriteTable() const;

  const Options& options_;
  const size_t pages_;
  Table run_info_ = RunTable();      // made at the start: it records the load average then
  std::vector<uint32_t> rewritten_;  // the random 10% of the pages, in the order written
  std::vector<uint32_t> pass_ns_;    // one rewrite pass's store times, before they are pooled
  SideResult faultline_, fork_;
  std::vector<double> fork_without_region_ms_;
  std::vector<double> protect_ms_, unprotect_ms_;
  uint64_t snapshot_pages_checked_ = 0, mapped_pages_checked_ = 0;
  std::vector<std::pair<std::string, std::string>> loads_;
  Table failures_{"failures", "FAILURES", {{"failure", "failure"}}};
  int failure_count_ = 0;
};

SnapshotBench::SnapshotBench(const Options& options)
    : options_(options), pages_(options.region_bytes / kPage) {
  rewritten_ = ShuffledPages(pages_);
  rewritten_.resize(pages_ / 10);
  pass_ns_.resize(rewritten_.size());
}

void SnapshotBench::Fail(const std::string& what) {
  std::fprintf(stderr, "\n*** faultline-bench-snapshot: FAILED: %s ***\n\n", what.c_str());
  failures_.AddRow({Text(what)});
  ++failure_count_;
}

void SnapshotBench::RunFaultline() {
  Knobs knobs;
  knobs.memory_limit = 2 * options_.region_bytes;  // the region and every copy stay resident
  ManagedRegion region;
  std::string why;
  if (!region.Open(knobs, options_.swap_dir, options_.region_bytes, &why)) {
    Fail("faultline side: " + why);
    return;
  }
  WritePages(region.data(), options_.region_bytes, "faultline: writing every page");
  const fl_stats filled = region.Stats();
  if (filled.resident_pages != pages_ || filled.swapped_pages != 0) {
    Fail("faultline side: " + std::to_string(filled.resident_pages) + " of " +
         std::to_string(pages_) + " pages resident after the fill; the pause would not be 1 GiB's");
    return;
  }
  SnapshotRepetitions(region.data());
}

void SnapshotBench::SnapshotRepetitions(char* base) {
  auto pattern = [](uint64_t page) { return PagePattern(page); };
  for (int repetition = 1; repetition <= options_.repetitions; ++repetition) {
    Progress("faultline: repetition %d of %d", repetition, options_.repetitions);
    fl_stats before{}, after{};
    // The pages rewritten last time were un-protected by their copy: this pass takes no fault.
    fl_get_stats(&before);
    TimeStores(base, rewritten_, pattern, &pass_ns_);
    fl_get_stats(&after);
    Append(pass_ns_, &faultline_.baseline_ns);
    faultline_.baseline_faults += after.faults_write_protect - before.faults_write_protect;

    fl_snapshot* snapshot = nullptr;
    const uint64_t start = NowNs();
    const int rc = fl_snapshot_create(base, options_.region_bytes, &snapshot);
    const uint64_t pause_ns = NowNs() - start;
    if (rc != 0) {
      Fail(std::string("fl_snapshot_create: ") + fl_last_error());
      return;
    }
    faultline_.pause_ms.push_back(pause_ns / 1e6);

    fl_get_stats(&before);
    const uint64_t pss_before = ProportionalSetKiB(0);
    TimeStores(base, rewritten_, RewrittenValue, &pass_ns_);
    fl_get_stats(&after);
    const uint64_t pss_after = ProportionalSetKiB(0);
    Append(pass_ns_, &faultline_.rewrite_ns);
    faultline_.rewrite_faults += after.faults_write_protect - before.faults_write_protect;
    faultline_.extra_mib.push_back(
        static_cast<double>(after.resident_pages - before.resident_pages) * kPage / kMiB);
    faultline_.copies.push_back(
        static_cast<double>(after.snapshot_pages_copied - before.snapshot_pages_copied));
    faultline_.pss_growth_mib.push_back(MiBOfKiB(pss_after) - MiBOfKiB(pss_before));
    Progress("  pause %.2f ms, %.0f pages copied, resident +%.1f MiB", pause_ns / 1e6,
             faultline_.copies.back(), faultline_.extra_mib.back());

    CheckSnapshot(snapshot, base, repetition);
    if (fl_snapshot_release(snapshot) != 0) {
      Fail(std::string("fl_snapshot_release: ") + fl_last_error());
      return;
    }
  }
}

void SnapshotBench::CheckSnapshot(const fl_snapshot* snapshot, const char* base, int repetition) {
  const std::string where = "repetition " + std::to_string(repetition) + ": ";
  uint64_t wrong = 0, first_wrong = 0;
  auto holds_pattern = [](const uint64_t* words, uint64_t page) {
    for (size_t i = 0; i < kWordsPerPage; ++i) {
      if (words[i] != PagePattern(page)) return false;
    }
    return true;
  };
  auto note = [&](uint64_t page) {
    if (wrong++ == 0) first_wrong = page;
  };
  alignas(kPage) static uint64_t copy[kWordsPerPage];
  for (uint32_t page : rewritten_) {
    const uint64_t* live = reinterpret_cast<const uint64_t*>(base + page * kPage);
    if (live[StoredWord(page)] != RewrittenValue(page)) {
      Fail(where + "page " + std::to_string(page) + " of the region lost its rewrite");
      return;
    }
    int rc = fl_snapshot_read(snapshot, page * kPage, copy, kPage);
    if (rc != 0) {
      Fail(where + "fl_snapshot_read: " + fl_last_error());
      return;
    }
    if (!holds_pattern(copy, page)) note(page);
  }
  // Through the read-only mapping too (these pages were copied by their rewrite).
  const auto* mapped = static_cast<const char*>(fl_snapshot_data(snapshot));
  for (size_t i = 0; i < std::min(kMappedChecks, rewritten_.size()); ++i) {
    const uint64_t page = rewritten_[i];
    if (!holds_pattern(reinterpret_cast<const uint64_t*>(mapped + page * kPage), page)) note(page);
  }
  snapshot_pages_checked_ += rewritten_.size();
  mapped_pages_checked_ += std::min(kMappedChecks, rewritten_.size());
  if (wrong > 0) {
    Fail(where + std::to_string(wrong) + " snapshot pages do NOT hold the bytes from before the " +
         "rewrite; the first is page " + std::to_string(first_wrong));
  }
}

void SnapshotBench::RunFork() {
  std::string why;
  // fork()'s own cost in this process without the region, to show what the region adds.
  for (int repetition = 0; repetition < options_.repetitions; ++repetition) {
    IdleForkChild child;
    uint64_t fork_ns = 0;
    if (!child.Fork(&fork_ns, &why)) {
      Fail("fork side: " + why);
      return;
    }
    fork_without_region_ms_.push_back(fork_ns / 1e6);
  }
  AnonRegion region;
  if (!region.Open(options_.region_bytes, &why)) {
    Fail("fork side: " + why);
    return;
  }
  char* base = region.data();
  WritePages(base, options_.region_bytes, "fork: writing every page");
  auto pattern = [](uint64_t page) { return PagePattern(page); };
  for (int repetition = 1; repetition <= options_.repetitions; ++repetition) {
    Progress("fork: repetition %d of %d", repetition, options_.repetitions);
    uint64_t faults = MinorFaults();
    TimeStores(base, rewritten_, pattern, &pass_ns_);
    fork_.baseline_faults += MinorFaults() - faults;
    Append(pass_ns_, &fork_.baseline_ns);

    IdleForkChild child;
    uint64_t fork_ns = 0;
    if (!child.Fork(&fork_ns, &why)) {
      Fail("fork side: " + why);
      return;
    }
    fork_.pause_ms.push_back(fork_ns / 1e6);
    const uint64_t pss_before = ProportionalSetKiB(0) + ProportionalSetKiB(child.pid());
    faults = MinorFaults();
    TimeStores(base, rewritten_, RewrittenValue, &pass_ns_);
    const uint64_t cow_faults = MinorFaults() - faults;
    const uint64_t pss_after = ProportionalSetKiB(0) + ProportionalSetKiB(child.pid());
    Append(pass_ns_, &fork_.rewrite_ns);
    fork_.rewrite_faults += cow_faults;
    fork_.copies.push_back(static_cast<double>(cow_faults));
    fork_.pss_growth_mib.push_back(MiBOfKiB(pss_after) - MiBOfKiB(pss_before));
    Progress("  fork %.2f ms, %llu copy-on-write faults, Pss +%.1f MiB", fork_ns / 1e6,
             static_cast<unsigned long long>(cow_faults), fork_.pss_growth_mib.back());
    child.Release();
  }
  // The kernel work at the heart of a snapshot, on the same populated memory.
  for (int repetition = 0; repetition < options_.repetitions; ++repetition) {
    uint64_t protect_ns = 0, unprotect_ns = 0;
    if (!TimeWriteProtect(base, options_.region_bytes, &protect_ns, &unprotect_ns, &why)) {
      Fail("UFFDIO_WRITEPROTECT row: " + why);
      return;
    }
    protect_ms_.push_back(protect_ns / 1e6);
    unprotect_ms_.push_back(unprotect_ns / 1e6);
  }
}

Table SnapshotBench::RunInfo() const {
  Table table = run_info_;
  table.AddRow({Text("mode"), Text(options_.quick ? "quick" : "full")});
  table.AddRow({Text("region"), Text(std::to_string(options_.region_bytes / kMiB) + " MiB")});
  table.AddRow({Text("repetitions"), Int(static_cast<uint64_t>(options_.repetitions))});
  table.AddRow({Text("pages rewritten per repetition"), Int(rewritten_.size())});
  table.AddRow({Text("timer pair ns"), Int(TimerOverheadNs())});
  for (const auto& [when, load] : loads_) table.AddRow({Text("load average " + when), Text(load)});
  return table;
}

Table SnapshotBench::PauseTable() const {
  Table table("pause", "Pause to take a snapshot (ms)",
              {{"what", "what"},
               {"samples", "samples"},
               {"median_ms", "median"},
               {"p90_ms", "p90"},
               {"max_ms", "max"},
               {"x_snapshot", "median x snapshot"}});
  const double snapshot = Median(faultline_.pause_ms);
  auto row = [&](const char* what, const std::vector<double>& ms) {
    table.AddRow({Text(what), Int(ms.size()), Num(Median(ms), 3), Num(NearestRank(ms, 0.9), 3),
                  Num(NearestRank(ms, 1.0), 3), Num(Median(ms) / snapshot, 2)});
  };
  row("faultline fl_snapshot_create", faultline_.pause_ms);
  row("fork() with the region", fork_.pause_ms);
  row("fork() without the region", fork_without_region_ms_);
  row("UFFDIO_WRITEPROTECT of the region, on", protect_ms_);
  row("UFFDIO_WRITEPROTECT of the region, off", unprotect_ms_);
  const double ratio = Median(fork_.pause_ms) / snapshot;
  char verdict[160];
  std::snprintf(verdict, sizeof(verdict), "fork / snapshot (medians) = %.2f; target >= 10: %s",
                ratio,
                std::isnan(ratio) ? "not measured"
                : ratio >= 10     ? "met"
                                  : "MISSED");
  table.AddNote(verdict);
  table.AddNote(
      "Times from the call to its return in the calling thread. fl_snapshot_create write-protects "
      "the dirty resident pages under the lock that holds every page fault; fork() copies the "
      "page tables under the mmap lock. The UFFDIO_WRITEPROTECT rows time the ioctl alone over "
      "the fork side's populated region (a userfaultfd of the bench's own).");
  return table;
}

Table SnapshotBench::MemoryTable() const {
  Table table("memory", "Extra memory while 10% of the pages are rewritten (medians)",
              {{"side", "side"},
               {"pages_rewritten", "pages rewritten"},
               {"expected_mib", "expected MiB"},
               {"counted_mib", "counted MiB"},
               {"pss_growth_mib", "Pss growth MiB"},
               {"copies", "pages copied"}});
  const double expected = static_cast<double>(rewritten_.size()) * kPage / kMiB;
  table.AddRow({Text("faultline snapshot"), Int(rewritten_.size()), Num(expected, 1),
                Num(Median(faultline_.extra_mib), 1), Num(Median(faultline_.pss_growth_mib), 1),
                Num(Median(faultline_.copies), 0)});
  table.AddRow({Text("fork() child"), Int(rewritten_.size()), Num(expected, 1), Num(NAN, 1),
                Num(Median(fork_.pss_growth_mib), 1), Num(Median(fork_.copies), 0)});
  table.AddNote(
      "counted: growth of fl_stats.resident_pages. Pss: /proc/<pid>/smaps_rollup of this process "
      "(and of the forked child), after minus before the rewrite. pages copied: faultline "
      "snapshot_pages_copied; fork: minor faults of this process during the rewrite (each a "
      "copy-on-write copy).");
  return table;
}

Table SnapshotBench::WriteTable() const {
  Table table("writes", "Latency of each 8-byte store of the rewrite (us)",
              {{"what", "what"},
               {"samples", "samples"},
               {"faults", "faults"},
               {"p50_us", "p50"},
               {"p90_us", "p90"},
               {"p99_us", "p99"},
               {"p999_us", "p99.9"},
               {"max_us", "max"}});
  auto row = [&](const char* what, std::vector<uint32_t> samples, uint64_t faults) {
    LatencySummary s = Summarize(&samples, 0);
    table.AddRow({Text(what), Int(s.samples), Int(faults), Num(s.p50_us, 2), Num(s.p90_us, 2),
                  Num(s.p99_us, 2), Num(s.p999_us, 2), Num(s.max_us, 2)});
  };
  row("faultline, snapshot alive", faultline_.rewrite_ns, faultline_.rewrite_faults);
  row("faultline, no snapshot", faultline_.baseline_ns, faultline_.baseline_faults);
  row("kernel, forked child alive (COW)", fork_.rewrite_ns, fork_.rewrite_faults);
  row("kernel, no child", fork_.baseline_ns, fork_.baseline_faults);
  table.AddNote(
      "All repetitions pooled. One store per page into a random 10% of the pages (fixed seed, "
      "random order), each timed alone with CLOCK_MONOTONIC. faults: faultline "
      "faults_write_protect; kernel: minor faults (getrusage).");
  return table;
}

int SnapshotBench::Run() {
  RunFaultline();
  NoteLoad("after the faultline side");
  RunFork();
  NoteLoad("after the fork side");
  Progress("checked %llu snapshot pages through fl_snapshot_read and %llu through the mapping",
           static_cast<unsigned long long>(snapshot_pages_checked_),
           static_cast<unsigned long long>(mapped_pages_checked_));
  Table checks("checks", "Snapshot contents", {{"check", "check"}, {"pages", "pages"}});
  checks.AddRow({Text("rewritten pages read with fl_snapshot_read, pre-write bytes"),
                 Int(snapshot_pages_checked_)});
  checks.AddRow({Text("rewritten pages read through fl_snapshot_data, pre-write bytes"),
                 Int(mapped_pages_checked_)});
  checks.AddNote(failure_count_ == 0 ? "every page checked held its bytes from before the rewrite"
                                     : "FAILED: see the FAILURES table");
  std::vector<Table> tables = {RunInfo(), PauseTable(), MemoryTable(), WriteTable(), checks};
  if (failure_count_ > 0) tables.push_back(failures_);
  PrintTables(tables, options_.json);
  return failure_count_ > 0 ? 1 : 0;
}

}  // namespace
}  // namespace faultline_bench

int main(int argc, char** argv) {
  faultline_bench::Options options;
  if (std::optional<int> status = faultline_bench::ParseArgs(argc, argv, &options)) return *status;
  return faultline_bench::SnapshotBench(options).Run();
}
