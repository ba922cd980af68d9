#!/usr/bin/env bash
# tests/integration/test_standby.sh - `warren pause` / `warren resume` and link down/up from outside.
#
#   client C ──veth 172.31.7.0/24── server S (warren-wg, configured with `wg`)
#   tunnel 10.79.0.0/24, fd79::/64: S .1, C .2. The client is a full tunnel (AllowedIPs 0.0.0.0/0, ::/0:
#   routes in table 51820, two policy rules per family, src_valid_mark) with DNS, and has no route of its
#   own to the tunnel addresses, so a ping to 10.79.0.1 works only through the tunnel.
#
# C's /etc/resolv.conf is /etc/netns/C/resolv.conf (ip netns exec bind-mounts it), never the host's.
# Checks: pause takes the link down and leaves routes, rules, sysctl and resolv.conf exactly as before
# `up`, the ping fails, `warren status` says paused; pause twice is one pause; across PAUSE_SECONDS (the
# issue's figure is 30; CTest runs it with 5 to stay lean) the client's keepalives keep reaching the
# server; resume restores routes/rules/resolv.conf identical to what `up` set (diffed), the ping works,
# and `wg show latest-handshakes` is unchanged on both sides (no new handshake). `ip link set down` / `up`
# from outside does the same. A user outside the config's ControlGroup is refused (exit 4), one in it (a
# supplementary group, setpriv --groups) may pause and resume. `warren down` after a pause restores
# everything and leaves no journal; so does `warren down` after the daemon was killed (-9) while paused.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping setpriv getent
require_impl warren
WARREN=$WARREN_BIN/warren
[[ -x $WARREN ]] || fatal "warren not found at $WARREN"
PAUSE_SECONDS=${PAUSE_SECONDS:-30}
# The control group: any group that exists and that `nobody` is not in.
CTL_GROUP=users
getent group "$CTL_GROUP" >/dev/null || skip_all "no group '$CTL_GROUP' on this machine"

wit_init
nsc="${WIT_PREFIX}c" nss="${WIT_PREFIX}s"
ifc="${WIT_PREFIX}c" ifs="${WIT_PREFIX}s"
netns_etc=/etc/netns/$nsc
state_dir=/var/lib/warren
# A control group opens /var/run/warren (shared) to traversal; it is put back as it was.
run_mode=$(stat -c %a /var/run/warren 2>/dev/null || echo "")
trap 'rc=$?; set +e; rm -rf -- "$netns_etc"; rm -f -- "$state_dir/$ifc".*;
  [[ -n $run_mode ]] && chmod "$run_mode" /var/run/warren; (exit $rc); wit_on_exit' EXIT

new_ns "$nsc"
new_ns "$nss"
veth_pair "$nsc" eth0 "$nss" eth0
add_addr "$nsc" eth0 172.31.7.2/24
add_addr "$nss" eth0 172.31.7.1/24
mkdir -p "$netns_etc"
printf 'nameserver 127.0.0.1\nsearch home.test\n' >"$netns_etc/resolv.conf"

gen_keypair server
gen_keypair client
start_wg "$nss" "$ifs" warren || fatal "server starts"
wg set "$ifs" private-key "$(key_file server)" listen-port 51820 \
  peer "$(pub_of client)" allowed-ips 10.79.0.2/32,fd79::2/128
add_addr "$nss" "$ifs" 10.79.0.1/24
add_addr "$nss" "$ifs" fd79::1/64
link_up "$nss" "$ifs"

conf="$WIT_TMP/$ifc.conf"
(
  umask 077
  cat >"$conf" <<CONF
#@warren ControlGroup = $CTL_GROUP
[Interface]
PrivateKey = $(priv_of client)
Address = 10.79.0.2/24, fd79::2/64
DNS = 10.79.0.1, standby.test

[Peer]
PublicKey = $(pub_of server)
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 172.31.7.1:51820
PersistentKeepalive = 2
CONF
)

snapshot() { # routes, rules, the sysctl and resolv.conf of C
  {
    ip -n "$nsc" -4 route show table all | grep -v '^local\|^broadcast' || true
    ip -n "$nsc" -6 route show table all | grep -v '^local\|^multicast\|^anycast' || true
    ip -n "$nsc" -4 rule show
    ip -n "$nsc" -6 rule show
    cat "$netns_etc/resolv.conf"
    nsx "$nsc" sysctl -n net.ipv4.conf.all.src_valid_mark
  } 2>&1
}
before=$(snapshot)
same_as() { [[ "$(snapshot)" == "$1" ]]; }
show_diff() { diff <(printf '%s\n' "$1") <(snapshot) | sed 's/^/#   /' || true; }
link_admin_up() { ip -n "$nsc" -o link show "$ifc" | grep -q '<[^>]*\bUP\b'; }
state() { "$WARREN" status --json "$ifc" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("state",""), d.get("paused_by",""))'; }
cpub=$(pub_of client)
spub=$(pub_of server)
hs_server() { wg show "$ifs" latest-handshakes | awk -v k="$cpub" '$1 == k { print $2 }'; }
hs_client() { wg show "$ifc" latest-handshakes | awk -v k="$spub" '$1 == k { print $2 }'; }
rx_server() { wg show "$ifs" transfer | awk -v k="$cpub" '$1 == k { print $2 }'; }
ctl() { nsx "$nsc" "$WARREN" "$@"; }

# ---- up ----------------------------------------------------------------------------------------------
nsx "$nsc" env WARREN_DNS_BACKEND=file "$WARREN" up "$conf" >"$WIT_TMP/up.out" 2>&1 ||
  fatal "warren up: $(tail -n 3 "$WIT_TMP/up.out")"
check "the tunnel works" ping_until "$nsc" 10 10.79.0.1
up_state=$(snapshot)
check "up set routes, rules and DNS" bash -c "! [[ '$up_state' == '$before' ]] && grep -q 'nameserver 10.79.0.1' '$netns_etc/resolv.conf'"
check_eq "status: up" "up " "$(state)"
HS_S=$(hs_server) HS_C=$(hs_client)
check "both sides have a handshake" test "${HS_S:-0}" -gt 0 -a "${HS_C:-0}" -gt 0

# ---- pause by command --------------------------------------------------------------------------------
out=$(ctl pause "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "pause: exit 0, says so" "0 paused $ifc" "$rc $out"
check_not "pause: the link is down" link_admin_up
if same_as "$before"; then ok "pause: routes, rules, sysctl and resolv.conf as before up"; else
  not_ok "pause: routes, rules, sysctl and resolv.conf as before up"; show_diff "$before"; fi
check_eq "status: paused by command" "paused command" "$(state)"
out=$(ctl pause "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "pause twice is one pause" "0 $ifc was already paused" "$rc $out"
check "pause: the tunnel address is unreachable" ping_fails "$nsc" 10.79.0.1
rx0=$(rx_server)
sleep "$PAUSE_SECONDS"
check "keepalives kept reaching the server during the ${PAUSE_SECONDS} s pause" test "$(rx_server)" -gt "$rx0"

out=$(ctl resume "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "resume: exit 0, says so" "0 resumed $ifc" "$rc $out"
if same_as "$up_state"; then ok "resume: routes, rules, sysctl and resolv.conf identical to up's"; else
  not_ok "resume: routes, rules, sysctl and resolv.conf identical to up's"; show_diff "$up_state"; fi
check "resume: the tunnel works" ping_until "$nsc" 5 10.79.0.1
check_eq "resume: no new handshake on the server" "$HS_S" "$(hs_server)"
check_eq "resume: no new handshake on the client" "$HS_C" "$(hs_client)"
check_eq "status: up again" "up " "$(state)"
out=$(ctl resume "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "resume when not paused: exit 0, says so" "0 $ifc was not paused" "$rc $out"

# ---- link down / up from outside ---------------------------------------------------------------------
ip -n "$nsc" link set "$ifc" down
check "outside link down: paused (status)" wait_until 5 bash -c "[[ \"\$('$WARREN' status --json '$ifc')\" == *'\"paused_by\": \"link down\"'* ]]"
if same_as "$before"; then ok "outside link down: routes, rules, sysctl and resolv.conf as before up"; else
  not_ok "outside link down: routes, rules, sysctl and resolv.conf as before up"; show_diff "$before"; fi
ip -n "$nsc" link set "$ifc" up
check "outside link up: resumed (status)" wait_until 5 bash -c "[[ \"\$('$WARREN' status --json '$ifc')\" == *'\"state\": \"up\"'* ]]"
if wait_until 5 same_as "$up_state"; then ok "outside link up: routes, rules, sysctl and resolv.conf identical to up's"; else
  not_ok "outside link up: routes, rules, sysctl and resolv.conf identical to up's"; show_diff "$up_state"; fi
check "outside link up: the tunnel works" ping_until "$nsc" 5 10.79.0.1
check_eq "outside down/up: no new handshake on the server" "$HS_S" "$(hs_server)"
check_eq "outside down/up: no new handshake on the client" "$HS_C" "$(hs_client)"

# ---- who may ---------------------------------------------------------------------------------------
# (not $out in these: check() has a local of that name)
reply=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$WARREN" pause "$ifc" 2>&1) && rc=0 || rc=$?
refused() { [[ $rc == 4 && $reply == *"permission denied"* && $reply == *"ControlGroup"* ]]; }
check "a user outside $CTL_GROUP is refused: exit 4, says why" refused
check "... and nothing changed" link_admin_up
out=$(setpriv --reuid=nobody --regid=nogroup --groups="$CTL_GROUP" "$WARREN" pause "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "a member of $CTL_GROUP may pause" "0 paused $ifc" "$rc $out"
check_not "... the link is down" link_admin_up
reply=$(setpriv --reuid=nobody --regid=nogroup --groups="$CTL_GROUP" "$WARREN" status "$ifc" 2>&1) && rc=0 || rc=$?
status_refused() { [[ $rc != 0 && $reply == *"permission denied"* ]]; }
check "... but may not read the status" status_refused
out=$(setpriv --reuid=nobody --regid=nogroup --groups="$CTL_GROUP" "$WARREN" resume "$ifc" 2>&1) && rc=0 || rc=$?
check_eq "a member of $CTL_GROUP may resume" "0 resumed $ifc" "$rc $out"
check "... and the tunnel works" ping_until "$nsc" 5 10.79.0.1

# ---- down after a pause ------------------------------------------------------------------------------
ctl pause "$ifc" >/dev/null
ctl down "$ifc" >"$WIT_TMP/down.out" 2>&1 || not_ok "down after pause: $(cat "$WIT_TMP/down.out")"
if same_as "$before"; then ok "down after pause: everything as before up"; else
  not_ok "down after pause: everything as before up"; show_diff "$before"; fi
check "down after pause: no journal, no backup, no link" \
  bash -c "[[ ! -e $state_dir/$ifc.state && ! -e $state_dir/$ifc.resolv.conf ]] && ! ip -n '$nsc' link show '$ifc'"

# ---- kill -9 while paused, then down: the journal names only what stayed ---------------------------
nsx "$nsc" env WARREN_DNS_BACKEND=file "$WARREN" up "$conf" >"$WIT_TMP/up2.out" 2>&1 ||
  fatal "warren up again: $(tail -n 3 "$WIT_TMP/up2.out")"
ctl pause "$ifc" >/dev/null
check "paused: the journal lists the interface line and no DNS, route or rule" \
  bash -c "grep -q '^interface $ifc ' $state_dir/$ifc.state && ! grep -q '^dns-\|^route \|^rule ' $state_dir/$ifc.state"
pid=$(cat "/var/run/warren/$ifc.pid")
kill -KILL "$pid"
wait_until 5 bash -c "! kill -0 $pid" || true
ctl down "$ifc" >"$WIT_TMP/down2.out" 2>&1 || not_ok "down after kill -9 while paused: $(cat "$WIT_TMP/down2.out")"
if same_as "$before"; then ok "kill -9 while paused, then down: everything as before up"; else
  not_ok "kill -9 while paused, then down: everything as before up"; show_diff "$before"; fi
check "... and no journal is left" test ! -e "$state_dir/$ifc.state"

finish
