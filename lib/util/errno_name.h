// Text for errno values without libc: a fixed table of static strings.
//
// Why not strerror(): glibc translates its text through gettext, which reads locale data and
// allocates (under `faultline run`, with the program's allocator, whose memory faultline may
// manage). On a library thread that is a self-deadlock: the thread faults on memory that only
// it could page in (issue 12: a JVM aborted, or hung, on one debug line of the evictor). These
// functions only index a table, so any thread may call them, the fault path included. Nothing in
// lib/ calls strerror, strerror_r, perror or std::error_code::message (test/no_libc_text_test.py).
#ifndef FAULTLINE_LIB_UTIL_ERRNO_NAME_H_
#define FAULTLINE_LIB_UTIL_ERRNO_NAME_H_

namespace faultline {

// "EINVAL" for EINVAL (or -EINVAL: the sign is ignored, so that -errno results pass as they are);
// "unknown errno" for a value outside the table.
const char* ErrnoName(int err) noexcept;

// glibc's untranslated English description: "Invalid argument" for EINVAL (either sign);
// "Unknown error" for a value outside the table.
const char* ErrnoDescription(int err) noexcept;

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_ERRNO_NAME_H_
