#!/usr/bin/env bash
# tests/tools/sanitizer_run.sh BUILD_DIR address|thread: runs the unit tests and the namespace
# tests of a sanitizer build tree (make test-asan / test-tsan).
#
# Every instrumented process (test binaries, warren-wg daemons - which fork and close their
# stdio, so a report on stderr would be lost - and warren-flood) writes its reports to
# log_path=<dir>/<kind>.<pid>; any such file afterwards fails the run, whether or not the test
# that caused it noticed. halt_on_error: the first report ends that process.
set -euo pipefail
build=$1
kind=$2
jobs=${JOBS:-2}
reports=$(mktemp -d /tmp/warren-$kind-reports.XXXXXX)
chmod 1777 "$reports"  # tests that drop privileges (setpriv nobody) may write reports too
here="$(cd "$(dirname "$0")/../.." && pwd)"
common="halt_on_error=1:log_path=$reports/$kind"
case $kind in
  address)
    export ASAN_OPTIONS="$common:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1"
    export UBSAN_OPTIONS="$common:print_stacktrace=1"
    export LSAN_OPTIONS="suppressions=$here/tests/tools/lsan.supp"
    # Slower daemons: the strict flood part at a rate the instrumented build can answer.
    export FLOOD_STRICT_RATE=${FLOOD_STRICT_RATE:-15000} FLOOD_MIN_PPS=${FLOOD_MIN_PPS:-15000}
    export FLOOD_RSS_KB=${FLOOD_RSS_KB:-400000}  # ASan's quarantine holds freed memory (256 MB)
    ;;
  thread)
    export TSAN_OPTIONS="$common:second_deadlock_stack=1:suppressions=$here/tests/tools/tsan.supp"
    export FLOOD_STRICT_RATE=${FLOOD_STRICT_RATE:-5000} FLOOD_MIN_PPS=${FLOOD_MIN_PPS:-5000}
    export FLOOD_RSS_KB=${FLOOD_RSS_KB:-400000}
    ;;
  *) echo "usage: $0 BUILD_DIR address|thread" >&2; exit 2 ;;
esac
export WARREN_SANITIZER=$kind  # tests skip what only the sanitizer runtime could fail
# Shorter timed phases than `make test` (which judges the issues' figures: 10 s floods, a 60 s
# link outage): under a sanitizer those phases are there to drive the code paths, and an 8 s
# flood part or a 20 s outage (four handshake retransmissions) drives the same ones. (8 s, not
# less: C1's handshake under the flood needs its retransmission at ~5 s to land while it runs.)
export FLOOD_SECONDS=${FLOOD_SECONDS:-8} FAULT_LINK_DOWN_SECONDS=${FAULT_LINK_DOWN_SECONDS:-20}
# test_standby: `make test` pauses for the issue's 30 s; here 5 s (the 2 s keepalives cross it).
export PAUSE_SECONDS=${PAUSE_SECONDS:-5}
# test_interop (ASan): the warren:warren pair only, both ends instrumented and every step of the
# suite (key change, peer removal, showconf round trip, link deletion) run; the pairs with
# wireguard-go add an uninstrumented peer, and `make test` runs them with offloads on and off.
export WARREN_PAIRS=${WARREN_PAIRS:-warren:warren}
rc=0
# SANITIZER_TESTS=REGEX narrows both runs (ctest -R), for re-running one suite by hand.
filter=()
[[ -n ${SANITIZER_TESTS:-} ]] && filter=(-R "$SANITIZER_TESTS")
(cd "$build" && ctest --output-on-failure -j "$jobs" -LE root "${filter[@]}") || rc=1
# ASan runs every namespace suite; TSan runs those labelled `tsan` (tests/CMakeLists.txt: flood,
# server, client, enrollment), the ones with the most concurrency.
# The others (outages, the kernel selftest port, DNS, reload, packaging...) are no more
# concurrent than those, and CI time goes further there. dist.deb (the Debian package in a clean
# root) has no data path to instrument: `make test` runs it, and the suites labelled
# no_sanitizer (tests/CMakeLists.txt says why for each).
labels=(-L root -LE '^(deb|no_sanitizer)$')
[[ $kind == thread && -z ${SANITIZER_TESTS:-} ]] && labels=(-L root -L tsan)
(cd "$build" && ctest --output-on-failure "${labels[@]}" "${filter[@]}") || rc=1
shopt -s nullglob
files=("$reports"/*)
if ((${#files[@]} > 0)); then
  echo "sanitizer ($kind): ${#files[@]} report file(s):" >&2
  for f in "${files[@]}"; do
    echo "==== $f" >&2
    head -n 60 "$f" >&2
  done
  rc=1
else
  echo "sanitizer ($kind): no reports"
fi
rm -rf -- "$reports"
exit "$rc"
