#!/usr/bin/env bash
# tests/integration/test_wg_quick.sh - wg-quick up/down with warren-wg as the userspace implementation.
#
# wg-quick falls back to WG_QUICK_USERSPACE_IMPLEMENTATION only when `ip link add ... type wireguard`
# fails and /sys/module/wireguard does not exist (so the test is skipped on hosts with the kernel module).
# In namespace A, `wg-quick up <tmp>/<name>.conf` (Address, ListenPort, PrivateKey, [Peer] PublicKey,
# AllowedIPs, Endpoint; no DNS, so /etc/resolv.conf is never touched) runs IMPL (default warren; IMPL=wgo
# for wireguard-go); the peer in namespace B runs PEER_IMPL (default wgo), configured with `wg set`.
# Checks: wg-quick up succeeds and took the userspace path with our binary; the socket and daemon exist;
# wg-quick configured addresses and MTU 1420 (endpoint route MTU 1500 - 80); `wg show` reports the
# config; IPv4/IPv6 ping both ways; `wg-quick down` succeeds, removes the interface, the daemon exits and
# its socket disappears; a second up/down cycle with the same name works (no stale state); with
# SaveConfig = true, `wg-quick down` writes the running config (via `wg showconf`) back to the file.
# Issue 11 §7, 5 rounds each: a `set` that changes the listen port and enables PersistentKeepalive sends an
# initiation at once, from the new port, so the peer's handshake completes well before the 5 s retry and
# the peer sees the configured port as our endpoint: by `wg set` on a running daemon (a new port each
# round), and by `wg-quick up` of a file with ListenPort and PersistentKeepalive.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg wg-quick ping
IMPL=${IMPL:-warren}
PEER_IMPL=${PEER_IMPL:-wgo}
require_impl "$IMPL" "$PEER_IMPL"
if [[ -e /sys/module/wireguard ]]; then
  skip_all "the wireguard kernel module is loaded: wg-quick would use it instead of a userspace implementation"
fi

wit_init

nsa="${WIT_PREFIX}qa" nsb="${WIT_PREFIX}qb"
wq="${WIT_PREFIX}q" wb="${WIT_PREFIX}qp"
va=vwitqa vb=vwitqb
bin=$(impl_bin "$IMPL")
conf="$WIT_TMP/$wq.conf"
tag="[wg-quick $IMPL, peer $PEER_IMPL]"

new_ns "$nsa"
new_ns "$nsb"
if ip -n "$nsa" link add witprobe type wireguard >/dev/null 2>&1; then
  ip -n "$nsa" link del witprobe
  skip_all "this kernel can create wireguard links: wg-quick would not use a userspace implementation"
fi
veth_pair "$nsa" "$va" "$nsb" "$vb"
add_addr "$nsa" "$va" 192.168.66.1/24
add_addr "$nsa" "$va" fd00:66::1/64
add_addr "$nsb" "$vb" 192.168.66.2/24
add_addr "$nsb" "$vb" fd00:66::2/64
wait_until 5 link_is_up "$nsa" "$va"
wait_until 5 link_is_up "$nsb" "$vb"

gen_keypair qa
gen_keypair qb

# Peer B: a plain daemon configured with wg set.
start_wg "$nsb" "$wb" "$PEER_IMPL" || finish
wg set "$wb" private-key "$(key_file qb)" listen-port 51821 \
  peer "$(pub_of qa)" allowed-ips 10.66.0.1/32,fd66::1/128 endpoint 192.168.66.1:51820
add_addr "$nsb" "$wb" 10.66.0.2/24
add_addr "$nsb" "$wb" fd66::2/64
link_up "$nsb" "$wb"

# write_conf INTERFACE-EXTRA [PEER-EXTRA]
write_conf() {
  (
    umask 077
    cat >"$conf" <<EOF
[Interface]
Address = 10.66.0.1/24, fd66::1/64
ListenPort = 51820
PrivateKey = $(priv_of qa)
$1
[Peer]
PublicKey = $(pub_of qb)
AllowedIPs = 10.66.0.2/32, fd66::2/128
Endpoint = 192.168.66.2:51821
${2:-}
EOF
  )
}

quick() {
  ip netns exec "$nsa" env WG_QUICK_USERSPACE_IMPLEMENTATION="$bin" wg-quick "$@"
}

# cycle N: one wg-quick up / traffic / down round.
cycle() {
  local n=$1 out
  out="$WIT_TMP/quick-up-$n.log"
  if quick up "$conf" >"$out" 2>&1; then
    ok "$tag #$n wg-quick up"
  else
    not_ok "$tag #$n wg-quick up"
    sed 's/^/#   /' "$out"
    return 0
  fi
  if grep -q "Falling back to slow userspace implementation" "$out" && grep -qF "[#] $bin $wq" "$out"; then
    ok "$tag #$n wg-quick used the userspace implementation $bin"
  else
    not_ok "$tag #$n wg-quick used the userspace implementation $bin"
    sed 's/^/#   /' "$out"
  fi
  check "$tag #$n UAPI socket exists" test -S "$WIT_RUN_DIR/$wq.sock"
  check "$tag #$n daemon process found in the namespace" adopt_daemon "$nsa" "$wq"
  check "$tag #$n wg-quick set the addresses" has_addresses
  check_eq "$tag #$n wg-quick set MTU 1420 (route MTU 1500 - 80)" 1420 "$(link_mtu "$nsa" "$wq")"
  check_eq "$tag #$n wg show listen-port" 51820 "$(wg show "$wq" listen-port)"
  check_eq "$tag #$n wg show public-key" "$(pub_of qa)" "$(wg show "$wq" public-key)"
  check_eq "$tag #$n wg show allowed-ips" "$(pub_of qb)	10.66.0.2/32 fd66::2/128" "$(wg show "$wq" allowed-ips)"
  check_eq "$tag #$n wg show interfaces lists it (inside the namespace)" yes \
    "$(ip netns exec "$nsa" wg show interfaces | tr ' ' '\n' | grep -qx "$wq" && echo yes)"
  check "$tag #$n IPv4 ping through the tunnel" ping_until "$nsa" 10 10.66.0.2
  check "$tag #$n IPv4 ping back" ping_until "$nsb" 5 10.66.0.1
  check "$tag #$n IPv6 ping through the tunnel" ping_until "$nsa" 5 fd66::2
  check "$tag #$n IPv6 ping back" ping_until "$nsb" 5 fd66::1
  check "$tag #$n full-MTU DF ping (1392 B)" nsx "$nsa" ping -n -c 2 -i 0.2 -W 2 -M do -s 1392 10.66.0.2

  out="$WIT_TMP/quick-down-$n.log"
  if quick down "$conf" >"$out" 2>&1; then
    ok "$tag #$n wg-quick down"
  else
    not_ok "$tag #$n wg-quick down"
    sed 's/^/#   /' "$out"
  fi
  check_not "$tag #$n interface removed" ip -n "$nsa" link show dev "$wq"
  check "$tag #$n daemon exited and its socket is gone" wait_daemon_gone "$wq" 10
}

has_addresses() {
  local a
  a=$(ip -n "$nsa" -o addr show dev "$wq")
  echo "$a"
  [[ $a == *"10.66.0.1/24"* && $a == *"fd66::1/64"* ]]
}

link_mtu() {
  local l
  l=$(ip -n "$1" -o link show dev "$2") || return 0
  [[ $l =~ mtu\ ([0-9]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

write_conf ""
cycle 1
cycle 2

# SaveConfig: wg-quick down saves `wg showconf` output (plus Address/SaveConfig lines) to the file.
write_conf "SaveConfig = true"
if quick up "$conf" >"$WIT_TMP/quick-up-3.log" 2>&1 && adopt_daemon "$nsa" "$wq"; then
  ok "$tag #3 wg-quick up with SaveConfig = true"
  wg set "$wq" peer "$(pub_of qb)" persistent-keepalive 25
  check "$tag #3 wg-quick down" quick down "$conf"
  check "$tag #3 saved config has the runtime change (PersistentKeepalive = 25)" grep -q '^PersistentKeepalive = 25$' "$conf"
  check "$tag #3 saved config keeps the peer's endpoint" grep -q '^Endpoint = 192.168.66.2:51821$' "$conf"
  check "$tag #3 daemon exited and its socket is gone" wait_daemon_gone "$wq" 10
else
  not_ok "$tag #3 wg-quick up with SaveConfig = true"
  sed 's/^/#   /' "$WIT_TMP/quick-up-3.log"
fi

# ---- Issue 11 §7: the first initiation of a `set` leaves from the configured port ----------------------

# forget_a: B drops A (session and endpoint) and knows it again without an endpoint, so what B
# learns comes from A's next initiation only.
forget_a() {
  wg set "$wb" peer "$(pub_of qa)" remove
  wg set "$wb" peer "$(pub_of qa)" allowed-ips 10.66.0.1/32,fd66::1/128
}

# fast_handshake WHAT PORT T0: B's handshake with A (waited for up to 8 s) dates from less than 5 s after T0
# (Unix seconds, taken just before the set): a lost first exchange is retried only 5 s after the first
# initiation, so a later handshake means the first initiation went unanswered (it left from a port that
# was closed by then). And B lists A's endpoint as 192.168.66.1:PORT.
has_handshake_with_a() {
  local hs
  hs=$(wg_peer_field "$wb" latest-handshakes) && [[ -n $hs && $hs != 0 ]]
}
fast_handshake() {
  local what=$1 port=$2 t0=$3 hs ep
  wait_until 8 has_handshake_with_a || true
  hs=$(wg_peer_field "$wb" latest-handshakes || true)
  ep=$(wg_peer_field "$wb" endpoints || true)
  if [[ -n $hs && $hs != 0 ]] && ((hs - t0 < 5)); then
    ok "$what: handshake $((hs - t0)) s after the set (before any retry)"
  else
    not_ok "$what: handshake less than 5 s after the set (latest handshake: ${hs:-?}, set at $t0)"
    wg show "$wb" | sed 's/^/#   /'
  fi
  check_eq "$what: the peer lists our configured port" "192.168.66.1:$port" "$ep"
}

if [[ $IMPL == warren ]]; then
  wk="${WIT_PREFIX}qk"
  if start_wg "$nsa" "$wk" warren; then
    for n in 1 2 3 4 5; do
      port=$((51840 + n))
      forget_a
      wg set "$wk" peer "$(pub_of qb)" remove
      t0=$(date +%s)
      wg set "$wk" private-key "$(key_file qa)" listen-port "$port" \
        peer "$(pub_of qb)" allowed-ips 10.66.0.2/32 endpoint 192.168.66.2:51821 persistent-keepalive 25
      fast_handshake "$tag wg set listen-port $port + keepalive #$n" "$port" "$t0"
    done
    ip -n "$nsa" link del "$wk"
    check "$tag wg set rounds: daemon exited" wait_daemon_gone "$wk" 10
  fi
fi

write_conf "" "PersistentKeepalive = 25"
for n in 1 2 3 4 5; do
  forget_a
  t0=$(date +%s)
  if quick up "$conf" >"$WIT_TMP/quick-up-k$n.log" 2>&1 && adopt_daemon "$nsa" "$wq"; then
    fast_handshake "$tag wg-quick up with ListenPort + PersistentKeepalive #$n" 51820 "$t0"
    quick down "$conf" >"$WIT_TMP/quick-down-k$n.log" 2>&1 || not_ok "$tag keepalive #$n wg-quick down"
    wait_daemon_gone "$wq" 10 || not_ok "$tag keepalive #$n daemon exited"
  else
    not_ok "$tag wg-quick up with PersistentKeepalive #$n"
    sed 's/^/#   /' "$WIT_TMP/quick-up-k$n.log"
  fi
done

finish
