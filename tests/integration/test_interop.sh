#!/usr/bin/env bash
# tests/integration/test_interop.sh - interoperability of warren-wg with itself and with wireguard-go.
#
# For each pair A:B (default warren:warren warren:wgo wgo:warren; WARREN_PAIRS="wgo:wgo" overrides it;
# WARREN_BASELINE=1 adds wgo:wgo as a reference run) two namespaces are joined by a veth pair (underlay
# 192.168.<i>.0/24 and fd00:<i>::/64, inside the namespaces only), A's tunnel is configured with
# `wg setconf` and B's with `wg set` (the real wg tool, over the UAPI socket), and we check:
#   * the UAPI socket exists when the launcher returns (daemonizing start, as wg-quick needs);
#   * IPv4 and IPv6 ping through the tunnel, both ways;
#   * full-MTU pings with DF (1392 + 28 = 1420 for IPv4, 1372 + 48 = 1420 for IPv6), both ways, and a
#     1393-byte DF ping refused (tunnel MTU 1420);
#   * `wg show`: latest handshake non-zero and recent; endpoints are the peers' underlay address:port;
#     transfer counters grow by at least the 10 x 128 wire bytes of `ping -c 10` (and not absurdly more);
#   * an iperf3 TCP transfer (-t 3) in each direction;
#   * allowed-IPs enforcement: pings from an inner source outside the sender's allowed-ips (v4 and v6) fail,
#     and a capture on the receiver's tunnel interface sees none of them (while it does see legit pings);
#   * persistent-keepalive 1: 32-byte UDP payloads (keepalives) on the underlay, about one per second;
#   * roaming: a warren side swaps its underlay address (add new, delete old): its traffic continues and
#     the other side's endpoint follows (not run for wgo:wgo - wireguard-go 0.0.20220316 cannot drop a
#     vanished sticky source on current kernels); then A switches to the IPv6 underlay: B's endpoint
#     becomes [fd00:<i>::1]:port and full-MTU DF pings still pass (1420 + 80 = 1500 on the veth);
#   * peer removal stops traffic, re-adding the peer restores it;
#   * private-key change on A plus peer swap on B: traffic resumes (new handshake);
#   * `wg showconf` -> `wg setconf` -> `wg showconf` round trip is identical, and traffic still flows;
#   * `ip link del` makes each daemon exit and remove its UAPI socket.
# Each pair runs isolated: an unexpected failure aborts only that pair (one "not ok - pair ...: aborted").
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping iperf3 tcpdump ss awk

if [[ -n ${WARREN_PAIRS:-} ]]; then
  read -r -a PAIRS <<<"${WARREN_PAIRS//,/ }"
else
  PAIRS=(warren:warren warren:wgo wgo:warren)
  [[ ${WARREN_BASELINE:-0} == 1 ]] && PAIRS+=(wgo:wgo)
fi
for pair in "${PAIRS[@]}"; do
  [[ $pair =~ ^[a-z]+:[a-z]+$ ]] || fatal "bad pair '$pair' in WARREN_PAIRS (want A:B, e.g. warren:wgo)"
  require_impl "${pair%%:*}" "${pair##*:}"
done

wit_init

PING_BYTES=128   # wire size of one ICMP echo (84 B IP packet, padded to 96, + 32 B header/tag)

run_pair() {
  local idx=$1 ia=$2 ib=$3
  local tag="[$ia->$ib]"
  local nsa="${WIT_PREFIX}i${idx}a" nsb="${WIT_PREFIX}i${idx}b"
  local wa="${WIT_PREFIX}${idx}a" wb="${WIT_PREFIX}${idx}b"
  local va="vwit${idx}a" vb="vwit${idx}b"
  local pa=$((51000 + idx)) pb=$((52000 + idx))
  local ua4="192.168.$idx.1" ub4="192.168.$idx.2" ua6="fd00:$idx::1" ub6="fd00:$idx::2"
  local ta4="10.$idx.0.1" tb4="10.$idx.0.2" ta6="fd77:$idx::1" tb6="fd77:$idx::2"
  local ka="i${idx}a" kb="i${idx}b" ka2="i${idx}a2"
  local puba pubb puba2

  log "---- pair $idx: A=$ia ($nsa/$wa) B=$ib ($nsb/$wb)"
  new_ns "$nsa"
  new_ns "$nsb"
  veth_pair "$nsa" "$va" "$nsb" "$vb"
  # Keep secondaries when the primary address is deleted (roaming step).
  nsx "$nsa" sysctl -qw "net.ipv4.conf.$va.promote_secondaries=1"
  nsx "$nsb" sysctl -qw "net.ipv4.conf.$vb.promote_secondaries=1"
  add_addr "$nsa" "$va" "$ua4/24"
  add_addr "$nsa" "$va" "$ua6/64"
  add_addr "$nsb" "$vb" "$ub4/24"
  add_addr "$nsb" "$vb" "$ub6/64"
  wait_until 5 link_is_up "$nsa" "$va"
  wait_until 5 link_is_up "$nsb" "$vb"

  gen_keypair "$ka"
  gen_keypair "$kb"
  gen_keypair "$ka2"
  puba=$(pub_of "$ka") pubb=$(pub_of "$kb") puba2=$(pub_of "$ka2")

  start_wg "$nsa" "$wa" "$ia" || return 0
  start_wg "$nsb" "$wb" "$ib" || return 0

  # A: wg setconf with a config file; B: wg set.
  cat >"$WIT_TMP/$wa.conf" <<EOF
[Interface]
PrivateKey = $(priv_of "$ka")
ListenPort = $pa

[Peer]
PublicKey = $pubb
AllowedIPs = $tb4/32, $tb6/128
Endpoint = $ub4:$pb
EOF
  chmod 600 "$WIT_TMP/$wa.conf"
  check "$tag wg setconf on A" wg setconf "$wa" "$WIT_TMP/$wa.conf"
  check "$tag wg set on B" wg set "$wb" private-key "$(key_file "$kb")" listen-port "$pb" \
    peer "$puba" allowed-ips "$ta4/32,$ta6/128" endpoint "$ua4:$pa"

  tunnel_up "$tag" "$nsa" "$wa" "$ta4" "$ta6"
  tunnel_up "$tag" "$nsb" "$wb" "$tb4" "$tb6"

  # --- basic connectivity
  check "$tag IPv4 ping A->B (first handshake)" ping_until "$nsa" 10 "$tb4"
  check "$tag IPv4 ping B->A" ping_until "$nsb" 5 "$ta4"
  check "$tag IPv6 ping A->B" ping_until "$nsa" 5 "$tb6"
  check "$tag IPv6 ping B->A" ping_until "$nsb" 5 "$ta6"
  check "$tag IPv4 full-MTU DF ping A->B (1392 B payload)" nsx "$nsa" ping -n -c 3 -i 0.2 -W 2 -M do -s 1392 "$tb4"
  check "$tag IPv4 full-MTU DF ping B->A" nsx "$nsb" ping -n -c 3 -i 0.2 -W 2 -M do -s 1392 "$ta4"
  check "$tag IPv6 full-MTU DF ping A->B (1372 B payload)" nsx "$nsa" ping -6 -n -c 3 -i 0.2 -W 2 -M do -s 1372 "$tb6"
  check "$tag IPv6 full-MTU DF ping B->A" nsx "$nsb" ping -6 -n -c 3 -i 0.2 -W 2 -M do -s 1372 "$ta6"
  check_not "$tag oversized DF ping A->B is refused locally (1393 B)" nsx "$nsa" ping -n -c 1 -W 1 -M do -s 1393 "$tb4"

  # --- wg show figures
  check "$tag wg show A: latest handshake non-zero and recent" handshake_recent "$wa"
  check "$tag wg show B: latest handshake non-zero and recent" handshake_recent "$wb"
  check_eq "$tag wg show A endpoints = B's underlay" "$pubb	$ub4:$pb" "$(wg show "$wa" endpoints)"
  check_eq "$tag wg show B endpoints = A's underlay" "$puba	$ua4:$pa" "$(wg show "$wb" endpoints)"
  check_eq "$tag wg show A listen-port" "$pa" "$(wg show "$wa" listen-port)"
  check_eq "$tag wg show B public-key" "$pubb" "$(wg show "$wb" public-key)"
  check_transfer "$tag" "$nsa" "$wa" "$wb" "$tb4"

  # --- TCP throughput
  iperf_both_ways "$tag" "$nsa" "$nsb" "$tb4"

  # --- allowed-IPs (cryptokey routing) enforcement on receive
  check_spoof "$tag" "$nsa" "$wa" "$nsb" "$wb" "$ta4" "$tb4" "10.$idx.0.99" 32
  check_spoof "$tag" "$nsa" "$wa" "$nsb" "$wb" "$ta6" "$tb6" "fd77:$idx::99" 128

  # --- persistent keepalive on the wire
  check_keepalive "$tag" "$nsa" "$va" "$wa" "$pubb" "$pa"

  # --- roaming: one side's underlay address changes under a live session. The roaming side is a warren
  # one when there is one: wireguard-go 0.0.20220316 retries without its sticky source address only on
  # EINVAL, and current kernels answer a vanished IP_PKTINFO source with ENETUNREACH, so it never recovers.
  if [[ $ia == warren || $ib != warren ]]; then
    roam_underlay "$tag" "$ia" A "$nsa" "$va" "$ua4" "192.168.$idx.11" "$pa" "$tb4" "$nsb" "$wb" "$puba" "$ta4"
  else
    roam_underlay "$tag" "$ib" B "$nsb" "$vb" "$ub4" "192.168.$idx.12" "$pb" "$ta4" "$nsa" "$wa" "$pubb" "$tb4"
  fi
  wg set "$wa" peer "$pubb" endpoint "[$ub6]:$pb"
  check "$tag roaming: IPv6 underlay, ping A->B" ping_until "$nsa" 5 "$tb4"
  check_eq "$tag roaming: B's endpoint for A is now [$ua6]:$pa" "$puba	[$ua6]:$pa" "$(wg show "$wb" endpoints)"
  check "$tag IPv6 underlay: full-MTU DF ping A->B (1500 B on the veth)" nsx "$nsa" ping -n -c 3 -i 0.2 -W 2 -M do -s 1392 "$tb4"
  check "$tag IPv6 underlay: full-MTU DF IPv6 ping B->A" nsx "$nsb" ping -6 -n -c 3 -i 0.2 -W 2 -M do -s 1372 "$ta6"

  # --- peer removal and re-adding
  wg set "$wa" peer "$pubb" remove
  check_eq "$tag peer removed: wg show A peers is empty" "" "$(wg show "$wa" peers)"
  check "$tag peer removed: ping A->B fails" ping_fails "$nsa" "$tb4"
  check "$tag peer removed: ping B->A fails" ping_fails "$nsb" "$ta4"
  wg set "$wa" peer "$pubb" allowed-ips "$tb4/32,$tb6/128" endpoint "[$ub6]:$pb"
  check "$tag peer re-added: ping A->B resumes" ping_until "$nsa" 10 "$tb4"
  check "$tag peer re-added: ping B->A resumes" ping_until "$nsb" 5 "$ta4"

  # --- private key change on A, B swaps the peer (kernel netns.sh #7)
  wg set "$wa" private-key "$(key_file "$ka2")"
  check_eq "$tag key change: A's public key is the new one" "$puba2" "$(wg show "$wa" public-key)"
  wg set "$wb" peer "$puba" remove peer "$puba2" allowed-ips "$ta4/32,$ta6/128"
  check "$tag key change: ping A->B resumes with the new key" ping_until "$nsa" 10 "$tb4"
  check "$tag key change: ping B->A" ping_until "$nsb" 5 "$ta6"
  check_eq "$tag key change: B's only peer is A's new key" "$puba2" "$(wg show "$wb" peers)"

  # --- showconf round trip
  check "$tag wg showconf -> setconf -> showconf round trip (A)" showconf_roundtrip "$wa"
  check "$tag wg showconf -> setconf -> showconf round trip (B)" showconf_roundtrip "$wb"
  check "$tag traffic after setconf: ping A->B" ping_until "$nsa" 10 "$tb4"
  check "$tag traffic after setconf: ping B->A" ping_until "$nsb" 5 "$ta4"

  # --- teardown: the daemon exits and removes its socket when its TUN is deleted
  ip -n "$nsa" link del "$wa"
  check "$tag $ia exits and removes its socket after ip link del" wait_daemon_gone "$wa" 10
  ip -n "$nsb" link del "$wb"
  check "$tag $ib exits and removes its socket after ip link del" wait_daemon_gone "$wb" 10
  ip netns del "$nsa"
  ip netns del "$nsb"
}

# tunnel_up TAG NS IF ADDR4 ADDR6: tunnel MTU 1420, addresses, link up.
tunnel_up() {
  ip -n "$2" link set "$3" mtu 1420
  add_addr "$2" "$3" "$4/24"
  add_addr "$2" "$3" "$5/64"
  link_up "$2" "$3" || not_ok "$1 link $3 comes up"
}

handshake_recent() {
  local ts now
  ts=$(wg_peer_field "$1" latest-handshakes) || return 1
  now=$(date +%s)
  echo "latest handshake $ts, now $now"
  [[ $ts =~ ^[0-9]+$ ]] && ((ts > 0 && now - ts <= 60 && ts - now <= 5))
}

# check_transfer TAG NSA IFA IFB DST: deltas of `wg show transfer` around `ping -c 10` from NSA.
check_transfer() {
  local tag=$1 nsa=$2 wa=$3 wb=$4 dst=$5 arx0 atx0 brx0 btx0 arx1 atx1 brx1 btx1 lo hi
  read -r arx0 atx0 < <(transfer_sum "$wa")
  read -r brx0 btx0 < <(transfer_sum "$wb")
  nsx "$nsa" ping -n -q -c 10 -i 0.05 -W 2 "$dst" >/dev/null || true
  sleep 0.2
  read -r arx1 atx1 < <(transfer_sum "$wa")
  read -r brx1 btx1 < <(transfer_sum "$wb")
  lo=$((10 * PING_BYTES)) hi=$((10 * PING_BYTES + 600))
  local arx=$((arx1 - arx0)) atx=$((atx1 - atx0)) brx=$((brx1 - brx0)) btx=$((btx1 - btx0))
  if ((atx >= lo && atx <= hi && arx >= lo && arx <= hi && brx >= lo && brx <= hi && btx >= lo && btx <= hi)); then
    ok "$tag wg show transfer after ping -c 10: A rx/tx +$arx/+$atx, B rx/tx +$brx/+$btx (expected $lo..$hi)"
  else
    not_ok "$tag wg show transfer after ping -c 10: A rx/tx +$arx/+$atx, B rx/tx +$brx/+$btx (expected $lo..$hi)"
  fi
}

transfer_sum() {
  local _pub rx tx
  read -r _pub rx tx < <(wg show "$1" transfer)
  printf '%s %s\n' "${rx:-0}" "${tx:-0}"
}

iperf_both_ways() {
  local tag=$1 nsa=$2 nsb=$3 dst=$4 dir json mbps flag
  for dir in "A->B" "B->A"; do
    flag=()
    [[ $dir == "B->A" ]] && flag=(-R)
    json="$WIT_TMP/iperf.json"
    if iperf_server "$nsb" 5201 &&
      nsx "$nsa" timeout 20 iperf3 -J -c "$dst" -p 5201 -t 3 "${flag[@]}" >"$json" 2>&1; then
      mbps=$(iperf_mbps "$json")
      if [[ -n $mbps ]] && ((mbps > 0)); then
        ok "$tag iperf3 TCP $dir: $mbps Mbit/s"
      else
        not_ok "$tag iperf3 TCP $dir: no throughput reported"
      fi
    else
      not_ok "$tag iperf3 TCP $dir"
      grep -m1 '"error"' "$json" | sed 's/^/#   /' || true
    fi
    bg_stop "$BG_PID"
  done
}

# check_spoof TAG NSA WA NSB WB LEGIT_SRC DST SPOOF_SRC PLEN: a packet whose inner source is outside A's
# allowed-ips on B must be dropped by B.
check_spoof() {
  local tag=$1 nsa=$2 wa=$3 nsb=$4 wb=$5 legit=$6 dst=$7 spoof=$8 plen=$9 fam=IPv4 v6=()
  [[ $spoof == *:* ]] && fam=IPv6 v6=(-6)
  add_addr "$nsa" "$wa" "$spoof/$plen"
  local cap="spoof-$wb-$fam"
  if ! tcpdump_start "$cap" "$nsb" "$wb" icmp or icmp6; then
    not_ok "$tag $fam allowed-ips: capture on B's tunnel interface starts"
    return 0
  fi
  check "$tag $fam allowed-ips: spoofed inner source $spoof gets no reply" ping_fails "$nsa" "$dst" -I "$spoof"
  nsx "$nsa" ping "${v6[@]}" -n -q -c 2 -i 0.2 -W 1 -I "$legit" "$dst" >/dev/null 2>&1 || true
  sleep 0.3
  bg_stop "$BG_PID" INT
  local spoofed seen
  spoofed=$(grep -c -F " $spoof > " "$WIT_TMP/$cap.out" || true)
  seen=$(grep -c -F " $legit > " "$WIT_TMP/$cap.out" || true)
  if ((spoofed == 0 && seen > 0)); then
    ok "$tag $fam allowed-ips: B's tunnel interface saw 0 packets from $spoof ($seen from $legit)"
  else
    not_ok "$tag $fam allowed-ips: B's tunnel interface saw $spoofed packets from $spoof ($seen from $legit, want 0 and >0)"
  fi
  ip -n "$nsa" addr del "$spoof/$plen" dev "$wa"
}

# check_keepalive TAG NSA VETH WA PUBB PORT: persistent-keepalive 1 => ~1 keepalive (UDP payload 32) per second.
check_keepalive() {
  local tag=$1 nsa=$2 veth=$3 wa=$4 pubb=$5 port=$6 n cap
  cap="ka-$wa"
  if ! tcpdump_start "$cap" "$nsa" "$veth" udp and src port "$port"; then
    not_ok "$tag keepalive: capture on A's underlay starts"
    return 0
  fi
  wg set "$wa" peer "$pubb" persistent-keepalive 1
  sleep 3.5
  bg_stop "$BG_PID" INT
  wg set "$wa" peer "$pubb" persistent-keepalive off
  n=$(grep -c 'UDP, length 32$' "$WIT_TMP/$cap.out" || true)
  if ((n >= 2 && n <= 6)); then
    ok "$tag persistent-keepalive 1: $n keepalives (UDP payload 32) sent in 3.5 s"
  else
    not_ok "$tag persistent-keepalive 1: $n keepalives (UDP payload 32) sent in 3.5 s (want 2..6)"
    sed 's/^/#   /' "$WIT_TMP/$cap.out" | tail -n 8
  fi
  check_eq "$tag persistent-keepalive reads back as off" "off" "$(wg_peer_field "$wa" persistent-keepalive)"
}

# roam_underlay TAG IMPL SIDE NS VETH OLD NEW PORT PEER_TUN_ADDR OTHER_NS OTHER_IF PUB OWN_TUN_ADDR
roam_underlay() {
  local tag=$1 impl=$2 side=$3 ns=$4 veth=$5 old=$6 new=$7 port=$8 dst=$9 ons=${10} oif=${11} pub=${12} own=${13}
  if [[ $impl == wgo ]]; then
    log "skip - $tag roaming by underlay address change: wireguard-go 0.0.20220316 keeps a vanished sticky source (ENETUNREACH)"
    return 0
  fi
  add_addr "$ns" "$veth" "$new/24"
  ip -n "$ns" addr del "$old/24" dev "$veth"
  check "$tag roaming: ping from $side after its underlay address changed $old -> $new" ping_until "$ns" 5 "$dst"
  check_eq "$tag roaming: the other side's endpoint for $side follows to $new:$port" \
    "$pub	$new:$port" "$(wg show "$oif" endpoints)"
  check "$tag roaming: ping to $side at its new address" ping_until "$ons" 5 "$own"
}

showconf_roundtrip() {
  local f1="$WIT_TMP/$1.show1" f2="$WIT_TMP/$1.show2"
  (umask 077 && wg showconf "$1" >"$f1") &&
    wg setconf "$1" "$f1" &&
    (umask 077 && wg showconf "$1" >"$f2") &&
    diff -u "$f1" "$f2"
}

idx=0
for pair in "${PAIRS[@]}"; do
  idx=$((idx + 1))
  t0=$SECONDS
  run_isolated "pair $pair" run_pair "$idx" "${pair%%:*}" "${pair##*:}"
  log "pair ${pair}: $((SECONDS - t0)) s"
done

finish
