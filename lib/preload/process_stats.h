// The statistics summary each program image writes under the preload library (FAULTLINE_STATS).
//
// FAULTLINE_STATS names either
//  - a directory (what `faultline run` gives): every program image of the process tree that the
//    library is loaded into keeps a file `<pid>.<n>.json` there, n counting the images of that pid
//    (an exec starts a new image, hence a new file, in the same process). The file is created
//    when the image starts, with "end":"running", and replaced at once (write to a dotfile, then
//    rename) by the full summary when the image ends by exit(), _exit() or an exec. A file that
//    still says "running" after the process is gone means it ended otherwise: killed by a signal
//    or crashed. A forked child that does not exec runs without a pager (docs/design.md, fork)
//    and gets its own file, with "pager":0 and no managed memory. The variable is inherited.
//  - a file: only the first image writes it, at exit; programs it starts do not (the variable is
//    removed from the environment).
//
// The file is one flat JSON object (README.md, "A process tree", lists its keys):
// unsigned integers and two strings, "command" and "end", written without escapes.
//
// Contract: after StartProcessStats, nothing here allocates; the writers run on program threads
// (at exit, before exec), or in a forked child before it runs anything of its own.
#ifndef FAULTLINE_LIB_PRELOAD_PROCESS_STATS_H_
#define FAULTLINE_LIB_PRELOAD_PROCESS_STATS_H_

#include "core/runtime.h"

namespace faultline {

// Reads where the summary goes and, in directory mode, creates this image's file. Registers the
// exit-time writer. `stats_path` may be nullptr (no summary).
void StartProcessStats(const char* stats_path);

// The runtime whose counters the summary reports; nullptr in a forked child (no pager).
void SetProcessStatsRuntime(Runtime* runtime);

// In a forked child: a file of its own (directory mode), or none (file mode).
void ProcessStatsAfterFork();

// Writes this image's summary now, ending as `end` ("exit", "exec"); a later call replaces it.
// Does nothing in a process that shares this image's memory without being its process (a vfork
// child), or when there is no summary to write.
void WriteProcessStats(const char* end);

}  // namespace faultline

#endif  // FAULTLINE_LIB_PRELOAD_PROCESS_STATS_H_
