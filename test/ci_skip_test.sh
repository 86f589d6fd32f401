#!/usr/bin/env bash
# In CI (CI=true) a test that needs userfaultfd must fail, not skip, where userfaultfd is
# unavailable; elsewhere it skips (exit 77, meson's SKIP). Each test given is run as an
# unprivileged user (no userfaultfd: vm.unprivileged_userfaultfd=0, /dev/userfaultfd root-only),
# with and without CI=true. Usage: ci_skip_test.sh COMMAND [ARGS...] [-- COMMAND [ARGS...]]...
set -u

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
  echo "SKIP: needs root and setpriv to run a test without userfaultfd" >&2
  exit 77
fi
if [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ]; then
  echo "SKIP: vm.unprivileged_userfaultfd=1: an unprivileged user has userfaultfd here" >&2
  exit 77
fi
# Paths as given (relative to the build directory) made absolute, before leaving it.
args=()
for arg in "$@"; do
  if [ -e "$arg" ]; then args+=("$(realpath "$arg")"); else args+=("$arg"); fi
done
set -- "${args[@]}"
WORK=$(mktemp -d)
chmod 1777 "$WORK"  # the unprivileged user's TMPDIR
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

failures=0
# unprivileged CI_VALUE COMMAND...: runs COMMAND as nobody, with CI set to CI_VALUE; sets $status.
unprivileged() {
  local ci=$1
  shift
  env -u CI ${ci:+CI=$ci} TMPDIR="$WORK" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@" >out 2>&1 </dev/null
  status=$?
}

tests=0
check() {  # check COMMAND [ARGS...]
  local command="$*"
  tests=$((tests + 1))
  unprivileged "" "$@"
  if [ "$status" -ne 77 ]; then
    echo "FAIL: $command without CI: exit status $status, expected 77 (skip)" >&2
    sed 's/^/  | /' out | tail -n 5 >&2
    failures=$((failures + 1))
  fi
  unprivileged true "$@"
  if [ "$status" -eq 0 ] || [ "$status" -eq 77 ]; then
    echo "FAIL: $command with CI=true: exit status $status, expected a failure" >&2
    sed 's/^/  | /' out | tail -n 5 >&2
    failures=$((failures + 1))
  elif ! grep -q "CI=true" out; then
    echo "FAIL: $command with CI=true fails without saying why" >&2
    failures=$((failures + 1))
  fi
}

args=()
for arg in "$@" --; do
  if [ "$arg" = -- ]; then
    [ ${#args[@]} -gt 0 ] && check "${args[@]}"
    args=()
  else
    args+=("$arg")
  fi
done
[ "$failures" -eq 0 ] && echo "PASS: $tests tests fail in CI without userfaultfd and skip outside it"
exit $((failures > 0))
