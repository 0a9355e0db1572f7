#!/bin/sh
# Builds the harnesses, then runs each for SECONDS (default 60), one after another, starting
# from the committed seeds (fuzz/corpus/NAME, read only) plus a work corpus kept in OUTDIR.
# Prints one line per harness — execs, coverage (edges, features), corpus size, crashes — and
# exits non-zero if any harness crashed (the input is saved as OUTDIR/artifacts/NAME-crash-*;
# copy it into fuzz/corpus/NAME as a regression seed once fixed).
#
#   fuzz/run.sh [SECONDS] [HARNESS...]      (OUTDIR: $FUZZ_OUT, else build/fuzz)
#
# Extra libFuzzer flags can be passed in $FUZZ_FLAGS (e.g. FUZZ_FLAGS=-seed=1).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${FUZZ_OUT:-$root/build/fuzz}
seconds=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-fuzz_delta_deltasync fuzz_delta_rdiff fuzz_signature fuzz_protocol}

sh "$here/build.sh" "$out" >/dev/null
status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz/run.sh: build failed (status $status)" >&2
  exit "$status"
fi

failed=0
mkdir -p "$out/artifacts"
for name in $harnesses; do
  work="$out/work/$name"
  log="$out/$name.log"
  mkdir -p "$work"
  dict="$here/dict/${name#fuzz_}.dict"
  case "$name" in fuzz_delta_*) dict="$here/dict/delta.dict" ;; esac
  # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
  "$out/$name" -max_total_time="$seconds" -max_len=65536 -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" -dict="$dict" ${FUZZ_FLAGS:-} \
    "$work" "$here/corpus/$name" >"$log" 2>&1
  rc=$?
  execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -n 1 | grep -oE '[0-9]+')
  last=$(grep -aE '^#[0-9]+' "$log" | tail -n 1)
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
  ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
  corp=$(echo "$last" | grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' | cut -d' ' -f2)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    failed=1
  fi
  echo "$name: execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} crashes=$crashes seconds=$seconds"
  if [ "$rc" -ne 0 ]; then
    # The finding itself: sanitizer summary, our check's message, the saved input.
    grep -aE 'SUMMARY:|ERROR: |fuzz check failed|runtime error|Test unit written|deadly signal' "$log" | head -n 8 | sed 's/^/  /'
    echo "  (exit $rc; full log: $log)"
  fi
done
exit "$failed"
