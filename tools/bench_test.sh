#!/usr/bin/env bash
# `faultline bench` end to end on tiny sizes: its command line, and a --quick --json run whose
# output must parse and hold every expected row, each either measured or listed as skipped with a
# reason. No timing is checked. As root with a cgroup v1 memory controller the kernel swap rows
# must be measured, and nothing the bench created may be left behind.
# Usage: bench_test.sh PATH/TO/faultline
set -u

FAULTLINE=$(realpath "${1:?usage: bench_test.sh PATH/TO/faultline}") || exit 1
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 is needed to read the JSON output" >&2
  exit 77
fi
# A disk file system: faultline refuses tmpfs for swap.
WORK=$(mktemp -d /var/tmp/faultline-bench-test.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
SWAP_DIR=$WORK/swap  # the bench's files only, to see that none is left
mkdir "$SWAP_DIR" || exit 1

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$FAULTLINE" bench --help >"$WORK/help" 2>&1 || fail "bench --help: exit status $?"
grep -q -- "--mode LIST" "$WORK/help" || fail "bench --help lacks --mode"
"$FAULTLINE" help bench | cmp -s - "$WORK/help" || fail "'help bench' differs from 'bench --help'"
"$FAULTLINE" --help | grep -q "^  bench " || fail "the tool's usage lacks the bench verb"
for bad in "--bogus" "--mode nope" "--threads 0" "--limit 1X" "--limit 64M --region 32M" \
  "--samples" "--swap-dir /nonexistent"; do
  # shellcheck disable=SC2086  # word splitting intended: one case, several arguments
  "$FAULTLINE" bench $bad >/dev/null 2>"$WORK/err"
  status=$?
  [ "$status" -eq 2 ] || fail "bench $bad: exit status $status, expected 2 (usage)"
  grep -q "faultline bench --help" "$WORK/err" || fail "bench $bad: no pointer to --help"
done

expect_kernel=0
if [ "$(id -u)" -eq 0 ] && [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ] &&
  command -v mkswap >/dev/null; then
  expect_kernel=1
fi

# In the background only to learn its pid, after which the bench names what it creates.
"$FAULTLINE" bench --quick --json --samples 256 --limit 8M --threads 2 --swap-dir "$SWAP_DIR" \
  --plot "$WORK/cdf.png" >"$WORK/out.json" 2>"$WORK/progress" &
bench_pid=$!
wait "$bench_pid"
status=$?
if [ "$status" -ne 0 ]; then
  fail "bench --quick --json: exit status $status"
  sed 's/^/  stderr: /' "$WORK/progress" >&2
fi

python3 - "$WORK/out.json" "$WORK/cdf.png" "$expect_kernel" <<'PY' || fail "the JSON output"
import json, os, sys

path, plot, expect_kernel = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
tables = {t["key"]: t for t in json.load(open(path))["tables"]}
problems = []
for key in ["run", "latency", "first_touch", "out_of_core", "targets", "skipped"]:
    if key not in tables:
        problems.append(f"no table '{key}'")
if problems:
    sys.exit("\n".join(problems))
skipped = {row["what"]: row["reason"] for row in tables["skipped"]["rows"]}
for what, reason in skipped.items():
    if not reason:
        problems.append(f"skipped '{what}' without a reason")

def skipped_as(prefix):
    return any(what.startswith(prefix) for what in skipped)

latency = {(r["mode"], r["threads"]): r for r in tables["latency"]["rows"]}
for mode in ["kernel-first-touch", "kernel-swap-in", "faultline-zero-fill",
             "faultline-self-paging", "faultline-swap-in", "faultline-wp-copy", "device-read"]:
    for threads in ([1] if mode == "device-read" else [1, 2]):
        row = latency.get((mode, threads))
        if row is None:
            if not skipped_as(mode + " "):
                problems.append(f"latency row {mode} x{threads}: neither measured nor skipped")
            elif mode.startswith("kernel-swap") and expect_kernel:
                problems.append(f"latency row {mode} skipped as root: {skipped}")
            continue
        for column in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "faults_per_s"]:
            if not isinstance(row[column], (int, float)):
                problems.append(f"latency row {mode} x{threads}: {column} = {row[column]!r}")
        if row["samples"] != 256:
            problems.append(f"latency row {mode} x{threads}: {row['samples']} samples, not 256")
first_touch = [(r["side"], r["fault_around_pages"]) for r in tables["first_touch"]["rows"]]
for side, around in [("kernel 4 KiB", None)] + [("faultline", n) for n in [1, 16, 64, 256, 512]]:
    if (side, around) not in first_touch and not skipped_as("first-touch"):
        problems.append(f"first-touch row {side} {around}: neither measured nor skipped")

ooc = {(r["workload"], r["side"]): r for r in tables["out_of_core"]["rows"]}
for workload in ["sequential", "random", "zipf", "loop"]:
    for side, skip_name in [("faultline", "faultline"), ("kernel swap", "kernel swap")]:
        row = ooc.get((workload, side))
        if row is None:
            if not skipped_as(f"{workload}: {skip_name}"):
                problems.append(f"out-of-core row {workload}/{side}: neither measured nor skipped")
            elif side == "kernel swap" and expect_kernel:
                problems.append(f"out-of-core row {workload}/{side} skipped as root")
        elif row["verify_errors"] != 0:
            problems.append(f"out-of-core row {workload}/{side}: {row['verify_errors']} errors")

verdicts = [r["verdict"] for r in tables["targets"]["rows"]]
if len(verdicts) != 9 or any(v not in ("met", "missed", "not measured") for v in verdicts):
    problems.append(f"targets: {verdicts}")

if not skipped_as("plot") and not (os.path.exists(plot) and
                                   open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"):
    problems.append("no PNG plot, and no skipped row saying why")
if problems:
    sys.exit("\n".join(problems))
PY

# Nothing of this bench's left behind: its swap area, swap file and cgroup carry its pid. (Other
# processes on the machine may have their own at the same time.)
name="faultline-bench-$bench_pid"
! grep -q "$name" /proc/swaps || fail "swap area $name is still active"
leftovers=$(find "$SWAP_DIR" -mindepth 1)
[ -z "$leftovers" ] || fail "left behind in the swap directory: $leftovers"
if [ -d /sys/fs/cgroup/memory ]; then
  cgroups=$(find /sys/fs/cgroup/memory -maxdepth 4 -type d -name "$name" 2>/dev/null)
  [ -z "$cgroups" ] || fail "cgroup left behind: $cgroups"
fi

echo "bench_test: $failures failure(s)"
[ "$failures" -eq 0 ]
