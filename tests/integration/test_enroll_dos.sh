#!/usr/bin/env bash
# tests/integration/test_enroll_dos.sh - one host cannot stop or delay enrollment (issue 12 item 3).
#
# Hosts on one bridge in the server's namespace S (192.168.79.0/24): the real `warren server`
# (enrollment on 192.168.79.1:7443), an attacker A and an honest host H.
#   * baseline: H enrolls PROBES times in a row (warren-enroll-load probe: control::enroll, the
#     client library `warren join` uses; one key, so a first enrollment and then re-joins) and
#     we note each time;
#   * attack: A holds ATTACK_CONNS connections to the enrollment port (half silent, half sending
#     garbage), reopening each one the server closes, for the whole measurement; meanwhile H
#     enrolls PROBES times again;
#   * every enrollment under attack succeeds, and the slowest is less than 1 s slower than the
#     baseline's median (a functional bound, measured with a generous margin; not a benchmark);
#   * the attacker really attacked: thousands of connections, most closed by the server at once
#     (per-source cap, garbage failing the TLS handshake), and the server is still up.
# Before the event-loop server (32 threads, 10 s each, no per-source cap) A's silent sockets held
# every slot and H's connections were closed at once: its enrollments failed ("transport").
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"
[[ -x $WARREN_BIN/warren-enroll-load ]] || skip_all "warren-enroll-load not built in $WARREN_BIN"
PROBES=${PROBES:-5}
ATTACK_CONNS=${ATTACK_CONNS:-300}

wit_init
W=$WARREN_BIN/warren
LOAD=$WARREN_BIN/warren-enroll-load
S="${WIT_PREFIX}s" A="${WIT_PREFIX}a" H="${WIT_PREFIX}h"
SIF="${WIT_PREFIX}s"
CONF="$WIT_TMP/srv/server.toml"
mkdir -m 700 "$WIT_TMP/srv"
# On any exit lib.sh's cleanup TERMs every process we started and every process left in our
# namespaces (the server then removes its own sockets) and deletes the namespaces.

new_ns "$S"
new_ns "$A"
new_ns "$H"
ip -n "$S" link add br0 type bridge
ip -n "$S" link set br0 up
add_addr "$S" br0 192.168.79.1/24
for pair in "$A:20" "$H:30"; do
  ns=${pair%:*} host=${pair#*:}
  ip -n "$ns" link add vc type veth peer name "vb$host" netns "$S"
  ip -n "$S" link set "vb$host" master br0 up
  ip -n "$ns" link set vc up
  add_addr "$ns" vc "192.168.79.$host/24"
done

cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.79.0.1/24"

[pool]
lease_idle_time = "0"

[enrollment]
listen = "192.168.79.1:7443"
public_endpoint = "192.168.79.1:51820"
EOF

bg_start server "$S" "$W" server --config "$CONF"
SERVER_PID=$BG_PID
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" || {
  sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20
  fatal "server starts"
}
"$W" server invite --config "$CONF" --name honest --expires 1h >"$WIT_TMP/invite" 2>"$WIT_TMP/invite.err" ||
  fatal "invite: $(cat "$WIT_TMP/invite.err")"

# probe FILE: H enrolls PROBES times; the times (ms) go to FILE, one a line.
probe() {
  if ip netns exec "$H" "$LOAD" probe --invite-file "$WIT_TMP/invite" --key-file "$WIT_TMP/honest.key" \
    --count "$PROBES" >"$1.out" 2>&1; then
    sed -n 's/^enroll_ms=//p' "$1.out" >"$1"
    [[ $(wc -l <"$1") -eq $PROBES ]] && return 0
  fi
  cat "$1.out"  # shown by check on failure
  return 1
}
median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
maximum() { sort -n "$1" | tail -n 1; }

check "baseline: $PROBES enrollments without attack" probe "$WIT_TMP/base"
base=$(median "$WIT_TMP/base")
log "baseline enrollment times (ms): $(tr '\n' ' ' <"$WIT_TMP/base")median $base"

bg_start attack "$A" "$LOAD" attack --target 192.168.79.1:7443 --connections "$ATTACK_CONNS" --seconds 8
sleep 1  # the attacker's connections are up and being recycled
under_ok=0
probe "$WIT_TMP/under" >/dev/null && under_ok=1
check_eq "under attack: $PROBES enrollments succeed" 1 "$under_ok"
((under_ok)) || sed 's/^/#   /' "$WIT_TMP/under.out"
wait_until 15 grep -q connects= "$WIT_TMP/attack.out" || log "the attacker did not report"
stats=$(cat "$WIT_TMP/attack.out")
log "attacker: $stats"
if ((under_ok)); then
  worst=$(maximum "$WIT_TMP/under")
  log "under attack (ms): $(tr '\n' ' ' <"$WIT_TMP/under")max $worst"
  check "under attack: the slowest is < 1000 ms slower than the baseline median ($worst vs $base)" \
    awk -v w="$worst" -v b="$base" 'BEGIN { exit !(w - b < 1000) }'
fi
connects=$(sed -n 's/.*connects=\([0-9]*\).*/\1/p' <<<"$stats")
closed=$(sed -n 's/.*closed_by_server=\([0-9]*\).*/\1/p' <<<"$stats")
check "the attack happened: > 1000 connections opened, most closed by the server" \
  awk -v c="${connects:-0}" -v d="${closed:-0}" 'BEGIN { exit !(c > 1000 && d > c / 2) }'
check "the server is still running" kill -0 "$SERVER_PID"
check "and still enrolls" probe "$WIT_TMP/after"
bg_stop "$SERVER_PID"
check_not "the server removed its status socket" test -e "/var/run/warren/$SIF.sock"

if ((WIT_FAIL > 0)); then
  log "server log:"
  sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20
fi
finish
