// faultline-bench-programs: unmodified programs under `faultline run --limit L` against the
// kernel's own swap at the same limit (a cgroup v1 memory group limited to L plus a swap file in
// the same directory as faultline's), with a native run without a limit as the reference. Each
// repetition runs the three modes one after the other, so that a disturbance of the machine falls
// on all of them; a row gives the median over the repetitions, with the min and max wall time.
//   python: /usr/bin/python3 maps 512 MiB with mmap.mmap(-1, size), writes an 8-byte value into
//           every 4 KiB page, reads them all back and exits 1 on a mismatch; limit 128M.
//   sort:   GNU `sort -S 512M` of a generated 24 MiB text file under 8M (with --full also 96 MiB
//           under 32M); every run's output must equal that of an untimed native run (cmp).
//   --command NAME LIMIT -- ARGV...: ARGV instead of those two, under LIMIT (e.g. 192M); its
//           stdout must equal that of the untimed native run. The stress corpus's bench mode
//           (test/corpus/run_corpus.py --bench) runs each corpus program this way.
// Tables go to stdout (JSON with --json), progress and failures to stderr. Exits 1 when a program
// failed or its output was wrong, 2 on a usage error.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "bench_util.h"
#include "kernel_swap.h"
#include "program_runner.h"

namespace faultline_bench {
namespace {

constexpr int kDefaultRepetitions = 3;
constexpr uint64_t kKernelSwapBytes = 2 * kGiB;
constexpr char kPython[] = "/usr/bin/python3";
constexpr uint64_t kPythonBytes = 512 * kMiB;
constexpr uint64_t kPythonLimit = 128 * kMiB;
constexpr uint64_t kSortSeed = 20261125;

// Writes a 64-bit value into every page, then checks them all; the value is never zero, so an
// untouched page cannot pass.
constexpr char kPythonScript[] = R"(import mmap, struct, sys
size = int(sys.argv[1])
region = mmap.mmap(-1, size)
def value(offset):
    return (offset * 0x9E3779B97F4A7C15 + 1) % (1 << 64) | 1
for offset in range(0, size, 4096):
    struct.pack_into("<Q", region, offset, value(offset))
for offset in range(0, size, 4096):
    if struct.unpack_from("<Q", region, offset)[0] != value(offset):
        sys.exit(1)
)";

constexpr char kUsage[] =
    "usage: %s [--quick] [--full] [--repetitions N] [--json] [--swap-dir DIR] "
    "[--faultline PATH] [--command NAME LIMIT -- ARGV...]\n"
    "  --quick            one repetition (same as --repetitions 1)\n"
    "  --full             also sort 96 MiB under a 32M limit\n"
    "  --repetitions N    runs of each mode, alternating (default 3); rows give the median\n"
    "  --json             print the results as JSON instead of tables\n"
    "  --swap-dir DIR     where faultline's swap file, the kernel's swap file and the work\n"
    "                     files go (default $TMPDIR, else /var/tmp)\n"
    "  --faultline PATH   the faultline tool (default: the one built with this bench)\n"
    "  --command NAME LIMIT -- ARGV...\n"
    "                     run ARGV (named NAME in the tables) under LIMIT (a number of MiB\n"
    "                     with an M suffix) instead of the built-in programs; its stdout\n"
    "                     must equal the native run's\n"
    "The kernel rows need root and a cgroup v1 memory controller; without them they are skipped\n"
    "and the table \"Skipped rows\" says why.\n";

struct Options {
  bool full = false;
  bool json = false;
  int repetitions = kDefaultRepetitions;
  std::string swap_dir;
  std::string faultline;
  std::string command_name;  // empty: the built-in workloads
  uint64_t command_limit = 0;
  std::vector<std::string> command;
};

std::string DefaultSwapDir() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/var/tmp";
}

// The tool built in this tree (FAULTLINE_BENCH_BUILD_TOOL, from meson) while it exists, else the
// faultline found in PATH.
std::string DefaultFaultline() {
  return access(FAULTLINE_BENCH_BUILD_TOOL, X_OK) == 0 ? FAULTLINE_BENCH_BUILD_TOOL : "faultline";
}

// Fills *options; returns nothing to go on with the run, else the exit status (0 after --help).
std::optional<int> ParseArgs(int argc, char** argv, Options* options) {
  options->swap_dir = DefaultSwapDir();
  options->faultline = DefaultFaultline();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--quick") {
      options->repetitions = 1;
    } else if (arg == "--full") {
      options->full = true;
    } else if (arg == "--json") {
      options->json = true;
    } else if (arg == "--repetitions" && has_value && std::atoi(argv[i + 1]) > 0) {
      options->repetitions = std::atoi(argv[++i]);
    } else if (arg == "--swap-dir" && has_value) {
      options->swap_dir = argv[++i];
    } else if (arg == "--faultline" && has_value) {
      options->faultline = argv[++i];
    } else if (arg == "--command" && i + 4 < argc && std::string(argv[i + 3]) == "--" &&
               std::atoi(argv[i + 2]) > 0 && std::string(argv[i + 2]).back() == 'M') {
      options->command_name = argv[i + 1];
      options->command_limit = static_cast<uint64_t>(std::atoi(argv[i + 2])) << 20;
      options->command.assign(argv + i + 4, argv + argc);
      break;
    } else {
      bool help = arg == "--help" || arg == "-h";
      std::fprintf(help ? stdout : stderr, kUsage, argv[0]);
      return help ? 0 : 2;
    }
  }
  return std::nullopt;
}

std::string LimitArgument(uint64_t bytes) { return std::to_string(bytes / kMiB) + "M"; }

enum class Mode { kNative, kFaultline, kKernel };
constexpr Mode kModes[] = {Mode::kNative, Mode::kFaultline, Mode::kKernel};

std::string ModeName(Mode mode, uint64_t limit_bytes) {
  switch (mode) {
    case Mode::kNative:
      return "native, no limit";
    case Mode::kFaultline:
      return "faultline run --limit " + LimitArgument(limit_bytes);
    case Mode::kKernel:
      return "kernel swap, memcg " + LimitArgument(limit_bytes);
  }
  return "";
}

// An unmodified program and the limit it runs under.
struct Workload {
  std::string key;  // JSON table key and progress label
  std::string title;
  uint64_t limit_bytes;
  std::vector<std::string> argv;
  size_t input_bytes;  // of input.txt for sort; 0: the program is program.py's interpreter
  bool checks_output;  // the program writes output.txt, which must equal expected.txt
  bool output_is_stdout = false;  // output.txt is the program's stdout (else a file it writes)
};

// One run's measurements; NaN where a mode has no such counter.
struct Sample {
  double wall_seconds = NAN;
  double peak_rss_mib = NAN;
  double major_faults = NAN;
  double swap_ins = NAN;
  double mib_swapped_in = NAN;
  double mib_swapped_out = NAN;
  double resident_peak_mib = NAN;
  double reported_wall_seconds = NAN;  // faultline's own wall_seconds
  double reported_peak_rss_mib = NAN;  // faultline's own peak_rss_bytes
};

// The runs of one mode of a workload.
struct ModeRuns {
  std::vector<Sample> samples;  // of the runs that succeeded
  int oom_kills = 0;            // kernel mode: runs the memory cgroup's OOM killer ended
  std::string skipped;          // why the mode did not run at all; empty when it ran
};

// The median of `field` over the samples that have it; NaN when none has.
double Median(const std::vector<Sample>& samples, double Sample::*field) {
  std::vector<double> values;
  for (const Sample& s : samples) {
    if (!std::isnan(s.*field)) values.push_back(s.*field);
  }
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// The shortest and the longest wall time; NaN for no samples.
std::pair<double, double> WallRange(const std::vector<Sample>& samples) {
  if (samples.empty()) return {NAN, NAN};
  auto [low, high] = std::minmax_element(
      samples.begin(), samples.end(),
      [](const Sample& a, const Sample& b) { return a.wall_seconds < b.wall_seconds; });
  return {low->wall_seconds, high->wall_seconds};
}

double ToMiB(double bytes) { return bytes / static_cast<double>(kMiB); }

// Writes `bytes` (rounded up to whole lines) of 64-byte lines "<16 hex digits> <46 letters>\n"
// from a PRNG with a fixed seed: the same file on every run.
bool WriteSortInput(const std::string& path, size_t bytes, std::string* why) {
  constexpr size_t kLineBytes = 64;
  constexpr size_t kKeyBytes = 17;  // 16 hex digits and a space
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    *why = "creating " + path + ": " + std::strerror(errno);
    return false;
  }
  std::mt19937_64 random(kSortSeed);
  char line[kLineBytes + 1];
  for (size_t done = 0; done < bytes; done += kLineBytes) {
    std::snprintf(line, sizeof(line), "%016llx ", static_cast<unsigned long long>(random()));
    for (size_t i = kKeyBytes; i < kLineBytes - 1; ++i) line[i] = 'a' + random() % 26;
    line[kLineBytes - 1] = '\n';
    std::fwrite(line, 1, kLineBytes, file);
  }
  bool ok = std::ferror(file) == 0;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) *why = "writing " + path + ": " + std::strerror(errno);
  return ok;
}

bool WriteTextFile(const std::string& path, const char* text, std::string* why) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  bool ok = file != nullptr && std::fputs(text, file) >= 0;
  ok = file != nullptr && std::fclose(file) == 0 && ok;
  if (!ok) *why = "writing " + path + ": " + std::strerror(errno);
  return ok;
}

// The kernel's count of OOM kills since boot (/proc/vmstat oom_kill).
uint64_t OomKills() {
  std::string vmstat = ReadWholeFile("/proc/vmstat");
  size_t at = vmstat.find("\noom_kill ");
  return at == std::string::npos ? 0 : std::strtoull(vmstat.c_str() + at + 10, nullptr, 10);
}

// True when the run ended by SIGKILL while the kernel's OOM kill count went up from `before`.
bool KilledByOom(const ProgramRun& run, uint64_t oom_kills_before) {
  return run.started && WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGKILL &&
         OomKills() > oom_kills_before;
}

// Sets the faultline columns of *s from the statistics `faultline run --stats` wrote.
void AddFaultlineCounters(const std::string& json, Sample* s) {
  s->swap_ins = JsonNumber(json, "faults_swap_in");
  s->mib_swapped_in = ToMiB(JsonNumber(json, "bytes_swapped_in"));
  s->mib_swapped_out = ToMiB(JsonNumber(json, "bytes_swapped_out"));
  s->resident_peak_mib = ToMiB(JsonNumber(json, "resident_bytes_peak"));
  s->reported_wall_seconds = JsonNumber(json, "wall_seconds");
  s->reported_peak_rss_mib = ToMiB(JsonNumber(json, "peak_rss_bytes"));
}

// Sets the swap traffic of *s from two /proc/vmstat readings around the run (system-wide).
void AddKernelCounters(const KernelCounters& before, const KernelCounters& after, Sample* s) {
  s->mib_swapped_in = ToMiB(static_cast<double>((after.swapped_in - before.swapped_in) * kPage));
  s->mib_swapped_out = ToMiB(static_cast<double>((after.swapped_out - before.swapped_out) * kPage));
}

class ProgramsBench {
 public:
  explicit ProgramsBench(const Options& options) : options_(options) {}

  // Runs every workload and prints the tables; returns the exit status.
  int Run();

 private:
  Table RunInfo() const;
  std::vector<Workload> Workloads() const;
  // Writes the workload's input file. False (after a failure) when it cannot.
  bool Prepare(const Workload& workload);
  Table RunWorkload(const Workload& workload);
  // The untimed native run: warms the page cache and, for a workload that checks its output,
  // leaves expected.txt. False (after a failure) when it fails.
  bool RunReference(const Workload& workload);
  // Runs the workload once in `mode` and adds what it gave to *runs.
  void RunOnce(const Workload& workload, Mode mode, KernelSwapPeer* peer, ModeRuns* runs);
  std::vector<std::string> CommandFor(const Workload& workload, Mode mode) const;
  // Checks the exit status and the output; reports a failure and returns false on a problem.
  bool Succeeded(const Workload& workload, const std::string& label, const ProgramRun& run);
  bool SameFiles(const std::string& a, const std::string& b);
  Table WorkloadTable(const Workload& workload, const ModeRuns (&runs)[3]) const;
  void Fail(const std::string& what);

  const Options& options_;
  WorkDir work_;
  Table skipped_{"skipped", "Skipped rows", {{"rows", "rows"}, {"reason", "reason"}}};
  Table failures_{"failures", "FAILURES", {{"failure", "failure"}}};
  int failure_count_ = 0;
};

void ProgramsBench::Fail(const std::string& what) {
  std::fprintf(stderr, "\n*** faultline-bench-programs: FAILED: %s ***\n\n", what.c_str());
  failures_.AddRow({Text(what)});
  ++failure_count_;
}

Table ProgramsBench::RunInfo() const {
  Table table = RunTable();
  table.AddRow({Text("workloads"), Text(options_.full ? "full" : "default (no --full)")});
  table.AddRow({Text("repetitions"), Int(static_cast<uint64_t>(options_.repetitions))});
  table.AddRow({Text("swap dir"), Text(options_.swap_dir)});
  table.AddRow({Text("faultline tool"), Text(options_.faultline)});
  table.AddRow({Text("kernel swap settings"), Text(KernelSwapSettings())});
  table.AddNote(
      "wall s: fork to reap, measured by the bench (for faultline it includes the faultline "
      "tool's start); min and max over the repetitions, every other column a median. peak RSS "
      "and major faults: ru_maxrss and ru_majflt of the child with the descendants it reaped "
      "(for faultline: its program, whose faults userfaultfd resolves count as minor).");
  table.AddNote(
      "faultline columns, from `faultline run --stats`: swap-ins = faults_swap_in, MiB in/out = "
      "bytes_swapped_in/out, resident peak = resident_bytes_peak (managed memory only), fl wall "
      "s and fl RSS MiB = its own wall_seconds and peak_rss_bytes. Kernel MiB in/out: pswpin and "
      "pswpout of /proc/vmstat over the run (system-wide).");
  table.AddNote(
      "kernel rows: a run ended by SIGKILL while /proc/vmstat oom_kill went up counts under OOM "
      "kills (the memory cgroup could not hold the program at the limit), not as a failure. The "
      "memcg limit covers all of the child's memory (anonymous, the page cache it charges, kernel "
      "memory); faultline's covers only what it manages (anonymous mappings from --min-region up "
      "and the jemalloc heap), so its program's RSS exceeds the limit by the rest. `faultline "
      "run` preloads jemalloc; the native and kernel runs use glibc's malloc.");
  return table;
}

std::vector<Workload> ProgramsBench::Workloads() const {
  if (!options_.command_name.empty()) {
    Workload command = {options_.command_name,
                        options_.command_name + ": " + absl::StrJoin(options_.command, " "),
                        options_.command_limit,
                        options_.command,
                        0,
                        true};
    command.output_is_stdout = true;
    return {command};
  }
  std::string input = work_.Path("input.txt");
  std::string output = work_.Path("output.txt");
  std::vector<Workload> workloads = {
      {"python",
       "python3: 512 MiB mmap.mmap(-1, size), one 8-byte store per page, then verify",
       kPythonLimit,
       {kPython, work_.Path("program.py"), std::to_string(kPythonBytes)},
       0,
       false},
      {"sort_24m",
       "GNU sort -S 512M of a 24 MiB generated text file",
       8 * kMiB,
       {"sort", "-S", "512M", input, "-o", output},
       24 * kMiB,
       true}};
  if (options_.full) {
    workloads.push_back({"sort_96m",
                         "GNU sort -S 512M of a 96 MiB generated text file",
                         32 * kMiB,
                         {"sort", "-S", "512M", input, "-o", output},
                         96 * kMiB,
                         true});
  }
  return workloads;
}

bool ProgramsBench::Prepare(const Workload& workload) {
  if (workload.output_is_stdout) return true;  // the caller prepared its input
  std::string why;
  bool ok = workload.input_bytes > 0
                ? WriteSortInput(work_.Path("input.txt"), workload.input_bytes, &why)
                : WriteTextFile(work_.Path("program.py"), kPythonScript, &why);
  if (!ok) Fail(workload.key + ": preparing the input: " + why);
  return ok;
}

std::vector<std::string> ProgramsBench::CommandFor(const Workload& workload, Mode mode) const {
  if (mode != Mode::kFaultline) return workload.argv;
  std::vector<std::string> command = {options_.faultline,
                                      "run",
                                      "--limit",
                                      LimitArgument(workload.limit_bytes),
                                      "--swap-dir",
                                      options_.swap_dir,
                                      "--stats",
                                      work_.Path("faultline.json"),
                                      "--"};
  command.insert(command.end(), workload.argv.begin(), workload.argv.end());
  return command;
}

bool ProgramsBench::SameFiles(const std::string& a, const std::string& b) {
  return ExitedCleanly(RunProgram({"cmp", "-s", a, b}, "/dev/null", nullptr));
}

bool ProgramsBench::Succeeded(const Workload& workload, const std::string& label,
                              const ProgramRun& run) {
  if (!run.started) {
    Fail(label + ": could not start: " + run.error);
    return false;
  }
  if (!ExitedCleanly(run)) {
    Fail(label + ": " + DescribeStatus(run.wait_status));
    return false;
  }
  if (workload.checks_output && !SameFiles(work_.Path("output.txt"), work_.Path("expected.txt"))) {
    Fail(label + ": OUTPUT DIFFERS from the native run's (cmp)");
    return false;
  }
  return true;
}

bool ProgramsBench::RunReference(const Workload& workload) {
  Progress("%s: untimed native reference run", workload.key.c_str());
  std::string output = work_.Path("output.txt");
  ProgramRun run =
      RunProgram(workload.argv, workload.output_is_stdout ? output : "/dev/null", nullptr);
  if (!ExitedCleanly(run)) {
    Fail(workload.key +
         ", native reference run: " + (run.started ? DescribeStatus(run.wait_status) : run.error));
    return false;
  }
  if (workload.checks_output && std::rename(output.c_str(), work_.Path("expected.txt").c_str())) {
    Fail(workload.key + ": keeping the reference output: " + std::strerror(errno));
    return false;
  }
  return true;
}

void ProgramsBench::RunOnce(const Workload& workload, Mode mode, KernelSwapPeer* peer,
                            ModeRuns* runs) {
  std::string label = workload.key + ", " + ModeName(mode, workload.limit_bytes);
  std::string json_path = work_.Path("faultline.json");
  unlink(work_.Path("output.txt").c_str());  // a run that writes nothing must not pass the cmp
  unlink(json_path.c_str());
  KernelCounters before = ReadKernelCounters();
  uint64_t oom_kills_before = OomKills();
  ProgramRun run = RunProgram(CommandFor(workload, mode),
                              workload.output_is_stdout ? work_.Path("output.txt") : "/dev/null",
                              mode == Mode::kKernel ? peer : nullptr);
  KernelCounters after = ReadKernelCounters();
  if (mode == Mode::kKernel && KilledByOom(run, oom_kills_before)) {
    Progress("  %s: killed by the memory cgroup's OOM killer", label.c_str());
    ++runs->oom_kills;
    return;
  }
  if (!Succeeded(workload, label, run)) return;
  Sample s;
  s.wall_seconds = run.wall_seconds;
  s.peak_rss_mib = ToMiB(static_cast<double>(run.peak_rss_bytes));
  s.major_faults = static_cast<double>(run.major_faults);
  if (mode == Mode::kFaultline) AddFaultlineCounters(ReadWholeFile(json_path), &s);
  if (mode == Mode::kKernel) AddKernelCounters(before, after, &s);
  Progress("  %s: %.2f s, peak RSS %.0f MiB", label.c_str(), s.wall_seconds, s.peak_rss_mib);
  runs->samples.push_back(s);
}

Table ProgramsBench::WorkloadTable(const Workload& workload, const ModeRuns (&runs)[3]) const {
  Table table(workload.key, workload.title + ", limit " + LimitArgument(workload.limit_bytes),
              {{"mode", "mode"},
               {"runs_ok", "runs ok"},
               {"oom_kills", "OOM kills"},
               {"wall_s", "wall s"},
               {"wall_min_s", "min"},
               {"wall_max_s", "max"},
               {"wall_vs_kernel", "x kernel"},
               {"peak_rss_mib", "peak RSS MiB"},
               {"major_faults", "major faults"},
               {"swap_ins", "swap-ins"},
               {"mib_swapped_in", "MiB in"},
               {"mib_swapped_out", "MiB out"},
               {"resident_peak_mib", "resident peak MiB"},
               {"reported_wall_s", "fl wall s"},
               {"reported_peak_rss_mib", "fl RSS MiB"}});
  double kernel_wall = Median(runs[2].samples, &Sample::wall_seconds);
  for (Mode mode : kModes) {
    const ModeRuns& mode_runs = runs[static_cast<int>(mode)];
    const std::vector<Sample>& rows = mode_runs.samples;
    if (!mode_runs.skipped.empty()) {
      table.AddNote(ModeName(mode, workload.limit_bytes) + " skipped: " + mode_runs.skipped);
      continue;
    }
    double wall = Median(rows, &Sample::wall_seconds);
    auto [low, high] = WallRange(rows);
    table.AddRow(
        {Text(ModeName(mode, workload.limit_bytes)),
         Text(std::to_string(rows.size()) + "/" + std::to_string(options_.repetitions)),
         mode == Mode::kKernel ? Int(static_cast<uint64_t>(mode_runs.oom_kills)) : Cell(),
         Num(wall, 2), Num(low, 2), Num(high, 2), Num(wall / kernel_wall, 2),
         Num(Median(rows, &Sample::peak_rss_mib), 1), Num(Median(rows, &Sample::major_faults), 0),
         Num(Median(rows, &Sample::swap_ins), 0), Num(Median(rows, &Sample::mib_swapped_in), 0),
         Num(Median(rows, &Sample::mib_swapped_out), 0),
         Num(Median(rows, &Sample::resident_peak_mib), 1),
         Num(Median(rows, &Sample::reported_wall_seconds), 2),
         Num(Median(rows, &Sample::reported_peak_rss_mib), 1)});
  }
  return table;
}

Table ProgramsBench::RunWorkload(const Workload& workload) {
  ModeRuns runs[3];
  if (RunReference(workload)) {
    KernelSwapPeer peer;
    std::string why;
    bool kernel = peer.Setup(options_.swap_dir, kKernelSwapBytes, workload.limit_bytes, &why);
    if (!kernel) {
      runs[static_cast<int>(Mode::kKernel)].skipped = why;
      Progress("%s: kernel swap rows skipped: %s", workload.key.c_str(), why.c_str());
      skipped_.AddRow(
          {Text(workload.key + ": " + ModeName(Mode::kKernel, workload.limit_bytes)), Text(why)});
    }
    for (int rep = 1; rep <= options_.repetitions; ++rep) {
      Progress("%s: repetition %d of %d", workload.key.c_str(), rep, options_.repetitions);
      for (Mode mode : kModes) {
        if (mode == Mode::kKernel && !kernel) continue;
        RunOnce(workload, mode, &peer, &runs[static_cast<int>(mode)]);
      }
    }
    peer.Teardown();
  }
  return WorkloadTable(workload, runs);
}

int ProgramsBench::Run() {
  std::vector<Table> tables = {RunInfo()};
  std::string why;
  if (!work_.Create(options_.swap_dir, &why)) {
    Fail(why);
  } else {
    for (const Workload& workload : Workloads()) {
      if (Prepare(workload)) tables.push_back(RunWorkload(workload));
    }
    work_.Remove();
  }
  tables.front().AddRow({Text("load average at end"), Text(LoadAverage())});
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
  faultline_bench::InstallWorkCleanupHandlers();
  return faultline_bench::ProgramsBench(options).Run();
}
