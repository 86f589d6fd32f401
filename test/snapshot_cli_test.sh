#!/usr/bin/env bash
# `faultline snapshot` on files written by make_snapshot_file (whose page kinds follow the index:
# index % 7 == 3 lost, else index % 5 == 1 zero, else data), then truncated or damaged here.
# Usage: snapshot_cli_test.sh PATH/TO/faultline PATH/TO/make_snapshot_file
set -u

FAULTLINE=$(realpath "${1:?usage: snapshot_cli_test.sh FAULTLINE MAKE_SNAPSHOT_FILE}") || exit 1
MAKE_SNAPSHOT=$(realpath "${2:?usage: snapshot_cli_test.sh FAULTLINE MAKE_SNAPSHOT_FILE}") || exit 1
WORK=$(realpath "$(mktemp -d)")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

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

expect_json() {  # expect_json WHAT: ./out is one JSON document
  if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; json.load(sys.stdin)' <out || fail "$1: output is not JSON"
  fi
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
  local byte
  byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# 40 pages: 6 lost (3, 10, 17, 24, 31, 38), 7 zero (1, 6, 11, 16, 21, 26, 36), 27 data.
"$MAKE_SNAPSHOT" snap 40 || { echo "FAIL: make_snapshot_file" >&2; exit 1; }
FILE_BYTES=$((4096 + 27 * 4096 + 40 * 8 + 32))

# --- usage ---
for help in "snapshot --help" "snapshot -h" "help snapshot" "snapshot info --help"; do
  fl $help
  expect_status 0 "$help"
  expect_in out '^usage: faultline snapshot info FILE' "$help shows the usage"
done
fl --help
expect_in out '^  snapshot ' "faultline --help lists snapshot"
fl snapshot
expect_status 2 "no command"
expect_in err '^faultline snapshot: a command is required' "no command"
fl snapshot frobnicate snap
expect_status 2 "unknown command"
expect_in err "^faultline snapshot: unknown command 'frobnicate'" "unknown command"
expect_in err "faultline snapshot --help" "unknown command hints at --help"
fl snapshot info
expect_status 2 "no file"
expect_in err '^faultline snapshot info: a snapshot FILE is required' "no file"
fl snapshot info snap snap
expect_status 2 "two files"
fl snapshot pages snap --json
expect_status 2 "--json for pages"
expect_in err '^faultline snapshot pages: unknown option --json' "--json for pages"
fl snapshot info snap --from 3
expect_status 2 "--from for info"
fl snapshot pages snap --from
expect_status 2 "--from without a value"
expect_in err '^faultline snapshot pages: --from needs a value' "--from without a value"
fl snapshot pages snap --count=-1
expect_status 2 "negative --count"
expect_in err "^faultline snapshot pages: --count: '-1' is not a whole number" "negative --count"
fl snapshot pages snap --from 41
expect_status 2 "--from past the end"
expect_in err '^faultline snapshot pages: --from 41: the snapshot has 40 pages' "--from past the end"

# --- a good file ---
fl snapshot info snap
expect_status 0 "info"
expect_in out '^page size: +4096 bytes$' "info: page size"
expect_in out '^pages: +40 \(163840 bytes of memory\)$' "info: pages"
expect_in out '^  data: +27 \(110592 bytes stored\)$' "info: data pages"
expect_in out '^  zero: +7$' "info: zero pages"
expect_in out '^  lost: +6$' "info: lost pages"
expect_in out '^source address: +0x7f0000000000$' "info: source address"
expect_in out "^file size: +$FILE_BYTES bytes\$" "info: file size"
fl snapshot info --json snap
expect_status 0 "info --json"
expect_json "info --json"
expect_in out '"pages":40,"data_pages":27,"zero_pages":7,"lost_pages":6,' "info --json: counts"
expect_in out "\"file_bytes\":$FILE_BYTES}" "info --json: file size"

fl snapshot verify snap
expect_status 0 "verify"
expect_in out '^snap: all 27 data pages match their checksums; 6 pages were lost' "verify"
fl snapshot verify snap --json
expect_status 0 "verify --json"
expect_json "verify --json"
expect_in out '"bad_pages":\[\],"ok":true}$' "verify --json"

fl snapshot pages snap
expect_status 0 "pages"
[ "$(wc -l <out)" -eq 41 ] || fail "pages: not one line per page and a heading"
expect_in out '^ +0  data  0x[0-9a-f]{8}  4096$' "pages: page 0"
expect_in out '^ +1  zero  -  +-$' "pages: page 1"
expect_in out '^ +3  lost  -  +-$' "pages: page 3"
expect_in out '^ +39  data  0x[0-9a-f]{8}  [0-9]+$' "pages: page 39"
fl snapshot pages snap --from 38 --count 5
expect_status 0 "pages --from --count"
[ "$(wc -l <out)" -eq 3 ] || fail "pages --from 38 --count 5: not pages 38 and 39 alone"
fl snapshot pages snap --from=40
expect_status 0 "pages --from the end"
[ "$(wc -l <out)" -eq 1 ] || fail "pages --from 40: lists pages"

# --- a damaged data page: the file opens, verify names the page ---
fl snapshot pages snap --from 12 --count 1
offset=$(awk '$1 == 12 && $2 == "data" { print $4 }' out)
[ -n "$offset" ] || fail "pages: no data offset for page 12"
cp snap damaged
flip_byte damaged $((offset + 100))
fl snapshot info damaged
expect_status 0 "info on a damaged data page"
fl snapshot verify damaged
expect_status 1 "verify of a damaged data page"
expect_in out '^page 12: checksum mismatch: expected 0x[0-9a-f]{8}, actual 0x[0-9a-f]{8}$' "verify names page 12"
expect_in out '^damaged: 1 of 27 data pages are bad' "verify counts the bad page"
[ "$(grep -c '^page ' out)" -eq 1 ] || fail "verify: pages other than 12 reported bad"
fl snapshot verify --json damaged
expect_status 1 "verify --json of a damaged data page"
expect_json "verify --json of a damaged data page"
expect_in out '"bad_pages":\[\{"index":12,"expected_checksum":[0-9]+,"actual_checksum":[0-9]+\}\],"ok":false}$' \
  "verify --json names page 12"

# --- files that do not open: one line naming the file and the problem, exit 1 ---
cp snap header-damaged
flip_byte header-damaged 30
fl snapshot verify header-damaged
expect_status 1 "damaged header"
expect_in err '^faultline snapshot verify: header-damaged: the header is corrupt' "damaged header"
cp snap table-damaged
flip_byte table-damaged $((4096 + 27 * 4096 + 5 * 8))
fl snapshot info table-damaged
expect_status 1 "damaged page table"
expect_in err 'table-damaged: the page table is corrupt' "damaged page table"
for cut in 100 5000 $((4096 + 27 * 4096 + 8)) $((FILE_BYTES - 1)); do
  head -c "$cut" snap >cut
  fl snapshot info cut
  expect_status 1 "truncated at $cut"
  expect_in err "^faultline snapshot info: cut: truncated in the" "truncated at $cut"
  [ "$(wc -l <err)" -eq 1 ] || fail "truncated at $cut: more than one line on stderr"
done
echo "not a snapshot" >text
fl snapshot info text
expect_status 1 "not a snapshot"
expect_in err 'text: not a faultline snapshot file' "not a snapshot"
fl snapshot info missing
expect_status 1 "missing file"
expect_in err '^faultline snapshot info: missing: No such file or directory$' "missing file"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
