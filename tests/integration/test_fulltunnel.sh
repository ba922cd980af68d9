#!/usr/bin/env bash
# tests/integration/test_fulltunnel.sh - dual-stack full tunnel through `warren server`'s
# nftables table, on a host whose FORWARD policy is DROP (as Docker and ufw leave it).
#
#   client C ──(192.168.78.0/24)── server S ──(198.51.100.0/24, 2001:db8:100::/64)── outside O
#   tunnel 10.78.0.0/24, fd78::/64; [clients] routes = 0.0.0.0/0, ::/0; [nat] (defaults)
#
# O has no route to the tunnel prefixes, so every answer needs S's masquerade (NAT66 for IPv6).
# Checks:
#   * the enrollment listener on [::] takes the client's IPv4 connection (dual-stack); metrics
#     answer on both addresses of a list (127.0.0.1, ::1);
#   * `warren join` in C gets the full tunnel; C pings O over IPv4 and IPv6 and opens one TCP
#     connection each (ncat), which O sees coming from S's outside addresses (masqueraded);
#   * S's `iptables -P FORWARD DROP` and `ip6tables -P FORWARD DROP` stay; the server's accept
#     rules (tag warren:IFNAME) are what lets the traffic through;
#   * `nft list table inet warren_IFNAME` shows the masquerade rules of both families;
#   * after the server stops: the table and the accept rules are gone, both forwarding sysctls
#     have their old values, the DROP policies are untouched;
#   * a second server with a global IPv6 prefix and [nat] ipv6 = "routed" (O routes the prefix
#     to S): no IPv6 masquerade rule, and O sees the client's own IPv6 address; after its
#     kill -9 everything stays, and `warren server cleanup` removes the table and the accept
#     rules and restores both sysctls from the journal.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip ping nft iptables ip6tables ncat
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"

wit_init
W=$WARREN_BIN/warren
C="${WIT_PREFIX}c" S="${WIT_PREFIX}s" O="${WIT_PREFIX}o"
SIF="${WIT_PREFIX}s" CIF="${WIT_PREFIX}c"
CONF="$WIT_TMP/srv/server.toml"
mkdir -m 700 "$WIT_TMP/srv" "$WIT_TMP/cl"

# ---- topology ----------------------------------------------------------------------------------------
new_ns "$C"
new_ns "$S"
new_ns "$O"
veth_pair "$C" vc "$S" vsc
add_addr "$C" vc 192.168.78.2/24
add_addr "$S" vsc 192.168.78.1/24
veth_pair "$S" vso "$O" voo
add_addr "$S" vso 198.51.100.1/24
add_addr "$S" vso 2001:db8:100::1/64
add_addr "$O" voo 198.51.100.2/24
add_addr "$O" voo 2001:db8:100::2/64
# S routes nothing to C but the tunnel; C's only way out is the tunnel.
ip netns exec "$S" iptables -P FORWARD DROP
ip netns exec "$S" ip6tables -P FORWARD DROP
fwd4() { ip netns exec "$S" cat /proc/sys/net/ipv4/ip_forward; }
fwd6() { ip netns exec "$S" cat /proc/sys/net/ipv6/conf/all/forwarding; }
FWD4_BEFORE=$(fwd4) FWD6_BEFORE=$(fwd6)

# O answers each TCP connection with the address it came from.
bg_start outside4 "$O" ncat -l -k 198.51.100.2 8078 --sh-exec 'echo "from $NCAT_REMOTE_ADDR"'
bg_start outside6 "$O" ncat -6 -l -k 2001:db8:100::2 8078 --sh-exec 'echo "from $NCAT_REMOTE_ADDR"'

cat >"$CONF" <<EOF
[interface]
name = "$SIF"
address_v4 = "10.78.0.1/24"
address_v6 = "fd78::1/64"

[clients]
routes = ["0.0.0.0/0", "::/0"]
persistent_keepalive = 0

[nat]

[enrollment]
listen = "[::]:7443"
public_endpoint = "192.168.78.1:51820"

[metrics]
listen = ["127.0.0.1:9586", "[::1]:9586"]
EOF

# ---- server and client -------------------------------------------------------------------------------
bg_start server "$S" "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" || {
  sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20
  fatal "server starts"
}
ok "server starts with [nat] on a host whose FORWARD policy is DROP"
table=$(ip netns exec "$S" nft list table inet "warren_$SIF" 2>&1) || true
check "nft table inet warren_$SIF: IPv4 masquerade of the tunnel prefix" \
  grep -qE "ip saddr 10\.78\.0\.0/24 oifname != \"$SIF\" counter packets [0-9]+ bytes [0-9]+ masquerade" <<<"$table"
check "nft table inet warren_$SIF: NAT66 masquerade of the tunnel prefix" \
  grep -qE "ip6 saddr fd78::/64 oifname != \"$SIF\" counter packets [0-9]+ bytes [0-9]+ masquerade" <<<"$table"
check_eq "both forwarding sysctls are 1" "1 1" "$(fwd4) $(fwd6)"

"$W" server invite --config "$CONF" --name c >"$WIT_TMP/inv" 2>"$WIT_TMP/inv.err" || fatal "invite: $(cat "$WIT_TMP/inv.err")"
ip netns exec "$C" "$W" join --invite-file "$WIT_TMP/inv" --interface "$CIF" \
  --config-dir "$WIT_TMP/cl" --name c >"$WIT_TMP/join.out" 2>&1 || {
  sed 's/^/#   /' "$WIT_TMP/join.out" | tail -n 10
  fatal "warren join"
}
ok "enrollment over IPv4 to a server listening on [::] (dual-stack)"
metrics() { ip netns exec "$S" ncat -w 3 "$1" 9586 <<<$'GET /metrics HTTP/1.0\r\n\r\n' | grep -q '^warren_'; }
both_metrics() { metrics 127.0.0.1 && metrics ::1; }
check "metrics on both listed addresses (127.0.0.1, ::1)" both_metrics
check "the client got the full tunnel (0.0.0.0/0, ::/0)" \
  grep -qE '^AllowedIPs *= *0\.0\.0\.0/0, *::/0' "$WIT_TMP/cl/$CIF.conf"

reach() { # reach ADDR: on failure, show what S's forwarding looked like
  ping_until "$C" 10 "$1" && return 0
  ip netns exec "$S" nft list table inet "warren_$SIF"
  ip netns exec "$S" iptables -S FORWARD
  ip netns exec "$S" ip6tables -S FORWARD
  return 1
}
check "IPv4: the client pings the outside host through the tunnel" reach 198.51.100.2
check "IPv6: the client pings the outside host through the tunnel" reach 2001:db8:100::2
tcp() { ip netns exec "$C" ncat -w 3 --recv-only "$@" 8078 </dev/null; }
check_eq "IPv4 TCP: O sees the connection from S's address (masqueraded)" "from 198.51.100.1" \
  "$(tcp 198.51.100.2 2>&1)"
check_eq "IPv6 TCP: O sees the connection from S's address (NAT66)" "from 2001:db8:100::1" \
  "$(tcp -6 2001:db8:100::2 2>&1)"
drop_policies() {
  ip netns exec "$S" iptables -S FORWARD | grep -qx -- '-P FORWARD DROP' &&
    ip netns exec "$S" ip6tables -S FORWARD | grep -qx -- '-P FORWARD DROP'
}
check "the FORWARD policies are still DROP" drop_policies
ours() { ip netns exec "$S" "$1" -S FORWARD | grep -c "warren:$SIF" || true; }
check_eq "the accept rules are the server's: one in, one back, per family" "2 2" \
  "$(ours iptables) $(ours ip6tables)"

# ---- stop: everything restored ---------------------------------------------------------------------
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
check_eq "server exits 0 on SIGTERM" 0 "$rc"
check_not "the nft table is gone" ip netns exec "$S" nft list table inet "warren_$SIF"
check_eq "no accept rule of the server is left" "0 0" "$(ours iptables) $(ours ip6tables)"
check_eq "forwarding sysctls restored" "$FWD4_BEFORE $FWD6_BEFORE" "$(fwd4) $(fwd6)"
check "the FORWARD policies are still DROP" drop_policies

# ---- routed IPv6: the clients' own addresses on the outside --------------------------------------
# A second server (own state) with a global prefix and ipv6 = "routed"; O routes that prefix to S.
ip netns exec "$C" "$W" down "$CIF" >/dev/null 2>&1 || not_ok "warren down $CIF"
mkdir -m 700 "$WIT_TMP/srv2" "$WIT_TMP/cl2"
CONF2="$WIT_TMP/srv2/server.toml"
sed -e 's|^address_v6 = .*|address_v6 = "2001:db8:78::1/64"|' -e 's|^\[nat\]$|[nat]\nipv6 = "routed"|' \
  -e '/^\[metrics\]/,$d' "$CONF" >"$CONF2"
ip -n "$O" -6 route add 2001:db8:78::/64 via 2001:db8:100::1
bg_start server2 "$S" "$W" server --config "$CONF2"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server2.err" || {
  sed 's/^/#   /' "$WIT_TMP/server2.err" | tail -n 20
  fatal "server with ipv6 = routed starts"
}
table=$(ip netns exec "$S" nft list table inet "warren_$SIF" 2>&1) || true
check "routed: IPv4 still masqueraded" grep -q "ip saddr 10.78.0.0/24" <<<"$table"
check_not "routed: no IPv6 masquerade rule" grep -q "ip6 saddr" <<<"$table"
"$W" server invite --config "$CONF2" --name c2 >"$WIT_TMP/inv2" 2>&1 || fatal "invite 2"
ip netns exec "$C" "$W" join --invite-file "$WIT_TMP/inv2" --interface "${CIF}r" \
  --config-dir "$WIT_TMP/cl2" --name c2 >"$WIT_TMP/join2.out" 2>&1 || {
  sed 's/^/#   /' "$WIT_TMP/join2.out" | tail -n 10
  fatal "warren join (routed)"
}
CLIENT6=$(sed -n 's/^Address *= *//p' "$WIT_TMP/cl2/${CIF}r.conf" | tr ',' '\n' | tr -d ' ' | grep : | cut -d/ -f1)
check "routed IPv6: the client pings the outside host" reach 2001:db8:100::2
check_eq "routed IPv6 TCP: O sees the client's own address" "from $CLIENT6" \
  "$(tcp -6 2001:db8:100::2 2>&1)"
# kill -9: the journal keeps everything; `warren server cleanup` undoes it from the journal.
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
table_state() { ip netns exec "$S" nft list table inet "warren_$SIF" >/dev/null 2>&1 && echo present || echo absent; }
check_eq "after kill -9: table, accept rules and forwarding stay" "present 2 2 1 1" \
  "$(table_state) $(ours iptables) $(ours ip6tables) $(fwd4) $(fwd6)"
out=$(ip netns exec "$S" "$W" server cleanup --config "$CONF2" 2>&1) && rc=0 || rc=$?
check_eq "server cleanup after kill -9: exit 0, table and rules gone, sysctls restored" \
  "0 absent 0 0 $FWD4_BEFORE $FWD6_BEFORE" \
  "$rc $(table_state) $(ours iptables) $(ours ip6tables) $(fwd4) $(fwd6)"
[[ $rc == 0 ]] || sed 's/^/#   /' <<<"$out"
rm -f "/var/run/warren/$SIF.sock" "/var/run/wireguard/$SIF.sock"

finish
