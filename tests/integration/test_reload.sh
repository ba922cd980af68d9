#!/usr/bin/env bash
# tests/integration/test_reload.sh - live reload of `warren server` (SIGHUP, `warren server
# reload`) and the settings session that brings changed [clients] settings to `warren up`.
#
# Hosts: a server S and two clients C, D on one bridge in S (192.168.78.0/24). C joins first
# and stays up; D joins after the reload (it proves the new reservation is the server's).
# Checks, in order:
#   * `warren server reload` with no server running: exit 1, says so;
#   * C is up and reaches the server; its settings session is established;
#   * the config gains a reservation (d1 = 10.78.0.77) and a [clients] route (10.99.0.0/24);
#     SIGHUP: the log lists both as applied; the same server process and interface, C's peer
#     keeps its session (its latest handshake did not change: no new handshake);
#   * C's routing table gets 10.99.0.0/24 on its tunnel within 5 s, without re-joining (the
#     daemon's PID is unchanged);
#   * D joins with invite name d1 and gets the reserved 10.78.0.77;
#   * client_to_client = true by `warren server reload`: C cannot reach D before, can after;
#   * `warren server reload` with a listen_port change: exit 0, the change is reported as not
#     applied, the UDP port stays;
#   * a bad config: `warren server reload` exits 1 with the file:line:key message; SIGHUP logs
#     the refusal; nothing changed (route, port, process).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"

wit_init
W=$WARREN_BIN/warren
S="${WIT_PREFIX}s" C="${WIT_PREFIX}c" D="${WIT_PREFIX}d"
SIF="${WIT_PREFIX}s" CIF="${WIT_PREFIX}c" DIF="${WIT_PREFIX}d"
CONF="$WIT_TMP/srv/server.toml"
mkdir -m 700 "$WIT_TMP/srv" "$WIT_TMP/cl" "$WIT_TMP/dl"

write_config() { # write_config PORT EXTRA_ROUTE RESERVATION_LINE [CLIENT_TO_CLIENT]
  cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = $1
address_v4 = "10.78.0.1/24"

[pool]
strategy = "static-or-dynamic"
[pool.reservations]
$3

[clients]
routes = ["10.78.0.0/24"$2]
persistent_keepalive = 5
client_to_client = ${4:-false}

[enrollment]
listen = "192.168.78.1:7443"
public_endpoint = "192.168.78.1:51820"
EOF
}

# ---- topology ------------------------------------------------------------------------------------
new_ns "$S"
ip -n "$S" link add br0 type bridge
ip -n "$S" link set br0 up
add_addr "$S" br0 192.168.78.1/24
n=10
for ns in "$C" "$D"; do
  new_ns "$ns"
  n=$((n + 1))
  ip -n "$ns" link add vc type veth peer name "vb$n" netns "$S"
  ip -n "$S" link set "vb$n" master br0 up
  ip -n "$ns" link set vc up
  add_addr "$ns" vc "192.168.78.$n/24"
done

write_config 51820 "" 'c1 = ["10.78.0.50"]'
out=$("$W" server reload --config "$CONF" 2>&1) && rc=0 || rc=$?
check "reload without a running server: exit 1, says no server runs" \
  bash -c "[[ $rc == 1 ]] && grep -q 'no server is running for $SIF' <<<'$out'"

bg_start server "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" || fatal "server starts"
ok "server starts"

"$W" server invite --config "$CONF" --name c1 --expires 1h >"$WIT_TMP/inv_c" 2>/dev/null
"$W" server invite --config "$CONF" --name d1 --expires 1h >"$WIT_TMP/inv_d" 2>/dev/null
ip netns exec "$C" env LOG_LEVEL=verbose "$W" join --invite-file "$WIT_TMP/inv_c" --interface "$CIF" \
  --config-dir "$WIT_TMP/cl" >"$WIT_TMP/join_c.out" 2>&1 || fatal "C joins: $(tail -n 3 "$WIT_TMP/join_c.out")"
check "join writes the control pin into the config" grep -q '^#@warren ControlPin = [0-9a-f]\{64\}$' "$WIT_TMP/cl/$CIF.conf"
check "C reaches the server's tunnel address" ping_until "$C" 10 10.78.0.1
CLIENT_PID=$(cat "/var/run/warren/$CIF.pid")
CPUB=$(wg show "$CIF" public-key)
handshake() { wg show "$SIF" latest-handshakes | awk -v k="$CPUB" '$1 == k { print $2 }'; }
HS_BEFORE=$(handshake)
check "the server has a handshake with C" test "${HS_BEFORE:-0}" -gt 0
IFINDEX_BEFORE=$(ip -n "$S" -o link show "$SIF" | cut -d: -f1)

# ---- SIGHUP: a reservation and a [clients] route, live -------------------------------------------
write_config 51820 ', "10.99.0.0/24"' $'c1 = ["10.78.0.50"]\nd1 = ["10.78.0.77"]'
kill -HUP "$SERVER_PID"
check "SIGHUP: the new reservation is applied" \
  wait_until 5 grep -qF 'Reload (SIGHUP): applied: pool.reservations.d1: (none) -> [10.78.0.77]' "$WIT_TMP/server.err"
check "SIGHUP: the new route is applied" \
  grep -qF 'Reload (SIGHUP): applied: clients.routes: [10.78.0.0/24] -> [10.78.0.0/24, 10.99.0.0/24]' "$WIT_TMP/server.err"
check "C's routing table gets 10.99.0.0/24 on its tunnel within 5 s" \
  wait_until 5 bash -c "ip -n '$C' route show 10.99.0.0/24 | grep -q 'dev $CIF'"
check "C's WireGuard peer routes the new prefix" bash -c "wg show '$CIF' allowed-ips | grep -q '10.99.0.0/24'"
check_eq "the same server process runs" "0" "$(kill -0 "$SERVER_PID" 2>/dev/null; echo $?)"
check_eq "the same server interface" "$IFINDEX_BEFORE" "$(ip -n "$S" -o link show "$SIF" | cut -d: -f1)"
check_eq "C's session on the server carries on (no new handshake)" "$HS_BEFORE" "$(handshake)"
check_eq "C did not re-join (same daemon)" "$CLIENT_PID" "$(cat "/var/run/warren/$CIF.pid")"
check "C still reaches the server" ping_until "$C" 5 10.78.0.1

ip netns exec "$D" "$W" join --invite-file "$WIT_TMP/inv_d" --interface "$DIF" \
  --config-dir "$WIT_TMP/dl" >"$WIT_TMP/join_d.out" 2>&1 || not_ok "D joins: $(tail -n 3 "$WIT_TMP/join_d.out")"
check "D (d1) gets the reservation added by the reload" grep -q '^Address = 10.78.0.77/32' "$WIT_TMP/dl/$DIF.conf"

# ---- client_to_client, live: isolation off and forwarding on ---------------------------------------
check "isolation on: C cannot reach D" ping_fails "$C" 10.78.0.77
write_config 51820 ', "10.99.0.0/24"' $'c1 = ["10.78.0.50"]\nd1 = ["10.78.0.77"]' true
out=$("$W" server reload --config "$CONF" 2>&1) && rc=0 || rc=$?
check "reload with client_to_client = true: exit 0, applied" \
  bash -c "[[ $rc == 0 ]] && grep -qF 'applied: clients.client_to_client: false -> true' <<<'$out'"
check "C reaches D through the server now" ping_until "$C" 5 10.78.0.77

# ---- what cannot change live is reported --------------------------------------------------------
write_config 51821 ', "10.99.0.0/24"' $'c1 = ["10.78.0.50"]\nd1 = ["10.78.0.77"]' true
printf '[metrics]\nlisten = "127.0.0.1:9587"\n' >>"$CONF"
out=$("$W" server reload --config "$CONF" 2>&1) && rc=0 || rc=$?
check "reload with a new listen_port: exit 0, reported as not applied" \
  bash -c "[[ $rc == 0 ]] && grep -qF 'not applied: interface.listen_port: 51820 -> 51821 needs a restart; still 51820' <<<'$out'"
check "the UDP port stays 51820" bash -c "wg show '$SIF' listen-port | grep -qx 51820"
metrics() { # the metrics endpoint in S answers with the peers
  ip netns exec "$S" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9587 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
    grep -q '^wireguard_received_bytes_total{.*friendly_name="c1"'
}
check "the metrics endpoint added by the same reload answers" metrics

# ---- a bad config changes nothing ----------------------------------------------------------------
write_config 51820 ', "10.99.0.0/24"' 'c1 = ["10.78.0.50"]' true
printf '[nat]\nout_interface = 5\n' >>"$CONF"
BAD_LINE=$(grep -n '^out_interface = 5' "$CONF" | cut -d: -f1)
out=$("$W" server reload --config "$CONF" 2>&1) && rc=0 || rc=$?
check "reload with a bad config: exit 1, file:line:key message" \
  bash -c "[[ $rc == 1 ]] && grep -qF '$CONF:$BAD_LINE:' <<<'$out' && grep -qF 'nat.out_interface' <<<'$out'"
kill -HUP "$SERVER_PID"
check "SIGHUP with the bad config: refused, nothing changed (logged)" \
  wait_until 5 grep -q "Reload (SIGHUP) refused, nothing changed: $CONF:$BAD_LINE:.*nat.out_interface" "$WIT_TMP/server.err"
check "the reservation of d1 is still in effect" \
  bash -c "'$W' server reload --config /dev/null >/dev/null 2>&1; ! grep -q 'pool.reservations.d1: \\[10.78.0.77\\] -> (none)' '$WIT_TMP/server.err'"
check "C keeps its route" bash -c "ip -n '$C' route show 10.99.0.0/24 | grep -q 'dev $CIF'"
check_eq "the same server process still runs" "0" "$(kill -0 "$SERVER_PID" 2>/dev/null; echo $?)"

bg_stop "$SERVER_PID"
finish
