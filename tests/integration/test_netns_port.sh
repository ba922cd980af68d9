#!/usr/bin/env bash
# tests/integration/test_netns_port.sh - the kernel's WireGuard netns.sh checks that apply to a userspace
# implementation, run against IMPL (warren = $WARREN_BIN/warren-wg, the default; IMPL=wgo = wireguard-go).
# Written from the list of checks in docs/wireguard-protocol.md §3 (kernel selftest and wireguard-go's
# port); no code is taken from either script.
#
# Topology of the first part (as in the kernel test): namespace ns0 holds only lo; the daemons run in
# ns0, so their UDP sockets live there (127.0.0.1:1 and :2, [::1]), while their TUN interfaces are moved
# into ns1 and ns2 with `ip link set <if> netns <ns>` (192.168.241.1-2/24, fd00::1-2/112).
#
# Ported checks (kernel netns.sh group numbers as in §3.1):
#   #2  IPv4 outer transport: exact `wg show transfer` after a fresh `ping -c 10 -f` (initiator rx 1372,
#       tx 1428 or 1460; responder mirrored), latest-handshakes non-zero; TUN `ip -stats` relaxed as in
#       wireguard-go's port (rx, tx >= 840, rx < 2500); tests() at MTU 1420 and at the big MTU
#       34816 - 1500 + 1420.
#   #1  tests(): flood pings v4/v6 both ways; iperf3 TCP v4 and v6 (2 s, opposite directions), UDP v4
#       and v6 (-b 0, 1 s); 4 parallel TCP streams on the first run (-P 4 instead of 4/5/50 servers).
#   #3  IPv6 outer transport ([::1]) + big MTU.
#   #5  roaming to 127.212.121.99:9999 and to [::1]:9998 (peer endpoint follows).
#   #6  crypto-RP filter: wider allowed-ips delivers ncat UDP; a more specific /32 on another peer drops
#       it; the endpoint still updates to [::1]:9997.
#   #7  private-key change with immediate handshake (one ping, no retries).
#   #8  wg-in-wg: second pair of daemons inside ns1/ns2 tunnelling over the first (inner MTU 1340) +
#       tests(); then the cross-namespace routing loop: the daemons survive and still answer on their
#       UAPI sockets. The kernel's "< 70000 bytes sent" bound is only logged: the loop runs through two
#       separate daemons, neither of which can recognise the other's packets (wireguard-go sends tens of
#       MB in that second, fragmentation multiplying the packets).
#   #9  NAT: SNAT router in ns0 (UDP conntrack timeout 2 s); persistent-keepalive 1 keeps the mapping; the
#       responder sees 10.0.0.1:1.
#   #10 `ping -I <if>` and a MARK rule in OUTPUT (reroute).
#   #11 onion routing through the tunnel, then an endpoint reachable only through itself (with a live
#       session): the daemon must not crash, and must not spin (< 1.5 s CPU in ~3 s). The CPU part is
#       skipped for IMPL=wgo: wireguard-go 0.0.20220316 re-encrypts its own looping packets (~2 s CPU).
#   #12 wg-quick style policy routing: fwmark 51820 (SO_MARK), `not fwmark` rule + suppress_prefixlength
#       0, 100-packet flood pings v4/v6.
#   #14 source-address stickiness: failover when the used source address is removed (v4, v6);
#       reply-to-sender with several local addresses (4 cases); inbound destination on another interface
#       (a spare veth stands in for dummy0, which this kernel may lack); a better route with another
#       src takes over.
#   #15 IPC split-message stress: one peer with 255*256*2 allowed-ips (130560 + key = 130561 words);
#       40 peers x 52 /16s; 30 peers, only the last with allowed-ips, + showconf; 197 IPv6 /128s and
#       "(none)" for an empty peer.
#   #16 `wg show doesnotexist` fails.
#   #17 key handling: private/preshared read-back; /dev/null => (none); a peer equal to our own public
#       key is dropped and cannot be added; clamped private key reads back "+..."; overlapping
#       allowed-ips read back exactly (v4 and v6, replace semantics); the 7 low-order public keys are
#       accepted with persistent-keepalive 1 and an endpoint, and NO packet is sent within 2 s (ncat on the
#       endpoint + a capture; a normal peer with the same settings is the positive control).
#   plus: each daemon exits and removes its socket when its TUN is deleted.
# Left out, with reasons:
#   #4  route MTU vs padding: a userspace daemon cannot see the per-route MTU (1299) of a destination,
#       only the TUN MTU, so it pads to 1300 and the outer packet hits the 1360-byte DROP rule; kernel-only.
#   #13 ICMP "Destination Host Unreachable" from the wg device when a peer is missing: kernel behaviour
#       (an optional parity feature for userspace, not required).
#   #18 circular netns references and /dev/kmsg created/destroyed accounting: kernel object lifetimes.
#   Exact TUN `ip -stats` counts: a TUN counts plaintext IP bytes, the kernel device counts differently.
#   wireguard-go only (IMPL=wgo): the v4 source-failover check of #14 is skipped, because wireguard-go
#   0.0.20220316 retries without its sticky source only on EINVAL while current kernels return
#   ENETUNREACH for a vanished IP_PKTINFO source.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping iperf3 ncat tcpdump iptables ss awk
IMPL=${IMPL:-warren}
require_impl "$IMPL"

wit_init

P=$WIT_PREFIX
ns0="${P}n0" ns1="${P}n1" ns2="${P}n2"

for k in 1 2 3 4; do gen_keypair "k$k"; done
(umask 077 && wg genpsk >"$WIT_KEYS/psk")
key1=$(priv_of k1)
pub1=$(pub_of k1) pub2=$(pub_of k2) pub3=$(pub_of k3) pub4=$(pub_of k4)
psk=$(cat "$WIT_KEYS/psk")
K1=$(key_file k1) K2=$(key_file k2) K3=$(key_file k3) K4=$(key_file k4) PSK="$WIT_KEYS/psk"

# configure_peers NS1 IF1 NS2 IF2: the kernel test's base configuration (ports 1 and 2, psk).
configure_peers() {
  add_addr "$1" "$2" 192.168.241.1/24
  add_addr "$1" "$2" fd00::1/112
  add_addr "$3" "$4" 192.168.241.2/24
  add_addr "$3" "$4" fd00::2/112
  wg set "$2" private-key "$K1" listen-port 1 \
    peer "$pub2" preshared-key "$PSK" allowed-ips 192.168.241.2/32,fd00::2/128
  wg set "$4" private-key "$K2" listen-port 2 \
    peer "$pub1" preshared-key "$PSK" allowed-ips 192.168.241.1/32,fd00::1/128
  link_up "$1" "$2"
  link_up "$3" "$4"
}

# iperf_check DESC SERVER_NS BIND CLIENT_NS SECONDS [IPERF CLIENT ARGS...]
iperf_check() {
  local desc=$1 sns=$2 addr=$3 cns=$4 secs=$5 json="$WIT_TMP/iperf.json" mbps
  shift 5
  if ! iperf_server "$sns" 5201; then
    not_ok "$desc (iperf3 server did not start)"
    bg_stop "$BG_PID"
    return 0
  fi
  if nsx "$cns" timeout $((secs + 20)) iperf3 -J -Z -c "$addr" -p 5201 -t "$secs" "$@" >"$json" 2>&1; then
    mbps=$(iperf_mbps "$json")
    ok "$desc: ${mbps:-?} Mbit/s"
  else
    not_ok "$desc"
    grep -m1 '"error"' "$json" | sed 's/^/#   /' || true
  fi
  bg_stop "$BG_PID"
}

# run_tests LABEL NS1 NS2 [parallel]: kernel tests() with shorter iperf3 runs.
run_tests() {
  local l=$1 n1=$2 n2=$3
  check "$l: flood ping IPv4 ns2->ns1" nsx "$n2" ping -n -q -c 10 -f -W 1 192.168.241.1
  check "$l: flood ping IPv4 ns1->ns2" nsx "$n1" ping -n -q -c 10 -f -W 1 192.168.241.2
  check "$l: flood ping IPv6 ns2->ns1" nsx "$n2" ping -6 -n -q -c 10 -f -W 1 fd00::1
  check "$l: flood ping IPv6 ns1->ns2" nsx "$n1" ping -6 -n -q -c 10 -f -W 1 fd00::2
  iperf_check "$l: iperf3 TCP IPv4 ns1->ns2" "$n2" 192.168.241.2 "$n1" 2
  iperf_check "$l: iperf3 TCP IPv6 ns2->ns1" "$n1" fd00::1 "$n2" 2
  iperf_check "$l: iperf3 UDP IPv4 ns2->ns1 (-b 0)" "$n1" 192.168.241.1 "$n2" 1 -u -b 0
  iperf_check "$l: iperf3 UDP IPv6 ns1->ns2 (-b 0)" "$n2" fd00::2 "$n1" 1 -u -b 0
  if [[ ${4:-} == parallel ]]; then
    iperf_check "$l: iperf3 TCP IPv4 ns1->ns2, 4 streams" "$n2" 192.168.241.2 "$n1" 2 -P 4
  fi
}

udp_listening() {
  [[ -n $(ip netns exec "$1" ss -Huln "sport = :$2") ]]
}

# ncat_delivers NS_LISTEN NS_SEND DST: ncat UDP "X" from NS_SEND to DST:1111 arrives in NS_LISTEN.
ncat_delivers() {
  local lpid got
  bg_start ncat-listen "$1" ncat -l -u -p 1111
  lpid=$BG_PID
  wait_until 5 udp_listening "$1" 1111 || { bg_stop "$lpid"; return 2; }
  nsx "$2" timeout 3 ncat -u "$3" 1111 <<<"X" || true
  wait_until 1 grep -q X "$WIT_TMP/ncat-listen.out"
  got=$(head -c 1 "$WIT_TMP/ncat-listen.out")
  bg_stop "$lpid"
  [[ $got == X ]]
}

# alive_and_answering IF...: each daemon process exists and its UAPI socket answers.
alive_and_answering() {
  local i
  for i in "$@"; do
    kill -0 "$(daemon_pid "$i")" && wg show "$i" >/dev/null || return 1
  done
}

# links_up "NS IF" ...: sets all links up first (veth ends need their peer up), then waits for each.
links_up() {
  local l
  for l in "$@"; do ip -n "${l% *}" link set "${l#* }" up; done
  for l in "$@"; do wait_until 5 link_is_up "${l% *}" "${l#* }" || return 1; done
}

# cpu_ticks PID: utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Each part runs isolated (run_isolated): fresh namespaces, and an unexpected failure ends only that part.

# -------------------------------------------------------------------------------------------------------
# Part 1: daemons in ns0, TUN interfaces moved into ns1 and ns2.
part1() {
  log "== part 1: daemons in ns0, TUNs in ns1/ns2, loopback endpoints"
  fresh_ns "$ns0" "$ns1" "$ns2"
  w1="${P}1" w2="${P}2"
  start_wg "$ns0" "$w1" "$IMPL" || return 0
  start_wg "$ns0" "$w2" "$IMPL" || return 0
  ip -n "$ns0" link set "$w1" netns "$ns1"
  ip -n "$ns0" link set "$w2" netns "$ns2"
  configure_peers "$ns1" "$w1" "$ns2" "$w2"
  orig_mtu=1420
  [[ $(ip -n "$ns1" -o link show dev "$w1") =~ mtu\ ([0-9]+) ]] && orig_mtu=${BASH_REMATCH[1]}
  big_mtu=$((34816 - 1500 + orig_mtu))
  check_eq "TUN MTU after creation is 1420" 1420 "$orig_mtu"

  # #2: IPv4 outer transport, exact counters on a fresh session.
  wg set "$w1" peer "$pub2" endpoint 127.0.0.1:2
  wg set "$w2" peer "$pub1" endpoint 127.0.0.1:1
  check "first flood ping ns2->ns1 (handshake)" nsx "$ns2" ping -n -q -c 10 -f -W 1 192.168.241.1
  read -r _ rx tx < <(wg show "$w2" transfer) || true
  if ((rx == 1372 && (tx == 1428 || tx == 1460))); then
    ok "initiator wg show transfer exact: rx $rx (1372), tx $tx (1428 or 1460)"
  else
    not_ok "initiator wg show transfer exact: rx $rx (want 1372), tx $tx (want 1428 or 1460)"
  fi
  read -r _ rx tx < <(wg show "$w1" transfer) || true
  if ((tx == 1372 && (rx == 1428 || rx == 1460))); then
    ok "responder wg show transfer exact: tx $tx (1372), rx $rx (1428 or 1460)"
  else
    not_ok "responder wg show transfer exact: tx $tx (want 1372), rx $rx (want 1428 or 1460)"
  fi
  { read -r _; read -r _; read -r _; read -r rx _; read -r _; read -r tx _; } < <(ip -n "$ns2" -stats link show dev "$w2") || true
  if ((rx >= 840 && tx >= 840 && rx < 2500)); then
    ok "TUN ip -stats (relaxed): rx $rx, tx $tx bytes"
  else
    not_ok "TUN ip -stats (relaxed): rx $rx, tx $tx bytes (want >= 840, rx < 2500)"
  fi
  read -r _ ts < <(wg show "$w1" latest-handshakes) || true
  check "latest-handshakes non-zero ($ts)" test "${ts:-0}" -ne 0

  run_tests "IPv4 outer" "$ns1" "$ns2" parallel
  ip -n "$ns1" link set "$w1" mtu "$big_mtu"
  ip -n "$ns2" link set "$w2" mtu "$big_mtu"
  run_tests "IPv4 outer, MTU $big_mtu" "$ns1" "$ns2"
  ip -n "$ns1" link set "$w1" mtu "$orig_mtu"
  ip -n "$ns2" link set "$w2" mtu "$orig_mtu"

  # #3: IPv6 outer transport.
  wg set "$w1" peer "$pub2" endpoint "[::1]:2"
  wg set "$w2" peer "$pub1" endpoint "[::1]:1"
  run_tests "IPv6 outer" "$ns1" "$ns2"
  ip -n "$ns1" link set "$w1" mtu "$big_mtu"
  ip -n "$ns2" link set "$w2" mtu "$big_mtu"
  run_tests "IPv6 outer, MTU $big_mtu" "$ns1" "$ns2"
  ip -n "$ns1" link set "$w1" mtu "$orig_mtu"
  ip -n "$ns2" link set "$w2" mtu "$orig_mtu"

  # #5: roaming.
  ip -n "$ns0" -4 addr del 127.0.0.1/8 dev lo
  ip -n "$ns0" -4 addr add 127.212.121.99/8 dev lo
  wg set "$w1" listen-port 9999
  wg set "$w1" peer "$pub2" endpoint 127.0.0.1:2
  check "roaming v4: ping from ns1 after listen-port 9999" ping_until "$ns1" 5 fd00::2
  check_eq "roaming v4: ns2 sees endpoint 127.212.121.99:9999" "$pub1	127.212.121.99:9999" "$(wg show "$w2" endpoints)"
  wg set "$w1" listen-port 9998
  wg set "$w1" peer "$pub2" endpoint "[::1]:2"
  check "roaming v6: ping from ns1 after listen-port 9998" ping_until "$ns1" 5 192.168.241.2
  check_eq "roaming v6: ns2 sees endpoint [::1]:9998" "$pub1	[::1]:9998" "$(wg show "$w2" endpoints)"

  # #6: crypto-RP filter.
  wg set "$w1" peer "$pub2" allowed-ips 192.168.241.0/24
  check "crypto-RP: wider allowed-ips, UDP from ns2 arrives" ncat_delivers "$ns1" "$ns2" 192.168.241.1
  more_specific=$(wg genkey | wg pubkey)
  wg set "$w1" peer "$more_specific" allowed-ips 192.168.241.2/32
  wg set "$w2" listen-port 9997
  check_not "crypto-RP: source owned by a more specific peer, UDP is dropped" ncat_delivers "$ns1" "$ns2" 192.168.241.1
  wg set "$w1" peer "$more_specific" remove
  check_eq "crypto-RP: endpoint still follows to [::1]:9997" "$pub2	[::1]:9997" "$(wg show "$w1" endpoints)"

  # #7: private-key change, immediate handshake.
  wg set "$w1" private-key "$K1" peer "$pub2" preshared-key "$PSK" allowed-ips 192.168.241.2/32 endpoint 127.0.0.1:2
  wg set "$w2" private-key "$K2" listen-port 2 peer "$pub1" preshared-key "$PSK" allowed-ips 192.168.241.1/32
  check "key change: ping before" ping_until "$ns1" 5 192.168.241.2
  wg set "$w1" private-key "$K3"
  wg set "$w2" peer "$pub3" preshared-key "$PSK" allowed-ips 192.168.241.1/32 peer "$pub1" remove
  check "key change: a single ping right after the change is answered (immediate handshake)" \
    nsx "$ns1" ping -n -c 1 -W 2 192.168.241.2
  wg set "$w2" peer "$pub3" remove

  # #8: wg-in-wg over the first tunnel; inner daemons live in ns1/ns2.
  log "== wg-in-wg"
  ip -n "$ns1" addr flush dev "$w1"
  ip -n "$ns2" addr flush dev "$w2"
  add_addr "$ns1" "$w1" fd00::5:1/112
  add_addr "$ns2" "$w2" fd00::5:2/112
  wg set "$w1" private-key "$K1" peer "$pub2" preshared-key "$PSK" allowed-ips fd00::5:2/128 endpoint 127.0.0.1:2
  wg set "$w2" private-key "$K2" listen-port 2 peer "$pub1" preshared-key "$PSK" allowed-ips fd00::5:1/128 endpoint 127.212.121.99:9998
  i1="${P}3" i2="${P}4"
  start_wg "$ns1" "$i1" "$IMPL" || return 0
  start_wg "$ns2" "$i2" "$IMPL" || return 0
  add_addr "$ns1" "$i1" 192.168.241.1/24
  add_addr "$ns1" "$i1" fd00::1/112
  add_addr "$ns2" "$i2" 192.168.241.2/24
  add_addr "$ns2" "$i2" fd00::2/112
  ip -n "$ns1" link set "$i1" mtu 1340
  ip -n "$ns2" link set "$i2" mtu 1340
  wg set "$i1" listen-port 5 private-key "$K3" peer "$pub4" allowed-ips 192.168.241.2/32,fd00::2/128 endpoint "[fd00::5:2]:5"
  wg set "$i2" listen-port 5 private-key "$K4" peer "$pub3" allowed-ips 192.168.241.1/32,fd00::1/128 endpoint "[fd00::5:1]:5"
  link_up "$ns1" "$i1"
  link_up "$ns2" "$i2"
  run_tests "wg-in-wg" "$ns1" "$ns2"

  # Routing loop across namespaces: i1's TUN goes to ns0 (its daemon stays in ns1), and w1's endpoint is
  # then only reachable through i1, whose packets go out through w1 again.
  ip -n "$ns1" link set "$i1" netns "$ns0"
  add_addr "$ns0" "$i1" 192.168.241.1/24
  link_up "$ns0" "$i1"
  check "routing loop setup: ns0 reaches 192.168.241.2 through the nested tunnel" ping_until "$ns0" 5 192.168.241.2
  wg set "$w1" peer "$pub2" endpoint 192.168.241.2:7
  ip -n "$ns2" link del "$w2"
  ip -n "$ns2" link del "$i2"
  read -r _ _ tx_before < <(wg show "$i1" transfer)
  i1_pid=$(daemon_pid "$i1") w1_pid=$(daemon_pid "$w1")
  t_before=$(($(cpu_ticks "$i1_pid") + $(cpu_ticks "$w1_pid")))
  check_not "routing loop: flood ping gets no reply" nsx "$ns0" ping -n -q -W 1 -c 10 -f 192.168.241.2
  sleep 1
  read -r _ _ tx_after < <(wg show "$i1" transfer)
  t_after=$(($(cpu_ticks "$i1_pid") + $(cpu_ticks "$w1_pid")))
  # Not a pass/fail criterion (see the header): two userspace daemons cannot tell that they feed each other.
  log "routing loop: nested tunnel sent $((tx_after - tx_before)) bytes (kernel bound: 70000), daemons used $((t_after - t_before)) CPU ticks"
  check "routing loop: both daemons alive and answering" alive_and_answering "$w1" "$i1"
  ip -n "$ns0" link del "$i1"
  ip -n "$ns1" link del "$w1"
  check "wg-in-wg: all four daemons exit after their TUNs are deleted" \
    wait_until 10 eval 'daemon_gone "$(daemon_pid "$w1")" "$w1" && daemon_gone "$(daemon_pid "$w2")" "$w2" &&
      daemon_gone "$(daemon_pid "$i1")" "$i1" && daemon_gone "$(daemon_pid "$i2")" "$i2"'

}

# -------------------------------------------------------------------------------------------------------
# Part 2: NAT (#9), ping -I and marks (#10), onion routing (#11), policy routing with fwmark (#12).
part2() {
  log "== part 2: NAT router in ns0, daemons in ns1/ns2"
  fresh_ns "$ns0" "$ns1" "$ns2"
  w1="${P}5" w2="${P}6"
  start_wg "$ns1" "$w1" "$IMPL" || return 0
  start_wg "$ns2" "$w2" "$IMPL" || return 0
  configure_peers "$ns1" "$w1" "$ns2" "$w2"
  ip -n "$ns0" link add vethrc type veth peer name vethc netns "$ns1"
  ip -n "$ns0" link add vethrs type veth peer name veths netns "$ns2"
  ip -n "$ns0" addr add 192.168.1.1/24 dev vethrc
  ip -n "$ns0" addr add 10.0.0.1/24 dev vethrs
  ip -n "$ns1" addr add 192.168.1.100/24 dev vethc
  ip -n "$ns2" addr add 10.0.0.100/24 dev veths
  links_up "$ns0 vethrc" "$ns0 vethrs" "$ns1 vethc" "$ns2 veths"
  ip -n "$ns1" route add default via 192.168.1.1
  nsx "$ns0" sysctl -qw net.ipv4.ip_forward=1
  if nsx "$ns0" iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -d 10.0.0.0/24 -j SNAT --to 10.0.0.1 &&
    nsx "$ns0" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2; then
    wg set "$w1" peer "$pub2" endpoint 10.0.0.100:2 persistent-keepalive 1
    check "NAT: ping ns1->ns2 through the SNAT router" ping_until "$ns1" 5 192.168.241.2
    check "NAT: ping ns2->ns1" ping_until "$ns2" 5 192.168.241.1
    check_eq "NAT: ns2 sees the translated endpoint 10.0.0.1:1" "$pub1	10.0.0.1:1" "$(wg show "$w2" endpoints)"
    sleep 3
    check "NAT: after 3 s (conntrack timeout 2 s) ns2 still reaches ns1, keepalives held the mapping" \
      nsx "$ns2" ping -n -c 1 -W 1 192.168.241.1
    wg set "$w1" peer "$pub2" persistent-keepalive 0
  else
    not_ok "NAT: iptables SNAT / conntrack unavailable in this kernel"
  fi

  # #10
  check "ping -I <tunnel interface>" nsx "$ns1" ping -n -c 1 -W 1 -I "$w1" 192.168.241.2
  nsx "$ns1" iptables -t mangle -I OUTPUT -j MARK --set-xmark 1
  check "ping with an OUTPUT MARK rule" nsx "$ns1" ping -n -c 1 -W 1 192.168.241.2
  check "ping -I <tunnel interface> with an OUTPUT MARK rule" nsx "$ns1" ping -n -c 1 -W 1 -I "$w1" 192.168.241.2
  nsx "$ns1" iptables -t mangle -D OUTPUT -j MARK --set-xmark 1

  # #11: onion routing, then a loop.
  wo="${P}o"
  wg set "$w1" peer "$pub3" allowed-ips 192.168.242.2/32 endpoint 192.168.241.2:5
  add_addr "$ns1" "$w1" 192.168.242.1/24
  start_wg "$ns2" "$wo" "$IMPL" || return 0
  add_addr "$ns2" "$wo" 192.168.242.2/24
  wg set "$wo" private-key "$K3" listen-port 5 peer "$pub1" allowed-ips 192.168.242.1/32
  link_up "$ns2" "$wo"
  check "onion: ping through a tunnel inside the tunnel" ping_until "$ns1" 5 192.168.242.2
  ip -n "$ns2" link del "$wo"
  wg set "$w1" peer "$pub3" endpoint 192.168.242.2:5
  w1_pid=$(daemon_pid "$w1")
  t_before=$(cpu_ticks "$w1_pid")
  check_not "onion loop: endpoint only reachable through itself, ping fails" nsx "$ns1" ping -n -c 1 -W 1 192.168.242.2
  sleep 2
  t_after=$(cpu_ticks "$w1_pid")
  ticks_per_s=$(getconf CLK_TCK)
  check "onion loop: daemon alive and answering" alive_and_answering "$w1"
  if [[ $IMPL == wgo ]]; then
    log "skip - onion loop CPU: wireguard-go 0.0.20220316 re-encrypts its own looping packets ($((t_after - t_before)) ticks in ~3 s)"
  elif ((t_after - t_before < 3 * ticks_per_s / 2)); then
    ok "onion loop: daemon not spinning ($((t_after - t_before)) ticks in ~3 s)"
  else
    not_ok "onion loop: daemon not spinning ($((t_after - t_before)) ticks in ~3 s, want < $((3 * ticks_per_s / 2)))"
  fi
  wg set "$w1" peer "$pub3" remove
  ip -n "$ns1" addr del 192.168.242.1/24 dev "$w1"

  # #12: wg-quick style policy routing for the default route.
  add_addr "$ns1" vethc fc00::9/96
  ip -n "$ns1" -6 route add default via fc00::1
  add_addr "$ns2" "$w2" 192.168.99.7/32
  add_addr "$ns2" "$w2" abab::1111/128
  wg set "$w1" fwmark 51820 peer "$pub2" allowed-ips 192.168.99.7,abab::1111
  check_eq "fwmark reads back" "0xca6c" "$(wg show "$w1" fwmark)"
  ip -n "$ns1" -6 route add default dev "$w1" table 51820
  ip -n "$ns1" -6 rule add not fwmark 51820 table 51820
  ip -n "$ns1" -6 rule add table main suppress_prefixlength 0
  ip -n "$ns1" -4 route add default dev "$w1" table 51820
  ip -n "$ns1" -4 rule add not fwmark 51820 table 51820
  ip -n "$ns1" -4 rule add table main suppress_prefixlength 0
  nsx "$ns1" sysctl -qw net.ipv4.conf.vethc.rp_filter=0
  check "policy routing (fwmark 51820): 100 flood pings IPv4" nsx "$ns1" ping -n -q -W 1 -c 100 -f 192.168.99.7
  check "policy routing (fwmark 51820): 100 flood pings IPv6" nsx "$ns1" ping -6 -n -q -W 1 -c 100 -f abab::1111
  nsx "$ns0" iptables -t nat -F 2>/dev/null || true
  ip -n "$ns0" link del vethrc
  ip -n "$ns0" link del vethrs
  ip -n "$ns1" link del "$w1"
  ip -n "$ns2" link del "$w2"
  check "part 2 daemons exit after their TUNs are deleted" \
    wait_until 10 eval 'daemon_gone "$(daemon_pid "$w1")" "$w1" && daemon_gone "$(daemon_pid "$w2")" "$w2"'

}

# -------------------------------------------------------------------------------------------------------
# Part 3 (#14): source address stickiness over a veth between ns1 and ns2.
part3() {
  log "== part 3: source address selection"
  fresh_ns "$ns1" "$ns2"
  w1="${P}7" w2="${P}8"
  start_wg "$ns1" "$w1" "$IMPL" || return 0
  start_wg "$ns2" "$w2" "$IMPL" || return 0
  configure_peers "$ns1" "$w1" "$ns2" "$w2"
  ip -n "$ns1" link add veth1 type veth peer name veth2 netns "$ns2"
  nsx "$ns1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.veth1.accept_dad=0 net.ipv4.conf.veth1.promote_secondaries=1
  nsx "$ns2" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.veth2.accept_dad=0
  add_addr "$ns1" veth1 10.0.0.1/24
  add_addr "$ns1" veth1 fd00:aa::1/96
  add_addr "$ns2" veth2 10.0.0.2/24
  add_addr "$ns2" veth2 fd00:aa::2/96
  links_up "$ns1 veth1" "$ns2 veth2"
  wg set "$w1" peer "$pub2" endpoint 10.0.0.2:2
  check "stickiness: ping over 10.0.0.1" ping_until "$ns1" 5 192.168.241.2
  add_addr "$ns1" veth1 10.0.0.10/24
  ip -n "$ns1" addr del 10.0.0.1/24 dev veth1
  if [[ $IMPL == wgo ]]; then
    log "skip - stickiness v4 failover: wireguard-go 0.0.20220316 keeps a vanished sticky source (ENETUNREACH)"
  else
    check "stickiness: v4 source 10.0.0.1 removed, traffic fails over to 10.0.0.10" ping_until "$ns1" 5 192.168.241.2
    check_eq "stickiness: ns2 sees 10.0.0.10:1" "$pub1	10.0.0.10:1" "$(wg show "$w2" endpoints)"
  fi
  wg set "$w1" peer "$pub2" endpoint "[fd00:aa::2]:2"
  check "stickiness: ping over fd00:aa::1" ping_until "$ns1" 5 192.168.241.2
  add_addr "$ns1" veth1 fd00:aa::10/96
  ip -n "$ns1" addr del fd00:aa::1/96 dev veth1
  check "stickiness: v6 source fd00:aa::1 removed, traffic fails over to fd00:aa::10" ping_until "$ns1" 5 192.168.241.2
  check_eq "stickiness: ns2 sees [fd00:aa::10]:1" "$pub1	[fd00:aa::10]:1" "$(wg show "$w2" endpoints)"

  ip -n "$ns1" link set veth1 down
  ip -n "$ns2" link set veth2 down
  ip -n "$ns1" addr flush dev veth1
  ip -n "$ns2" addr flush dev veth2
  for a in 10.0.0.1/24 10.0.0.2/24 fd00:aa::1/96 fd00:aa::2/96; do add_addr "$ns1" veth1 "$a"; done
  add_addr "$ns2" veth2 10.0.0.3/24
  add_addr "$ns2" veth2 fd00:aa::3/96
  links_up "$ns1 veth1" "$ns2 veth2"
  for ep in 10.0.0.1:1 "[fd00:aa::1]:1" 10.0.0.2:1 "[fd00:aa::2]:1"; do
    wg set "$w2" peer "$pub1" endpoint "$ep"
    check "reply-to-sender: ping ns2->ns1 via endpoint $ep" ping_until "$ns2" 5 192.168.241.1
    check_eq "reply-to-sender: ns1 answered from $ep" "$pub1	$ep" "$(wg show "$w2" endpoints)"
  done

  # Inbound destination address on another interface (dummy0 in the kernel test; a spare veth here).
  ip -n "$ns1" link add witd0 type veth peer name witd1
  add_addr "$ns1" witd0 10.50.0.1/24
  links_up "$ns1 witd0" "$ns1 witd1"
  ip -n "$ns2" route add 10.50.0.0/24 dev veth2
  wg set "$w2" peer "$pub1" endpoint 10.50.0.1:1
  check "other-interface destination: ping ns2->ns1 via 10.50.0.1" ping_until "$ns2" 5 192.168.241.1
  check_eq "other-interface destination: ns1 answered from 10.50.0.1:1" "$pub1	10.50.0.1:1" "$(wg show "$w2" endpoints)"
  ip -n "$ns1" link del witd0
  ip -n "$ns1" addr flush dev veth1
  ip -n "$ns2" addr flush dev veth2
  ip -n "$ns1" route flush dev veth1
  ip -n "$ns2" route flush dev veth2

  # A better route with another source address takes over.
  ip -n "$ns1" link add veth3 type veth peer name veth4 netns "$ns2"
  add_addr "$ns1" veth1 10.0.0.1/24
  add_addr "$ns2" veth2 10.0.0.2/24
  add_addr "$ns1" veth3 10.0.0.3/24
  links_up "$ns1 veth1" "$ns2 veth2" "$ns1 veth3" "$ns2 veth4"
  ip -n "$ns1" route flush dev veth1
  ip -n "$ns1" route flush dev veth3
  ip -n "$ns1" route add 10.0.0.0/24 dev veth1 src 10.0.0.1 metric 2
  wg set "$w1" peer "$pub2" endpoint 10.0.0.2:2
  check "route precedence: ping via veth1" ping_until "$ns1" 5 192.168.241.2
  check_eq "route precedence: ns2 sees 10.0.0.1:1" "$pub1	10.0.0.1:1" "$(wg show "$w2" endpoints)"
  ip -n "$ns1" route add 10.0.0.0/24 dev veth3 src 10.0.0.3 metric 1
  nsx "$ns1" sysctl -qw net.ipv4.conf.veth1.rp_filter=0 net.ipv4.conf.all.rp_filter=0
  nsx "$ns2" sysctl -qw net.ipv4.conf.veth4.rp_filter=0 net.ipv4.conf.all.rp_filter=0
  check "route precedence: ping after a better route appears" ping_until "$ns1" 5 192.168.241.2
  check_eq "route precedence: ns2 sees 10.0.0.3:1" "$pub1	10.0.0.3:1" "$(wg show "$w2" endpoints)"
  ip -n "$ns1" link del veth1
  ip -n "$ns1" link del veth3
  ip -n "$ns1" link del "$w1"
  ip -n "$ns2" link del "$w2"
  check "part 3 daemons exit after their TUNs are deleted" \
    wait_until 10 eval 'daemon_gone "$(daemon_pid "$w1")" "$w1" && daemon_gone "$(daemon_pid "$w2")" "$w2"'

}

# -------------------------------------------------------------------------------------------------------
# Part 4 (#15, #16, #17): UAPI, daemons in ns0.
count_words() { wc -w; }
part4() {
  log "== part 4: IPC stress and key handling"
  fresh_ns "$ns0"

  s="${P}s1"
  start_wg "$ns0" "$s" "$IMPL" || return 0
  {
    echo "[Interface]"
    echo "PrivateKey = $(wg genkey)"
    echo "[Peer]"
    echo "PublicKey = $(wg genkey | wg pubkey)"
    for a in {1..255}; do
      for b in {0..255}; do
        echo "AllowedIPs = $a.$b.0.0/16,$a::$b/128"
      done
    done
  } >"$WIT_TMP/stress1.conf"
  t0=$SECONDS
  check "IPC stress: setconf one peer with 130560 allowed-ips" wg setconf "$s" "$WIT_TMP/stress1.conf"
  check_eq "IPC stress: wg show allowed-ips has 130561 words ($((SECONDS - t0)) s)" 130561 \
    "$(wg show "$s" allowed-ips | count_words)"
  ip -n "$ns0" link del "$s"

  s="${P}s2"
  start_wg "$ns0" "$s" "$IMPL" || return 0
  {
    echo "[Interface]"
    echo "PrivateKey = $(wg genkey)"
    for a in {1..40}; do
      echo "[Peer]"
      echo "PublicKey = $(wg genkey | wg pubkey)"
      for b in {1..52}; do echo "AllowedIPs = $a.$b.0.0/16"; done
    done
  } >"$WIT_TMP/stress2.conf"
  check "IPC stress: setconf 40 peers x 52 allowed-ips" wg setconf "$s" "$WIT_TMP/stress2.conf"
  check_eq "IPC stress: 40 lines of 53 words" "40 x 53" \
    "$(wg show "$s" allowed-ips | awk '{ n[NF]++ } END { for (k in n) printf "%d x %d", n[k], k }')"
  ip -n "$ns0" link del "$s"

  s="${P}s3"
  start_wg "$ns0" "$s" "$IMPL" || return 0
  {
    for i in {1..29}; do printf '[Peer]\nPublicKey = %s\n' "$(wg genkey | wg pubkey)"; done
    printf '[Peer]\nPublicKey = %s\nAllowedIPs = 255.2.3.4/32,abcd::255/128\n' "$(wg genkey | wg pubkey)"
  } >"$WIT_TMP/stress3.conf"
  check "IPC stress: setconf 30 peers, only the last with allowed-ips" wg setconf "$s" "$WIT_TMP/stress3.conf"
  check_eq "IPC stress: showconf lists 30 peers" 30 "$(wg showconf "$s" | grep -c '^\[Peer\]')"
  ip -n "$ns0" link del "$s"

  s="${P}s4"
  start_wg "$ns0" "$s" "$IMPL" || return 0
  v6list=$(printf 'abcd::%d,' {1..197})
  wg set "$s" peer "$pub1"
  wg set "$s" peer "$pub2" allowed-ips "${v6list%,}"
  declare -A ips_of=()
  while read -r pub ips; do ips_of[$pub]=$ips; done < <(wg show "$s" allowed-ips)
  check_eq "IPC: peer without allowed-ips reads (none)" "(none)" "${ips_of[$pub1]:-missing}"
  check_eq "IPC: 197 IPv6 /128s read back" 197 "$(wc -w <<<"${ips_of[$pub2]:-}")"
  ip -n "$ns0" link del "$s"

  check_not "wg show doesnotexist fails" wg show doesnotexist

  # #17 key handling.
  s="${P}k"
  start_wg "$ns0" "$s" "$IMPL" || return 0
  wg set "$s" private-key "$K1" peer "$pub2" preshared-key "$PSK"
  check_eq "keys: private key reads back" "$key1" "$(wg show "$s" private-key)"
  check_eq "keys: preshared key reads back" "$pub2	$psk" "$(wg show "$s" preshared-keys)"
  wg set "$s" private-key /dev/null peer "$pub2" preshared-key /dev/null
  check_eq "keys: private-key /dev/null => (none)" "(none)" "$(wg show "$s" private-key)"
  check_eq "keys: preshared-key /dev/null => (none)" "$pub2	(none)" "$(wg show "$s" preshared-keys)"
  wg set "$s" peer "$pub2"
  wg set "$s" private-key "$K2"
  check_eq "keys: public key follows the private key" "$pub2" "$(wg show "$s" public-key)"
  check_eq "keys: a peer equal to our own public key is removed" "" "$(wg show "$s" peers)"
  wg set "$s" peer "$pub2"
  check_eq "keys: our own public key cannot be added as a peer" "" "$(wg show "$s" peers)"
  wg set "$s" private-key "$K1"
  wg set "$s" peer "$pub2"
  check_eq "keys: the same peer is accepted under another private key" "$pub2" "$(wg show "$s" peers)"
  (umask 077 && echo "/${key1:1}" >"$WIT_KEYS/unclamped.key")
  wg set "$s" private-key "$WIT_KEYS/unclamped.key"
  check_eq "keys: an unclamped private key reads back clamped" "+${key1:1}" "$(wg show "$s" private-key)"

  sorted_ips() { wg show "$s" allowed-ips | cut -f2 | tr ' ' '\n' | sort | tr '\n' ' '; }
  v4list="0.0.0.0/0 10.0.0.0/8 100.0.0.0/10 172.16.0.0/12 192.168.0.0/16"
  v6over="1700::/111 5000::/4 9000::/75 ::/0 e000::/37"
  wg set "$s" peer "$pub2" allowed-ips "${v4list// /,}"
  check_eq "keys: overlapping IPv4 allowed-ips read back" "$(tr ' ' '\n' <<<"$v4list" | sort | tr '\n' ' ')" "$(sorted_ips)"
  wg set "$s" peer "$pub2" allowed-ips 0.0.0.0/0
  check_eq "keys: allowed-ips replaced by 0.0.0.0/0" "0.0.0.0/0 " "$(sorted_ips)"
  wg set "$s" peer "$pub2" allowed-ips "${v6over// /,}"
  check_eq "keys: overlapping IPv6 allowed-ips read back" "$(tr ' ' '\n' <<<"$v6over" | sort | tr '\n' ' ')" "$(sorted_ips)"
  wg set "$s" peer "$pub2" allowed-ips ::/0
  check_eq "keys: allowed-ips replaced by ::/0" "::/0 " "$(sorted_ips)"
  wg set "$s" peer "$pub2" remove

  low_order=(
    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
    AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
    4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=
    X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=
    7P///////////////////////////////////////38=
    7f///////////////////////////////////////38=
    7v///////////////////////////////////////38=
  )
  # Listen on the endpoint (ncat, as the kernel test) and capture on lo from before the peers exist, so
  # nothing sent at configuration time is missed. A normal peer with the same settings on port 1112 is the
  # positive control: it does send (a handshake initiation).
  bg_start ncat-lop "$ns0" ncat -l -u -p 1111
  ncat_pid=$BG_PID
  wait_until 5 udp_listening "$ns0" 1111 || not_ok "low-order keys: ncat listens on udp 1111"
  tcpdump_start lop "$ns0" lo udp and '(' dst port 1111 or dst port 1112 ')' || not_ok "low-order keys: capture on lo starts"
  cap_pid=$BG_PID
  set_ok=0
  for lop in "${low_order[@]}"; do
    wg set "$s" peer "$lop" persistent-keepalive 1 endpoint 127.0.0.1:1111 && set_ok=$((set_ok + 1))
  done
  check_eq "low-order keys: all 7 accepted by wg set" 7 "$set_ok"
  check_eq "low-order keys: 7 peers configured" 7 "$(wg show "$s" peers | wc -l)"
  control=$(wg genkey | wg pubkey)
  wg set "$s" peer "$control" persistent-keepalive 1 endpoint 127.0.0.1:1112
  ip -n "$ns0" link set "$s" up
  sleep 2
  bg_stop "$cap_pid" INT
  bg_stop "$ncat_pid"
  n1111=$(grep -c '\.1111: UDP' "$WIT_TMP/lop.out" || true)
  n1112=$(grep -c '\.1112: UDP' "$WIT_TMP/lop.out" || true)
  check_eq "low-order keys: no packet sent to their endpoint (capture, configuration + link up + 2 s)" 0 "$n1111"
  check_eq "low-order keys: ncat on the endpoint received nothing" 0 "$(wc -c <"$WIT_TMP/ncat-lop.out")"
  check "low-order keys: control peer did send ($n1112 packets), so the capture works" test "$n1112" -gt 0
  ip -n "$ns0" link del "$s"
  check "part 4: last daemon exits after its TUN is deleted" wait_daemon_gone "$s" 10
}

run_isolated "part 1 (loopback topology, wg-in-wg)" part1
run_isolated "part 2 (NAT, marks, onion, policy routing)" part2
run_isolated "part 3 (source address selection)" part3
run_isolated "part 4 (IPC stress, keys)" part4
finish
