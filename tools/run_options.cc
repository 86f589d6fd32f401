#include "run_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "preload/env_config.h"

namespace faultline {

const char kRunUsage[] =
    "usage: faultline run [OPTIONS] [--] COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with faultline's preload library, which manages its anonymous memory under a\n"
    "memory limit with its own swap file, and reports statistics on stderr when it ends. Every\n"
    "process COMMAND starts runs under faultline too, each with its own limit; the report sums\n"
    "them and has a line per process.\n"
    "\n"
    "Options (each sets the variable named in COMMAND's environment):\n"
    "  --limit SIZE       most memory resident at once: bytes with a K, M, G or T suffix (128M),\n"
    "                     or a percentage of RAM (25%); required unless FAULTLINE_LIMIT is set\n"
    "                     [FAULTLINE_LIMIT]\n"
    "  --swap-dir DIR     directory for the swap file, on a disk file system (default: $TMPDIR,\n"
    "                     else /var/tmp) [FAULTLINE_SWAP_DIR]\n"
    "  --min-region SIZE  smallest anonymous mapping that is managed (default 1M)\n"
    "                     [FAULTLINE_MIN_REGION]\n"
    "  --stats FILE       keep the statistics of every process, as JSON (what --json\n"
    "                     prints), in FILE\n"
    "  --json             print the statistics as JSON on stdout instead of the report\n"
    "  --log LEVEL        library log level: trace, debug, info, warn, error, off or 0-6\n"
    "                     (default warn) [FAULTLINE_LOG]\n"
    "  -h, --help         show this help\n"
    "Options also take the form --name=VALUE. The '--' is needed only when COMMAND starts with "
    "'-'.\n"
    "\n"
    "Environment:\n"
    "  FAULTLINE_PRELOAD_LIB  the preload library to use instead of the built or installed one\n"
    "  FAULTLINE_JEMALLOC     jemalloc, preloaded behind it so that heap memory is managed too\n"
    "                         (default: the system's libjemalloc.so.2; empty: none)\n"
    "\n"
    "Exit status: COMMAND's; 128+N if a signal N killed it; 127 if it is not found, 126 if it\n"
    "cannot be run; 2 for a usage error; 125 if faultline itself fails.\n";

namespace {

// Options that take a value, and where it goes.
struct ValueOption {
  absl::string_view name;
  std::optional<std::string> RunOptions::*field;
};
constexpr ValueOption kValueOptions[] = {
    {"--limit", &RunOptions::limit},           {"--swap-dir", &RunOptions::swap_dir},
    {"--min-region", &RunOptions::min_region}, {"--stats", &RunOptions::stats_path},
    {"--log", &RunOptions::log_level},
};

const ValueOption* FindValueOption(absl::string_view name) {
  for (const ValueOption& option : kValueOptions) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

// The library's own checks of FAULTLINE_SWAP_DIR (env_config.cc), with the option's name.
absl::Status CheckSwapDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--swap-dir ", dir, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("--swap-dir ", dir, ": not a directory"));
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--swap-dir ", dir, ": not writable: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RunOptions> ParseRunOptions(std::span<char* const> args) {
  RunOptions options;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.empty() || arg[0] != '-') break;  // the command
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      return options;
    }
    size_t equals = arg.find('=');
    absl::string_view name = arg.substr(0, equals);
    if (name == "--json" && equals == absl::string_view::npos) {
      options.json = true;
      continue;
    }
    const ValueOption* option = FindValueOption(name);
    if (option == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown option ", arg));
    absl::string_view value;
    if (equals != absl::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
    options.*(option->field) = std::string(value);
  }
  if (i == args.size()) return absl::InvalidArgumentError("no command given");
  options.command.assign(args.begin() + i, args.end());
  options.command.push_back(nullptr);
  return options;
}

absl::Status ValidateRunOptions(const RunOptions& options, uint64_t total_ram) {
  uint64_t bytes = 0;
  if (options.limit.has_value()) {
    if (!ParseSize(*options.limit, total_ram, &bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--limit ", *options.limit,
          ": not a size: use bytes with an optional K, M, G or T suffix (128M), or a percentage "
          "of RAM up to 100% (25%)"));
    }
  } else if (const char* inherited = std::getenv("FAULTLINE_LIMIT");
             inherited == nullptr || *inherited == '\0') {
    return absl::InvalidArgumentError(
        "--limit is required (or FAULTLINE_LIMIT in the environment)");
  }
  // The library reads FAULTLINE_MIN_REGION without a RAM size: no percentages.
  if (options.min_region.has_value() && !ParseSize(*options.min_region, 0, &bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min-region ", *options.min_region,
                     ": not a size: use bytes with an optional K, M, G or T suffix (1M)"));
  }
  if (options.swap_dir.has_value()) return CheckSwapDir(*options.swap_dir);
  return absl::OkStatus();
}

}  // namespace faultline
