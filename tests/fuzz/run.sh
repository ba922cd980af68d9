#!/usr/bin/env bash
# tests/fuzz/run.sh BIN_DIR SECONDS [TARGET...]: runs each libFuzzer target for SECONDS with its
# seed corpus tests/fuzz/corpus/<target> (read-only: new inputs go to a temp dir, so the
# repository is never modified), FUZZ_JOBS targets at a time (default: the number of CPUs; each
# fuzzer is one process on one core). Prints executions per target and writes them to
# BIN_DIR/../fuzz-stats.txt. A crash, leak, timeout or sanitizer report fails the run; the
# input is kept in BIN_DIR/../fuzz-artifacts/ (turn it into a unit-test regression input).
set -euo pipefail
bin=$1
seconds=$2
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
out_dir="$(cd "$bin/.." && pwd)"
artifacts="$out_dir/fuzz-artifacts"
stats="$out_dir/fuzz-stats.txt"
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
mkdir -p "$artifacts"
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$here"/corpus/*/; do targets+=("$(basename "$f")"); done
fi
for t in "${targets[@]}"; do
  [[ -x $bin/fuzz_$t ]] || { echo "fuzz: $bin/fuzz_$t missing (make fuzz builds it)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/warren-fuzz.XXXXXX)
trap 'rm -rf -- "$work"' EXIT

# run_one TARGET: one fuzzer; its summary line goes to $work/TARGET.line.
run_one() {
  local t=$1 args log start result execs rate units
  mkdir -p "$work/$t"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -max_len=4096 -artifact_prefix="$artifacts/$t-")
  [[ -f $here/$t.dict ]] && args+=(-dict="$here/$t.dict")
  log="$work/$t.log"
  start=$SECONDS
  if "$bin/fuzz_$t" "${args[@]}" "$work/$t" "$here/corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    cp "$log" "$artifacts/$t.log"
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -n 1)
  units=$(find "$work/$t" "$here/corpus/$t" -type f | wc -l)
  printf '%-12s %8d %12s %10s %8s %s\n' "$t" $((SECONDS - start)) "${execs:-?}" "${rate:-?}" "$units" "$result" \
    >"$work/$t.line"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
{
  printf '%-12s %8s %12s %10s %8s %s\n' target seconds executions exec/s corpus result
  for t in "${targets[@]}"; do cat "$work/$t.line"; done
} | tee "$stats"
for t in "${targets[@]}"; do
  if ! grep -q ' ok$' "$work/$t.line"; then
    failed=1
    echo "fuzz: $t failed; log and input in $artifacts:" >&2
    grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$artifacts/$t.log" | head -n 20 | sed 's/^/#   /' >&2
  fi
done
exit "$failed"
