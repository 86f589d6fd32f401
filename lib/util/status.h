// Control-plane errors: absl::Status built from errno plus context, and the bridge to the C API's
// `0 / -errno` convention. The fault path never uses these (it returns plain codes, no allocation).
#ifndef FAULTLINE_LIB_UTIL_STATUS_H_
#define FAULTLINE_LIB_UTIL_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace faultline {

// An error status whose message is "<context>: <description of err>" (util/errno_name.h, the
// text strerror would give in English) and whose payload keeps `err`, so that ErrnoOf() gives it
// back exactly. `err` is a positive errno value.
absl::Status ErrnoError(int err, absl::string_view context);

// Same with a message of the caller's own (for errors that need more words than the description).
absl::Status ErrnoError(int err, absl::string_view context, absl::string_view detail);

// The positive errno carried by `status` (EIO when it carries none); 0 for an ok status.
int ErrnoOf(const absl::Status& status);

}  // namespace faultline

#endif  // FAULTLINE_LIB_UTIL_STATUS_H_
