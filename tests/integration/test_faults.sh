#!/usr/bin/env bash
# tests/integration/test_faults.sh - warren-wg survives faults around it (topology of harden.sh:
# server S, clients C1 and C2, all warren-wg). Each part runs isolated:
#   1. kill -9 of S: its TUN interface goes away with it; the stale UAPI socket is answered with
#      "connection refused" (no hang), and the next start replaces it and works (after S is
#      reconfigured, S reaches C1, and C2 finds S again by itself through a new handshake);
#   2. C1's underlay link down for FAULT_LINK_DOWN_SECONDS (default 60, the issue's figure; lower
#      it by hand for a quick run): during it pings fail, afterwards the tunnel
#      recovers by itself (no wg command) within 15 s, both ways;
#   3. endpoint change mid-transfer: C1's underlay address changes while iperf3 runs through the
#      tunnel: the transfer completes, no 1-s interval after the change is empty for more than
#      2 s, and S's endpoint for C1 follows;
#   4. UAPI clients that hang up mid-request (set without the blank line, get without it) or sit
#      silent on a connection: nothing is applied, other clients are served, the data plane
#      keeps going;
#   5. file descriptors: the daemon keeps none of its launcher's descriptors; started under
#      `ulimit -n 8` warren-wg exits non-zero with a message naming the cause and leaves no
#      socket or interface; a running daemon whose limit is cut to what it holds (prlimit, idle
#      UAPI clients filling the last free numbers) refuses new UAPI connections (the client sees
#      the connection end, no hang) while the tunnel keeps passing traffic, and serves again
#      once the limit is back.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/harden.sh
source "$(dirname "$0")/harden.sh"

require_root
require_tools ip wg ping iperf3 ncat prlimit awk
require_impl warren
: "${FAULT_LINK_DOWN_SECONDS:=60}"

wit_init
star_topology || fatal "star topology"
check "C1 handshake and ping" ping_until "$NS_C1" 10 10.92.0.1
check "C2 handshake and ping" ping_until "$NS_C2" 10 10.92.0.1
SOCK_S=$WIT_RUN_DIR/$WG_S.sock

configure_s() {
  wg set "$WG_S" private-key "$(key_file s)" listen-port "$STAR_PORT" \
    peer "$PUB_C1" allowed-ips 10.92.0.2/32 endpoint "10.91.1.2:$(wg show "$WG_C1" listen-port)" \
    peer "$PUB_C2" allowed-ips 10.92.0.3/32 endpoint "10.91.2.2:$(wg show "$WG_C2" listen-port)" &&
    tunnel_addr "$NS_S" "$WG_S" 10.92.0.1
}

fd_count_at_least() { (($(ls "/proc/$1/fd" | wc -l) >= $2)); }
link_gone() { ! ip -n "$1" link show "$2" >/dev/null 2>&1; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
# wg_refused IFNAME: `wg show` fails, and by an answer (not by our 5 s timeout: exit 124).
wg_refused() {
  local rc=0
  timeout 5 wg show "$1" || rc=$?
  echo "wg show exit status $rc"
  ((rc != 0 && rc != 124))
}

# ---- 1. kill -9
part_kill() {
  local pid
  pid=$(daemon_pid "$WG_S")
  kill -KILL "$pid"
  check "kill -9: the daemon is gone" wait_until 5 pid_gone "$pid"
  check "kill -9: its interface went with it" wait_until 5 link_gone "$NS_S" "$WG_S"
  if [[ -S $SOCK_S ]]; then
    log "kill -9 left the stale socket $SOCK_S (nothing can remove it at SIGKILL)"
    check "kill -9: wg show on the stale socket fails at once (refused, no hang)" wg_refused "$WG_S"
  fi
  export LOG_LEVEL=debug
  start_wg "$NS_S" "$WG_S" warren
  unset LOG_LEVEL
  check "restart: wg show answers" timeout 5 wg show "$WG_S"
  check "restart: reconfigured" configure_s
  check "restart: S reaches C1 again (S initiates)" ping_until "$NS_S" 10 10.92.0.2
  check "restart: C1 reaches S" ping_until "$NS_C1" 5 10.92.0.1
  # C2 still holds a session with the dead S and is not pinged by S: it starts a new handshake
  # by itself once its data went unanswered for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s).
  check "restart: C2 reaches S by itself (new handshake after 15 s unanswered)" ping_until "$NS_C2" 25 10.92.0.1
}
[[ -z ${FAULT_ONLY:-} || $FAULT_ONLY == kill ]] && run_isolated "kill -9" part_kill

# ---- 2. underlay link down, then up
part_link_down() {
  local t0 took
  ping_until "$NS_C1" 10 10.92.0.1 >/dev/null
  ip -n "$NS_C1" link set vx1 down
  check "link down: C1 cannot reach S" ping_fails "$NS_C1" 10.92.0.1
  # Keep C1 trying during the outage, as an application would.
  bg_start "ping-down" "$NS_C1" ping -n -q -i 1 -W 1 10.92.0.1
  local keep=$BG_PID
  sleep "$FAULT_LINK_DOWN_SECONDS"
  ip -n "$NS_C1" link set vx1 up
  t0=$SECONDS
  check "link up: the tunnel recovers by itself (C1 -> S) within 15 s" ping_until "$NS_C1" 15 10.92.0.1
  took=$((SECONDS - t0))
  log "figures: link down ${FAULT_LINK_DOWN_SECONDS} s: recovered ${took} s after link up"
  check "link up: S -> C1" ping_until "$NS_S" 10 10.92.0.2
  bg_stop "$keep"
}
[[ -z ${FAULT_ONLY:-} || $FAULT_ONLY == link ]] && run_isolated "link down" part_link_down

# ---- 3. endpoint change mid-transfer
part_roam() {
  local port json ep bad
  port=$(wg show "$WG_C1" listen-port)
  nsx "$NS_C1" sysctl -qw net.ipv4.conf.vx1.promote_secondaries=1
  iperf_server "$NS_S" 5201
  json=$WIT_TMP/roam.json
  bg_start roam-iperf "$NS_C1" iperf3 -c 10.92.0.1 -p 5201 -t 8 -i 1 -J
  local ip=$BG_PID
  sleep 3
  add_addr "$NS_C1" vx1 10.91.1.12/24
  ip -n "$NS_C1" addr del 10.91.1.2/24 dev vx1
  if wait "$ip"; then ok "roam: iperf3 through the tunnel completed"; else not_ok "roam: iperf3 completed"; fi
  cp "$WIT_TMP/roam-iperf.out" "$json"
  # Intervals (1 s each) that carried nothing; the first 3 are before the change.
  bad=$(awk '/"intervals"/ { on = 1 } on && /"sum"/ { s = 1 } s && /"bytes"/ { gsub(/,/, "", $2); if ($2 + 0 == 0) n++; s = 0 } END { print n + 0 }' "$json")
  log "figures: roam: $(iperf_mbps "$json") Mbit/s over 8 s, $bad empty 1-s intervals"
  check "roam: at most 2 empty 1-s intervals during the change ($bad)" test "$bad" -le 2
  ep=$(wg show "$WG_S" endpoints | awk -v p="$PUB_C1" '$1 == p { print $2 }')
  check_eq "roam: S's endpoint for C1 followed" "10.91.1.12:$port" "$ep"
  check "roam: S -> C1 at the new address" ping_until "$NS_S" 5 10.92.0.2
}
[[ -z ${FAULT_ONLY:-} || $FAULT_ONLY == roam ]] && run_isolated "roam" part_roam

# ---- 4. UAPI clients hanging up
part_uapi() {
  local i before
  before=$(wg show "$WG_S" listen-port)
  for i in $(seq 1 20); do
    printf 'set=1\nlisten_port=4242\nreplace_peers=true\n' | timeout 5 ncat -U --send-only "$SOCK_S" || true
    printf 'get=1\n' | timeout 5 ncat -U --send-only "$SOCK_S" || true
  done
  check_eq "uapi: 20 half-sent sets applied nothing (listen port)" "$before" "$(wg show "$WG_S" listen-port)"
  check_eq "uapi: ... and removed no peer" 2 "$(wg show "$WG_S" peers | wc -l)"
  # A client that sends half a request and then sits there.
  bg_start uapi-silent "$NS_S" bash -c "(printf 'set=1\nlisten_port=4243\n'; sleep 30) | ncat -U '$SOCK_S'"
  local silent=$BG_PID
  sleep 0.5
  check "uapi: another client is served while one hangs mid-request" timeout 5 wg show "$WG_S"
  check "uapi: wg set works meanwhile" timeout 5 wg set "$WG_S" peer "$PUB_C2" persistent-keepalive 0
  bg_stop "$silent"
  check_eq "uapi: the hung-up request applied nothing" "$before" "$(wg show "$WG_S" listen-port)"
  check "uapi: data plane still fine" ping_until "$NS_C1" 5 10.92.0.1
}
[[ -z ${FAULT_ONLY:-} || $FAULT_ONLY == uapi ]] && run_isolated "uapi hang-ups" part_uapi

# ---- 5. file descriptors
part_fds() {
  local ns="${WIT_PREFIX}f" ifn="${WIT_PREFIX}f" out rc=0 pid nfd soft
  new_ns "$ns"
  if [[ -n ${WARREN_SANITIZER:-} ]]; then
    # The sanitizer runtimes need descriptors of their own (UBSan's vptr check probes memory
    # through a pipe), so at 8 descriptors they, not the daemon, would fail.
    log "skip - start under ulimit -n 8: not judged under $WARREN_SANITIZER sanitizer"
  else
    out=$(ip netns exec "$ns" bash -c "ulimit -n 8; exec '$WARREN_BIN/warren-wg' '$ifn'" 2>&1) || rc=$?
    log "ulimit -n 8: exit $rc: $out"
    check "fds: start under ulimit -n 8 fails (exit $rc)" test "$rc" -ne 0
    check "fds: ... with a message naming the cause" grep -qiE 'too many open files|descriptor' <<<"$out"
    check "fds: ... and leaves no socket" test ! -e "$WIT_RUN_DIR/$ifn.sock"
    check "fds: ... and no interface" link_gone "$ns" "$ifn"
  fi

  # A descriptor the launcher had open does not live on in the daemon.
  local ifn2="${WIT_PREFIX}g" pid2
  exec 7>"$WIT_TMP/inherited-fd"
  start_wg "$ns" "$ifn2" warren
  exec 7>&-
  pid2=$(daemon_pid "$ifn2")
  check_not "fds: the daemon keeps no descriptor of its launcher" \
    bash -c "ls -l /proc/$pid2/fd | grep -qF '$WIT_TMP/inherited-fd'"
  ip -n "$ns" link del "$ifn2"
  wait_daemon_gone "$ifn2" 10 || true

  pid=$(find_daemon_pid "$NS_S" "$WG_S")  # restarted in part 1's subshell
  # Soft limit = highest open descriptor + 1; idle UAPI clients fill the holes below it, so the
  # daemon holds every descriptor number it may use (RLIMIT_NOFILE bounds the numbers).
  soft=$(prlimit --pid "$pid" --nofile --raw --noheadings -o SOFT)
  local maxfd count holes i
  maxfd=$(ls "/proc/$pid/fd" | sort -n | tail -n 1)
  count=$(ls "/proc/$pid/fd" | wc -l)
  holes=$((maxfd + 1 - count))
  log "daemon holds $count descriptors (highest $maxfd, $holes free below it); soft limit $soft -> $((maxfd + 1))"
  prlimit --pid "$pid" --nofile="$((maxfd + 1)):"
  local idle=()
  for ((i = 0; i < holes; i++)); do
    bg_start "idle-$i" "$NS_S" bash -c "sleep 30 | ncat -U '$SOCK_S'"
    idle+=("$BG_PID")
  done
  check "fds: idle clients took the last descriptors" wait_until 5 fd_count_at_least "$pid" $((maxfd + 1))
  log "daemon now holds $(ls "/proc/$pid/fd" | wc -l) descriptors"
  check "fds: at the limit, a new UAPI client is refused (not left hanging)" wg_refused "$WG_S"
  check "fds: at the limit, the tunnel still passes traffic" ping_until "$NS_C1" 5 10.92.0.1
  check "fds: at the limit, C2 too" ping_until "$NS_C2" 5 10.92.0.1
  for i in "${idle[@]}"; do bg_stop "$i"; done
  prlimit --pid "$pid" --nofile="$soft:"
  check "fds: limit restored: served again" wait_until 5 wg show "$WG_S"
}
[[ -z ${FAULT_ONLY:-} || $FAULT_ONLY == fds ]] && run_isolated "fds" part_fds

finish
