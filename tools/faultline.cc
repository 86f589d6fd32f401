// faultline: the command-line tool. `faultline run` runs a program with its memory managed by
// faultline under a limit (run_command.h); `faultline snapshot` inspects and verifies a saved
// snapshot file (snapshot_command.h); `faultline bench` measures page faults, the kernel and
// faultline side by side (bench/bench_command.h).
#include <cstdio>
#include <span>
#include <string_view>

#include "bench_command.h"
#include "run_command.h"
#include "run_options.h"
#include "snapshot_command.h"

namespace {

constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: faultline COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  run       run a program with its memory managed by faultline under a limit\n"
    "  snapshot  inspect and verify a saved snapshot file\n"
    "  bench     measure page-fault latency and out-of-core throughput, kernel and faultline\n"
    "  help      show this help; 'faultline help COMMAND' (or 'faultline COMMAND --help') shows\n"
    "            a command's options\n";

}  // namespace

int main(int argc, char** argv) {
  std::span<char* const> args(argv + 1, argc > 0 ? argc - 1 : 0);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string_view verb = args[0];
  if (verb == "run") return faultline::RunCommand(args.subspan(1));
  if (verb == "snapshot") return faultline::SnapshotCommand(args.subspan(1));
  if (verb == "bench") return faultline_bench::BenchCommand(args.subspan(1));
  if (verb == "help" || verb == "--help" || verb == "-h") {
    std::string_view about = args.size() > 1 ? std::string_view(args[1]) : "";
    const char* usage = about == "run"        ? faultline::kRunUsage
                        : about == "snapshot" ? faultline::kSnapshotUsage
                        : about == "bench"    ? faultline_bench::kBenchUsage
                                              : kUsage;
    std::fputs(usage, stdout);
    return 0;
  }
  std::fprintf(stderr, "faultline: unknown command '%s'\nTry 'faultline --help'.\n", args[0]);
  return kExitUsage;
}
