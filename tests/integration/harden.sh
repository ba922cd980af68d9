# shellcheck shell=bash
# tests/integration/harden.sh - helpers shared by test_flood.sh and test_faults.sh (sourced after
# lib.sh and wit_init):
#   * star_topology: a server namespace S (warren-wg, LOG_LEVEL=debug so it logs its counters)
#     and clients C1, C2 (warren-wg) plus an attacker namespace A, each on its own veth to S;
#   * stats_field IFNAME FIELD: a counter from the daemon's latest "stats:" log line;
#   * rss_kb PID, wg_latest IFNAME PUB.
# Underlay 10.91.<n>.0/24 (S is .1, the other end .2), tunnel 10.92.0.0/24 (S .1, Cn .1+n),
# spoofed sources 10.200.0.0/16 routed from S to A (so cookie replies to them go back there).

STAR_PORT=51820

# star_topology: sets NS_S NS_C1 NS_C2 NS_A, WG_S WG_C1 WG_C2, PUB_S PUB_C1 PUB_C2.
star_topology() {
  NS_S="${WIT_PREFIX}s" NS_C1="${WIT_PREFIX}c1" NS_C2="${WIT_PREFIX}c2" NS_A="${WIT_PREFIX}a"
  WG_S="${WIT_PREFIX}s" WG_C1="${WIT_PREFIX}c1" WG_C2="${WIT_PREFIX}c2"
  local n ns
  new_ns "$NS_S"
  for n in 1 2 3; do
    case $n in 1) ns=$NS_C1 ;; 2) ns=$NS_C2 ;; 3) ns=$NS_A ;; esac
    new_ns "$ns"
    veth_pair "$NS_S" "vs$n" "$ns" "vx$n"
    add_addr "$NS_S" "vs$n" "10.91.$n.1/24"
    add_addr "$ns" "vx$n" "10.91.$n.2/24"
    wait_until 5 link_is_up "$NS_S" "vs$n"
    wait_until 5 link_is_up "$ns" "vx$n"
  done
  ip -n "$NS_S" route add 10.200.0.0/16 via 10.91.3.2
  gen_keypair s
  gen_keypair c1
  gen_keypair c2
  PUB_S=$(pub_of s) PUB_C1=$(pub_of c1) PUB_C2=$(pub_of c2)

  export LOG_LEVEL=debug
  start_wg "$NS_S" "$WG_S" warren || return 1
  unset LOG_LEVEL
  start_wg "$NS_C1" "$WG_C1" warren || return 1
  start_wg "$NS_C2" "$WG_C2" warren || return 1
  wg set "$WG_S" private-key "$(key_file s)" listen-port "$STAR_PORT" \
    peer "$PUB_C1" allowed-ips 10.92.0.2/32 peer "$PUB_C2" allowed-ips 10.92.0.3/32
  star_client "$NS_C1" "$WG_C1" c1 10.92.0.2 1
  star_client "$NS_C2" "$WG_C2" c2 10.92.0.3 2
  tunnel_addr "$NS_S" "$WG_S" 10.92.0.1
}

# star_client NS IF KEYNAME TUNNEL_IP N
star_client() {
  wg set "$2" private-key "$(key_file "$3")" peer "$PUB_S" allowed-ips 10.92.0.1/32 \
    endpoint "10.91.$5.1:$STAR_PORT"
  tunnel_addr "$1" "$2" "$4"
}

tunnel_addr() {
  ip -n "$1" link set "$2" mtu 1420
  add_addr "$1" "$2" "$3/24"
  link_up "$1" "$2"
}

# stats_line IFNAME: the newest "stats:" line the daemon logged (LOG_LEVEL=debug, once a second).
stats_line() {
  grep -a 'stats: ' "$WIT_TMP/$1.warren.log" | tail -n 1
}

# stats_field IFNAME FIELD: FIELD=<n> from the newest stats line (0 when absent: drop counters
# appear once non-zero).
stats_field() {
  local v
  v=$(stats_line "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }')
  printf '%s\n' "${v:-0}"
}

# stats_settle IFNAME: waits until the counters stopped moving (the daemon logs a line once a
# second, only when something changed: so no new line for 1.5 s).
stats_settle() {
  local a b
  for _ in $(seq 1 30); do
    a=$(stats_line "$1")
    sleep 1.5
    b=$(stats_line "$1")
    [[ $a == "$b" ]] && return 0
  done
  return 1
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# wg_latest IFNAME PUB: latest-handshakes of one peer (Unix seconds, 0 = never).
wg_latest() {
  wg show "$1" latest-handshakes | awk -v p="$2" '$1 == p { print $2 }'
}

# udp_snmp NS FIELD: a counter of the Udp: line of /proc/net/snmp inside NS (per namespace).
udp_snmp() {
  ip netns exec "$1" awk -v f="$2" '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c[f] }' /proc/net/snmp
}
