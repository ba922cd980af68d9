#!/usr/bin/env bash
# tests/integration/test_mesh.sh - mesh nodes (docs/MESH.md, "The node"), end to end and lean.
#
#   S: `warren server` with [mesh] (coordinator: roster, STUN, relay), on bridge br0 192.168.77.1
#   A, B, C: `warren join` nodes on the same bridge (192.168.77.11-13), no NAT
#
# Checks:
#   * A and B join: each gets a /32 and a /128 in the mesh prefixes and routes for both prefixes;
#   * A pings B's mesh IPv4 and IPv6 address directly: A's `wg show` has B as a peer at B's
#     underlay address (not through the coordinator, which is only A's other peer); `warren
#     status` names the peer "bob" with path direct; B's STUN and relay come from its
#     enrollment, it reports its endpoints, and it has A at the endpoint A reported;
#   * CGNAT check: with an interface (a veth) holding 100.64.5.5/32 in C, C's join (its `up`)
#     fails naming that interface; with `#@warren MeshAllowOverlap = true`, `warren up` succeeds;
#   * A reaches C within 2 s of C's `up` returning (measured and printed);
#   * C revoked at the coordinator: within 2 s C's peer is gone from A's `wg show` and A can no
#     longer reach C (measured and printed);
#   * the coordinator stopped: A still reaches B; restarted: B's session comes back, and A's
#     peer B is still there.
#   * names (docs/MESH.md, "Names"): each node's resolv.conf (its namespace's own,
#     /etc/netns/NS/resolv.conf, "nameserver 192.168.77.1": a dnsmasq in S stands for the
#     host's resolver) is rewritten by the file method to the responder (100.64.0.1, 200::53,
#     search warren); A resolves bob.warren (A and AAAA) and B alice.warren, A pings B by name
#     over IPv4 and IPv6 (so the node's own address, not the responder's, is its source), A
#     resolves www.outside.test through the responder's forwarding to the dnsmasq; A's pause
#     restores its resolv.conf and removes the responder's addresses, and after its resume the
#     responder answers again; C resolves alice.warren once up, and A carol.warren; C revoked:
#     carol.warren is NXDOMAIN at A within 2 s (measured and printed); C's `down` restores its
#     resolv.conf exactly.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping python3 dig getent dnsmasq
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"

wit_init
W=$WARREN_BIN/warren
S="${WIT_PREFIX}s" A="${WIT_PREFIX}a" B="${WIT_PREFIX}b" C="${WIT_PREFIX}c"
SIF="${WIT_PREFIX}s"
CONF="$WIT_TMP/srv/server.toml"
CL="$WIT_TMP/cl"
mkdir -m 700 "$WIT_TMP/srv" "$CL"


# ---- topology ---------------------------------------------------------------------------------
for ns in "$S" "$A" "$B" "$C"; do new_ns "$ns"; done
bridge_hub "$S" 192.168.77.1/24
i=0
for ns in "$A" "$B" "$C"; do
  i=$((i + 1))
  bridge_join "$S" "vb$i" "$ns" vn "192.168.77.$((10 + i))/24"
done

cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.67.0.1/24"

[enrollment]
listen = "192.168.77.1:7443"
public_endpoint = "192.168.77.1:51820"

[mesh]
stun_port = 3478
relay_port = 7444
EOF
bg_start server "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" ||
  fatal "server starts: $(tail -n 5 "$WIT_TMP/server.err")"

# The "host's resolver" of the nodes: a dnsmasq in S with one name of its own, nothing else.
bg_start dnsmasq "$S" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --listen-address=192.168.77.1 --bind-interfaces --user=root --pid-file= \
  --host-record=www.outside.test,198.51.100.77
for ns in "$A" "$B" "$C"; do printf 'nameserver 192.168.77.1\n' >"/etc/netns/$ns/resolv.conf"; done
C_RESOLV_BEFORE=$(cat "/etc/netns/$C/resolv.conf")

for n in alice bob carol; do
  "$W" server invite --config "$CONF" --name "$n" --expires 1h >"$WIT_TMP/inv-$n"
done
join() {  # join NS NAME
  ip netns exec "$1" env LOG_LEVEL=verbose "$W" join --invite-file "$WIT_TMP/inv-$2" --interface "$1" \
    --config-dir "$CL"
}
addr_of() { sed -n 's/^Address *= *//p' "$CL/$1.conf" | tr -d ' ' | tr ',' '\n' | grep "$2" | cut -d/ -f1; }
pub_of_node() { wg pubkey <"$CL/$1.key"; }

join "$A" alice >"$WIT_TMP/join-a.out" 2>&1 || fatal "join alice: $(cat "$WIT_TMP/join-a.out")"
join "$B" bob >"$WIT_TMP/join-b.out" 2>&1 || fatal "join bob: $(cat "$WIT_TMP/join-b.out")"
A4=$(addr_of "$A" '\.') B4=$(addr_of "$B" '\.') B6=$(addr_of "$B" ':')
log "alice $A4, bob $B4 $B6"
check "join wrote the mesh settings into the config" grep -q '^#@warren MeshPrefix4 = 100.64.0.0/10$' "$CL/$A.conf"
check "A has its IPv4 mesh address as a /32" bash -c "ip -n '$A' -4 addr show dev '$A' | grep -qF 'inet $A4/32'"
check "A routes 100.64.0.0/10 into the interface" bash -c "ip -n '$A' route show 100.64.0.0/10 | grep -q 'dev $A'"
check "A routes the IPv6 mesh prefix into the interface" bash -c "ip -n '$A' -6 route show 200::/7 | grep -q 'dev $A'"

# ---- A reaches B directly --------------------------------------------------------------------
check "A pings B's mesh IPv4 address" ping_until "$A" 5 "$B4"
check "A pings B's mesh IPv6 address" ping_until "$A" 5 "$B6"
BK=$(pub_of_node "$B")
check_eq "A's peer B is at B's underlay address (direct, not through the coordinator)" \
  "192.168.77.12" "$(ip netns exec "$A" wg show "$A" endpoints | awk -v k="$BK" '$1 == k { sub(/:[0-9]+$/, "", $2); print $2 }')"
check_eq "A's peer B allows exactly B's /32 and /128" "$(printf '%s\n' "$B4/32" "$B6/128" | sort | paste -sd' ')" \
  "$(ip netns exec "$A" wg show "$A" allowed-ips | awk -v k="$BK" '$1 == k { $1 = ""; print }' | tr ' \t' '\n\n' | sed '/^$/d' | sort | paste -sd' ')"

# ---- names -------------------------------------------------------------------------------------
t_names=$(now)
check_eq "A's resolv.conf points at the responder (file method)" \
  "nameserver 100.64.0.1 nameserver 200::53 search warren" \
  "$(grep -E '^(nameserver|search)' "/etc/netns/$A/resolv.conf" | paste -sd' ')"
check_eq "A resolves bob.warren to B's IPv4 address" "$B4" \
  "$(ip netns exec "$A" getent ahostsv4 bob.warren | awk 'NR == 1 { print $1 }')"
check_eq "A resolves bob.warren to B's IPv6 address (AAAA)" "$B6" \
  "$(ip netns exec "$A" dig +short +time=1 +tries=2 AAAA bob.warren)"
check_eq "B resolves alice.warren (search domain: 'alice' alone)" "$A4" \
  "$(ip netns exec "$B" getent ahostsv4 alice | awk 'NR == 1 { print $1 }')"
check "A pings bob.warren over IPv4" ip netns exec "$A" ping -4 -n -q -c 1 -W 2 bob.warren
check "A pings bob.warren over IPv6 (its own address is the source, not 200::53)" \
  ip netns exec "$A" ping -6 -n -q -c 1 -W 2 bob.warren
check_eq "A resolves a name outside the mesh through the responder's forwarding" "198.51.100.77" \
  "$(ip netns exec "$A" getent ahostsv4 www.outside.test | awk 'NR == 1 { print $1 }')"
check_eq "the reverse name of B's address is bob.warren" "bob.warren." \
  "$(ip netns exec "$A" dig +short +time=1 +tries=2 -x "$B4")"
ip netns exec "$A" "$W" pause "$A" >/dev/null
check_eq "A paused: its resolv.conf is the namespace's own again" "nameserver 192.168.77.1" \
  "$(cat "/etc/netns/$A/resolv.conf")"
check "A paused: the responder's addresses are gone" bash -c "! ip -n '$A' addr show dev '$A' | grep -qE '100.64.0.1/32|200::53/128'"
ip netns exec "$A" "$W" resume "$A" >/dev/null
check_eq "A resumed: the responder answers again (its sockets outlived the pause)" "$B6" \
  "$(ip netns exec "$A" dig +short +time=1 +tries=2 AAAA bob.warren)"
log "names on A and B: $(elapsed "$t_names" "$(now)") s"

# The daemons log verbosely into join-*.out (LOG_LEVEL keeps their stdio where join's was).
check "B's STUN and relay come from its enrollment (MeshStun, MeshRelay)" wait_until 3 bash -c \
  "grep -q 'STUN: reflexive endpoint 192.168.77.12:[0-9]* via 192.168.77.1:3478' '$WIT_TMP/join-b.out' &&
   grep -q 'relay 192.168.77.1:7444: connected' '$WIT_TMP/join-b.out'"
check "B reported its local and reflexive endpoints" wait_until 3 grep -q \
  'mesh: reporting 1 local endpoint(s), reflexive 192.168.77.12:' "$WIT_TMP/join-b.out"
check "B got alice from the roster at the endpoint A reported" grep -q \
  "mesh: peer alice (.*) $A4 at 192.168.77.11:" "$WIT_TMP/join-b.out"
check_eq "warren status --json on A: peer bob, path direct" "bob direct $B4/32" "$(ip netns exec "$A" "$W" status --json "$A" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(*[" ".join([p["name"], p.get("path", "-"), p["addresses"][0]]) for p in d["peers"] if p["name"] == "bob"])')"
check "warren status on A shows the path" bash -c "ip netns exec '$A' '$W' status '$A' | grep -q 'bob *connected (direct)'"

# ---- CGNAT check on C, then C comes up ----------------------------------------------------------
ip -n "$C" link add cgn0 type veth peer name cgn1  # (dummy needs a module CI may lack)
ip -n "$C" addr add 100.64.5.5/32 dev cgn0
if join "$C" carol >"$WIT_TMP/join-c.out" 2>&1; then
  not_ok "C's up is refused while cgn0 holds 100.64.5.5"
else
  check "C's up is refused naming cgn0 and its address" \
    grep -q "interface cgn0 already has the address 100.64.5.5/32" "$WIT_TMP/join-c.out"
fi
sed -i '1i #@warren MeshAllowOverlap = true' "$CL/$C.conf"
C4=$(addr_of "$C" '\.')
t0=$(now)
if ip netns exec "$C" env LOG_LEVEL=verbose "$W" up "$CL/$C.conf" >"$WIT_TMP/up-c.out" 2>&1; then
  ok "with MeshAllowOverlap = true C comes up"
  t1=$(now)
  # One probe every 100 ms until the first reply (ping -c 1 -w: keeps sending until then).
  # Both nodes learn each other at one roster tick and their initiations cross; the core's
  # tie-break (docs/ARCHITECTURE.md, "Crossing initiations") completes one at once, where plain
  # WireGuard waited 5 s for a retransmission in about one run in four.
  if ip netns exec "$A" ping -n -q -c 1 -i 0.1 -w 12 "$C4" >/dev/null; then
    t=$(elapsed "$t1" "$(now)")
    log "A reached C $t s after C's up returned ($(elapsed "$t0" "$t1") s for up itself)"
    check "A reaches C within 2 s of C's up ($t s)" within "$t" 2
  else
    not_ok "A reaches C"
  fi
else
  not_ok "with MeshAllowOverlap = true C comes up: $(cat "$WIT_TMP/up-c.out")"
fi

check_eq "C resolves alice.warren once up" "$A4" \
  "$(ip netns exec "$C" getent ahostsv4 alice.warren | awk 'NR == 1 { print $1 }')"
check "A resolves carol.warren (C's name reached A's roster)" wait_until 3 bash -c \
  "[[ \$(ip netns exec '$A' dig +short +time=1 +tries=1 carol.warren) == '$C4' ]]"

# ---- revoke C ----------------------------------------------------------------------------------
CK=$(pub_of_node "$C")
t0=$(now)
check "revoke carol" "$W" server revoke --config "$CONF" carol
if wait_until 5 bash -c "! ip netns exec '$A' wg show '$A' peers | grep -qF '$CK'"; then
  t=$(elapsed "$t0" "$(now)")
  log "C's peer left A $t s after the revocation"
  check "C's peer is gone from A's wg show within 2 s ($t s)" within "$t" 2
else
  not_ok "C's peer is gone from A's wg show"
fi
if wait_until 5 bash -c "ip netns exec '$A' dig +time=1 +tries=1 @100.64.0.1 carol.warren | grep -q 'status: NXDOMAIN'"; then
  t=$(elapsed "$t0" "$(now)")
  log "carol.warren became NXDOMAIN at A $t s after the revocation"
  check "carol.warren is NXDOMAIN at A within 2 s ($t s)" within "$t" 2
else
  not_ok "carol.warren is NXDOMAIN at A after the revocation"
fi
check "A can no longer reach C" ping_fails "$A" "$C4"
check "C's down restores its resolv.conf exactly" bash -c \
  "ip netns exec '$C' '$W' down '$C' >/dev/null 2>&1 && [[ \$(cat '/etc/netns/$C/resolv.conf') == '$C_RESOLV_BEFORE' ]]"
check "A still reaches B" ping_until "$A" 3 "$B4"

# ---- the data plane outlives the coordinator; the nodes reconnect ------------------------------
bg_stop "$SERVER_PID"
check "coordinator stopped: A still reaches B directly" ping_until "$A" 3 "$B4"
bg_start server2 "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server2.err" ||
  fatal "server restarts: $(tail -n 5 "$WIT_TMP/server2.err")"
check "coordinator back: B's session is established again (reconnect with backoff)" wait_until 8 \
  bash -c "(( \$(grep -c 'settings session with 192.168.77.1:7443 established' '$WIT_TMP/join-b.out') >= 2 ))"
check "after the coordinator's restart A still reaches B and B's peer is unchanged" bash -c \
  "ip netns exec '$A' ping -n -q -c 1 -W 2 '$B4' >/dev/null && ip netns exec '$A' wg show '$A' peers | grep -qF '$BK'"

finish
