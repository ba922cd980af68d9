#!/usr/bin/env bash
# tools/bench.sh BIN_DIR - throughput / CPU / memory / latency of warren-wg against wireguard-go
# (run by `sudo make bench`; not part of `make test`).
#
# Topology: two network namespaces ("hosts" A and B) joined by one veth pair (MTU 1500), a tunnel
# interface in each (MTU 1420), the UDP sockets and the TUN of each daemon in its own host. iperf3
# server in B, client in A; "A>B" means A sends (A encrypts, B decrypts), "B>A" is iperf3 -R.
#
# Setups (every round runs all of them, in a rotated order, so warren and wireguard-go alternate
# and a load change on the shared machine hits both):
#   raw veth (no tunnel); warren<->warren; wireguard-go<->wireguard-go; warren<->wireguard-go;
#   wireguard-go<->warren; and every setup with warren again with WARREN_OFFLOADS=tun (UDP GSO/GRO
#   off: veth hands GSO super-datagrams across unsegmented, which flatters one-host figures; "tun"
#   keeps the TUN offloads, so these rows show what a real NIC without UDP offloads would see).
# Per setup: idle ping RTT (20 pings, median), then iperf3 TCP with 1 and 4 streams in both
# directions. Per test: throughput (iperf3 receiver), CPU seconds of the two daemons during the
# test (utime + stime from /proc/PID/stat), megabits per CPU-second, peak RSS of the daemon in A and
# of the one in B (VmHWM since its start). The table shows medians over the rounds.
# Last, a memory row: VmRSS / VmHWM of warren-wg (and wireguard-go) with 1,000 configured idle peers.
#
# Environment: WARREN_BENCH_ROUNDS (default 3), WARREN_BENCH_SECONDS (iperf3 duration per test,
# default 4), WARREN_BENCH_ONLY (a regular expression over setup names, to run a subset).
# Namespaces, daemons, iperf3 and temp files are removed on exit, also on failure or Ctrl-C.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: sudo $0 BIN_DIR   (BIN_DIR holds warren-wg, e.g. build/bin)" >&2
  exit 2
fi
BIN_DIR=$1
WARREN=$(realpath "$BIN_DIR/warren-wg" 2>/dev/null || true)
ROUNDS=${WARREN_BENCH_ROUNDS:-3}
SECS=${WARREN_BENCH_SECONDS:-4}
ONLY=${WARREN_BENCH_ONLY:-.}
if [[ ! $ROUNDS =~ ^[1-9][0-9]*$ ]] || [[ ! $SECS =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: WARREN_BENCH_ROUNDS and WARREN_BENCH_SECONDS must be positive integers" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "bench: needs root for network namespaces and TUN devices: sudo make bench" >&2
  exit 1
fi
[[ -x $WARREN ]] || { echo "bench: $BIN_DIR/warren-wg not found (make build)" >&2; exit 1; }
WGGO=$(command -v wireguard-go || true)
[[ -n $WGGO ]] || { echo "bench: wireguard-go not installed (sudo make setup)" >&2; exit 1; }
for t in ip wg ping iperf3 awk ss; do
  command -v "$t" >/dev/null || { echo "bench: missing tool $t (sudo make setup)" >&2; exit 1; }
done

SFX=$(printf '%04x' $(((RANDOM ^ $$ ^ (RANDOM << 3)) & 0xffff)))
NSA="wib${SFX}a" NSB="wib${SFX}b"
IFA="wib${SFX}a" IFB="wib${SFX}b"
TMP=$(mktemp -d /tmp/warren-bench.XXXXXX)
CREATED_NS=()
DAEMONS=()

stop_daemons() {
  local pid
  ip -n "$NSA" link del "$IFA" 2>/dev/null || true
  ip -n "$NSB" link del "$IFB" 2>/dev/null || true
  for pid in "${DAEMONS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${DAEMONS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${DAEMONS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  DAEMONS=()
  rm -f "/var/run/wireguard/$IFA.sock" "/var/run/wireguard/$IFB.sock"
}

cleanup() {
  local rc=$? ns pid
  set +e
  trap - EXIT INT TERM
  stop_daemons
  # Whatever still runs inside our namespaces was started by this script (iperf3, daemons).
  for ns in "${CREATED_NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

die() {
  echo "bench: $*" >&2
  exit 1
}

for ns in "$NSA" "$NSB"; do
  ip netns add "$ns"
  CREATED_NS+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$NSA" link add va type veth peer name vb netns "$NSB"
ip -n "$NSA" addr add 192.168.91.1/24 dev va
ip -n "$NSB" addr add 192.168.91.2/24 dev vb
ip -n "$NSA" link set va mtu 1500 up
ip -n "$NSB" link set vb mtu 1500 up
(
  umask 077
  wg genkey >"$TMP/a.key"
  wg genkey >"$TMP/b.key"
)
PUBA=$(wg pubkey <"$TMP/a.key")
PUBB=$(wg pubkey <"$TMP/b.key")

ip netns exec "$NSB" iperf3 -s -p 5201 >"$TMP/iperf-server.log" 2>&1 </dev/null &
disown
for _ in $(seq 50); do
  [[ -n $(ip netns exec "$NSB" ss -Htln 'sport = :5201') ]] && break
  sleep 0.1
done

# daemon_pid NS COMM: the daemon process (it daemonized) in NS.
daemon_pid() {
  local pid
  for pid in $(ip netns pids "$1"); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] && { echo "$pid"; return 0; }
  done
  return 1
}

# start_daemon NS IF IMPL OFFLOADS LOG
start_daemon() {
  local ns=$1 ifname=$2 impl=$3 offloads=$4 log=$5 comm pid
  comm=$(basename "$impl")
  if [[ -n $offloads ]]; then
    ip netns exec "$ns" env WARREN_OFFLOADS="$offloads" "$impl" "$ifname" >"$log" 2>&1 ||
      { cat "$log" >&2; die "could not start $impl $ifname"; }
  else
    ip netns exec "$ns" "$impl" "$ifname" >"$log" 2>&1 || { cat "$log" >&2; die "could not start $impl $ifname"; }
  fi
  for _ in $(seq 50); do [[ -S /var/run/wireguard/$ifname.sock ]] && break; sleep 0.1; done
  [[ -S /var/run/wireguard/$ifname.sock ]] || die "no UAPI socket for $ifname"
  pid=$(daemon_pid "$ns" "$comm") || die "cannot find the $comm process in $ns"
  DAEMONS+=("$pid")
}

cpu_ticks() { # utime + stime of every PID given
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
hwm_kib() { # VmHWM of one PID in KiB
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# tunnel_up A_IMPL B_IMPL A_OFFLOADS B_OFFLOADS
tunnel_up() {
  start_daemon "$NSA" "$IFA" "$1" "$3" "$TMP/a.log"
  start_daemon "$NSB" "$IFB" "$2" "$4" "$TMP/b.log"
  wg set "$IFA" private-key "$TMP/a.key" listen-port 51820 \
    peer "$PUBB" allowed-ips 10.91.0.2/32 endpoint 192.168.91.2:51821
  wg set "$IFB" private-key "$TMP/b.key" listen-port 51821 \
    peer "$PUBA" allowed-ips 10.91.0.1/32 endpoint 192.168.91.1:51820
  ip -n "$NSA" addr add 10.91.0.1/24 dev "$IFA"
  ip -n "$NSB" addr add 10.91.0.2/24 dev "$IFB"
  ip -n "$NSA" link set "$IFA" mtu 1420 up
  ip -n "$NSB" link set "$IFB" mtu 1420 up
  local ok=0
  for _ in 1 2 3 4 5; do
    ip netns exec "$NSA" ping -n -c 1 -W 2 10.91.0.2 >/dev/null 2>&1 && { ok=1; break; }
  done
  ((ok)) || die "no ping through the tunnel ($1 <-> $2)"
}

# ping_median DST: median RTT of 20 idle pings in ms (the median, because on a shared machine one
# ping that waited for a CPU would otherwise dominate the average).
ping_median() {
  ip netns exec "$NSA" ping -n -c 20 -i 0.05 "$1" 2>/dev/null |
    sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | median
}

# run_iperf SETUP ROUND DST STREAMS DIR
run_iperf() {
  local setup=$1 round=$2 dst=$3 streams=$4 dir=$5 flags=() before after json mbps cpu bytes
  [[ $dir == "B>A" ]] && flags+=(-R)
  json="$TMP/iperf.json"
  before=$(cpu_ticks "${DAEMONS[@]}")
  if ! ip netns exec "$NSA" iperf3 -J -c "$dst" -p 5201 -t "$SECS" -P "$streams" "${flags[@]}" >"$json" 2>&1; then
    echo "bench: iperf3 failed ($setup, $streams streams, $dir):" >&2
    grep -m1 '"error"' "$json" >&2 || true
    echo "$setup $streams $dir $round fail" >>"$TMP/results"
    return 0
  fi
  after=$(cpu_ticks "${DAEMONS[@]}")
  # end.sum_received: bytes and bits/s as seen by the receiving side.
  read -r bytes mbps < <(awk '
    /"sum_received"/ { inrecv = 1 }
    inrecv && /"bytes"/ { gsub(/,/, "", $2); b = $2 }
    inrecv && /"bits_per_second"/ { gsub(/,/, "", $2); printf "%s %.0f\n", b, $2 / 1e6; exit }
  ' "$json")
  cpu=$(awk -v a="$after" -v b="$before" -v hz="$HZ" 'BEGIN { printf "%.2f", (a - b) / hz }')
  local hwm_a=0 hwm_b=0
  if ((${#DAEMONS[@]} == 2)); then
    hwm_a=$(hwm_kib "${DAEMONS[0]}")
    hwm_b=$(hwm_kib "${DAEMONS[1]}")
  fi
  echo "$setup $streams $dir $round ok $mbps $cpu $bytes $hwm_a $hwm_b" >>"$TMP/results"
  printf '    %-26s %d stream(s) %s  %6s Mbit/s  cpu %5s s\n' "$setup" "$streams" "$dir" "$mbps" "$cpu" >&2
}

# Setup name -> "A_IMPL B_IMPL A_OFFLOADS B_OFFLOADS" (empty offloads = the default, all on).
declare -A SETUP=(
  [warren-warren]="$WARREN $WARREN - -"
  [wggo-wggo]="$WGGO $WGGO - -"
  [warren-wggo]="$WARREN $WGGO - -"
  [wggo-warren]="$WGGO $WARREN - -"
  [warren-warren/udp-off]="$WARREN $WARREN tun tun"
  [warren-wggo/udp-off]="$WARREN $WGGO tun -"
  [wggo-warren/udp-off]="$WGGO $WARREN - tun"
)
ORDER=(raw warren-warren wggo-wggo warren-wggo wggo-warren warren-warren/udp-off warren-wggo/udp-off wggo-warren/udp-off)
SELECTED=()
for s in "${ORDER[@]}"; do [[ $s =~ $ONLY ]] && SELECTED+=("$s"); done
((${#SELECTED[@]} > 0)) || die "WARREN_BENCH_ONLY=$ONLY selects no setup"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
echo "bench: ${#SELECTED[@]} setups x 4 tests x $ROUNDS rounds, ${SECS} s each (load before: $LOAD_BEFORE)" >&2
for ((round = 1; round <= ROUNDS; round++)); do
  echo "  round $round" >&2
  n=${#SELECTED[@]}
  for ((k = 0; k < n; k++)); do
    setup=${SELECTED[$(((k + round - 1) % n))]}
    if [[ $setup == raw ]]; then
      DAEMONS=()
      dst=192.168.91.2
    else
      read -r a b oa ob <<<"${SETUP[$setup]}"
      [[ $oa == - ]] && oa=""
      [[ $ob == - ]] && ob=""
      tunnel_up "$a" "$b" "$oa" "$ob"
      dst=10.91.0.2
    fi
    echo "$setup rtt $round $(ping_median "$dst")" >>"$TMP/rtts"
    for streams in 1 4; do
      for dir in "A>B" "B>A"; do
        run_iperf "$setup" "$round" "$dst" "$streams" "$dir"
      done
    done
    [[ $setup == raw ]] || stop_daemons
  done
done

# ---- memory with 1,000 idle peers ----------------------------------------------------------
# peers_config N: a wg setconf file with N peers (random public keys; one /32 and an endpoint each).
peers_config() {
  echo "[Interface]"
  echo "PrivateKey = $(cat "$TMP/a.key")"
  echo "ListenPort = 51830"
  local i
  for ((i = 0; i < $1; i++)); do
    echo "[Peer]"
    echo "PublicKey = $(head -c 32 /dev/urandom | base64)"
    echo "AllowedIPs = 10.$((100 + i / 65536)).$(((i / 256) % 256)).$((i % 256))/32"
    echo "Endpoint = 192.168.91.$((3 + i % 200)):$((20000 + i))"
  done
}
peers_config 1000 >"$TMP/peers.conf"
MEM_ROWS=()
for impl in "$WARREN" "$WGGO"; do
  start_daemon "$NSA" "$IFA" "$impl" "" "$TMP/mem.log"
  wg setconf "$IFA" "$TMP/peers.conf"
  ip -n "$NSA" link set "$IFA" mtu 1420 up
  sleep 2
  npeers=$(wg show "$IFA" peers | wc -l)
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${DAEMONS[0]}/status")
  hwm=$(hwm_kib "${DAEMONS[0]}")
  MEM_ROWS+=("$(basename "$impl") $npeers $rss $hwm")
  stop_daemons
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START))

# ---- the table ------------------------------------------------------------------------------
label() {
  case $1 in
    raw) echo "raw veth (no tunnel)" ;;
    warren-warren) echo "warren <-> warren" ;;
    wggo-wggo) echo "wg-go <-> wg-go" ;;
    warren-wggo) echo "warren <-> wg-go" ;;
    wggo-warren) echo "wg-go <-> warren" ;;
    warren-warren/udp-off) echo "warren <-> warren, UDP GSO/GRO off" ;;
    warren-wggo/udp-off) echo "warren <-> wg-go, UDP GSO/GRO off" ;;
    wggo-warren/udp-off) echo "wg-go <-> warren, UDP GSO/GRO off" ;;
  esac
}

echo
echo "warren benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
echo "  warren-wg $WARREN; $("$WGGO" --version 2>&1 | head -n 1); iperf3 TCP, $SECS s per test, medians of $ROUNDS rounds"
echo "  veth MTU 1500, tunnel MTU 1420; A>B = host A sends; CPU = both daemons' CPU seconds during the test"
echo "  load average before: $LOAD_BEFORE, after: $LOAD_AFTER; run time ${ELAPSED} s"
echo
printf '| %-36s | %-7s | %-4s | %10s | %7s | %12s | %11s | %8s |\n' "setup" "streams" "dir" "Mbit/s" "CPU s" "Mbit/CPU-s" "RSS A/B MiB" "RTT ms"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "--------------------------------------" "---------" "------" "------------" "---------" "--------------" "-------------" "----------"
for setup in "${SELECTED[@]}"; do
  rtt=$(awk -v s="$setup" '$1 == s && $4 != "" { print $4 }' "$TMP/rtts" | median)
  for streams in 1 4; do
    for dir in "A>B" "B>A"; do
      sel() { awk -v s="$setup" -v p="$streams" -v d="$dir" -v f="$1" '$1 == s && $2 == p && $3 == d && $5 == "ok" { print $f }' "$TMP/results"; }
      mbps=$(sel 6 | median)
      cpu=$(sel 7 | median)
      eff=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $5 == "ok" && $7 > 0 { printf "%.0f\n", $8 * 8 / 1e6 / $7 }' "$TMP/results" | median)
      rss_a=$(sel 9 | median)
      rss_b=$(sel 10 | median)
      fails=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $5 == "fail"' "$TMP/results" | wc -l)
      rss=$(awk -v a="$rss_a" -v b="$rss_b" 'BEGIN { printf "%.1f/%.1f", a / 1024, b / 1024 }')
      [[ $setup == raw ]] && { cpu="-"; eff="-"; rss="-"; }
      ((fails > 0)) && mbps="$mbps ($fails failed)"
      printf '| %-36s | %7s | %-4s | %10s | %7s | %12s | %11s | %8s |\n' "$(label "$setup")" "$streams" "$dir" "$mbps" "$cpu" "$eff" "$rss" "$rtt"
      echo "$setup $streams $dir ${mbps%% *} $rss $rtt" >>"$TMP/medians"
    done
  done
done
echo
for row in "${MEM_ROWS[@]}"; do
  read -r name npeers rss hwm <<<"$row"
  printf '| %-36s | %7s peers idle | VmRSS %6.1f MiB | VmHWM %6.1f MiB |\n' "$name, memory" "$npeers" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')"
done

# ---- the issue's targets, from the medians above ---------------------------------------------
echo
m() { awk -v s="$1" -v p="$2" -v d="$3" -v f="$4" '$1 == s && $2 == p && $3 == d { print $f }' "$TMP/medians"; }
verdict() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-") print "n/a"; else printf "%.2fx %s\n", a / b, (a >= k * b ? "met" : "NOT met") }'; }
if [[ -f $TMP/medians ]]; then
  echo "Targets (issue 4), from the medians:"
  for dir in "A>B" "B>A"; do
    printf '  warren<->warren 1 stream %s vs wg-go<->wg-go (>= 8x):   %s\n' "$dir" \
      "$(verdict "$(m warren-warren 1 "$dir" 4)" "$(m wggo-wggo 1 "$dir" 4)" 8)"
  done
  for setup in warren-wggo wggo-warren warren-wggo/udp-off wggo-warren/udp-off; do
    for dir in "A>B" "B>A"; do
      v=$(verdict "$(m "$setup" 1 "$dir" 4)" "$(m wggo-wggo 1 "$dir" 4)" 1)
      [[ $v == n/a ]] && continue  # setup not run (WARREN_BENCH_ONLY)
      printf '  %-26s 1 stream %s vs wg-go<->wg-go (>= 1x): %s\n' "$(label "$setup" | sed 's/, UDP GSO\/GRO off/ (udp off)/')" "$dir" "$v"
    done
  done
  for dir in "A>B" "B>A"; do
    printf '  warren<->warren 4 streams %s vs 1 stream (>= 1x):      %s\n' "$dir" \
      "$(verdict "$(m warren-warren 4 "$dir" 4)" "$(m warren-warren 1 "$dir" 4)" 1)"
  done
  rw=$(m warren-warren 1 "A>B" 6)
  rg=$(m wggo-wggo 1 "A>B" 6)
  printf '  idle RTT warren<->warren vs wg-go<->wg-go (<= 1x):      %s ms vs %s ms, %s\n' "$rw" "$rg" \
    "$(awk -v a="$rw" -v b="$rg" 'BEGIN { if (a == "" || b == "") print "n/a"; else print (a <= b ? "met" : "NOT met") }')"
  maxrss=$(awk '$1 ~ /^warren-warren/ && $5 != "-" { split($5, r, "/"); for (i in r) if (r[i] + 0 > m) m = r[i] + 0 } END { print m + 0 }' "$TMP/medians")
  printf '  warren<->warren peak RSS under load (<= 64 MiB):       %s MiB\n' "$maxrss"
fi
