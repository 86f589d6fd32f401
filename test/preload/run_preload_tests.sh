#!/usr/bin/env bash
# run_preload_tests.sh FAULTLINE BUILD_DIR
#
# Runs real workloads under `FAULTLINE run --limit L --json -- CMD...` and checks, for each, that
# CMD succeeded and verified its data, and that faultline's JSON summary shows the memory was
# managed and kept under the limit:
#   exit status 0 (faultline's and "exit_status"), io_errors == 0, checksum_errors == 0,
#   evictions > 0, managed_bytes_peak >= most of the workload's memory (so a run that silently
#   manages nothing fails), peak_rss_bytes <= limit + slack (see SLACK below).
# BUILD_DIR holds fork_eviction, mapping_cases, malloc_threads, pin_cases and process_tree (built
# from this directory);
# mmap_touch.py, madvise_python.py and snapshot_python.py are taken from beside this script.
#
# Prints one line per workload: "PASS name (wall s, peak RSS MiB, managed MiB)", "FAIL name: why"
# or "SKIP name: why" (only when the workload's program is not installed). Exits 0 when nothing
# failed, 77 (meson's SKIP) when this machine cannot use userfaultfd (1 in CI, CI=true), 1 otherwise.
# FAULTLINE_PRELOAD_TIMEOUT (seconds, default 300) bounds each workload; FAULTLINE_PRELOAD_ONLY
# (names separated by spaces, e.g. "sort redis") runs only those workloads.
set -u -o pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FAULTLINE BUILD_DIR" >&2
  exit 2
fi
FAULTLINE=$1
BIN=$2
SRC=$(cd "$(dirname "$0")" && pwd)
PYTHON=/usr/bin/python3  # Debian's; a pyenv python3 on PATH is not the one measured
TIMEOUT=${FAULTLINE_PRELOAD_TIMEOUT:-300}
MiB=$((1 << 20))

# Slack on peak RSS above the limit, in MiB: what a process holds outside managed memory.
#  - faultline's own: 4.5 MiB of write/read buffers with the defaults (README, "The memory
#    limit"), its per-page tables (16 B/page is 4 MiB per GiB managed), thread stacks, and the
#    preload library with libstdc++/absl/spdlog/liburing pages: FAULTLINE_OWN_MIB = 24.
#  - the program's own unmanaged memory, measured natively with libjemalloc.so.2 preloaded and
#    the workload shrunk to nothing (GNU time %M, Debian 12, 2024): python3 11.1 MiB,
#    fork_eviction 3.8, malloc_threads 6.0, sort 4.1, redis-server 12.1 (mapping_cases
#    always maps its regions; it is the size of fork_eviction). Rounded up below.
FAULTLINE_OWN_MIB=24
slack_mib() {
  case $1 in
    python_mmap | python_madvise | python_snapshot) echo $((FAULTLINE_OWN_MIB + 12)) ;;
    fork_eviction | mapping_cases | pin_cases) echo $((FAULTLINE_OWN_MIB + 4)) ;;
    malloc_threads | sort) echo $((FAULTLINE_OWN_MIB + 8)) ;;
    redis) echo $((FAULTLINE_OWN_MIB + 12)) ;;
  esac
}

exec </dev/null
export LC_ALL=C
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultline-preload.XXXXXX") || exit 1
export TMPDIR=$WORK  # stray temporary files (and faultline's default swap dir) end up in here
BACKGROUND_PIDS=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local pid live=()
  for pid in "${BACKGROUND_PIDS[@]}"; do  # `timeout` passes TERM on to the server it runs
    kill -TERM "$pid" 2>/dev/null && live+=("$pid")
  done
  if [ ${#live[@]} -gt 0 ]; then
    sleep 1
    kill -KILL "${live[@]}" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
fail() {  # fail NAME WHY [LOG...]: prints the FAIL line, then the tails of the logs
  local name=$1 why=$2 log
  shift 2
  echo "FAIL $name: $why"
  for log in "$@"; do
    [ -s "$log" ] || continue
    echo "  --- last lines of $(basename "$log"):"
    tail -n 15 "$log" | sed 's/^/  | /'
  done
  FAILED=1
}
skip() { echo "SKIP $1: $2"; }
wanted() { [ -z "${FAULTLINE_PRELOAD_ONLY:-}" ] || [[ " $FAULTLINE_PRELOAD_ONLY " == *" $1 "* ]]; }

# --- userfaultfd available? (root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1, /dev/userfaultfd)
uffd_usable() {
  [ "$(id -u)" = 0 ] && return 0
  [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ] && return 0
  [ -r /dev/userfaultfd ] && [ -w /dev/userfaultfd ] && return 0
  local cap
  cap=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  [ -n "$cap" ] && (((0x$cap >> 19) & 1)) && return 0  # CAP_SYS_PTRACE
  return 1
}
if ! uffd_usable; then
  why="no full userfaultfd here (needs root, CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)"
  if [ "${CI:-}" = true ]; then  # in CI a run that pages nothing is no pass
    echo "FAIL: $why; CI=true: a test that needs userfaultfd may not skip"
    exit 1
  fi
  echo "SKIP: $why"
  exit 77
fi
if [ ! -x "$FAULTLINE" ]; then
  echo "FAIL: $FAULTLINE is not an executable"
  exit 1
fi

to_bytes() {  # 64M -> bytes
  local n=${1%[KMG]}
  case $1 in
    *K) echo $((n << 10)) ;; *M) echo $((n << 20)) ;; *G) echo $((n << 30)) ;; *) echo "$n" ;;
  esac
}

# json_field FILE FIELD: the integer FIELD of the JSON object faultline printed (last). The
# workload's own stdout shares the file; no workload prints quoted "field": pairs.
json_field() {
  grep -o "\"$2\"[[:space:]]*:[[:space:]]*-\?[0-9]\+" "$1" | tail -n 1 | sed 's/.*://; s/[[:space:]]//g'
}

# check_summary NAME LIMIT MIN_MANAGED_MIB RC WALL OUT ERR [FIELD MIN]...: checks the run's exit
# status and JSON; prints PASS or FAIL. Extra FIELD MIN pairs require FIELD >= MIN; a non-empty
# EXTRA_WHY is one more failure reason (found by the caller; consumed here).
EXTRA_WHY=""
check_summary() {
  local name=$1 limit=$2 min_managed_mib=$3 rc=$4 wall=$5 out=$6 err=$7
  shift 7
  local limit_bytes slack why=() f v
  limit_bytes=$(to_bytes "$limit")
  slack=$(slack_mib "$name")
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail "$name" "timed out after ${TIMEOUT}s (FAULTLINE_PRELOAD_TIMEOUT)" "$out" "$err"
    return
  fi
  [ "$rc" = 0 ] || why+=("faultline run exited with status $rc")
  declare -A j
  local missing=()
  for f in exit_status peak_rss_bytes managed_bytes_peak resident_bytes_peak faults_swap_in \
    bytes_swapped_out evictions io_errors checksum_errors forks; do
    v=$(json_field "$out" "$f")
    [ -n "$v" ] || missing+=("$f")
    j[$f]=$v
  done
  if [ ${#missing[@]} -gt 0 ]; then
    why+=("no JSON summary with integer fields ${missing[*]} on faultline's stdout")
  else
    [ "${j[exit_status]}" = 0 ] || why+=("exit_status ${j[exit_status]}")
    [ "${j[io_errors]}" = 0 ] || why+=("io_errors ${j[io_errors]}")
    [ "${j[checksum_errors]}" = 0 ] || why+=("checksum_errors ${j[checksum_errors]}")
    [ "${j[evictions]}" -gt 0 ] || why+=("evictions ${j[evictions]}: nothing was evicted")
    if [ "${j[managed_bytes_peak]}" -lt $((min_managed_mib * MiB)) ]; then
      why+=("managed_bytes_peak $((j[managed_bytes_peak] / MiB)) MiB < $min_managed_mib MiB: the workload's memory was not managed")
    fi
    if forks_children "$name"; then
      # A forked child runs without a pager and holds all of its pages (docs/design.md, "fork"),
      # and the peak RSS that wait4 reports includes the children: check the parent's own
      # resident managed memory instead.
      if [ "${j[resident_bytes_peak]}" -gt $((limit_bytes + MiB)) ]; then
        why+=("resident_bytes_peak $((j[resident_bytes_peak] / MiB)) MiB > limit $limit")
      fi
    elif [ "${j[peak_rss_bytes]}" -gt $((limit_bytes + slack * MiB)) ]; then
      why+=("peak RSS $((j[peak_rss_bytes] / MiB)) MiB > limit $limit + ${slack} MiB slack")
    fi
    while [ $# -ge 2 ]; do
      [ "${j[$1]}" -ge "$2" ] || why+=("$1 ${j[$1]} < $2")
      shift 2
    done
  fi
  [ -z "$EXTRA_WHY" ] || why+=("$EXTRA_WHY")
  EXTRA_WHY=""
  if [ ${#why[@]} -gt 0 ]; then
    local joined
    joined=$(printf '%s; ' "${why[@]}")
    fail "$name" "${joined%; }" "$out" "$err"
  else
    local memory
    if forks_children "$name"; then
      memory="resident $((j[resident_bytes_peak] / MiB)) MiB <= $limit, with children peak RSS $((j[peak_rss_bytes] / MiB)) MiB"
    else
      memory="peak RSS $((j[peak_rss_bytes] / MiB)) MiB <= $limit + $slack MiB"
    fi
    printf 'PASS %s (%s s, %s, managed %d MiB, evictions %d, swap-ins %d)\n' \
      "$name" "$wall" "$memory" $((j[managed_bytes_peak] / MiB)) "${j[evictions]}" "${j[faults_swap_in]}"
  fi
}

# Workloads whose children read all of the parent's memory.
forks_children() { [ "$1" = fork_eviction ] || [ "$1" = redis ]; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# run_workload NAME LIMIT MIN_MANAGED_MIB [FIELD MIN]... -- CMD...
run_workload() {
  local name=$1 limit=$2 min_managed=$3 checks=() start rc
  shift 3
  while [ "$1" != -- ]; do checks+=("$1"); shift; done
  shift
  local out=$WORK/$name.out err=$WORK/$name.err
  start=$(now)
  timeout -k 10 "$TIMEOUT" "$FAULTLINE" run --limit "$limit" --json -- "$@" >"$out" 2>"$err"
  rc=$?
  check_summary "$name" "$limit" "$min_managed" "$rc" "$(elapsed "$start")" "$out" "$err" \
    "${checks[@]}"
}

# --- 1. python: a 512 MiB anonymous (MAP_SHARED) mmap under 128M -----------------------------
if ! wanted python_mmap; then
  :
elif [ -x "$PYTHON" ]; then
  run_workload python_mmap 128M 448 -- "$PYTHON" "$SRC/mmap_touch.py" 512M
else
  skip python_mmap "$PYTHON not installed"
fi

# --- 1b. python: madvise and mlockall of a 128 MiB private mmap under 32M, by their effects ---
if ! wanted python_madvise; then
  :
elif [ -x "$PYTHON" ]; then
  run_workload python_madvise 32M 136 -- "$PYTHON" "$SRC/madvise_python.py"
else
  skip python_madvise "$PYTHON not installed"
fi

# --- 1c. python: fl_snapshot_* through ctypes (the preload library serves the API) under 32M ---
if ! wanted python_snapshot; then
  :
elif [ -x "$PYTHON" ]; then
  run_workload python_snapshot 32M 288 -- "$PYTHON" "$SRC/snapshot_python.py"
else
  skip python_snapshot "$PYTHON not installed"
fi

# --- 2..5. the C programs ------------------------------------------------------------------
for prog in fork_eviction mapping_cases malloc_threads pin_cases; do
  wanted $prog || continue
  if [ ! -x "$BIN/$prog" ]; then
    fail "$prog" "$BIN/$prog was not built"
    continue
  fi
  case $prog in
    # The top process forks 8 times (4 one after another, 2 at once, the nested child, the
    # orphan's parent); its children fork 2 more.
    fork_eviction) run_workload fork_eviction 32M 112 forks 8 -- "$BIN/fork_eviction" 128M ;;
    # 4 x 16 MiB of background regions plus one case's 32-64 MiB at a time.
    mapping_cases) run_workload mapping_cases 32M 96 -- "$BIN/mapping_cases" ;;
    # ~320 MiB live over 8 threads, all of it jemalloc's (mmap'd) memory.
    malloc_threads) run_workload malloc_threads 96M 256 -- "$BIN/malloc_threads" 1500 ;;
    # mlock family as pins: locked pages stay resident under pressure; the pin budget holds.
    pin_cases) run_workload pin_cases 32M 128 -- "$BIN/pin_cases" ;;
  esac
done

# --- 5a. a process tree: the report lists every program image of it and the sums -------------
# process_tree (process_tree.c) forks, fork+execs, posix_spawns and exec-chains children that
# each fill and verify 64 MiB under a 16M limit, plus one that kills itself with SIGKILL.
process_tree_workload() {
  local out=$WORK/process_tree.out err=$WORK/process_tree.err start rc why
  start=$(now)
  timeout -k 10 "$TIMEOUT" "$FAULTLINE" run --limit 16M --json -- "$BIN/process_tree" top 64M \
    >"$out" 2>"$err"
  rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    fail process_tree "timed out after ${TIMEOUT}s (FAULTLINE_PRELOAD_TIMEOUT)" "$out" "$err"
    return
  fi
  # The images expected: (command, end, pager). Prints OK, or the problems found.
  why=$("$PYTHON" - "$out" "$rc" $((16 * MiB)) $((64 * MiB)) 2>&1 <<'PY'
import json, sys
path, rc, limit, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lines = open(path).read().splitlines()
problems = []
if rc != 0 or "ok process_tree" not in lines:
    problems.append(f"faultline run exited with status {rc} or the program did not verify")
try:
    report = json.loads(lines[-1])
except (ValueError, IndexError) as e:
    print(f"no JSON report on the last line of stdout ({e})")
    sys.exit()
want = [("process_tree", "exit", 1), ("process_tree", "exit", 0),  # top, forked child
        ("process_tree", "exec", 0), ("process_tree", "exec", 0),  # the two workers' forks
        ("tree-worker", "exit", 1), ("tree-worker", "exit", 1),
        ("tree-worker", "exit", 1),                                # posix_spawn: no fork image
        ("process_tree", "exec", 0), ("tree-chain", "exec", 1), ("tree-worker", "exit", 1),
        ("process_tree", "exec", 0), ("tree-victim", "lost", None)]
procs = report["processes"]
got = sorted((p.get("command"), p.get("end"), p.get("pager")) for p in procs)
expected = sorted(w[:2] + ((w[2] if w[2] is not None else 1),) for w in want)
if got != expected:
    problems.append(f"images {got}, expected {expected}")
if report["process_count"] != len(want) or report["processes_without_summary"] != 1:
    problems.append(f"process_count {report['process_count']}, "
                    f"processes_without_summary {report['processes_without_summary']}")
paging = [p for p in procs if p.get("pager") == 1 and p.get("end") != "lost" and
          p.get("command") in ("process_tree", "tree-worker")]
for p in paging:
    name = f"{p['command']} (pid {p['pid']})"
    if p["managed_bytes_peak"] < size:
        problems.append(f"{name}: managed_bytes_peak {p['managed_bytes_peak']} < {size}")
    if p["evictions"] == 0 or p["faults_swap_in"] == 0:
        problems.append(f"{name}: nothing evicted or swapped in")
    if p["resident_bytes_peak"] > limit + (1 << 20) and p["command"] == "tree-worker":
        problems.append(f"{name}: resident_bytes_peak {p['resident_bytes_peak']} > limit")
    if p["io_errors"] or p["checksum_errors"]:
        problems.append(f"{name}: I/O or checksum errors")
summed = [p for p in procs if p.get("end") in ("exit", "exec")]
for key in ("evictions", "faults_zero_fill", "faults_swap_in", "bytes_swapped_out",
            "managed_bytes_peak", "vm_hwm_bytes"):
    if sum(p.get(key, 0) for p in summed) != report.get(key):
        problems.append(f"{key} {report.get(key)} is not the sum over the processes")
print("; ".join(problems) or "OK")
PY
)
  if [ "$why" != OK ]; then
    [ -n "$why" ] || why="the report is not what was expected (the check raised an error)"
    fail process_tree "$why" "$out" "$err"
  else
    printf 'PASS process_tree (%s s, %d images listed and summed, every byte verified)\n' \
      "$(elapsed "$start")" "$(grep -o '"process_count":[0-9]*' "$out" | cut -d: -f2)"
  fi
}
if ! wanted process_tree; then
  :
elif [ ! -x "$BIN/process_tree" ]; then
  fail process_tree "$BIN/process_tree was not built"
elif [ -x "$PYTHON" ]; then
  process_tree_workload
else
  skip process_tree "$PYTHON not installed"
fi

# --- 5. GNU sort: a 24 MiB file, 3 times the 8M limit, with a sort buffer far above it ---------
sort_workload() {
  local dir=$WORK/sort in out_native out_fl start native_peak=unknown native_wall rc
  mkdir -p "$dir/tmp"
  in=$dir/input.txt out_native=$dir/native.txt out_fl=$dir/faultline.txt
  # 18 MiB of AES-CTR keystream (fixed password, no salt: the same bytes on every run), in
  # base64 lines of 100 characters: 250 k lines, 24 MiB. Sorting compares lines in random order,
  # so a file many times the limit is mostly swap traffic, for the kernel too (bench/README.md).
  if command -v openssl >/dev/null; then
    openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:faultline -in /dev/zero 2>/dev/null |
      head -c $((18 * MiB)) | base64 -w 100 >"$in"
  else
    awk 'BEGIN {srand(7); for (i = 0; i < 460000; i++) {
           s = sprintf("%08x%08x%08x", rand() * 4294967295, rand() * 4294967295, i)
           printf "%s%s%s%s\n", s, s, s, substr(s, 1, 4)}}' >"$in"
  fi
  start=$(now)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -o "$dir/native.time" -f %M sort -S 512M -T "$dir/tmp" -o "$out_native" "$in" &&
      native_peak=$(($(tail -n 1 "$dir/native.time") / 1024))
  else
    sort -S 512M -T "$dir/tmp" -o "$out_native" "$in"
  fi
  rc=$?
  native_wall=$(elapsed "$start")
  if [ $rc != 0 ]; then
    fail sort "sort without faultline failed (status $rc)"
    rm -rf "$dir"
    return
  fi
  echo "  sort: input $(($(stat -c %s "$in") / MiB)) MiB; native: ${native_wall} s, peak RSS ${native_peak} MiB"
  if [ "$native_peak" != unknown ] && [ "$native_peak" -lt 24 ]; then
    echo "  sort: note: the native peak (${native_peak} MiB) is not far above the 8M limit"
  fi
  local out=$WORK/sort.out err=$WORK/sort.err
  start=$(now)
  timeout -k 10 "$TIMEOUT" "$FAULTLINE" run --limit 8M --json -- \
    sort -S 512M -T "$dir/tmp" -o "$out_fl" "$in" >"$out" 2>"$err"
  rc=$?
  if [ $rc = 0 ] && ! cmp -s "$out_native" "$out_fl"; then
    EXTRA_WHY="the output differs from native sort's ($(cmp "$out_native" "$out_fl" 2>&1 | head -n 1))"
  fi
  check_summary sort 8M 64 "$rc" "$(elapsed "$start")" "$out" "$err"
  rm -rf "$dir"
}
wanted sort && sort_workload

# --- 6. redis: load ~100 MiB, BGSAVE twice (once while keys change), check the snapshots --------
REDIS_KEYS=100000
REDIS_CHANGED=40000
# RESP for `n` SET commands from key index `first`; values: "gen:index:" + 1000 bytes from a
# pool of 64 fixed pseudo-random strings (awk's rand with a fixed seed).
redis_commands() {  # redis_commands FIRST N GEN
  awk -v first="$1" -v n="$2" -v gen="$3" 'BEGIN {
    srand(12345)
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for (j = 0; j < 64; j++) {
      s = ""
      for (k = 0; k < 1000; k++) s = s substr(chars, int(rand() * 62) + 1, 1)
      pool[j] = s
    }
    for (i = first; i < first + n; i++) {
      key = "key:" i
      val = sprintf("%d:%d:", gen, i) pool[(i * 7 + gen) % 64]
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(val), val
    }
  }'
}

# wait_redis SOCKET PID SECONDS: until the server answers PONG (it answers LOADING while loading).
wait_redis() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ "$(redis-cli -s "$1" PING 2>/dev/null)" = PONG ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_bgsave SOCKET SECONDS: until no BGSAVE is in progress; then the last one must be ok.
wait_bgsave() {
  local i info
  for ((i = 0; i < $2 * 5; i++)); do
    info=$(redis-cli -s "$1" INFO persistence | tr -d '\r')
    if grep -q '^rdb_bgsave_in_progress:0' <<<"$info"; then
      grep -q '^rdb_last_bgsave_status:ok' <<<"$info" && return 0
      echo "BGSAVE failed: $(grep '^rdb_last_bgsave_status' <<<"$info")"
      return 1
    fi
    sleep 0.2
  done
  echo "BGSAVE still running after $2 s"
  return 1
}

# Starts a native (unmanaged) redis-server on DIR/FILE; sets NATIVE_PID.
start_native_redis() {  # start_native_redis DIR FILE SOCKET
  redis-server --port 0 --unixsocket "$3" --save '' --appendonly no --dir "$1" --dbfilename "$2" \
    --logfile "$1/native.log" --enable-debug-command local >/dev/null 2>&1 &
  NATIVE_PID=$!
  BACKGROUND_PIDS+=("$NATIVE_PID")
  wait_redis "$3" "$NATIVE_PID" 120
}
stop_redis() {  # stop_redis SOCKET PID
  redis-cli -s "$1" SHUTDOWN NOSAVE >/dev/null 2>&1
  wait "$2" 2>/dev/null
}

redis_workload() {
  local dir=$WORK/redis sock out err start fl_pid rc problem="" d1 d2 d3 dn reply native_sock
  mkdir -p "$dir"
  sock=$dir/r.sock native_sock=$dir/n.sock out=$WORK/redis.out err=$WORK/redis.err
  start=$(now)
  timeout -k 10 "$TIMEOUT" "$FAULTLINE" run --limit 32M --json -- redis-server --port 0 \
    --unixsocket "$sock" --save '' --appendonly no --dir "$dir" --dbfilename dump.rdb \
    --logfile "$dir/redis.log" --enable-debug-command local >"$out" 2>"$err" &
  fl_pid=$!
  BACKGROUND_PIDS+=("$fl_pid")
  rcli() { redis-cli -s "$sock" "$@" | tr -d '\r'; }
  # One block, left at the first problem: `problem` says what went wrong.
  while :; do
    wait_redis "$sock" "$fl_pid" 60 || { problem="redis-server did not come up under faultline"; break; }
    reply=$(redis_commands 0 $REDIS_KEYS 1 | redis-cli -s "$sock" --pipe 2>&1)
    grep -q "errors: 0, replies: $REDIS_KEYS" <<<"$reply" ||
      { problem="loading keys: $(tail -n 1 <<<"$reply")"; break; }
    [ "$(rcli DBSIZE)" = $REDIS_KEYS ] || { problem="DBSIZE $(rcli DBSIZE), expected $REDIS_KEYS"; break; }
    echo "  redis: loaded $REDIS_KEYS keys, used_memory $(rcli INFO memory | sed -n 's/^used_memory_human://p')"
    d1=$(rcli DEBUG DIGEST)
    if ! [[ $d1 =~ ^[0-9a-f]{40}$ ]] || [ "$d1" = 0000000000000000000000000000000000000000 ]; then
      problem="DEBUG DIGEST answered '$d1'"
      break
    fi

    # Snapshot 1, nothing changing: the digest stays; the file checks and loads to the digest.
    reply=$(rcli BGSAVE)
    [[ $reply == *"Background saving started"* ]] || { problem="BGSAVE: $reply"; break; }
    reply=$(wait_bgsave "$sock" "$TIMEOUT") || { problem="first BGSAVE: $reply"; break; }
    d2=$(rcli DEBUG DIGEST)
    [ "$d1" = "$d2" ] || { problem="DEBUG DIGEST changed across BGSAVE: $d1 -> $d2"; break; }
    redis-check-rdb "$dir/dump.rdb" >"$dir/check1.log" 2>&1 ||
      { problem="redis-check-rdb rejects the first dump: $(tail -n 1 "$dir/check1.log")"; break; }
    mv "$dir/dump.rdb" "$dir/dump1.rdb"
    start_native_redis "$dir" dump1.rdb "$native_sock" || { problem="native redis could not load the first dump"; break; }
    dn=$(redis-cli -s "$native_sock" DEBUG DIGEST | tr -d '\r')
    stop_redis "$native_sock" "$NATIVE_PID"
    [ "$dn" = "$d1" ] || { problem="the first dump loads to digest $dn, not $d1"; break; }

    # Snapshot 2 while $REDIS_CHANGED keys are rewritten: the parent's writes copy pages the
    # child is still reading; the dump must be the state at the fork, the server the new state.
    reply=$(rcli BGSAVE)
    [[ $reply == *"Background saving started"* ]] || { problem="second BGSAVE: $reply"; break; }
    reply=$(redis_commands 0 $REDIS_CHANGED 2 | redis-cli -s "$sock" --pipe 2>&1)
    grep -q "errors: 0, replies: $REDIS_CHANGED" <<<"$reply" ||
      { problem="rewriting keys: $(tail -n 1 <<<"$reply")"; break; }
    [ "$(rcli INFO persistence | sed -n 's/^rdb_bgsave_in_progress://p')" = 1 ] &&
      echo "  redis: $REDIS_CHANGED keys rewritten while the second BGSAVE ran"
    reply=$(wait_bgsave "$sock" "$TIMEOUT") || { problem="second BGSAVE: $reply"; break; }
    d3=$(rcli DEBUG DIGEST)
    [ "$d3" != "$d1" ] || { problem="DEBUG DIGEST unchanged after rewriting keys"; break; }
    redis-check-rdb "$dir/dump.rdb" >"$dir/check2.log" 2>&1 ||
      { problem="redis-check-rdb rejects the second dump: $(tail -n 1 "$dir/check2.log")"; break; }
    start_native_redis "$dir" dump.rdb "$native_sock" || { problem="native redis could not load the second dump"; break; }
    dn=$(redis-cli -s "$native_sock" DEBUG DIGEST | tr -d '\r')
    if [ "$dn" != "$d1" ]; then
      stop_redis "$native_sock" "$NATIVE_PID"
      problem="the second dump loads to digest $dn, not $d1 (the state at the fork)"
      break
    fi
    redis_commands 0 $REDIS_CHANGED 2 | redis-cli -s "$native_sock" --pipe >/dev/null 2>&1
    dn=$(redis-cli -s "$native_sock" DEBUG DIGEST | tr -d '\r')
    stop_redis "$native_sock" "$NATIVE_PID"
    [ "$dn" = "$d3" ] || { problem="after the same rewrites a native redis has digest $dn, the managed one $d3"; break; }
    break
  done
  redis-cli -s "$sock" SHUTDOWN NOSAVE >/dev/null 2>&1
  wait "$fl_pid"
  rc=$?
  if [ -n "$problem" ]; then
    fail redis "$problem" "$dir/redis.log" "$out" "$err"
    return
  fi
  # Two BGSAVEs: at least two forks.
  check_summary redis 32M 80 "$rc" "$(elapsed "$start")" "$out" "$err" forks 2
}
if ! wanted redis; then
  :
elif command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
  command -v redis-check-rdb >/dev/null; then
  redis_workload
else
  skip redis "redis-server, redis-cli or redis-check-rdb not installed (apt-get install redis-server redis-tools)"
fi

exit $FAILED
