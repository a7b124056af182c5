#!/usr/bin/env bash
# Runs libFuzzer targets built by the fuzz preset (build/fuzz/fuzz/fuzz_TARGET), each for SECONDS,
# one after another; docs/fuzzing.md. `make fuzz` calls it after building them.
#
# Usage: scripts/run-fuzzers.sh SECONDS TARGET...
#
# Each target starts from its committed seeds (fuzz/corpus/TARGET, read only) and the corpus the
# earlier runs grew (build/fuzz/corpus/TARGET, where new inputs go). A crash, a sanitizer report,
# a leak, an input over the memory limit or one that runs past the time limit is written to
# fuzz/regressions/TARGET/ (crash-*, leak-*, oom-*, timeout-*): commit it with the fix, and
# `make test` replays it from then on. Exits 1 if any target found something, after running all.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 SECONDS TARGET..." >&2
  exit 2
fi
seconds=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# halt_on_error: UBSan findings stop the run like ASan's; the suppressions are the asan preset's.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$root/tests/ubsan.supp"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp"
export GOMP_SPINCOUNT=0  # as for the tests (server/main.cc)

failed=()
for target in "$@"; do
  binary="build/fuzz/fuzz/fuzz_$target"
  if [ ! -x "$binary" ]; then
    echo "run-fuzzers: $binary not built (make fuzz builds it)" >&2
    exit 2
  fi
  mkdir -p "build/fuzz/corpus/$target" "fuzz/regressions/$target"
  log="build/fuzz/fuzz-$target.log"
  echo "run-fuzzers: $target for ${seconds}s (log: $log)"
  # -timeout: an input running 30 s is a hang; -rss_limit_mb: the Kubernetes pod's 4 GiB.
  "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="fuzz/regressions/$target/" \
      "build/fuzz/corpus/$target" "fuzz/corpus/$target" >"$log" 2>&1
  status=$?
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$log" |
      sed "s/^/  /"
  if [ $status -ne 0 ]; then
    echo "run-fuzzers: $target FOUND A PROBLEM (exit $status); the input is in fuzz/regressions/$target/:"
    grep -E "ERROR: |SUMMARY: |runtime error:|Test unit written" "$log" | head -5 | sed "s/^/  /"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "run-fuzzers: findings in: ${failed[*]}"
  exit 1
fi
echo "run-fuzzers: no findings in $# targets"
