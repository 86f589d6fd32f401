#include "util/status.h"

#include <cerrno>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "util/errno_name.h"

namespace faultline {
namespace {

constexpr absl::string_view kErrnoPayload = "faultline/errno";

absl::StatusCode CodeFor(int err) {
  switch (err) {
    case EINVAL:
    case ERANGE:
      return absl::StatusCode::kInvalidArgument;
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EEXIST:
    case EALREADY:
      return absl::StatusCode::kAlreadyExists;
    case EPERM:
    case EACCES:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case ENOMEM:
    case ENOSPC:
      return absl::StatusCode::kResourceExhausted;
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::StatusCode::kUnimplemented;
    case ENXIO:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status Build(int err, std::string message) {
  absl::Status status(CodeFor(err), message);
  status.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  return status;
}

}  // namespace

absl::Status ErrnoError(int err, absl::string_view context) {
  return Build(err, absl::StrCat(context, ": ", ErrnoDescription(err)));
}

absl::Status ErrnoError(int err, absl::string_view context, absl::string_view detail) {
  return Build(err, absl::StrCat(context, ": ", detail));
}

int ErrnoOf(const absl::Status& status) {
  if (status.ok()) return 0;
  auto payload = status.GetPayload(kErrnoPayload);
  int err = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &err) && err > 0) return err;
  return EIO;
}

}  // namespace faultline
