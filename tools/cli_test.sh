#!/usr/bin/env bash
# The command line of `faultline run` without faultline's preload library: the C library stands in
# for it (preloading it changes nothing), and the commands write a statistics file of their own
# where the library would. Usage: cli_test.sh PATH/TO/faultline
set -u

FAULTLINE=$(realpath "${1:?usage: cli_test.sh PATH/TO/faultline}") || exit 1
WORK=$(realpath "$(mktemp -d)")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

# A harmless library to preload: the C library faultline itself uses.
FAKE_LIB=$(ldd "$FAULTLINE" | awk '$1 ~ /^libc\.so/ { print $3 }')
if [ ! -r "$FAKE_LIB" ]; then
  echo "SKIP: cannot find the C library to stand in for the preload library" >&2
  exit 77
fi
FAKE_LIB=$(realpath "$FAKE_LIB")
export FAULTLINE_PRELOAD_LIB=$FAKE_LIB
export FAULTLINE_JEMALLOC=  # no jemalloc unless a test asks for it
export TMPDIR=$WORK
unset FAULTLINE_LIMIT FAULTLINE_SWAP_DIR FAULTLINE_MIN_REGION FAULTLINE_STATS FAULTLINE_LOG LD_PRELOAD
# In a sanitizer build faultline itself runs under a preexisting LD_PRELOAD in one test.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

failures=0
fail() {
  echo "FAIL: $*" >&2
  echo "  exit status: $status" >&2
  sed 's/^/  stdout: /' out >&2
  sed 's/^/  stderr: /' err >&2
  failures=$((failures + 1))
}

# fl ARGS...: runs faultline; sets $status, leaves its output in ./out and ./err.
fl() {
  "$FAULTLINE" "$@" >out 2>err
  status=$?
}

expect_status() {  # expect_status WANT WHAT
  [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1"
}

expect_in() {  # expect_in FILE PATTERN WHAT (grep -E)
  grep -Eq -- "$2" "$1" || fail "$3: $1 lacks /$2/"
}

# A command that writes a statistics file as the preload library would (one program image that
# ended by exit), then exits with $1.
STATS='{"pid":42,"ppid":1,"image":0,"command":"fake","end":"exit","pager":1,"start_ticks":7,
 "start_ns":1000,"wall_us":2500000,"vm_hwm_bytes":150994944,"memory_limit":134217728,"page_size":4096,"managed_bytes_peak":536870912,
 "resident_bytes_peak":134112461,"managed_bytes":0,"resident_bytes":0,"faults_zero_fill":131072,
 "faults_swap_in":98304,"faults_write_protect":1200,"faults_in_flight_rescue":3,
 "pages_fault_around":0,"pages_readahead":0,"evictions":98304,"bytes_swapped_in":402653184,
 "bytes_swapped_out":402653184,"fault_latency_p50_ns":2100,"fault_latency_p99_ns":45000,
 "fault_latency_max_ns":90000,"io_errors":0,"checksum_errors":0,"limit_overshoot_pages":0,
 "regions_adopted":2,"forks":0,"a_future_key":"text","another":-1.5e3}'
printf '%s' "$STATS" >stats.json
writer() { echo "cat '$WORK/stats.json' >\"\$FAULTLINE_STATS/42.0.json\"; exit $1"; }

# --- usage ---
fl --help
expect_status 0 "--help"
expect_in out '^  run ' "--help lists run"
fl help
expect_status 0 "help"
expect_in out '^  run ' "help lists run"
fl
expect_status 2 "no arguments"
expect_in err '^usage: faultline' "no arguments prints the usage"
for help in "run --help" "run -h" "help run"; do
  fl $help
  expect_status 0 "$help"
  expect_in out '--limit SIZE' "$help shows run's options"
done
fl frobnicate
expect_status 2 "unknown verb"
expect_in err "^faultline: unknown command 'frobnicate'" "unknown verb"
expect_in err "faultline --help" "unknown verb hints at --help"
fl run --limit 64M --frobnicate -- true
expect_status 2 "unknown option"
expect_in err '^faultline run: unknown option --frobnicate$' "unknown option"
expect_in err "faultline run --help" "unknown option hints at --help"
fl run --limit 64M
expect_status 2 "no command"
fl run --limit
expect_status 2 "--limit without a value"

# --- invalid values: one line naming the option, nothing run ---
for bad in "--limit 12Q" "--limit=0" "--limit 101%" "--min-region 5%" "--min-region=x" \
  "--swap-dir $WORK/none" "--swap-dir $WORK/out" "--log loud" "--stats $WORK/none/s.json"; do
  option=${bad%%[ =]*}
  fl run --limit 64M $bad -- touch ran
  expect_status 2 "$bad"
  expect_in err "^faultline run: $option" "$bad names the option"
  [ "$(wc -l <err)" -eq 1 ] || fail "$bad: more than one line on stderr"
  [ ! -e ran ] || fail "$bad: the command ran"
  rm -f ran
done
fl run -- true
expect_status 2 "no limit"
expect_in err 'limit is required' "no limit"
FAULTLINE_LIMIT=lots fl run -- true
expect_status 2 "invalid inherited FAULTLINE_LIMIT"
expect_in err 'FAULTLINE_LIMIT=lots' "invalid inherited FAULTLINE_LIMIT"
FAULTLINE_PRELOAD_LIB=$WORK/none.so fl run --limit 64M -- true
expect_status 2 "missing preload library"
expect_in err "FAULTLINE_PRELOAD_LIB=$WORK/none.so" "missing preload library"

# --- the command's environment ---
mkdir swap
LD_PRELOAD=$FAKE_LIB fl run --limit=25% --swap-dir swap --min-region 2M --log info -- \
  sh -c 'env >env.txt'
expect_status 0 "environment"
expect_in env.txt '^FAULTLINE_LIMIT=25%$' "FAULTLINE_LIMIT"
expect_in env.txt "^FAULTLINE_SWAP_DIR=$WORK/swap\$" "FAULTLINE_SWAP_DIR made absolute"
expect_in env.txt '^FAULTLINE_MIN_REGION=2M$' "FAULTLINE_MIN_REGION"
expect_in env.txt '^FAULTLINE_LOG=info$' "FAULTLINE_LOG"
expect_in env.txt "^FAULTLINE_STATS=$WORK/faultline-stats\." "FAULTLINE_STATS under TMPDIR"
expect_in env.txt "^LD_PRELOAD=$FAKE_LIB:$FAKE_LIB\$" "LD_PRELOAD before the inherited one"
stats_path=$(sed -n 's/^FAULTLINE_STATS=//p' env.txt)
[ -n "$stats_path" ] && [ ! -e "$stats_path" ] || fail "temporary statistics directory not removed"
FAULTLINE_LIMIT=32M FAULTLINE_JEMALLOC=$FAKE_LIB fl run sh -c 'env >env.txt'
expect_status 0 "inherited limit"
expect_in env.txt '^FAULTLINE_LIMIT=32M$' "inherited FAULTLINE_LIMIT kept"
expect_in env.txt "^LD_PRELOAD=$FAKE_LIB:$FAKE_LIB\$" "FAULTLINE_JEMALLOC preloaded second"
FAULTLINE_JEMALLOC=$WORK/none.so fl run --limit 64M -- sh -c 'env >env.txt'
expect_status 0 "missing jemalloc"
expect_in err 'warning: .*libjemalloc2' "missing jemalloc warns"
expect_in env.txt "^LD_PRELOAD=$FAKE_LIB\$" "missing jemalloc is left out"

# --- exit status ---
fl run --limit 64M -- sh -c 'exit 7'
expect_status 7 "exit status"
expect_in err '^faultline: no statistics were written' "no statistics"
fl run --limit=64M sh -c 'kill -9 $$'
expect_status 137 "killed by SIGKILL"
expect_in err 'no statistics were written.*exit status 137 \(killed by SIGKILL\)' "SIGKILL report"
fl run --limit 64M -- no-such-command-here
expect_status 127 "command not found"
expect_in err '^faultline run: no-such-command-here: command not found$' "command not found"
printf 'true\n' >not-executable
fl run --limit 64M -- ./not-executable
expect_status 126 "not executable"
expect_in err 'Permission denied' "not executable"

# --- SIGTERM reaches the command ---
"$FAULTLINE" run --limit 64M -- sh -c 'trap "exit 5" TERM; touch ready; while :; do sleep 0.1; done' \
  >out 2>err &
pid=$!
for _ in $(seq 100); do [ -e ready ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
status=$?
expect_status 5 "SIGTERM forwarded"

# --- the report ---
fl run --limit 128M -- sh -c "$(writer 3)"
expect_status 3 "report"
expect_in err '^faultline: limit 128 MiB, managed 512 MiB at peak, resident peak 127\.9 MiB \(process peak RSS [0-9.]+ [KM]iB\)$' "report: memory"
expect_in err '^faults: +131072 zero-fill, 98304 swap-in, 1200 write-protect, 3 in-flight rescue; latency p50 2\.1 us, p99 45\.0 us$' "report: faults"
expect_in err '^swap: +384 MiB written, 384 MiB read; 0 I/O errors, 0 checksum errors$' "report: swap"
expect_in err '^run: +wall [0-9]+\.[0-9]{2} s, exit status 3$' "report: run"

fl run --limit 128M --json -- sh -c "$(writer 0)"
expect_status 0 "--json"
expect_in out '"faults_swap_in":98304' "--json keeps the statistics"
expect_in out '"exit_status":0,"peak_rss_bytes":[0-9]+,"wall_seconds":[0-9.]+}$' "--json adds the run"
if command -v python3 >/dev/null; then
  python3 -c 'import json, sys; json.load(sys.stdin)' <out || fail "--json output is not JSON"
fi
[ ! -s err ] || fail "--json: stderr not empty"

fl run --limit 64M --stats kept.json -- sh -c "cd /; $(writer 0)"
expect_status 0 "--stats"
expect_in kept.json '^\{"processes":\[\{.*"faults_swap_in":98304.*"wall_seconds":[0-9.]+}$' "--stats keeps the JSON report"

fl run --limit 64M -- sh -c 'printf "{\"pid\":1," >"$FAULTLINE_STATS/1.0.json"; exit 4'
expect_status 4 "malformed statistics"
expect_in err '^faultline: the statistics are malformed \(1\.0\.json: .*\); wall .* exit status 4$' "malformed"

fl run --limit 64M --json -- sh -c 'kill -9 $$'
expect_status 137 "--json without statistics"
expect_in out '^\{"processes":\[\],"process_count":0,"processes_without_summary":0,"exit_status":137,"peak_rss_bytes":[0-9]+,"wall_seconds":[0-9.]+}$' "--json without statistics"

# --- a process tree: every image's file is reported, summed, and removed afterwards ---
# Three images: the one above, an exec'd one of another pid, and one that never wrote its summary
# (its file still says "running" and no process has its pid: killed or crashed).
tree_writer() {
  cat <<EOS
cat '$WORK/stats.json' >"\$FAULTLINE_STATS/42.0.json"
sed 's/"pid":42,/"pid":43,/; s/"command":"fake"/"command":"child"/; s/"end":"exit"/"end":"exec"/; s/"start_ns":1000/"start_ns":2000/' '$WORK/stats.json' >"\$FAULTLINE_STATS/43.0.json"
printf '{"pid":4194303,"ppid":43,"image":0,"command":"victim","end":"running","start_ticks":1,"start_ns":3000}' >"\$FAULTLINE_STATS/4194303.0.json"
printf 'half' >"\$FAULTLINE_STATS/.43.1.tmp"
echo "\$FAULTLINE_STATS" >'$WORK/tree-dir'
exit 0
EOS
}
fl run --limit 128M -- sh -c "$(tree_writer)"
expect_status 0 "tree"
expect_in err '^faultline: limit 128 MiB per process; 3 processes: managed 1 GiB at peak, resident peak 255\.8 MiB \(sums of each process.s peak\); peak RSS [0-9.]+ [KM]iB \(largest process\), 288 MiB \(sum of each process.s\)$' "tree: sums"
expect_in err '^faults: +262144 zero-fill, 196608 swap-in, 2400 write-protect, 6 in-flight rescue' "tree: faults summed"
expect_in err '^processes: 3, 1 without statistics$' "tree: process count"
expect_in err '^ +42  fake +512 MiB +127\.9 MiB +230579 +98304 +98304 +144 MiB +2\.50 s  exit$' "tree: line of the first process"
expect_in err '^ +43  child .* exec$' "tree: line of the exec'd image"
expect_in err '^ +4194303  victim +no statistics: ended without exit or exec \(killed by a signal, or crashed\)$' "tree: a lost image is reported"
[ ! -e "$(cat tree-dir)" ] || fail "tree: the statistics directory is left behind"
sed 's/"limit_overshoot_pages":0/"limit_overshoot_pages":135/' stats.json >overshoot.json
fl run --limit 128M -- sh -c "cat '$WORK/overshoot.json' >\"\$FAULTLINE_STATS/42.0.json\""
expect_in err '^limit: +exceeded by up to 135 pages \(540 KiB\) when nothing could be evicted' "overshoot reported"
fl run --limit 128M --json -- sh -c "$(tree_writer)"
expect_status 0 "tree --json"
expect_in out '"process_count":3,"processes_without_summary":1,' "tree --json: counts"
expect_in out '"faults_zero_fill":262144,' "tree --json: sums"
expect_in out '\{[^}]*"pid":4194303[^}]*"end":"lost"' "tree --json: the lost image"
if command -v python3 >/dev/null; then
  python3 -c '
import json, sys
report = json.load(sys.stdin)
assert [p["pid"] for p in report["processes"]] == [42, 43, 4194303], report["processes"]
assert sum(p.get("evictions", 0) for p in report["processes"]) == report["evictions"]
' <out || fail "tree --json: not the JSON expected"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
