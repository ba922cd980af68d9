#!/usr/bin/env bash
# tests/integration/test_client.sh - `warren up` / `warren down` with wg-quick configs, in namespaces.
#
#   client C ──veth 172.31.1.0/24── server S (warren-wg, configured with `wg`) ──veth 172.31.2.0/24── outside O
#   tunnel 10.77.0.0/24: S 10.77.0.1, C 10.77.0.2. S masquerades tunnel traffic towards O; O has no route
#   back to 172.31.1.0/24, so C reaches O only through the tunnel.
#
# C's /etc/resolv.conf and /etc/hosts come from /etc/netns/C/ (ip netns exec bind-mounts them): the
# server is "wgserver.test" there, so the client resolves it and re-resolves it when it moves.
# Parts: bad configs (file:line:key errors, nothing changed); split tunnel (routes, UAPI, TUN offloads, DNS,
# down restores exactly); full tunnel (policy rules, outside reachable through NAT, no loop: the tunnel's UDP leaves by
# the uplink); kill -9 then `warren up` recovers, and kill -9 then `warren down` too; power loss (kill -9 and
# /run emptied): `warren cleanup IFNAME` (the boot-time replay) and `warren down` restore from the journal
# on persistent storage (/var/lib/warren); a link planted at the backup path and a journal entry naming
# /etc/shadow are refused; the server goes away
# and comes back on another address: the client re-resolves and handshakes again by itself; SIGHUP makes it
# resolve the name again at once.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping iptables
require_impl warren
WARREN=$WARREN_BIN/warren
[[ -x $WARREN ]] || fatal "warren not found at $WARREN"

wit_init
nsc="${WIT_PREFIX}c" nss="${WIT_PREFIX}s" nso="${WIT_PREFIX}o"
ifc="${WIT_PREFIX}c" ifs="${WIT_PREFIX}s"
netns_etc=/etc/netns/$nsc
# set +e first: under errexit the '(exit $rc)' that hands wit_on_exit the status would end the trap
# there, and a failing run would leave its namespaces and daemons behind.
state_dir=/var/lib/warren
trap 'rc=$?; set +e; rm -rf -- "$netns_etc"; rm -f -- "$state_dir/$ifc".*; (exit $rc); wit_on_exit' EXIT

new_ns "$nsc"
new_ns "$nss"
new_ns "$nso"
veth_pair "$nsc" eth0 "$nss" eth0
veth_pair "$nss" eth1 "$nso" eth0
add_addr "$nsc" eth0 172.31.1.2/24
add_addr "$nss" eth0 172.31.1.1/24
add_addr "$nss" eth1 172.31.2.1/24
add_addr "$nso" eth0 172.31.2.2/24
ip -n "$nsc" route add default via 172.31.1.1
nsx "$nss" sysctl -qw net.ipv4.ip_forward=1
nsx "$nss" iptables -t nat -A POSTROUTING -s 10.77.0.0/24 -o eth1 -j MASQUERADE

mkdir -p "$netns_etc"
printf 'nameserver 127.0.0.1\nsearch home.test\n' >"$netns_etc/resolv.conf"
printf '127.0.0.1 localhost\n172.31.1.1 wgserver.test\n' >"$netns_etc/hosts"
resolv_before=$(cat "$netns_etc/resolv.conf")

gen_keypair server
gen_keypair client

start_server() {
  start_wg "$nss" "$ifs" warren || return 1
  wg set "$ifs" private-key "$(key_file server)" listen-port 51820 peer "$(pub_of client)" allowed-ips 10.77.0.2/32,fd77::2/128 &&
    add_addr "$nss" "$ifs" 10.77.0.1/24 && add_addr "$nss" "$ifs" fd77::1/64 && link_up "$nss" "$ifs"
}
start_server || fatal "server starts"

# write_conf NAME ALLOWED [EXTRA-INTERFACE-LINES]
write_conf() {
  local f="$WIT_TMP/$1.conf"
  (
    umask 077
    cat >"$f" <<CONF
[Interface]
PrivateKey = $(priv_of client)
Address = 10.77.0.2/24, fd77::2/64
${CONF_DNS-DNS = 10.77.0.1, corp.test}
${3:-}

[Peer]
PublicKey = $(pub_of server)
AllowedIPs = $2
Endpoint = wgserver.test:51820
PersistentKeepalive = 5
CONF
  )
  printf '%s\n' "$f"
}

snapshot() {  # the client's routing state and DNS, to compare before/after
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

up() { nsx "$nsc" "$WARREN" up "$@"; }
down() { nsx "$nsc" "$WARREN" down "$@"; }
client_pid() { cat "/var/run/warren/$ifc.pid" 2>/dev/null; }
restored() { [[ "$(snapshot)" == "$before" ]] && ! ip -n "$nsc" link show "$ifc" >/dev/null 2>&1; }
show_diff() { diff <(printf '%s\n' "$before") <(snapshot) | sed 's/^/#   /' || true; }

# status_ok: asks /var/run/warren/IFNAME.sock (the status protocol: "status\n" -> JSON) directly.
status_ok() {
  local json
  json=$(python3 - "/var/run/warren/$ifc.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"status\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode())
PY
  ) || return 1
  printf '%s\n' "$json"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p=d["peers"][0]; sys.exit(0 if d["role"]=="client" and p["public_key"]==sys.argv[2] and p["state"]=="connected" and p["last_handshake"]>0 and "PrivateKey" not in sys.argv[1] else 1)' "$json" "$(pub_of server)" &&
    ! grep -q "$(priv_of client)" <<<"$json"
}

# --- bad configs ----------------------------------------------------------------------------------------
part_bad_configs() {
  local f out
  f=$(write_conf "$ifc" 10.77.0.0/24 "PostUp = iptables -A FORWARD")
  out=$(up "$f" 2>&1) && return 1
  check "PostUp is refused naming file:line:key" grep -q "$f:5: PostUp: not supported" <<<"$out"
  f=$(write_conf "$ifc" 10.77.0.0/24 "Colour = blue")
  out=$(up "$f" 2>&1) && return 1
  check "an unknown key is refused naming file:line:key" grep -q "$f:5: Colour: unknown key in \[Interface\]" <<<"$out"
  f=$(write_conf "$ifc" 10.77.0.0/33)
  out=$(up "$f" 2>&1) && return 1
  check "a bad AllowedIPs is refused naming file:line:key" grep -q "$f:9: AllowedIPs: '10.77.0.0/33' is not a prefix" <<<"$out"
  out=$(up "$WIT_TMP/bad name.conf" 2>&1) && return 1
  check "a bad file name is refused" grep -q "not a valid interface name" <<<"$out"
  check "nothing changed by the refused configs" restored
}
run_isolated "bad configs" part_bad_configs

# --- split tunnel ---------------------------------------------------------------------------------------
part_split() {
  local f
  f=$(write_conf "$ifc" "10.77.0.0/24, 10.78.0.0/16")
  WARREN_DNS_BACKEND=file up "$f"
  check "split: warren up returns with the daemon running" kill -0 "$(client_pid)"
  check "split: route for 10.78.0.0/16 on the tunnel" grep -q "10.78.0.0/16 dev $ifc" <(ip -n "$nsc" route show)
  check "split: the default route is untouched" grep -q "default via 172.31.1.1 dev eth0" <(ip -n "$nsc" route show)
  check "split: no policy rules" test "$(ip -n "$nsc" rule show | wc -l)" -eq 3
  check "split: the server's tunnel address answers" ping_until "$nsc" 10 10.77.0.1
  check "split: wg show works on the UAPI socket" grep -q "$(pub_of server)" <(wg show "$ifc" peers)
  # The client daemon creates its TUN as warren-wg does: TSO on unless WARREN_OFFLOADS excludes tun.
  if command -v ethtool >/dev/null; then
    local want=on
    [[ ,${WARREN_OFFLOADS:-all}, =~ ,(all|on|tun), ]] || want=off
    check "split: TUN offloads as WARREN_OFFLOADS allows (tx-tcp-segmentation: $want)" \
      grep -q "^[[:space:]]*tx-tcp-segmentation: $want" <(nsx "$nsc" ethtool -k "$ifc")
  fi
  if command -v python3 >/dev/null; then
    # The reconnect watch, which sets the state, looks every second: allow it one round or two.
    check "split: the status socket reports role client, the server's key and state connected" wait_until 3 status_ok
  fi
  check "split: endpoint resolved from /etc/hosts" grep -q "172.31.1.1:51820" <(wg show "$ifc" endpoints)
  check "split: DNS written in place into the netns resolv.conf" grep -q "^nameserver 10.77.0.1" "$netns_etc/resolv.conf"
  check "split: search domain set" grep -q "^search corp.test" "$netns_etc/resolv.conf"
  check "split: resolv.conf backup kept under $state_dir" cmp -s <(printf '%s\n' "$resolv_before") "$state_dir/$ifc.resolv.conf"
  check "split: journal exists while up" test -s "$state_dir/$ifc.state"
  check_not "split: a second up is refused" up "$f"
  down "$ifc"
  check "split: down restores routes, rules and resolv.conf exactly" restored || show_diff
  check "split: journal, pid file and backup are gone" test ! -e "$state_dir/$ifc.state" -a ! -e "/var/run/warren/$ifc.pid" -a ! -e "$state_dir/$ifc.resolv.conf"
  check "split: the UAPI socket is gone" test ! -e "/var/run/wireguard/$ifc.sock"
  check_not "split: down again says it is not up" down "$ifc"
}
run_isolated "split tunnel" part_split

part_signals() {
  local f pid sig
  f=$(write_conf "$ifc" "0.0.0.0/0, ::/0")
  for sig in INT TERM; do
    WARREN_DNS_BACKEND=file up "$f"
    pid=$(client_pid)
    kill -"$sig" "$pid"
    wait_until 10 bash -c "! kill -0 $pid"
    check "SIG$sig: the daemon restores everything and exits" restored || show_diff
  done
}
run_isolated "signals" part_signals

# --- full tunnel ----------------------------------------------------------------------------------------
part_full() {
  local f
  f=$(write_conf "$ifc" "0.0.0.0/0, ::/0")
  check_not "full: outside is not reachable without the tunnel" ping_fails_not "$nsc" 172.31.2.2
  WARREN_DNS_BACKEND=file up "$f"
  check "full: rule 'not fwmark 51820 lookup 51820'" grep -q "not from all fwmark 0xca6c lookup 51820" <(ip -n "$nsc" -4 rule show)
  check "full: rule 'lookup main suppress_prefixlength 0'" grep -q "from all lookup main suppress_prefixlength 0" <(ip -n "$nsc" -4 rule show)
  check "full: default route in table 51820" grep -q "default dev $ifc" <(ip -n "$nsc" route show table 51820)
  check "full: IPv6 rule 'not fwmark 51820 lookup 51820'" grep -q "not from all fwmark 0xca6c lookup 51820" <(ip -n "$nsc" -6 rule show)
  check "full: IPv6 rule 'lookup main suppress_prefixlength 0'" grep -q "from all lookup main suppress_prefixlength 0" <(ip -n "$nsc" -6 rule show)
  check "full: IPv6 default route in table 51820" grep -q "default dev $ifc" <(ip -n "$nsc" -6 route show table 51820)
  check "full: the server's IPv6 tunnel address answers" ping_until "$nsc" 10 fd77::1
  check "full: src_valid_mark set" test "$(nsx "$nsc" sysctl -n net.ipv4.conf.all.src_valid_mark)" = 1
  check "full: the outside host is reachable through the server's NAT" ping_until "$nsc" 10 172.31.2.2
  check "full: the tunnel's own UDP goes out on eth0 (marked)" grep -q "dev eth0" <(ip -n "$nsc" route get 172.31.1.1 mark 51820)
  check "full: unmarked traffic goes into the tunnel" grep -q "dev $ifc" <(ip -n "$nsc" route get 172.31.2.2)
  check "full: the server sees the client at its uplink address (no loop)" grep -q "172.31.1.2:" <(wg show "$ifs" endpoints)
  down "$ifc"
  check "full: down restores routes, rules, sysctl and resolv.conf exactly" restored || show_diff
}
ping_fails_not() { ! ping_fails "$@"; }
run_isolated "full tunnel" part_full

# --- split tunnel whose prefixes cover the server's own address -------------------------------------------
part_cover() {
  local f
  f=$(write_conf "$ifc" "0.0.0.0/1, 128.0.0.0/1")
  WARREN_DNS_BACKEND=file up "$f"
  check "cover: the endpoint is pinned to the uplink by a host route" grep -q "172.31.1.1 dev eth0 .*metric 51820" <(ip -n "$nsc" route show)
  check "cover: the endpoint still leaves by eth0" grep -q "dev eth0" <(ip -n "$nsc" route get 172.31.1.1)
  check "cover: the outside host is reachable through the tunnel" ping_until "$nsc" 10 172.31.2.2
  down "$ifc"
  check "cover: down restores exactly" restored || show_diff
}
run_isolated "covering split tunnel" part_cover

# --- crash recovery -------------------------------------------------------------------------------------
part_crash() {
  local f pid out
  f=$(write_conf "$ifc" "0.0.0.0/0")
  WARREN_DNS_BACKEND=file up "$f"
  pid=$(client_pid)
  kill -9 "$pid"
  wait_until 5 bash -c "! kill -0 $pid"
  check "crash: after kill -9 the rules are left behind" grep -q "lookup 51820" <(ip -n "$nsc" rule show)
  check "crash: after kill -9 resolv.conf is still the tunnel's" grep -q "^nameserver 10.77.0.1" "$netns_etc/resolv.conf"
  out=$(WARREN_DNS_BACKEND=file up "$f" 2>&1)
  check "crash: the next up reports the recovery" grep -q "not shut down cleanly; restored" <<<"$out"
  check "crash: the new daemon's tunnel works" ping_until "$nsc" 10 172.31.2.2
  check "crash: exactly one set of rules" test "$(ip -n "$nsc" -4 rule show | grep -c 'lookup 51820')" -eq 1
  down "$ifc"
  check "crash: down after recovery restores exactly" restored || show_diff
  # kill -9, then down (no daemon left): the journal is replayed.
  WARREN_DNS_BACKEND=file up "$f"
  pid=$(client_pid)
  kill -9 "$pid"
  wait_until 5 bash -c "! kill -0 $pid"
  down "$ifc"
  check "crash: down without a daemon replays the journal" restored || show_diff
}
run_isolated "crash recovery" part_crash

# --- power loss: the daemon dies and /run (a tmpfs) is emptied -------------------------------------------
# kill_and_empty_run: SIGKILL the daemon and remove what a reboot takes with /run.
kill_and_empty_run() {
  local pid
  pid=$(client_pid)
  kill -9 "$pid"
  wait_until 5 bash -c "! kill -0 $pid"
  rm -f -- "/var/run/warren/$ifc".* "/var/run/wireguard/$ifc.sock"
}
part_power_loss() {
  local f out
  f=$(write_conf "$ifc" "0.0.0.0/0")
  WARREN_DNS_BACKEND=file up "$f"
  check "power loss: journal and resolv.conf backup are on persistent storage" \
    test -s "$state_dir/$ifc.state" -a -s "$state_dir/$ifc.resolv.conf"
  check "power loss: the state directory is root's, writable by nobody else" \
    bash -c "[[ \$(stat -c %u '$state_dir') == 0 ]] && (( (8#\$(stat -c %a '$state_dir') & 8#022) == 0 ))"
  kill_and_empty_run
  check "power loss: resolv.conf still points into the dead tunnel" grep -q "^nameserver 10.77.0.1" "$netns_etc/resolv.conf"
  out=$(nsx "$nsc" "$WARREN" cleanup "$ifc" 2>&1) || { not_ok "power loss: warren cleanup exits 0"; printf '#   %s\n' "$out"; }
  check "power loss: the boot-time cleanup restores routes, rules, sysctl and resolv.conf exactly" restored || show_diff
  check "power loss: journal and backup are gone" test ! -e "$state_dir/$ifc.state" -a ! -e "$state_dir/$ifc.resolv.conf"
  WARREN_DNS_BACKEND=file up "$f"
  kill_and_empty_run
  down "$ifc"
  check "power loss: the next down restores exactly" restored || show_diff
}
run_isolated "power loss" part_power_loss

# --- files root writes: a planted link, a tampered journal -----------------------------------------------
part_planted() {
  local f out target="$WIT_TMP/precious" shadow_sum header
  printf 'precious\n' >"$target"
  ln -s "$target" "$state_dir/$ifc.resolv.conf"
  f=$(write_conf "$ifc" "10.77.0.0/24")
  if out=$(WARREN_DNS_BACKEND=file up "$f" 2>&1); then
    not_ok "planted: up with a link at the resolv.conf backup path fails"
    down "$ifc"
  fi
  check "planted: the link is refused, naming it" grep -q "$state_dir/$ifc.resolv.conf: it is a symbolic link" <<<"$out"
  check "planted: the link's target is untouched" test "$(cat "$target")" = precious
  check "planted: nothing changed" restored || show_diff
  rm -f -- "$state_dir/$ifc.resolv.conf"
  # A journal naming a file warren never writes: `down` refuses it, names the entry, undoes nothing.
  shadow_sum=$(sha256sum /etc/shadow)
  header="warren-state 1 netns=$(nsx "$nsc" stat -L -c %d:%i /proc/self/ns/net) boot=$(cat /proc/sys/kernel/random/boot_id)"
  printf '%s\ninterface %s 1\ndns-file /etc/shadow %s\n' "$header" "$ifc" "$target" >"$state_dir/$ifc.state"
  chmod 600 "$state_dir/$ifc.state"
  out=$(down "$ifc" 2>&1) && not_ok "planted: down with a tampered journal fails"
  check "planted: the tampered entry is refused, naming it" \
    grep -q "refusing to replay 'dns-file /etc/shadow $target': names /etc/shadow" <<<"$out"
  check "planted: /etc/shadow is untouched and the journal kept" \
    bash -c "[[ \"\$(sha256sum /etc/shadow)\" == '$shadow_sum' ]] && test -e '$state_dir/$ifc.state'"
  rm -f -- "$state_dir/$ifc.state"
}
run_isolated "planted files" part_planted

# --- the server goes away and comes back elsewhere ----------------------------------------------------
part_reconnect() {
  local f log hs
  f=$(write_conf "$ifc" "10.77.0.0/24")
  log="$WIT_TMP/client-reconnect.log"
  LOG_LEVEL=verbose WARREN_DNS_BACKEND=file nsx "$nsc" "$WARREN" up --dead-after 4 "$f" >"$log" 2>&1
  check "reconnect: first handshake" ping_until "$nsc" 10 10.77.0.1
  kill_pid "$(daemon_pid "$ifs")"
  wait_daemon_gone "$ifs" 10
  # The server moves: a new address, and the name follows it.
  add_addr "$nss" eth0 172.31.1.3/24
  # In place (no rename): the daemon sees the bind-mounted inode.
  printf '127.0.0.1 localhost\n172.31.1.3 wgserver.test\n' >"$netns_etc/hosts"
  sleep 12
  check "reconnect: the client reports reconnect attempts while the server is away" grep -q "Reconnect attempt" "$log"
  start_server
  # No traffic from the test: the client alone must handshake with the new server.
  if wait_until 75 bash -c "[[ \$(wg show $ifs latest-handshakes | awk '{print \$2}') -gt 0 ]]"; then
    ok "reconnect: the client handshakes with the returned server by itself"
  else
    not_ok "reconnect: the client handshakes with the returned server by itself"
    tail -n 20 "$log" | sed 's/^/#   /'
  fi
  check "reconnect: the client re-resolved the name to the new address" grep -q "172.31.1.3:51820" <(wg show "$ifc" endpoints)
  check "reconnect: traffic flows again" ping_until "$nsc" 10 10.77.0.1
  # SIGHUP: the name is resolved again at once (the peer is alive, so nothing else would move it).
  local pid
  pid=$(client_pid)
  printf '127.0.0.1 localhost\n172.31.1.1 wgserver.test\n' >"$netns_etc/hosts"
  kill -HUP "$pid"
  check "SIGHUP: the client follows the name to its new address" \
    wait_until 5 bash -c "wg show '$ifc' endpoints | grep -q '172.31.1.1:51820'"
  check "SIGHUP: logged, and the same daemon keeps running" \
    bash -c "grep -q 'Reload: wgserver.test:51820 is now 172.31.1.1:51820' '$log' && kill -0 $pid"
  check "SIGHUP: traffic flows to the new address" ping_until "$nsc" 5 10.77.0.1
  down "$ifc"
  check "reconnect: down restores exactly" restored || show_diff
}
run_isolated "reconnect" part_reconnect

# --- the server's name does not resolve yet when the client starts -----------------------------------------
part_late_name() {
  local f log
  printf '127.0.0.1 localhost\n' >"$netns_etc/hosts"
  # Without DNS in the config: the resolver stays the host's (which fails fast here).
  f=$(CONF_DNS="" write_conf "$ifc" "10.77.0.0/24")
  log="$WIT_TMP/client-late.log"
  LOG_LEVEL=verbose WARREN_DNS_BACKEND=file nsx "$nsc" "$WARREN" up --dead-after 4 "$f" >"$log" 2>&1
  check "late name: up succeeds although the name does not resolve" kill -0 "$(client_pid)"
  check "late name: the failure is logged" grep -q "Cannot resolve wgserver.test:51820" "$log"
  printf '127.0.0.1 localhost\n172.31.1.1 wgserver.test\n' >"$netns_etc/hosts"
  check "late name: the tunnel comes up once the name resolves" ping_until "$nsc" 30 10.77.0.1
  down "$ifc"
  check "late name: down restores exactly" restored || show_diff
}
run_isolated "late name" part_late_name

finish
