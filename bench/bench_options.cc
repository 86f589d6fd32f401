#include "bench_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bench_command.h"
#include "preload/env_config.h"

namespace faultline_bench {

const char kBenchUsage[] =
    "usage: faultline bench [OPTIONS]\n"
    "\n"
    "Measures page faults on this machine, the kernel and faultline side by side in one run, and\n"
    "prints tables (stdout) with progress on stderr. Needs root for the kernel swap modes (it\n"
    "creates a swap file and a memory cgroup, and removes them, also on Ctrl-C) and a full\n"
    "userfaultfd for faultline's; a mode that cannot run is listed as skipped, with the reason.\n"
    "\n"
    "Modes (--mode takes a comma-separated list of these and of the groups below):\n"
    "  latency modes, each fault timed alone, with 1..N faulting threads on disjoint pages:\n"
    "    kernel-first-touch     first store into private anonymous memory (4 KiB pages)\n"
    "    kernel-swap-in         load of a page the kernel swapped out (memory cgroup + swap file)\n"
    "    faultline-zero-fill    first store, served by faultline's fault-handler thread\n"
    "    faultline-self-paging  first store into a FL_MAP_SELF_PAGING region\n"
    "    faultline-swap-in      load of a page evicted by fl_advise(FL_ADVICE_PAGEOUT)\n"
    "    faultline-wp-copy      first store after a snapshot (write-protect fault + copy)\n"
    "    device-read            O_DIRECT 4 KiB read at queue depth 1 in the swap directory\n"
    "  first-touch              sequential first-touch throughput over fault_around_pages\n"
    "  out-of-core workloads over a region larger than the limit, faultline against the\n"
    "  kernel's swap in a memory cgroup of the same limit, same access sequence:\n"
    "    sequential             one pass in address order\n"
    "    random                 uniform random pages, one access per page of the region\n"
    "    zipf                   Zipf(0.99) ranks scattered over the region\n"
    "    loop                   3 passes in address order (a looping scan)\n"
    "  groups: latency (the latency modes), ooc (the workloads), all (everything; the default)\n"
    "\n"
    "Options:\n"
    "  --mode LIST        what to run (above)\n"
    "  --threads N|LIST   faulting threads per latency mode: N runs 1..N, a list (1,2,4) runs\n"
    "                     those (default: 1..the CPUs online)\n"
    "  --samples N        timed faults per latency row, over all its threads (default 16384;\n"
    "                     with --quick 1024)\n"
    "  --limit SIZE       memory limit of the out-of-core workloads, for both sides: bytes with\n"
    "                     a K, M or G suffix (default 64M; with --quick 16M)\n"
    "  --region SIZE      region of the out-of-core workloads (default 8 times the limit)\n"
    "  --swap-dir DIR     directory for faultline's swap file, the kernel's swap file and the\n"
    "                     device-read file, on a disk file system (default /var/tmp)\n"
    "  --quick            small sizes throughout: a run of about 30 s instead of about 3 min\n"
    "  --json             print the tables as one JSON object instead of text\n"
    "  --plot FILE.png    draw the latency CDFs into FILE.png with gnuplot (skipped, with a\n"
    "                     message, when gnuplot is not installed)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 when the run finished (targets missed and modes skipped included); 1 when an\n"
    "out-of-core workload read back wrong data; 2 for a usage error.\n";

namespace {

constexpr uint64_t kDefaultLimit = 64 * kMiB;
constexpr uint64_t kQuickLimit = 16 * kMiB;
constexpr uint64_t kDefaultRegionFactor = 8;
constexpr size_t kDefaultSamples = 16384;
constexpr size_t kQuickSamples = 1024;
// Page indices are 32-bit; a swap-in row's region is kSwapInStride pages per sample.
constexpr uint64_t kMaxRegion = uint64_t{64} << 30;
constexpr size_t kMaxSamples = size_t{1} << 20;
constexpr uint32_t kMaxThreads = 64;

// The options that take a value, as given.
struct OptionValues {
  std::optional<std::string> modes, threads, samples, limit, region, swap_dir, plot;
};
struct ValueOption {
  absl::string_view name;
  std::optional<std::string> OptionValues::*field;
};
constexpr ValueOption kValueOptions[] = {
    {"--mode", &OptionValues::modes},      {"--threads", &OptionValues::threads},
    {"--samples", &OptionValues::samples}, {"--limit", &OptionValues::limit},
    {"--region", &OptionValues::region},   {"--swap-dir", &OptionValues::swap_dir},
    {"--plot", &OptionValues::plot},
};

const ValueOption* FindValueOption(absl::string_view name) {
  for (const ValueOption& option : kValueOptions) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

struct Selection {
  std::vector<LatencyMode> latency_modes;
  bool first_touch = false;
  std::vector<Workload> workloads;
};

// Adds what `name` (a mode or a group) selects; false for an unknown name.
bool Select(absl::string_view name, Selection* selection) {
  bool all = name == "all";
  bool found = all;
  for (const LatencyModeInfo& info : kLatencyModes) {
    if (all || name == "latency" || name == info.name) {
      selection->latency_modes.push_back(info.mode);
      found = true;
    }
  }
  if (all || name == "first-touch") {
    selection->first_touch = true;
    found = true;
  }
  for (const WorkloadInfo& info : kWorkloads) {
    if (all || name == "ooc" || name == info.name) {
      selection->workloads.push_back(info.workload);
      found = true;
    }
  }
  return found;
}

// Sorted, without duplicates: the order the bench runs them in.
template <typename T>
std::vector<T> Unique(std::vector<T> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return items;
}

absl::StatusOr<std::vector<uint32_t>> ParseThreads(absl::string_view text) {
  std::vector<uint32_t> threads;
  bool list = text.find(',') != absl::string_view::npos;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(piece, &n) || n == 0 || n > kMaxThreads) {
      return absl::InvalidArgumentError(absl::StrCat("--threads ", text, ": give N (1 to ",
                                                     kMaxThreads, ") or a list such as 1,2,4"));
    }
    if (list) {
      threads.push_back(n);
    } else {
      for (uint32_t t = 1; t <= n; ++t) threads.push_back(t);
    }
  }
  return Unique(std::move(threads));
}

absl::StatusOr<uint64_t> ParseBytes(absl::string_view option, absl::string_view text) {
  uint64_t bytes = 0;
  if (!faultline::ParseSize(std::string_view(text.data(), text.size()), 0, &bytes) || bytes == 0 ||
      bytes % kPage != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, " ", text,
                     ": not a size: bytes, a multiple of 4096, with an optional K, M or G "
                     "suffix (64M)"));
  }
  return bytes;
}

absl::Status CheckSwapDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--swap-dir ", dir, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("--swap-dir ", dir, ": not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchOptions> ParseBenchOptions(std::span<char* const> args) {
  BenchOptions options;
  OptionValues values;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      return options;
    }
    if (arg == "--quick" || arg == "--json") {
      (arg == "--quick" ? options.quick : options.json) = true;
      continue;
    }
    size_t equals = arg.find('=');
    absl::string_view name = arg.substr(0, equals);
    const ValueOption* option = FindValueOption(name);
    if (option == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown option ", arg));
    absl::string_view value;
    if (equals != absl::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
    values.*(option->field) = std::string(value);
  }
  if (values.swap_dir.has_value()) options.swap_dir = *values.swap_dir;
  options.plot_path = values.plot.value_or("");

  Selection selection;
  for (absl::string_view name : absl::StrSplit(values.modes.value_or("all"), ',')) {
    if (!Select(name, &selection)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mode: unknown mode '", name, "' (see faultline bench --help)"));
    }
  }
  options.latency_modes = Unique(std::move(selection.latency_modes));
  options.first_touch = selection.first_touch;
  options.workloads = Unique(std::move(selection.workloads));

  if (values.threads.has_value()) {
    absl::StatusOr<std::vector<uint32_t>> parsed = ParseThreads(*values.threads);
    if (!parsed.ok()) return parsed.status();
    options.threads = *std::move(parsed);
  } else {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (uint32_t t = 1; t <= static_cast<uint32_t>(std::max(1L, cpus)); ++t) {
      options.threads.push_back(t);
    }
  }
  options.samples = options.quick ? kQuickSamples : kDefaultSamples;
  if (values.samples.has_value() &&
      (!absl::SimpleAtoi(*values.samples, &options.samples) ||
       options.samples < options.threads.back() || options.samples > kMaxSamples)) {
    return absl::InvalidArgumentError(absl::StrCat("--samples ", *values.samples,
                                                   ": give a number from ", options.threads.back(),
                                                   " to ", kMaxSamples));
  }
  options.limit = options.quick ? kQuickLimit : kDefaultLimit;
  if (values.limit.has_value()) {
    absl::StatusOr<uint64_t> bytes = ParseBytes("--limit", *values.limit);
    if (!bytes.ok()) return bytes.status();
    options.limit = *bytes;
  }
  options.region = kDefaultRegionFactor * options.limit;
  if (values.region.has_value()) {
    absl::StatusOr<uint64_t> bytes = ParseBytes("--region", *values.region);
    if (!bytes.ok()) return bytes.status();
    options.region = *bytes;
  }
  if (options.region <= options.limit || options.region > kMaxRegion) {
    return absl::InvalidArgumentError(
        absl::StrCat("--region must be larger than --limit (out of core) and at most 64G; it is ",
                     options.region / kMiB, " MiB for a limit of ", options.limit / kMiB, " MiB"));
  }
  if (absl::Status status = CheckSwapDir(options.swap_dir); !status.ok()) return status;

  options.first_touch_bytes = options.quick ? 256 * kMiB : kGiB;
  options.first_touch_runs = options.quick ? 1 : 3;
  options.device_file_bytes = options.quick ? 32 * kMiB : 256 * kMiB;
  return options;
}

}  // namespace faultline_bench
