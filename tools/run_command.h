// `faultline run`: runs a command with faultline's preload library under a memory limit and
// reports what faultline did.
#ifndef FAULTLINE_TOOLS_RUN_COMMAND_H_
#define FAULTLINE_TOOLS_RUN_COMMAND_H_

#include <span>

namespace faultline {

// Exit status of the whole tool, given the arguments after "run" (run_options.h lists them and the
// exit statuses). Messages and the report go to stderr; --help and --json output to stdout.
// REQUIRES: single-threaded (it changes this process's environment and signal dispositions).
int RunCommand(std::span<char* const> args);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_RUN_COMMAND_H_
