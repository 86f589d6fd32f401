// `faultline snapshot`: inspects a saved snapshot file (lib/snapshot/snapshot_file.h) and verifies
// its pages against their checksums.
#ifndef FAULTLINE_TOOLS_SNAPSHOT_COMMAND_H_
#define FAULTLINE_TOOLS_SNAPSHOT_COMMAND_H_

#include <span>

namespace faultline {

// The full usage of `faultline snapshot`.
extern const char kSnapshotUsage[];

// Exit status of the whole tool, given the arguments after "snapshot": 0 done (verify: every data
// page matches its checksum); 1 the file cannot be opened, is not a snapshot, is truncated or
// corrupt, or (verify) has bad pages; 2 a usage error. Results go to stdout, errors to stderr.
int SnapshotCommand(std::span<char* const> args);

}  // namespace faultline

#endif  // FAULTLINE_TOOLS_SNAPSHOT_COMMAND_H_
