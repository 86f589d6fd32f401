// Always-on invariant checks. A broken invariant in a pager means memory contents can no longer be
// trusted, so the process stops with a message instead of limping on. Safe in the fault path: it
// formats into a stack buffer and writes with write(2), without allocating.
#ifndef FAULTLINE_LIB_UTIL_CHECK_H_
#define FAULTLINE_LIB_UTIL_CHECK_H_

namespace faultline {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message) noexcept;
}  // namespace faultline

#define FL_CHECK(cond, msg)                                       \
  do {                                                            \
    if (__builtin_expect(!(cond), 0)) {                           \
      ::faultline::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
    }                                                             \
  } while (0)

#endif  // FAULTLINE_LIB_UTIL_CHECK_H_
