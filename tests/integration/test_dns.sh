#!/usr/bin/env bash
# tests/integration/test_dns.sh - the server's tunnel resolver ([dns], docs/SERVER.md) with the
# README's example `[clients] dns = [SERVER TUNNEL ADDRESS]`.
#
# Hosts: a server S (tunnel 10.66.0.1/24, fd66::1/64), two `warren join` clients A and B on a
# bridge in S, and an "outside" host O (198.51.100.2) running dnsmasq with one test record
# (www.outside.test). S's own /etc/resolv.conf (/etc/netns/S/resolv.conf; the host's is never
# touched) names the server's tunnel address first — which must be skipped, not looped to — and
# then O. The clients' resolv.conf are written by `warren join` from the pushed `dns` line.
# Checks:
#   * `warren server check` and the server say it serves DNS on its tunnel addresses, forwarding
#     to O only;
#   * from A, through the resolver its resolv.conf names (no @server): bob.warren.internal gives
#     B's IPv4 and IPv6 tunnel addresses, over UDP and TCP; www.outside.test gives O's record
#     (forwarded), over UDP and TCP and over the IPv6 tunnel address; a TXT record too large for
#     UDP arrives whole (TC over UDP, dig asks over TCP, the server asks O over TCP); the reverse
#     name of B's address is bob.warren.internal;
#   * an unknown name under the domain is NXDOMAIN; class CH is REFUSED;
#   * no open resolver on the public side: O gets no answer on the server's public address, nor
#     on the tunnel address when it routes it through S;
#   * a revoked client's name is NXDOMAIN within 2 s;
#   * SIGHUP reads the upstreams from resolv.conf again;
#   * with port 53 taken by another program, a server whose resolver is on by default (not
#     `enabled = true`) still starts, with a warning saying why it answers no DNS.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping dig dnsmasq
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"

wit_init
W=$WARREN_BIN/warren
S="${WIT_PREFIX}s" O="${WIT_PREFIX}o" A="${WIT_PREFIX}a" B="${WIT_PREFIX}b"
SIF="${WIT_PREFIX}s"
CONF="$WIT_TMP/srv/server.toml"
mkdir -m 700 "$WIT_TMP/srv" "$WIT_TMP/cl"
# set +e first: under errexit the '(exit $rc)' that hands wit_on_exit the status would end the
# trap there (as in test_client.sh).
trap 'rc=$?; set +e; rm -rf -- "/etc/netns/$S" "/etc/netns/$A" "/etc/netns/$B"; rm -f -- /var/lib/warren/"$A".* /var/lib/warren/"$B".*; (exit $rc); wit_on_exit' EXIT

# ---- topology --------------------------------------------------------------------------------------
for ns in "$S" "$O" "$A" "$B"; do new_ns "$ns"; done
ip -n "$S" link add br0 type bridge
ip -n "$S" link set br0 up
add_addr "$S" br0 192.168.66.1/24
veth_pair "$S" vso "$O" voo
add_addr "$S" vso 198.51.100.1/24
add_addr "$O" voo 198.51.100.2/24
i=0
for ns in "$A" "$B"; do
  i=$((i + 1))
  ip -n "$ns" link add vc type veth peer name "vb$i" netns "$S"
  ip -n "$S" link set "vb$i" master br0 up
  ip -n "$ns" link set vc up
  add_addr "$ns" vc "192.168.66.$((10 + i))/24"
  mkdir -p "/etc/netns/$ns"
  printf 'nameserver 127.0.0.1\n' >"/etc/netns/$ns/resolv.conf"
done
mkdir -p "/etc/netns/$S"
printf '# the server itself first: skipped, never forwarded to\nnameserver 10.66.0.1\nnameserver 198.51.100.2\n' \
  >"/etc/netns/$S/resolv.conf"

# The outside resolver: two records, nothing else (no upstream of its own, no /etc/hosts). The
# TXT record (6 strings of 250 bytes) is larger than the 1232 bytes an EDNS query over UDP takes.
big_txt=$(for i in 1 2 3 4 5 6; do printf ',%s' "$(printf "$i%.0s" $(seq 250))"; done)
bg_start dnsmasq "$O" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --listen-address=198.51.100.2 --bind-interfaces --user=root --pid-file= \
  --host-record=www.outside.test,198.51.100.77 "--txt-record=big.outside.test$big_txt"
wait_until 5 ip netns exec "$O" dig +time=1 +tries=1 +short @198.51.100.2 www.outside.test >/dev/null ||
  fatal "dnsmasq answers in O: $(cat "$WIT_TMP/dnsmasq.err")"

cat >"$CONF" <<EOF
[interface]
name = "$SIF"
address_v4 = "10.66.0.1/24"
address_v6 = "fd66::1/64"

[clients]
dns = ["10.66.0.1"]
persistent_keepalive = 5

[enrollment]
listen = "192.168.66.1:7443"
public_endpoint = "192.168.66.1:51820"
EOF

check "server check: the resolver, forwarding to O only (its own address skipped)" bash -c \
  "ip netns exec '$S' '$W' server check --config '$CONF' | grep -qxF 'ok: DNS on the tunnel address(es) port 53: *.warren.internal from the registry, other names to 198.51.100.2:53'"
bg_start server "$S" "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" || fatal "server starts: $(tail -n 5 "$WIT_TMP/server.err")"
check "DNS on both tunnel addresses, forwarding to O only (its own address skipped)" \
  grep -qF "DNS on 10.66.0.1, fd66::1 port 53: *.warren.internal from the registry, other names to 198.51.100.2:53" \
  "$WIT_TMP/server.err"

for n in alice bob; do
  "$W" server invite --config "$CONF" --name "$n" --expires 1h >"$WIT_TMP/inv-$n"
done
ip netns exec "$A" "$W" join --invite-file "$WIT_TMP/inv-alice" --interface "$A" \
  --config-dir "$WIT_TMP/cl" >"$WIT_TMP/join-a.out" 2>&1 || fatal "join alice: $(cat "$WIT_TMP/join-a.out")"
ip netns exec "$B" "$W" join --invite-file "$WIT_TMP/inv-bob" --interface "$B" \
  --config-dir "$WIT_TMP/cl" >"$WIT_TMP/join-b.out" 2>&1 || fatal "join bob: $(cat "$WIT_TMP/join-b.out")"
addr_of() { sed -n 's/^Address *= *//p' "$WIT_TMP/cl/$1.conf" | tr -d ' ' | tr ',' '\n' | grep "$2" | cut -d/ -f1; }
B4=$(addr_of "$B" '\.') B6=$(addr_of "$B" ':')
log "bob: $B4 $B6"
check "join wrote the pushed resolver into A's resolv.conf" grep -q '^nameserver 10.66.0.1' "/etc/netns/$A/resolv.conf"
ping_until "$A" 10 10.66.0.1 >/dev/null || fatal "A reaches the server's tunnel address"

# dig in A with no @server: the resolver of A's resolv.conf, as any program there would use.
qa() { ip netns exec "$A" dig +time=2 +tries=1 "$@"; }
# The zone follows the registry on the DNS service's 250 ms tick (server/runtime.cc), so a name
# enrolled a moment ago may still be NXDOMAIN: wait for that tick, as a revoke below waits.
b4_resolves() { [[ $(qa +short bob.warren.internal A) == "$B4" ]]; }
check "bob.warren.internal resolves within 2 s of bob's join" wait_until 2 b4_resolves
check_eq "bob.warren.internal A (UDP)" "$B4" "$(qa +short bob.warren.internal A)"
check_eq "bob.warren.internal AAAA (UDP)" "$B6" "$(qa +short BOB.Warren.Internal AAAA)"
check_eq "bob.warren.internal A (TCP)" "$B4" "$(qa +tcp +short bob.warren.internal A)"
check_eq "www.outside.test forwarded to O (UDP)" "198.51.100.77" "$(qa +short www.outside.test)"
check_eq "www.outside.test forwarded to O (TCP)" "198.51.100.77" "$(qa +tcp +short www.outside.test)"
check_eq "www.outside.test over the IPv6 tunnel address" "198.51.100.77" "$(qa +short @fd66::1 www.outside.test)"
# UDP: TC (the answer does not fit), dig retries over TCP; the server asks O over TCP then.
check_eq "a 1.5 KB TXT record: truncated over UDP, complete through the TCP retry" "1500" \
  "$(qa +short big.outside.test TXT | tr -cd '1-6' | wc -c)"
check_eq "reverse name of bob's address" "bob.warren.internal." "$(qa +short -x "$B4")"
check "unknown name under the domain: NXDOMAIN" bash -c \
  "ip netns exec '$A' dig +time=2 +tries=1 nosuch.warren.internal | grep -q 'status: NXDOMAIN'"
check "class CH: REFUSED" bash -c \
  "ip netns exec '$A' dig +time=2 +tries=1 -c CH version.bind TXT | grep -q 'status: REFUSED'"

# ---- no open resolver on the public side -------------------------------------------------------------
ip -n "$O" route add 10.66.0.0/24 via 198.51.100.1
check_not "O: nothing on the server's public address" \
  ip netns exec "$O" dig +time=1 +tries=1 @198.51.100.1 www.outside.test
check_not "O: no answer on the tunnel address routed through S (source not a client)" \
  ip netns exec "$O" dig +time=1 +tries=1 @10.66.0.1 www.outside.test

# ---- revoked: the name vanishes ----------------------------------------------------------------------
check "revoke bob" "$W" server revoke --config "$CONF" bob
check "bob.warren.internal is NXDOMAIN within 2 s" wait_until 2 bash -c \
  "ip netns exec '$A' dig +time=1 +tries=1 bob.warren.internal | grep -q 'status: NXDOMAIN'"
check_eq "alice.warren.internal still resolves" "$(addr_of "$A" '\.')" "$(qa +short alice.warren.internal)"

# ---- SIGHUP: resolv.conf again --------------------------------------------------------------------------
printf 'nameserver 198.51.100.3\n' >"/etc/netns/$S/resolv.conf"
kill -HUP "$SERVER_PID"
check "SIGHUP: the upstreams are read from resolv.conf again" \
  wait_until 3 grep -qF "DNS upstreams: 198.51.100.3:53" "$WIT_TMP/server.err"

# ---- port 53 taken: on by default only, so the tunnel still comes up (with a warning) ---------------------
kill_pid "$SERVER_PID"
bg_start blocker "$S" /usr/bin/python3 -c \
  'import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",53)); time.sleep(60)'
wait_until 3 bash -c "ip netns exec '$S' ss -Hlun 'sport = :53' | grep -q ." || not_ok "blocker bound"
mv "$WIT_TMP/server.err" "$WIT_TMP/server1.err"
bg_start server "$S" "$W" server --config "$CONF"
SERVER_PID=$BG_PID
check "port 53 taken by another resolver: the server still starts" \
  wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err"
check "... and says why it answers no DNS" \
  grep -qF "warning: cannot serve DNS on 10.66.0.1:53 (UDP): bind: Address already in use; the server answers no DNS" \
  "$WIT_TMP/server.err"

finish
