#!/usr/bin/env bash
# tests/fuzz/run.sh BIN_DIR SECONDS [TARGET...]: runs each libFuzzer target for SECONDS with its
# seed corpus tests/fuzz/corpus/<target> (read-only: new inputs go to a temp dir, so the
# repository is never modified). Prints executions per target and writes them to
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
mkdir -p "$artifacts"
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$here"/corpus/*/; do targets+=("$(basename "$f")"); done
fi
work=$(mktemp -d /tmp/warren-fuzz.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
: >"$stats"
failed=0
printf '%-12s %8s %12s %10s %8s %s\n' target seconds executions exec/s corpus result | tee -a "$stats"
for t in "${targets[@]}"; do
  exe="$bin/fuzz_$t"
  [[ -x $exe ]] || { echo "fuzz: $exe missing (make fuzz builds it)" >&2; exit 1; }
  mkdir -p "$work/$t"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -max_len=4096 -artifact_prefix="$artifacts/$t-")
  [[ -f $here/$t.dict ]] && args+=(-dict="$here/$t.dict")
  log="$work/$t.log"
  start=$SECONDS
  if "$exe" "${args[@]}" "$work/$t" "$here/corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed=1
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -n 1)
  units=$(find "$work/$t" "$here/corpus/$t" -type f | wc -l)
  printf '%-12s %8d %12s %10s %8s %s\n' "$t" $((SECONDS - start)) "${execs:-?}" "${rate:-?}" "$units" "$result" |
    tee -a "$stats"
  if [[ $result != ok ]]; then
    grep -E 'ERROR|SUMMARY|invariant|Test unit written|artifact' "$log" | head -n 20 | sed 's/^/#   /' >&2
    cp "$log" "$artifacts/$t.log"
  fi
done
exit "$failed"
