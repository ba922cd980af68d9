#!/usr/bin/env bash
# tests/integration/test_stun.sh - mesh endpoint discovery: STUN on the WireGuard socket through a NAT.
#
#   node ns N                 router ns R (NAT)                     server ns S
#   warren-wg (WARREN_STUN)   192.168.5.1 | 198.18.0.1 (WAN)        198.18.0.2
#   192.168.5.2 ── veth ──────┘           └── veth ──────────────── warren server, [mesh] stun_port 3478,
#   tunnel 10.98.0.1                       MASQUERADE [--random-fully]  stun_alternate_port 3479
#                                                                    warren-wg peer P: UDP 51900,
#                                                                    tunnel 10.98.0.2
#
# Checks, once with plain MASQUERADE (keeps the source port: an endpoint-independent mapping) and once
# with MASQUERADE --random-fully (a new random port per flow: endpoint-dependent):
#   * the node learns, from both STUN ports, a reflexive endpoint whose address is the router's WAN
#     address and whose port is the one conntrack in R shows for the node's WireGuard socket's flow to
#     that STUN port (the request left from the WireGuard socket: source port = `wg show listen-port`);
#   * a WireGuard tunnel through the same socket and NAT to P works (ping), before and after;
#   * the NAT mapping is classified endpoint-independent resp. endpoint-dependent;
#   * `wg show`/`wg showconf` work unchanged (STUN stays out of the UAPI);
#   * the responder answers nothing to malformed input (a WireGuard-shaped datagram, junk);
#   * `warren status` (JSON and table) of the server, which asks its own responder, shows the result.
# Each run takes a few seconds: STUN answers arrive within one round trip of the node's start.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_tools ip iptables conntrack wg ping python3

wit_init
W=$WARREN_BIN/warren
WG=$WARREN_BIN/warren-wg
N="${WIT_PREFIX}n" R="${WIT_PREFIX}r" S="${WIT_PREFIX}s"
NIF="${WIT_PREFIX}n" PIF="${WIT_PREFIX}p" SIF="${WIT_PREFIX}s"
gen_keypair node
gen_keypair peer

new_ns "$N"
new_ns "$R"
new_ns "$S"
veth_pair "$N" vn "$R" vl
veth_pair "$R" vw "$S" vs
add_addr "$N" vn 192.168.5.2/24
add_addr "$R" vl 192.168.5.1/24
add_addr "$R" vw 198.18.0.1/24
add_addr "$S" vs 198.18.0.2/24
link_up "$N" vn
link_up "$R" vl
link_up "$R" vw
link_up "$S" vs
ip -n "$N" route add default via 192.168.5.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
# A home router: nothing unsolicited from the WAN (docs/MESH.md: such a packet's conntrack entry could
# take the port a later outbound flow wants), only replies forwarded inbound.
ip netns exec "$R" iptables -A INPUT -i vw -m conntrack --ctstate NEW -j DROP
ip netns exec "$R" iptables -A FORWARD -i vw -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
ip netns exec "$R" iptables -A FORWARD -i vw -j DROP

# ---- the server (STUN responder) and the WireGuard peer P in S ------------------------------------
mkdir -m 700 "$WIT_TMP/srv"
CONF="$WIT_TMP/srv/server.toml"
cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.99.0.1/24"

[enrollment]
listen = "198.18.0.2:7443"
public_endpoint = "198.18.0.2:51820"

[mesh]
stun_port = 3478
stun_alternate_port = 3479
EOF
# The server asks its own responder too (WARREN_STUN works in every daemon): its status shows it.
bg_start server "$S" env LOG_LEVEL=verbose WARREN_STUN=198.18.0.2:3478 "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" ||
  { sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20; fatal "server starts"; }
check "server: STUN responder on 3478 and 3479" \
  bash -c "grep -q 'STUN responder on UDP port 3478' '$WIT_TMP/server.err' &&
           grep -q 'STUN responder on UDP port 3479' '$WIT_TMP/server.err'"

server_stun() {
  ip netns exec "$S" "$W" status --json "$SIF" | python3 -c '
import json, sys
s = json.load(sys.stdin)["stun"]["servers"][0]
sys.exit(0 if s["server"] == "198.18.0.2:3478" and s["state"] == "ok" and
         s["reflexive"] == "198.18.0.2:51820" and s["learned_at"] > 0 else 1)'
}
check "server: warren status --json shows its STUN result (198.18.0.2:51820 via its own port)" \
  wait_until 5 server_stun
check "server: warren status table shows the stun and nat mapping lines" \
  bash -c "ip netns exec '$S' '$W' status '$SIF' | grep -q 'stun:        198.18.0.2:51820 via 198.18.0.2:3478 (ok' &&
           ip netns exec '$S' '$W' status '$SIF' | grep -q 'nat mapping: unknown'"

start_wg "$S" "$PIF" warren
ip netns exec "$S" wg set "$PIF" private-key "$(key_file peer)" listen-port 51900 \
  peer "$(pub_of node)" allowed-ips 10.98.0.1/32
ip -n "$S" addr add 10.98.0.2/24 dev "$PIF"
ip -n "$S" link set "$PIF" up

# ---- malformed input gets no answer ------------------------------------------------------------
# A WireGuard-shaped datagram and 20 bytes of junk with the magic cookie but a bad length: silence.
silence() {
  ip netns exec "$S" python3 - "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for d in (bytes([1, 0, 0, 0]) + bytes(144), bytes.fromhex("0001000c2112a442") + bytes(12),
          bytes.fromhex("0001000c2112a442") + bytes(24)):
    s.sendto(d, ("198.18.0.2", 3478))
try:
    s.recvfrom(2048)
    sys.exit(1)  # answered
except socket.timeout:
    pass
# The positive control: a well-formed Binding request is answered with 32 bytes (no FINGERPRINT
# asked), XOR-MAPPED-ADDRESS = our own address and port.
req = bytes.fromhex("000100002112a442") + bytes(range(12))
s.sendto(req, ("198.18.0.2", 3478))
a, _ = s.recvfrom(2048)
port = s.getsockname()[1]
ok = len(a) == 32 and a[0:2] == b"\x01\x01" and a[8:20] == bytes(range(12)) and \
     int.from_bytes(a[26:28], "big") ^ 0x2112 == port and \
     bytes(x ^ y for x, y in zip(a[28:32], bytes.fromhex("2112a442"))) == bytes([198, 18, 0, 2])
sys.exit(0 if ok else 2)
PY
}
check "responder: no answer to malformed datagrams; a Binding request answered (32 B, our address)" silence

# ---- one run per NAT kind -----------------------------------------------------------------------
# reflexive LOG SERVER_PORT: the last reflexive endpoint the node logged for that STUN port.
reflexive() {
  { grep -o "STUN: reflexive endpoint [0-9.:]* via 198.18.0.2:$2 " "$1" || true; } | tail -n 1 | awk '{print $4}'
}
# ct_reply_port SPORT DPORT: the NATed source port conntrack in R shows for 192.168.5.2:SPORT -> S:DPORT.
ct_reply_port() {
  ip netns exec "$R" conntrack -L -p udp --orig-src 192.168.5.2 --orig-port-src "$1" \
    --orig-port-dst "$2" 2>/dev/null | grep -o 'dport=[0-9]*' | sed -n 2p | cut -d= -f2
}

stop_node() {
  [[ -r $WIT_TMP/node.pid ]] || return 0
  bg_stop "$(cat "$WIT_TMP/node.pid")"
  rm -f "$WIT_TMP/node.pid"
  wait_until 3 bash -c "! test -e '$WIT_RUN_DIR/$NIF.sock'" || rm -f "$WIT_RUN_DIR/$NIF.sock"
}

run_nat() { # run_nat NAME MASQUERADE-ARGS...
  local name=$1 log port r1 r2 c1 c2 kind
  shift
  stop_node  # a previous run that aborted
  ip netns exec "$R" iptables -t nat -F POSTROUTING
  ip netns exec "$R" conntrack -F >/dev/null 2>&1 || true
  ip netns exec "$R" iptables -t nat -A POSTROUTING -o vw -j MASQUERADE "$@"
  log="$WIT_TMP/node-$name.log"
  ip netns exec "$N" env LOG_LEVEL=verbose WARREN_STUN=198.18.0.2:3478,198.18.0.2:3479 \
    "$WG" -f "$NIF" >"$log" 2>&1 &
  echo $! >"$WIT_TMP/node.pid"
  wait_until 5 test -S "$WIT_RUN_DIR/$NIF.sock" || { not_ok "$name: node starts"; return 1; }
  ip netns exec "$N" wg set "$NIF" private-key "$(key_file node)" \
    peer "$(pub_of peer)" endpoint 198.18.0.2:51900 allowed-ips 10.98.0.2/32
  ip -n "$N" addr add 10.98.0.1/24 dev "$NIF"
  ip -n "$N" link set "$NIF" up
  check "$name: tunnel through the NAT works (ping 10.98.0.2)" ping_until "$N" 5 10.98.0.2
  port=$(ip netns exec "$N" wg show "$NIF" listen-port)
  check "$name: the node learns its mapping from both STUN ports" \
    wait_until 5 bash -c "grep -q 'via 198.18.0.2:3478 ' '$log' && grep -q 'via 198.18.0.2:3479 ' '$log'"
  r1=$(reflexive "$log" 3478)
  r2=$(reflexive "$log" 3479)
  c1=$(ct_reply_port "$port" 3478)
  c2=$(ct_reply_port "$port" 3479)
  log "$name: WireGuard port $port; reflexive $r1 / $r2; conntrack ports ${c1:-?} / ${c2:-?}"
  check_eq "$name: reflexive endpoint via 3478 = router WAN address + conntrack port of the WG socket's flow" \
    "198.18.0.1:$c1" "$r1"
  check_eq "$name: reflexive endpoint via 3479 = router WAN address + conntrack port of the WG socket's flow" \
    "198.18.0.1:$c2" "$r2"
  kind=$({ grep -o 'STUN: NAT mapping [a-z-]*' "$log" || true; } | tail -n 1 | awk '{print $4}')
  check_eq "$name: NAT mapping classified" "$EXPECT_KIND" "$kind"
  check "$name: tunnel still works after STUN (ping 10.98.0.2)" ping_until "$N" 3 10.98.0.2
  check "$name: wg show works unchanged (no STUN in the UAPI)" \
    bash -c "ip netns exec '$N' wg show '$NIF' | grep -q 'latest handshake' &&
             ! ip netns exec '$N' wg showconf '$NIF' | grep -qi stun"
  stop_node
}

EXPECT_KIND=endpoint-independent run_isolated "masquerade" run_nat masquerade
EXPECT_KIND=endpoint-dependent run_isolated "random-fully" run_nat random-fully --random-fully

stop_node
bg_stop "$SERVER_PID"
rm -f "/var/run/warren/$SIF.sock"
finish
