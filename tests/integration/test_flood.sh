#!/usr/bin/env bash
# tests/integration/test_flood.sh - warren-wg under floods from a second namespace.
#
# Topology (tests/integration/harden.sh): server S (warren-wg, LOG_LEVEL=debug: it logs its
# counters), clients C1 and C2 (warren-wg), attacker A, each on its own veth to S. warren-flood
# (tests/tools/flood.cc) sends from A as fast as one thread can, FLOOD_SECONDS (default 10) per
# part; the rates are measured (sent by the tool, received / dropped by the daemon's counters,
# lost in the kernel by /proc/net/snmp) and printed as "# figures:" lines.
#   1. handshake initiations with valid mac1 from spoofed random sources (10.200.0.0/16, random
#      ports), while C2 pings through its established session and C1 starts over (peer removed
#      and re-added: a new handshake through the under-load / cookie path). Run at the tool's
#      full rate (on the 2-core project VM ~185,000/s: more than S can answer with cookie
#      replies, so S's handshake queue drops the excess on arrival) and at FLOOD_STRICT_RATE
#      (50,000/s, all answered). Checks, at both rates: every initiation S read was answered
#      with a cookie reply or dropped by a full handshake-queue lane, and counted; C1's handshake
#      completes with at most one retransmission (the cookie reply is used by the
#      retransmission REKEY_TIMEOUT = 5 s later, as in WireGuard; C1 re-handshakes from its
#      known endpoint, the queue's first lane); C2 loses at most 2% of its pings; S's VmRSS
#      grows by less than FLOOD_RSS_KB. Then initiations from A's own address with random mac1
#      (all bad_mac1, or dropped on arrival).
#   2. garbage (random lengths and types) from spoofed sources: every datagram the daemon read is
#      dropped and counted; C2's pings keep flowing.
#   3. replay: C2's own transport packets (captured on S's side) resent by A at full rate: all
#      dropped (replayed counter / unknown endpoint), C2's endpoint on S does not move to A, C2's
#      pings keep flowing.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/harden.sh
source "$(dirname "$0")/harden.sh"

require_root
require_tools ip wg ping tcpdump awk
require_impl warren
FLOOD=$WARREN_BIN/warren-flood
[[ -x $FLOOD ]] || fatal "warren-flood not found at $FLOOD (make build builds it)"
: "${FLOOD_SECONDS:=10}"
: "${FLOOD_RSS_KB:=32768}"  # allowed VmRSS growth of S over a whole flood part
: "${FLOOD_MIN_PPS:=50000}"  # the rate the attacker must reach (sanitizer builds send slower)

wit_init
star_topology || fatal "star topology"
check "C1 handshake and ping" ping_until "$NS_C1" 10 10.92.0.1
check "C2 handshake and ping" ping_until "$NS_C2" 10 10.92.0.1
stats_field_nonzero() { [[ $(stats_field "$1" "$2") != 0 ]]; }
wait_until 5 stats_field_nonzero "$WG_S" udp_received || true

# flood_part NAME FLOOD-ARGS...: runs warren-flood in A for FLOOD_SECONDS while C2 pings S 20 times
# a second; sets SENT PPS RECV DROPS KERNEL_DROPS PING_LOSS RSS_GROWTH, prints the figures.
flood_part() {
  local name=$1 r0 d0 k0 r1 d1 k1 rss0 rss1 out pings recv_pings pid
  shift
  stats_settle "$WG_S" || true
  r0=$(stats_field "$WG_S" udp_received) d0=$(stats_field "$WG_S" total)
  t0=$(stats_field "$WG_S" tun_written)
  k0=$(udp_snmp "$NS_S" RcvbufErrors)
  pid=$(daemon_pid "$WG_S")
  rss0=$(rss_kb "$pid")
  pings=$((FLOOD_SECONDS * 20))
  bg_start "ping-$name" "$NS_C2" ping -n -q -i 0.05 -c "$pings" -W 1 10.92.0.1
  PING_PID=$BG_PID
  bg_start "flood-$name" "$NS_A" "$FLOOD" --to "10.91.3.1:$STAR_PORT" --seconds "$FLOOD_SECONDS" "$@"
  FLOOD_PID=$BG_PID
  [[ -n ${DURING_FLOOD:-} ]] && "$DURING_FLOOD"
  wait "$FLOOD_PID" || true
  wait "$PING_PID" || true
  out=$(cat "$WIT_TMP/flood-$name.out")
  [[ -s $WIT_TMP/flood-$name.err ]] && sed 's/^/#   flood: /' "$WIT_TMP/flood-$name.err"
  SENT=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
  PPS=$(sed -n 's/.*pps=\([0-9]*\).*/\1/p' <<<"$out")
  rss1=$(rss_kb "$pid")
  stats_settle "$WG_S" || true
  r1=$(stats_field "$WG_S" udp_received) d1=$(stats_field "$WG_S" total)
  t1=$(stats_field "$WG_S" tun_written)
  k1=$(udp_snmp "$NS_S" RcvbufErrors)
  RECV=$((r1 - r0)) DROPS=$((d1 - d0)) KERNEL_DROPS=$((k1 - k0)) TUN=$((t1 - t0))
  RSS_GROWTH=$((rss1 - rss0))
  recv_pings=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$WIT_TMP/ping-$name.out")
  PING_LOSS=$((pings - ${recv_pings:-0}))
  log "figures: $name: sent=${SENT:-?} (${PPS:-?} pps) daemon_received=$RECV daemon_dropped=$DROPS" \
    "kernel_rcvbuf_drops=$KERNEL_DROPS tun_written=$TUN c2_pings=$pings lost=$PING_LOSS" \
    "rss_kb=$rss0->$rss1"
  log "stats after $name: $(stats_line "$WG_S")"
}

# All the attack datagrams are accounted for: read by the daemon or dropped by the kernel for a
# full socket buffer (C2's own pings and handshakes add a few to the daemon's side).
accounted() {
  local legit=$1 unexplained
  unexplained=$((SENT - RECV - KERNEL_DROPS + legit))
  echo "sent=$SENT received=$RECV kernel_drops=$KERNEL_DROPS legit<=$legit unexplained=$unexplained"
  ((unexplained >= 0 && unexplained <= SENT / 100 + 10))
}

# ---- 1. initiation flood, spoofed sources, valid mac1; C1 re-handshakes during it.
c1_rehandshake() {
  sleep 2
  wg set "$WG_C1" peer "$PUB_S" remove
  wg set "$WG_C1" peer "$PUB_S" allowed-ips 10.92.0.1/32 endpoint "10.91.1.1:$STAR_PORT"
  local start=$SECONDS t0
  t0=$(date +%s.%N)
  # One ping starts the handshake; keep one in flight until C1 has a session again.
  until [[ $(wg_latest "$WG_C1" "$PUB_S") != 0 ]] || ((SECONDS - start > 12)); do
    ip netns exec "$NS_C1" ping -n -q -c 1 -W 1 10.92.0.1 >/dev/null 2>&1 || true
  done
  C1_HANDSHAKE_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  C1_OK=$([[ $(wg_latest "$WG_C1" "$PUB_S") != 0 ]] && echo 1 || echo 0)
  echo "$C1_HANDSHAKE_S $C1_OK" >"$WIT_TMP/c1.result"
}
# queue_drops IFNAME: handshake messages S dropped on arrival (all lanes of its handshake queues).
queue_drops() {
  echo $(($(stats_field "$1" queue_full_known_endpoint) + $(stats_field "$1" queue_full_with_mac2) +
    $(stats_field "$1" queue_full_other)))
}
# init_flood NAME FULL_RATE FLOOD-ARGS...: C1 is held to one retransmission (6.5 s) and C2 to 2%
# loss. FULL_RATE=1 marks the run at the tool's full rate, which under a sanitizer (an
# instrumented daemon answers a fraction of it) is run but not judged on time and loss.
init_flood() {
  local name=$1 full=$2 cookies0 cookies q0 qdrops f0 failed max_s=6.5 max_loss=$((FLOOD_SECONDS * 20 / 50))
  shift 2
  cookies0=$(stats_field "$WG_S" cookie_sent) q0=$(queue_drops "$WG_S")
  f0=$(stats_field "$WG_S" handshake_failed)
  DURING_FLOOD=c1_rehandshake flood_part "$name" --mode init --spoof 10.200.0.0/16 --mac1-key "$PUB_S" "$@"
  DURING_FLOOD=
  read -r C1_HANDSHAKE_S C1_OK <"$WIT_TMP/c1.result"
  cookies=$(($(stats_field "$WG_S" cookie_sent) - cookies0))
  qdrops=$(($(queue_drops "$WG_S") - q0))
  failed=$(($(stats_field "$WG_S" handshake_failed) - f0))
  log "figures: $name: cookie_replies=$cookies dropped_on_arrival=$qdrops" \
    "handshake_failed=$failed c1_handshake_s=$C1_HANDSHAKE_S"
  check "$name: every initiation accounted for (daemon or kernel)" accounted 400
  check "$name: S was under load and answered with cookie replies ($cookies)" test "$cookies" -gt $((RECV / 20))
  # handshake_failed: the ones S decrypted in full (a DH each) before the rate put it under load.
  check "$name: every initiation S read was answered, dropped on arrival or failed, and counted ($cookies + $qdrops + $failed of $RECV)" \
    test $((cookies + qdrops + failed)) -ge $((RECV - 400))
  if ((full)) && [[ -n ${WARREN_SANITIZER:-} ]]; then
    # An instrumented daemon answers a fraction of the full rate; what it then loses says
    # nothing about warren. The part still runs: the sanitizer watches the paths it drives.
    log "skip - $name: handshake time and loss not judged under the $WARREN_SANITIZER sanitizer"
  else
    check_eq "$name: C1's new handshake completed during the flood" 1 "$C1_OK"
    check "$name: ... in ${C1_HANDSHAKE_S} s (<= $max_s s)" awk -v t="$C1_HANDSHAKE_S" -v m="$max_s" 'BEGIN { exit !(t <= m) }'
    check "$name: C2's established session kept flowing (lost $PING_LOSS of $((FLOOD_SECONDS * 20)) pings, <= $max_loss)" \
      test "$PING_LOSS" -le "$max_loss"
  fi
  check "$name: S's VmRSS grew by $RSS_GROWTH kB (< $FLOOD_RSS_KB)" test "$RSS_GROWTH" -lt "$FLOOD_RSS_KB"
  check "$name: C1 traffic after the flood" ping_until "$NS_C1" 5 10.92.0.1
}
init_flood init-spoofed-max 1
check "init-spoofed-max: at least ${FLOOD_MIN_PPS} initiations/s sent (${PPS:-0} pps)" test "${PPS:-0}" -ge "$FLOOD_MIN_PPS"
init_flood init-spoofed-50k 0 --rate "${FLOOD_STRICT_RATE:-50000}"

# C2's loss during the unlimited-rate parts below: at most 2 % of its pings. An instrumented
# build (ASan, TSan) runs the daemon at a fraction of its speed, and what it loses then depends
# on the machine, not on warren (seen under TSan: 10 of 200, and 57 of 200 in a CI run that
# failed a bound of a quarter); there the bound is only "it kept flowing": at least a quarter
# of the pings answered, which a stalled or starved session fails. The 2 % is judged by the
# uninstrumented runs (offloads on and off).
flow_loss=$((FLOOD_SECONDS * 20 / 50))
[[ -n ${WARREN_SANITIZER:-} ]] && flow_loss=$((FLOOD_SECONDS * 20 * 3 / 4))

bad0=$(stats_field "$WG_S" bad_mac1) q0=$(queue_drops "$WG_S")
flood_part init-own-address --mode init
bad=$(($(stats_field "$WG_S" bad_mac1) - bad0)) qdrops=$(($(queue_drops "$WG_S") - q0))
check "init flood from A's address, random mac1: all read ones dropped as bad_mac1 or on arrival ($bad + $qdrops of $RECV)" \
  test $((bad + qdrops)) -ge $((RECV - 400))
check "init flood from A's address: accounted for" accounted 400
check "init flood from A's address: C2 kept flowing (lost $PING_LOSS, <= $flow_loss)" test "$PING_LOSS" -le "$flow_loss"

# ---- 2. garbage
flood_part garbage --mode garbage --spoof 10.200.0.0/16
check "garbage: at least ${FLOOD_MIN_PPS} datagrams/s sent (${PPS:-0} pps)" test "${PPS:-0}" -ge "$FLOOD_MIN_PPS"
check "garbage: accounted for" accounted 400
check "garbage: every datagram read was dropped and counted ($DROPS of $RECV, $TUN delivered)" \
  test $((RECV - DROPS - TUN)) -le 400 -a "$DROPS" -ge $((RECV - TUN - 400))
check "garbage: C2 kept flowing (lost $PING_LOSS, <= $flow_loss)" test "$PING_LOSS" -le "$flow_loss"

# ---- 3. replayed transport packets of C2
tcpdump_start cap "$NS_S" vs2 -w "$WIT_TMP/c2.pcap" -U udp dst port "$STAR_PORT"
CAP_PID=$BG_PID
nsx "$NS_C2" ping -n -q -c 50 -i 0.02 10.92.0.1 >/dev/null || true
sleep 0.5
bg_stop "$CAP_PID" INT
ep0=$(wg show "$WG_S" endpoints | awk -v p="$PUB_C2" '$1 == p { print $2 }')
replayed0=$(stats_field "$WG_S" replayed_counter)
flood_part replay --mode replay --replay "$WIT_TMP/c2.pcap"
replayed=$(($(stats_field "$WG_S" replayed_counter) - replayed0))
ep1=$(wg show "$WG_S" endpoints | awk -v p="$PUB_C2" '$1 == p { print $2 }')
log "figures: replay: replayed_counter=$replayed"
check "replay: at least ${FLOOD_MIN_PPS} datagrams/s sent (${PPS:-0} pps)" test "${PPS:-0}" -ge "$FLOOD_MIN_PPS"
check "replay: accounted for" accounted 400
check "replay: every replayed packet read was dropped as replayed ($replayed of $RECV)" \
  test "$replayed" -ge $((RECV - 400))
check "replay: nothing replayed reached S's TUN beyond C2's own pings ($TUN)" test "$TUN" -le 400
check_eq "replay: C2's endpoint on S did not move to the attacker" "$ep0" "$ep1"
check "replay: C2 kept flowing (lost $PING_LOSS, <= $flow_loss)" test "$PING_LOSS" -le "$flow_loss"

finish
