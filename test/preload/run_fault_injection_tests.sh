#!/usr/bin/env bash
# run_fault_injection_tests.sh FAULTLINE BUILD_DIR
#
# Breaks the swap path of a program running under `FAULTLINE run` on real devices and checks that
# no byte is ever wrong, that exactly the pages that cannot be recovered raise SIGBUS, and that the
# program otherwise goes on. The program is BUILD_DIR/swap_faults (4 threads, 96 MiB under a
# 16 MiB limit, every byte verified, SIGBUS caught page by page; see swap_faults.c).
#
# Device-mapper is the usual tool for a failing disk (dm-error, dm-flakey); where the kernel has it
# not (CONFIG_MD unset, as on these machines) the same failures come from loop devices stacked on
# a small ext4 file system:
#   write_error  the swap file system (ext4) sits on a loop device whose backing file is sparse
#                and larger than the file system holding it: once that one is full, every write to
#                a block never written before fails with EIO at the block layer (thin
#                provisioning run dry). Expected: no SIGBUS, no wrong byte, I/O errors counted; the
#                pages whose writes failed stay in memory.
#   read_error   the same stack; after the fill, the lower file system is shut down
#                (EXT4_IOC_SHUTDOWN): from then on every read and write of the swap device fails.
#                Expected: SIGBUS on exactly the pages faultline logs as lost (those it had to read
#                back), every other page exact.
#   enospc       the swap directory is on a small ext4 file system that another file fills right
#                after the program starts. Expected: as write_error.
#   truncate     the (unlinked) swap file is cut to half its size through /proc/PID/fd after the
#                fill. Expected: SIGBUS on exactly the pages faultline logs as lost, never zeros.
#   kill9        `kill -9` of the program after the fill. Expected: the swap directory is empty and
#                the file system's used blocks are back to what they were before the run.
#
# Prints "PASS name (...)" or "FAIL name: why" per scenario. Exits 0 when all passed, 1 when one
# failed, 77 (meson's SKIP) when this machine has no loop devices or no root, except under CI=true,
# where that is a failure. FAULTLINE_INJECT_TIMEOUT (seconds, default 300) bounds each scenario;
# FAULTLINE_INJECT_ONLY (names separated by spaces) runs only those.
set -u -o pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FAULTLINE BUILD_DIR" >&2
  exit 2
fi
FAULTLINE=$1
PROG=$2/swap_faults
TIMEOUT=${FAULTLINE_INJECT_TIMEOUT:-300}
SIZE=96M
LIMIT=16M
THREADS=4
MiB=$((1 << 20))
export LC_ALL=C
exec </dev/null

unavailable() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $1 (CI=true: this test must run there)"
    exit 1
  fi
  echo "SKIP: $1"
  exit 77
}
[ "$(id -u)" = 0 ] || unavailable "needs root (loop devices, mount)"
for tool in losetup mkfs.ext4 mount umount truncate python3 timeout; do
  command -v $tool >/dev/null || unavailable "$tool is not installed"
done
[ -e /dev/loop-control ] || unavailable "no loop device support (/dev/loop-control)"
[ -x "$PROG" ] || { echo "FAIL: $PROG was not built"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/faultline-inject.XXXXXX") || exit 1
# What to undo, in order of creation: "mount DIR", "loop DEVICE" or "pid PID".
UNDO=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local i what arg
  for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do
    what=${UNDO[i]%% *} arg=${UNDO[i]#* }
    case $what in
      pid) kill -KILL "$arg" 2>/dev/null && wait "$arg" 2>/dev/null ;;
      mount) timeout 30 umount "$arg" 2>/dev/null || timeout 30 umount -l "$arg" ;;
      loop) timeout 30 losetup -d "$arg" ;;
    esac
  done
  UNDO=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM HUP

FAILED=0
fail() {  # fail NAME WHY: prints the FAIL line and the tails of the scenario's logs
  local log
  echo "FAIL $1: $2"
  for log in "$WORK/$1.out" "$WORK/$1.err"; do
    [ -s "$log" ] || continue
    echo "  --- last lines of $(basename "$log"):"
    grep -v '^lost-page' "$log" | tail -n 15 | sed 's/^/  | /'
  done
  FAILED=1
}
wanted() { [ -z "${FAULTLINE_INJECT_ONLY:-}" ] || [[ " $FAULTLINE_INJECT_ONLY " == *" $1 "* ]]; }

# make_fs NAME MIB IMAGE_DIR: an ext4 file system of MIB MiB on a loop device over a sparse file
# in IMAGE_DIR, mounted on $WORK/NAME. Metadata and journal are written in full at mkfs time, so
# that only file data ever needs new blocks from below. The loop device does direct I/O on its
# file: with buffered I/O it would report a write done once in the page cache, and an error of
# the write-back after it would be lost (a disk that acknowledges writes and drops them, which
# faultline's checksums catch as lost pages, but not the failing disk meant here). Sets FS_LOOP.
make_fs() {
  local name=$1 mib=$2 dir=$3
  truncate -s "${mib}M" "$dir/$name.img" || return 1
  FS_LOOP=$(losetup -f --show --direct-io=on "$dir/$name.img") || return 1
  UNDO+=("loop $FS_LOOP")
  mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0 "$FS_LOOP" || return 1
  mkdir -p "$WORK/$name"
  mount "$FS_LOOP" "$WORK/$name" || return 1
  UNDO+=("mount $WORK/$name")
}

free_mib() { echo $(($(stat -f -c '%a * %S' "$1") / MiB)); }
used_blocks() { echo $(($(stat -f -c %b "$1") - $(stat -f -c %f "$1"))); }

json_field() {  # json_field FILE FIELD: the integer FIELD of the JSON summary in FILE
  grep -o "\"$2\"[[:space:]]*:[[:space:]]*-\?[0-9]\+" "$1" | tail -n 1 | sed 's/.*://; s/[[:space:]]//g'
}

# wait_line FILE PATTERN PID: until FILE has a line matching PATTERN (0), or PID is gone or the
# scenario's time is up (1).
wait_line() {
  local i
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null; return; }
    sleep 0.1
  done
  return 1
}

# start NAME SWAP_DIR [START]: runs the workload under faultline in the background; sets RUN_PID.
start() {
  local name=$1 swap_dir=$2
  shift 2
  rm -f "$WORK/$name.go" "$WORK/$name.start"
  FAULTLINE_LOG=error timeout -k 10 "$TIMEOUT" "$FAULTLINE" run --limit "$LIMIT" --swap-dir "$swap_dir" --json -- \
    "$PROG" "$SIZE" "$THREADS" "$WORK/$name.go" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  RUN_PID=$!
  UNDO+=("pid $RUN_PID")
}

# program_pid NAME: the workload's own pid, from its "mapped/filled pid N" line.
program_pid() { sed -n 's/^\(mapped\|filled\) pid \([0-9]*\)$/\2/p' "$WORK/$1.out" | head -n 1; }

# swap_fd PID DIR: the /proc path of the fd of PID open on a file in DIR (the swap file).
swap_fd() {
  local fd
  for fd in /proc/"$1"/fd/*; do
    [[ $(readlink "$fd") == "$2"/* ]] && { echo "$fd"; return 0; }
  done
  return 1
}

# finish NAME: lets the workload go on, waits for it; sets RC, LOST, WRONG, IO_ERRORS, CHECKSUM_ERRORS.
finish() {
  local name=$1 out=$WORK/$1.out
  touch "$WORK/$name.go"
  wait "$RUN_PID"
  RC=$?
  UNDO=("${UNDO[@]:0:${#UNDO[@]}-1}")  # the pid entry start() added: reaped
  LOST=$(sed -n 's/^lost \([0-9]*\) wrong [0-9]*$/\1/p' "$out")
  WRONG=$(sed -n 's/^lost [0-9]* wrong \([0-9]*\)$/\1/p' "$out")
  IO_ERRORS=$(json_field "$out" io_errors)
  CHECKSUM_ERRORS=$(json_field "$out" checksum_errors)
}

# check NAME EXPECT: EXPECT "none" (no page lost) or "logged" (the lost pages are exactly the ones
# faultline logged as lost, at least one). Prints PASS or FAIL.
check() {
  local name=$1 expect=$2 why=() logged seen
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    fail "$name" "timed out after ${TIMEOUT}s (FAULTLINE_INJECT_TIMEOUT)"
    return
  fi
  [ "$RC" = 0 ] || why+=("faultline run exited with status $RC")
  if [ -z "$LOST" ] || [ -z "$IO_ERRORS" ]; then
    why+=("no final 'lost L wrong W' line or no JSON summary")
  else
    [ "$WRONG" = 0 ] || why+=("$WRONG wrong pages")
    logged=$(grep -o 'page 0x[0-9a-f]* could not be read back' "$WORK/$name.err" | awk '{print $2}' | sort -u)
    seen=$(sed -n 's/^lost-page //p' "$WORK/$name.out" | sort -u)
    case $expect in
      none)
        [ "$LOST" = 0 ] || why+=("$LOST pages raised SIGBUS, expected none")
        [ "$IO_ERRORS" -gt 0 ] || why+=("io_errors 0: the fault did not reach faultline")
        ;;
      logged)
        [ "$LOST" -gt 0 ] || why+=("no page raised SIGBUS")
        [ "$((IO_ERRORS + CHECKSUM_ERRORS))" -gt 0 ] || why+=("no I/O or checksum error counted")
        [ "$logged" = "$seen" ] ||
          why+=("the pages that raised SIGBUS ($(wc -w <<<"$seen")) are not those faultline logged as lost ($(wc -w <<<"$logged"))")
        ;;
    esac
  fi
  if [ ${#why[@]} -gt 0 ]; then
    local joined
    joined=$(printf '%s; ' "${why[@]}")
    fail "$name" "${joined%; }"
  else
    echo "PASS $name (lost $LOST pages, io_errors $IO_ERRORS, checksum_errors $CHECKSUM_ERRORS)"
  fi
}

# A thinly provisioned swap device: ext4 "NAME" (INNER_MIB) on a loop device over a sparse file
# on ext4 "NAME-lower" (LOWER_MIB). Sets SWAP_DIR, LOWER.
thin_stack() {
  local name=$1 lower_mib=$2 inner_mib=$3
  make_fs "$name-lower" "$lower_mib" "$WORK" || return 1
  LOWER=$WORK/$name-lower
  make_fs "$name" "$inner_mib" "$LOWER" || return 1
  SWAP_DIR=$WORK/$name
}

scenario_write_error() {
  # 40 MiB under the upper file system's data: about 24 MiB of the ~80 MiB to evict fit.
  thin_stack write_error 40 256 || { fail write_error "could not set up the devices"; return; }
  echo "  write_error: lower file system $(free_mib "$LOWER") MiB free, swap file system $(free_mib "$SWAP_DIR") MiB free"
  start write_error "$SWAP_DIR"
  finish write_error
  check write_error none
}

scenario_read_error() {
  thin_stack read_error 320 256 || { fail read_error "could not set up the devices"; return; }
  start read_error "$SWAP_DIR"
  if ! wait_line "$WORK/read_error.out" '^filled' "$RUN_PID"; then
    fail read_error "the workload did not fill its memory"
    return
  fi
  # EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)), EXT4_GOING_FLAGS_NOLOGFLUSH: the disk is gone.
  python3 -c 'import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 2))' "$LOWER" ||
    { fail read_error "EXT4_IOC_SHUTDOWN failed"; return; }
  finish read_error
  check read_error logged
}

scenario_enospc() {
  make_fs enospc 160 "$WORK" || { fail enospc "could not set up the file system"; return; }
  start enospc "$WORK/enospc" "$WORK/enospc.start"
  if ! wait_line "$WORK/enospc.out" '^mapped' "$RUN_PID"; then
    fail enospc "the workload did not start"
    return
  fi
  # The swap file exists (sized, sparse); another file takes every free block.
  dd if=/dev/zero of="$WORK/enospc/filler" bs=1M status=none 2>/dev/null
  sync -f "$WORK/enospc"
  echo "  enospc: $(free_mib "$WORK/enospc") MiB left free by the filler"
  touch "$WORK/enospc.start"
  finish enospc
  check enospc none
}

scenario_truncate() {
  mkdir -p "$WORK/truncate"
  start truncate "$WORK/truncate"
  if ! wait_line "$WORK/truncate.out" '^filled' "$RUN_PID"; then
    fail truncate "the workload did not fill its memory"
    return
  fi
  local pid fd used
  pid=$(program_pid truncate)
  fd=$(swap_fd "$pid" "$WORK/truncate") || { fail truncate "no swap file open in $WORK/truncate"; return; }
  # The file is sparse and its slots are used from the front: cut it in the middle of the part
  # in use.
  used=$(($(stat -L -c %b "$fd") * 512 / 2 / 4096 * 4096))
  truncate -s "$used" "$fd" || { fail truncate "could not truncate $fd"; return; }
  echo "  truncate: swap file cut to $((used / MiB)) MiB"
  finish truncate
  check truncate logged
}

scenario_kill9() {
  make_fs kill9 160 "$WORK" || { fail kill9 "could not set up the file system"; return; }
  local before after pid fd i left why=()
  sync -f "$WORK/kill9"
  before=$(used_blocks "$WORK/kill9")
  start kill9 "$WORK/kill9"
  if ! wait_line "$WORK/kill9.out" '^filled' "$RUN_PID"; then
    fail kill9 "the workload did not fill its memory"
    return
  fi
  pid=$(program_pid kill9)
  fd=$(swap_fd "$pid" "$WORK/kill9") || { fail kill9 "no swap file open in $WORK/kill9"; return; }
  echo "  kill9: swap file $(readlink "$fd"), $(($(stat -L -c %b "$fd") * 512 / MiB)) MiB on disk"
  kill -KILL "$pid"
  wait "$RUN_PID"
  UNDO=("${UNDO[@]:0:${#UNDO[@]}-1}")
  left=$(ls -A "$WORK/kill9" | grep -v '^lost+found$')
  [ -z "$left" ] || why+=("left in the swap directory: $(tr '\n' ' ' <<<"$left")")
  # The last close frees the unlinked file's blocks; give the kernel a moment to get there.
  for ((i = 0; i < 100; i++)); do
    sync -f "$WORK/kill9"
    after=$(used_blocks "$WORK/kill9")
    [ "$after" -le "$before" ] && break
    sleep 0.1
  done
  [ "$after" -le "$before" ] || why+=("$((after - before)) blocks still in use after the program died")
  if [ ${#why[@]} -gt 0 ]; then
    local joined
    joined=$(printf '%s; ' "${why[@]}")
    fail kill9 "${joined%; }"
  else
    echo "PASS kill9 (nothing left: $before used blocks before, $after after)"
  fi
}

for name in write_error read_error enospc truncate kill9; do
  wanted $name || continue
  "scenario_$name"
  cleanup
done
exit $FAILED
