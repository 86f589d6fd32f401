// faultline: the command-line tool. `faultline run` runs a program with its memory managed by
// faultline under a limit (run_command.h); more verbs will join it.
#include <cstdio>
#include <span>
#include <string_view>

#include "run_command.h"
#include "run_options.h"

namespace {

constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: faultline COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  run    run a program with its memory managed by faultline under a limit\n"
    "  help   show this help ('faultline help run' or 'faultline run --help': run's options)\n";

}  // namespace

int main(int argc, char** argv) {
  std::span<char* const> args(argv + 1, argc > 0 ? argc - 1 : 0);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string_view verb = args[0];
  if (verb == "run") return faultline::RunCommand(args.subspan(1));
  if (verb == "help" || verb == "--help" || verb == "-h") {
    bool about_run = args.size() > 1 && std::string_view(args[1]) == "run";
    std::fputs(about_run ? faultline::kRunUsage : kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "faultline: unknown command '%s'\nTry 'faultline --help'.\n", args[0]);
  return kExitUsage;
}
