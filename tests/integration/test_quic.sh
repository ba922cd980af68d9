#!/usr/bin/env bash
# tests/integration/test_quic.sh - the QUIC transport (issue 15, docs/QUIC.md), in namespaces.
#
#   C1 (auto) ──veth 10.61.1.0/24──┐
#                                   R (router: drops every UDP datagram but port 443's) ──10.61.0.0/24── S
#   C2 (quic) ──veth 10.61.2.0/24──┘                                                                     │
#   C3 (WireGuard) ─────────────────────────────────────────────10.61.3.0/24─────────────────────────────┤
#   O (outside host) ───────────────────────────────────────────10.61.4.0/24─────────────────────────────┘
#
#   S: `warren server` with [quic] listen on 0.0.0.0:443 and [::]:443, [nat], full tunnel
#   (routes 0.0.0.0/0), client_to_client. Clients enroll with `warren join`; C2's config is
#   switched to `Transport = quic`; C1 probes UDP every 2 s (WARREN_QUIC_PROBE=2).
#
# Checks:
#   * C1 (auto, UDP blocked at R) ends on QUIC, reaches S and, through the full tunnel and S's
#     NAT, O; C3 stays on WireGuard; client-to-client traffic flows between C1 (QUIC) and C3
#     (WireGuard); `warren status` on both ends names the transport;
#   * garbage, truncated and oversized datagrams to S's QUIC port change nothing;
#   * `warren server revoke c2` cuts C2 (on QUIC) off at once, and C1 keeps working;
#   * kill -9 of the server and a restart: the QUIC client C1 learns it from the new server's
#     stateless reset and reconnects by itself;
#   * the firewall opened: C1 moves back to WireGuard.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_tools ip iptables ping python3 ncat

wit_init
require_impl warren
W=$WARREN_BIN/warren
S="${WIT_PREFIX}s" R="${WIT_PREFIX}r" O="${WIT_PREFIX}o"
C1="${WIT_PREFIX}c1" C2="${WIT_PREFIX}c2" C3="${WIT_PREFIX}c3"
SIF="${WIT_PREFIX}s"
for ns in "$S" "$R" "$O" "$C1" "$C2" "$C3"; do new_ns "$ns"; done
veth_pair "$S" sr "$R" rs
veth_pair "$R" r1 "$C1" eth0
veth_pair "$R" r2 "$C2" eth0
veth_pair "$S" s3 "$C3" eth0
veth_pair "$S" so "$O" eth0
add_addr "$S" sr 10.61.0.1/24
add_addr "$R" rs 10.61.0.2/24
add_addr "$R" r1 10.61.1.1/24
add_addr "$C1" eth0 10.61.1.2/24
add_addr "$R" r2 10.61.2.1/24
add_addr "$C2" eth0 10.61.2.2/24
add_addr "$S" s3 10.61.3.1/24
add_addr "$C3" eth0 10.61.3.2/24
add_addr "$S" so 10.61.4.1/24
add_addr "$O" eth0 10.61.4.2/24
ip -n "$R" route add default via 10.61.0.1
ip -n "$S" route add 10.61.1.0/24 via 10.61.0.2
ip -n "$S" route add 10.61.2.0/24 via 10.61.0.2
for c in "$C1" "$C2"; do ip -n "$c" route add default via "10.61.${c: -1}.1"; done
ip -n "$C3" route add default via 10.61.3.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
# The hotel network: UDP only to and from port 443; TCP (the control channel) passes.
ip netns exec "$R" iptables -A FORWARD -p udp --dport 443 -j ACCEPT
ip netns exec "$R" iptables -A FORWARD -p udp --sport 443 -j ACCEPT
ip netns exec "$R" iptables -A FORWARD -p udp -j DROP

# O answers each TCP connection with the address it came from.
bg_start outside "$O" ncat -l -k 10.61.4.2 8061 --sh-exec 'echo "from $NCAT_REMOTE_ADDR"'

mkdir -m 700 "$WIT_TMP/srv"
CONF="$WIT_TMP/srv/server.toml"
cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.62.0.1/24"

[clients]
routes = ["0.0.0.0/0"]
persistent_keepalive = 5
client_to_client = true

[nat]

[enrollment]
listen = "0.0.0.0:7443"
public_endpoint = "10.61.0.1:51820"

[quic]
listen = ["0.0.0.0:443", "[::]:443"]
EOF
start_server() {
  bg_start server "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
  SERVER_PID=$BG_PID
  wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" ||
    { sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20; return 1; }
}
start_server || fatal "server starts"
check "the server's QUIC transport listens on UDP 443" grep -q "QUIC transport on UDP port 443" "$WIT_TMP/server.err"
check_eq "[quic]: the server's interface MTU is capped at 1372" 1372 \
  "$(ip netns exec "$S" cat "/sys/class/net/$SIF/mtu")"

join() { # join NS NAME [ENV...]
  local ns=$1 name=$2
  shift 2
  mkdir -p -m 700 "$WIT_TMP/$name"
  "$W" server invite --config "$CONF" --name "$name" >"$WIT_TMP/$name.inv" 2>&1 || return 1
  ip netns exec "$ns" env LOG_LEVEL=verbose "$@" "$W" join --invite-file "$WIT_TMP/$name.inv" \
    --interface "${WIT_PREFIX}$name" --config-dir "$WIT_TMP/$name" --name "$name" \
    >"$WIT_TMP/join-$name.out" 2>&1 || { sed 's/^/#   /' "$WIT_TMP/join-$name.out" | tail -n 10; return 1; }
}
transport_of() { # transport_of NS IFNAME: the transport of the interface's first peer
  ip netns exec "$1" "$W" status --json "$2" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["peers"][0].get("transport", ""))'
}
is_transport() { [[ $(transport_of "$1" "$2") == "$3" ]]; }

join "$C3" c3 || fatal "c3 joins"
join "$C1" c1 WARREN_QUIC_PROBE=2 || fatal "c1 joins"
check "join recorded the server's QUIC endpoint and Transport = auto" \
  grep -qx '#@warren QuicEndpoint = 10.61.0.1:443' "$WIT_TMP/c1/${WIT_PREFIX}c1.conf"
check "the client's interface MTU is capped at 1372 (QUIC may carry it)" \
  test "$(ip netns exec "$C1" cat "/sys/class/net/${WIT_PREFIX}c1/mtu")" = 1372
join "$C2" c2 || fatal "c2 joins"
# C2 always on QUIC: Transport = quic, then up again with that file.
ip netns exec "$C2" "$W" down "${WIT_PREFIX}c2" >/dev/null 2>&1 || fatal "c2 down"
sed -i 's/^#@warren Transport = auto$/#@warren Transport = quic/' "$WIT_TMP/c2/${WIT_PREFIX}c2.conf"
ip netns exec "$C2" env LOG_LEVEL=verbose "$W" up "$WIT_TMP/c2/${WIT_PREFIX}c2.conf" \
  >"$WIT_TMP/up-c2.out" 2>&1 || { cat "$WIT_TMP/up-c2.out"; fatal "c2 up (Transport = quic)"; }

addr_of() { sed -n 's/^Address *= *\([0-9.]*\).*/\1/p' "$WIT_TMP/$1/${WIT_PREFIX}$1.conf"; }
A1=$(addr_of c1) A2=$(addr_of c2) A3=$(addr_of c3)

# ---- UDP blocked: auto ends on QUIC ------------------------------------------------------------------
t0=$(now)
check "C1 (auto, UDP blocked) reaches the server" ping_until "$C1" 20 10.62.0.1
log "C1: first reply $(elapsed "$t0" "$(now)") s after join"
check "C1's status: transport quic" is_transport "$C1" "${WIT_PREFIX}c1" quic
check "C2 (Transport = quic) reaches the server" ping_until "$C2" 10 10.62.0.1
check "C2's status: transport quic" is_transport "$C2" "${WIT_PREFIX}c2" quic
check "C3 (no firewall) reaches the server" ping_until "$C3" 10 10.62.0.1
check "C3's status: transport wireguard" is_transport "$C3" "${WIT_PREFIX}c3" wireguard
server_transport() { # server_transport ADDRESS: the transport of the client with that address
  ip netns exec "$S" "$W" status --json "$SIF" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    if any(a.startswith(sys.argv[1] + "/") for a in p["addresses"]):
        print(p.get("transport", ""))' "$1"
}
check_eq "the server's status: C1 quic, C2 quic, C3 wireguard" "quic quic wireguard" \
  "$(server_transport "$A1") $(server_transport "$A2") $(server_transport "$A3")"
check_eq "full tunnel over QUIC: C1 reaches the outside host through S's NAT" "from 10.61.4.1" \
  "$(ip netns exec "$C1" ncat -w 5 --recv-only 10.61.4.2 8061 </dev/null 2>&1)"
check "client to client: C1 (QUIC) → C3 (WireGuard)" ping_until "$C1" 10 "$A3"
check "client to client: C3 (WireGuard) → C2 (QUIC)" ping_until "$C3" 10 "$A2"
check "a full-size packet crosses QUIC (1344-byte ICMP payload, DF)" \
  ip netns exec "$C1" ping -n -q -c 2 -W 2 -M do -s 1344 10.62.0.1
too_big() {
  local out
  out=$(ip netns exec "$C1" ping -n -c 1 -W 2 -M do -s 1400 10.62.0.1 2>&1) && return 1
  grep -qi "message too long" <<<"$out" || { printf '%s\n' "$out"; return 1; }
}
check "a packet above the tunnel MTU is refused with EMSGSIZE, not lost" too_big

# ---- bad input to the QUIC port -----------------------------------------------------------------------
python3 - 10.61.3.1 443 <<'PYEOF'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = (sys.argv[1], int(sys.argv[2]))
for n in (1, 5, 40, 1200, 1452, 1500, 9000):
    for _ in range(20):
        s.sendto(os.urandom(n), to)
# A long-header Initial cut short, and one with a version nobody speaks.
s.sendto(bytes([0xc3, 0, 0, 0, 1, 8]) + os.urandom(8), to)
s.sendto(bytes([0xc3, 0x1a, 0x2a, 0x3a, 0x4a, 8]) + os.urandom(1300), to)
PYEOF
check "after garbage to UDP 443 the server still runs" kill -0 "$SERVER_PID"
check "after garbage to UDP 443 C1 still reaches the server over QUIC" ping_until "$C1" 5 10.62.0.1

# ---- revoke cuts a QUIC client off --------------------------------------------------------------------
check "C2 pings the server before the revoke" ping_until "$C2" 10 10.62.0.1
"$W" server revoke --config "$CONF" c2 >/dev/null 2>&1 || not_ok "revoke c2"
gone() { ping_fails "$C2" 10.62.0.1; }
t0=$(now)
check "revoke: C2 (QUIC) is cut off" wait_until 5 gone
log "C2 cut off $(elapsed "$t0" "$(now)") s after the revoke"
check "revoke: the server closed C2's QUIC connection" \
  wait_until 5 grep -q "QUIC: client .* disconnected (revoked or disabled)" "$WIT_TMP/server.err"
check "C1 keeps working" ping_until "$C1" 5 10.62.0.1

# ---- kill -9 of the server: the QUIC client reconnects ------------------------------------------------
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
t0=$(now)
start_server || fatal "server restarts after kill -9"
check "after kill -9 and a restart C1 (QUIC) reaches the server again" ping_until "$C1" 40 10.62.0.1
log "C1: traffic resumed $(elapsed "$t0" "$(now)") s after the restart"
check "C1's QUIC connection ended by the restarted server's stateless reset" \
  grep -q "QUIC: connection to 10.61.0.1:443 ended: stateless reset from the server" "$WIT_TMP/join-c1.out"
check "C1 is on QUIC again" is_transport "$C1" "${WIT_PREFIX}c1" quic

# ---- the firewall opens: auto moves back to WireGuard -------------------------------------------------
ip netns exec "$R" iptables -D FORWARD -p udp -j DROP
t0=$(now)
check "UDP open again: C1 moves back to WireGuard" wait_until 20 is_transport "$C1" "${WIT_PREFIX}c1" wireguard
log "C1 back on WireGuard $(elapsed "$t0" "$(now)") s after the firewall opened"
check "C1 reaches the server over WireGuard" ping_until "$C1" 5 10.62.0.1
check_eq "the server sees C1 on WireGuard" wireguard "$(server_transport "$A1")"

finish
