#!/usr/bin/env bash
# tests/integration/test_relaypath.sh - a node's relay path (docs/MESH.md, "Relay path of a node").
#
#   A (warren-wg, 10.98.1.2) ──veth── S (router, warren server: relay on :7444) ──veth── B (10.98.2.2)
#   A and B are WireGuard peers of each other (wg set, endpoints 10.98.x.2:51820), tunnel
#   10.99.0.1 ⇄ 10.99.0.2, both with WARREN_RELAY=<S>:7444, WARREN_RELAY_PIN, and
#   WARREN_RELAY_DIRECT_RETRY=2. Keys are enrolled at S with `warren server export`.
#   B sits behind a firewall that drops UDP to the relay's port (iptables OUTPUT in B), so A
#   reaches the relay over UDP and B over TCP/TLS; the relay carries A ⇄ B across the two.
#
# Checks:
#   * A's relay link is UDP (stateless challenge, udp-auth); B's UDP gets no answer and B falls
#     back to TCP/TLS;
#   * UDP between A and B dropped at S (iptables FORWARD): ping A → B works through the relay;
#     `wg show` keeps working and shows no endpoint for the relayed peer; the relay forwards;
#   * UDP unblocked: both endpoints return to the direct ones, and the relay's forwarded-frame
#     counter stops growing while traffic flows.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_tools ip openssl python3 wg iptables

wit_init
require_impl warren
W=$WARREN_BIN/warren
S="${WIT_PREFIX}s" A="${WIT_PREFIX}a" B="${WIT_PREFIX}b"
SIF="${WIT_PREFIX}s" AIF="${WIT_PREFIX}a" BIF="${WIT_PREFIX}b"
new_ns "$S"
new_ns "$A"
new_ns "$B"
veth_pair "$S" sa "$A" as
veth_pair "$S" sb "$B" bs
add_addr "$S" sa 10.98.1.1/24
add_addr "$A" as 10.98.1.2/24
add_addr "$S" sb 10.98.2.1/24
add_addr "$B" bs 10.98.2.2/24
ip -n "$A" route add default via 10.98.1.1
ip -n "$B" route add default via 10.98.2.1
ip netns exec "$S" sysctl -qw net.ipv4.ip_forward=1

mkdir -m 700 "$WIT_TMP/srv"
CONF="$WIT_TMP/srv/server.toml"
cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.97.0.1/24"

[enrollment]
listen = "0.0.0.0:7443"
public_endpoint = "10.98.1.1:51820"

[mesh]
relay_port = 7444
EOF
bg_start server "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" ||
  { sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20; fatal "server starts"; }
PIN=$(openssl x509 -in "$WIT_TMP/srv/$SIF-control.crt" -outform DER | sha256sum | cut -d' ' -f1)
for n in a b; do
  (umask 077 && "$W" server export --config "$CONF" "relaypath-$n" >"$WIT_TMP/$n.conf" 2>"$WIT_TMP/export-$n.err") ||
    { cat "$WIT_TMP/export-$n.err"; fatal "export $n"; }
  (umask 077 && sed -n 's/^PrivateKey = //p' "$WIT_TMP/$n.conf" >"$WIT_KEYS/$n.key")
  wg pubkey <"$WIT_KEYS/$n.key" >"$WIT_KEYS/$n.pub"
done
PA=$(pub_of a) PB=$(pub_of b)

# A bad WARREN_RELAY_PIN stops start-up with a message naming it.
rc=0
bad_out=$(ip netns exec "$A" env WARREN_RELAY=10.98.1.1:7444 WARREN_RELAY_PIN=nothex \
  "$WARREN_BIN/warren-wg" -f "${WIT_PREFIX}x" 2>&1) || rc=$?
bad_pin_refused() { [[ $rc != 0 ]] && grep -qi 'invalid WARREN_RELAY_PIN: "nothex"' <<<"$bad_out"; }
check "a bad WARREN_RELAY_PIN stops warren-wg, naming it" bad_pin_refused

# B's firewall: no UDP to the relay's port (WireGuard's own UDP to A is left alone).
ip netns exec "$B" iptables -A OUTPUT -p udp --dport 7444 -j DROP
export WARREN_RELAY=10.98.1.1:7444 WARREN_RELAY_PIN=$PIN WARREN_RELAY_DIRECT_RETRY=2 LOG_LEVEL=verbose
start_wg "$A" "$AIF" warren || fatal "warren-wg A"
WARREN_RELAY=10.98.2.1:7444 start_wg "$B" "$BIF" warren || fatal "warren-wg B"
unset WARREN_RELAY WARREN_RELAY_PIN WARREN_RELAY_DIRECT_RETRY LOG_LEVEL
ip netns exec "$A" wg set "$AIF" private-key "$WIT_KEYS/a.key" listen-port 51820 \
  peer "$PB" endpoint 10.98.2.2:51820 allowed-ips 10.99.0.2/32
ip netns exec "$B" wg set "$BIF" private-key "$WIT_KEYS/b.key" listen-port 51820 \
  peer "$PA" endpoint 10.98.1.2:51820 allowed-ips 10.99.0.1/32
add_addr "$A" "$AIF" 10.99.0.1/24
add_addr "$B" "$BIF" 10.99.0.2/24
link_up "$A" "$AIF"
link_up "$B" "$BIF"

forwarded() {
  ip netns exec "$S" "$W" status --json "$SIF" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["relay"]["forwarded_frames"])'
}

# ---- direct UDP blocked: the relay carries the traffic ------------------------------------------
ip netns exec "$S" iptables -I FORWARD -p udp -j DROP
check "A and B connect to the relay" \
  wait_until 10 bash -c "grep -q 'relay 10.98.1.1:7444: connected' '$WIT_TMP/$AIF.warren.log' &&
                         grep -q 'relay 10.98.2.1:7444: connected' '$WIT_TMP/$BIF.warren.log'"
check "A reaches the relay over UDP" grep -q 'relay 10.98.1.1:7444: connected over UDP' "$WIT_TMP/$AIF.warren.log"
check "B's UDP to the relay gets no answer: B falls back to TCP/TLS" \
  bash -c "grep -q 'relay 10.98.2.1:7444: over UDP: no answer over UDP; trying TCP/TLS' '$WIT_TMP/$BIF.warren.log' &&
           grep -q 'relay 10.98.2.1:7444: connected over TCP/TLS' '$WIT_TMP/$BIF.warren.log'"
t0=$SECONDS
check "UDP blocked: ping A → B works through the relay (A over UDP, B over TCP/TLS)" ping_until "$A" 20 10.99.0.2
log "first reply after $((SECONDS - t0)) s"
check "A's log: B moved to the relay" grep -q 'relay: peer .* now through the relay' "$WIT_TMP/$AIF.warren.log"
f0=$(forwarded)
check "the relay forwarded frames ($f0)" test "$f0" -gt 0
relayed_shown() { [[ $(ip netns exec "$A" wg show "$AIF" endpoints) == "$PB	(none)" ]]; }
# (The direct path is tried every 2 s, so the endpoint is direct for a moment now and then.)
check "wg show works and shows the relayed peer's endpoint as (none)" wait_until 5 relayed_shown
check "UDP blocked: ping B → A works too" ping_until "$B" 5 10.99.0.1

# ---- unblocked: back to the direct path ---------------------------------------------------------
ip netns exec "$S" iptables -D FORWARD -p udp -j DROP
ip netns exec "$A" ping -n -q -i 0.2 -w 25 10.99.0.2 >/dev/null 2>&1 &
PING_PID=$!
WIT_PIDS+=("$PING_PID")
direct_both() {
  [[ $(ip netns exec "$A" wg show "$AIF" endpoints) == "$PB	10.98.2.2:51820" ]] &&
    [[ $(ip netns exec "$B" wg show "$BIF" endpoints) == "$PA	10.98.1.2:51820" ]]
}
t0=$SECONDS
check "UDP unblocked: both peers back on their direct endpoints" wait_until 15 direct_both
log "direct again after $((SECONDS - t0)) s"
f1=$(forwarded)
sleep 2  # a window of traffic (5 pings a second) that must not touch the relay
f2=$(forwarded)
check_eq "relay's forwarded frames stop growing while A pings B directly" "$f1" "$f2"
check "still direct after the window" direct_both
kill_pid "$PING_PID"

finish
