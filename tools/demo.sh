#!/usr/bin/env bash
# tools/demo.sh BIN_DIR - a one-minute demonstration of warren-wg (run by `sudo make demo`).
#
# Builds nothing (make already did). Creates two network namespaces joined by a veth pair
# (192.168.77.1/24 <-> 192.168.77.2/24), starts BIN_DIR/warren-wg in each the way wg-quick does
# (it daemonizes), configures both ends with the standard `wg` tool, then measures:
#   * the time until the first ping through the tunnel is answered (its RTT includes the handshake),
#   * ping RTT min/avg/max over 5 pings,
#   * single-stream TCP throughput with iperf3 (5 s in each direction),
# and prints a summary table plus a `wg show` excerpt (no private or preshared keys).
# Everything it creates (namespaces, daemons, iperf3, sockets, temp files) is removed on exit,
# including on Ctrl-C.
#
# WARREN_DEMO_IMPL=wireguard-go (or any path) runs another implementation instead of warren-wg.
# WARREN_DEMO_SECONDS=N changes the iperf3 duration per direction (default 5).
set -euo pipefail

usage() { echo "usage: sudo $0 BIN_DIR   (BIN_DIR holds warren-wg, e.g. build/bin)" >&2; }

if [[ $# -ne 1 ]]; then
  usage
  exit 2
fi
BIN_DIR=$1
IMPL=${WARREN_DEMO_IMPL:-$BIN_DIR/warren-wg}
SECS=${WARREN_DEMO_SECONDS:-5}

if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root to create network namespaces and TUN devices." >&2
  echo "demo: run it as: sudo make demo" >&2
  exit 1
fi
if ! command -v "$IMPL" >/dev/null 2>&1; then
  echo "demo: implementation not found or not executable: $IMPL" >&2
  [[ -z ${WARREN_DEMO_IMPL:-} ]] && echo "demo: build it first (make build), or pass the right BIN_DIR" >&2
  exit 1
fi
IMPL=$(command -v "$IMPL")
missing=()
for t in ip wg ping iperf3 awk; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
if ((${#missing[@]} > 0)); then
  echo "demo: missing tools: ${missing[*]} (sudo make setup installs them)" >&2
  exit 1
fi

# Unique names: several demos or test runs may share the machine, and /var/run/wireguard is shared by
# all network namespaces.
SFX=$(printf '%04x' $(((RANDOM ^ $$) & 0xffff)))
NSA="witd${SFX}a" NSB="witd${SFX}b"
WGA="witd${SFX}a" WGB="witd${SFX}b"
VA="vdemoa" VB="vdemob"
TMP=$(mktemp -d /tmp/warren-demo.XXXXXX)
CREATED_NS=()

cleanup() {
  local rc=$? ns pid pids=()
  set +e
  trap - EXIT INT TERM
  # Deleting the TUN interfaces is the normal way to stop the daemons (as wg-quick down does).
  ip -n "$NSA" link del "$WGA" 2>/dev/null
  ip -n "$NSB" link del "$WGB" 2>/dev/null
  for ns in "${CREATED_NS[@]}"; do
    while read -r pid; do [[ -n $pid ]] && pids+=("$pid"); done < <(ip netns pids "$ns" 2>/dev/null)
  done
  # Everything running inside our namespaces was started by this script: the daemons and iperf3.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -f "/var/run/wireguard/$WGA.sock" "/var/run/wireguard/$WGB.sock"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

die() {
  echo "demo: $*" >&2
  exit 1
}

step() { printf '  %-52s' "$1..."; }
done_() { printf ' %s\n' "${1:-done}"; }

iperf_mbps() {
  awk '
    /"sum_received"/ { inrecv = 1 }
    inrecv && /"bits_per_second"/ { gsub(/,/, "", $2); printf "%.0f", $2 / 1e6; exit }
  ' "$1"
}

echo "warren demo: two network namespaces, a veth underlay, a WireGuard tunnel between them"
echo "  implementation: $IMPL"
echo

step "creating namespaces $NSA and $NSB"
for ns in "$NSA" "$NSB"; do
  ip netns add "$ns"
  CREATED_NS+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$NSA" link add "$VA" type veth peer name "$VB" netns "$NSB"
ip -n "$NSA" addr add 192.168.77.1/24 dev "$VA"
ip -n "$NSB" addr add 192.168.77.2/24 dev "$VB"
ip -n "$NSA" link set "$VA" up
ip -n "$NSB" link set "$VB" up
done_

step "starting the daemons"
ip netns exec "$NSA" "$IMPL" "$WGA" >"$TMP/a.log" 2>&1 || { cat "$TMP/a.log" >&2; die "could not start $IMPL $WGA"; }
ip netns exec "$NSB" "$IMPL" "$WGB" >"$TMP/b.log" 2>&1 || { cat "$TMP/b.log" >&2; die "could not start $IMPL $WGB"; }
for w in "$WGA" "$WGB"; do
  for _ in $(seq 50); do [[ -S /var/run/wireguard/$w.sock ]] && break; sleep 0.1; done
  [[ -S /var/run/wireguard/$w.sock ]] || die "no UAPI socket /var/run/wireguard/$w.sock"
done
done_

step "configuring both ends with wg"
(
  umask 077
  wg genkey >"$TMP/a.key"
  wg genkey >"$TMP/b.key"
)
PUBA=$(wg pubkey <"$TMP/a.key")
PUBB=$(wg pubkey <"$TMP/b.key")
wg set "$WGA" private-key "$TMP/a.key" listen-port 51820 \
  peer "$PUBB" allowed-ips 10.77.0.2/32 endpoint 192.168.77.2:51821
wg set "$WGB" private-key "$TMP/b.key" listen-port 51821 \
  peer "$PUBA" allowed-ips 10.77.0.1/32 endpoint 192.168.77.1:51820
ip -n "$NSA" addr add 10.77.0.1/24 dev "$WGA"
ip -n "$NSB" addr add 10.77.0.2/24 dev "$WGB"
ip -n "$NSA" link set "$WGA" mtu 1420 up
ip -n "$NSB" link set "$WGB" mtu 1420 up
for _ in $(seq 50); do
  ip -n "$NSA" link show "$VA" | grep -q 'state UP' && ip -n "$NSB" link show "$VB" | grep -q 'state UP' && break
  sleep 0.1
done
done_

step "first ping through the tunnel (handshake)"
# The first echo request waits in the daemon until the handshake completes, so its RTT as reported by
# ping is the time to establish the tunnel plus one round trip. (Wall-clock timing around ping would
# mostly measure process start-up, tens of ms on a small VM.) If an implementation dropped that packet
# instead, each lost 2-second attempt is added.
ATTEMPTS=0
FIRST_RTT=""
while ((ATTEMPTS < 5)); do
  ATTEMPTS=$((ATTEMPTS + 1))
  if ip netns exec "$NSA" ping -n -c 1 -W 2 10.77.0.2 >"$TMP/first.txt" 2>&1; then
    FIRST_RTT=$(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$TMP/first.txt")
    break
  fi
done
[[ -n $FIRST_RTT ]] || die "no reply through the tunnel within 10 s"
HANDSHAKE_MS=$(awk -v r="$FIRST_RTT" -v n="$ATTEMPTS" 'BEGIN { printf "%.1f", (n - 1) * 2000 + r }')
done_ "answered after $HANDSHAKE_MS ms (attempt $ATTEMPTS)"

step "ping -c 5"
ip netns exec "$NSA" ping -n -c 5 -i 0.2 10.77.0.2 >"$TMP/ping.txt" 2>&1 || die "ping failed: $(tail -n 2 "$TMP/ping.txt")"
read -r RTT_MIN RTT_AVG RTT_MAX < <(awk -F'[ /]+' '/^rtt|^round-trip/ { print $7, $8, $9 }' "$TMP/ping.txt")
LOSS=$(sed -n 's/.* \([0-9.]*%\) packet loss.*/\1/p' "$TMP/ping.txt")
done_

ip netns exec "$NSB" iperf3 -s -p 5201 >"$TMP/iperf-server.log" 2>&1 </dev/null &
for _ in $(seq 50); do
  [[ -n $(ip netns exec "$NSB" ss -Htln 'sport = :5201') ]] && break
  sleep 0.1
done
step "iperf3 TCP A -> B, $SECS s"
ip netns exec "$NSA" iperf3 -J -c 10.77.0.2 -p 5201 -t "$SECS" >"$TMP/ab.json" 2>&1 || die "iperf3 A -> B failed"
TP_AB=$(iperf_mbps "$TMP/ab.json")
done_ "$TP_AB Mbit/s"
step "iperf3 TCP B -> A, $SECS s"
ip netns exec "$NSA" iperf3 -J -c 10.77.0.2 -p 5201 -t "$SECS" -R >"$TMP/ba.json" 2>&1 || die "iperf3 B -> A failed"
TP_BA=$(iperf_mbps "$TMP/ba.json")
done_ "$TP_BA Mbit/s"

echo
echo "Summary ($(basename "$IMPL") <-> $(basename "$IMPL"), veth underlay, tunnel MTU 1420, $(nproc) CPUs)"
printf '  +----------------------------------------+----------------------------+\n'
printf '  | %-38s | %-26s |\n' "handshake + first ping RTT" "$HANDSHAKE_MS ms"
printf '  | %-38s | %-26s |\n' "ping RTT min / avg / max (5 pings)" "$RTT_MIN / $RTT_AVG / $RTT_MAX ms"
printf '  | %-38s | %-26s |\n' "ping loss" "${LOSS:-?}"
printf '  | %-38s | %-26s |\n' "TCP throughput A -> B (iperf3, $SECS s)" "${TP_AB:-?} Mbit/s"
printf '  | %-38s | %-26s |\n' "TCP throughput B -> A (iperf3, $SECS s)" "${TP_BA:-?} Mbit/s"
printf '  +----------------------------------------+----------------------------+\n'
echo
echo "wg show $WGA (keys other than public ones omitted):"
WG_HIDE_KEYS=always wg show "$WGA" | grep -v -e 'private key' -e 'preshared key' | sed 's/^/  /'
echo
echo "demo: cleaning up"
