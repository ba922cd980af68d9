#!/usr/bin/env bash
# tests/integration/test_relay.sh - the coordinator's relay over TCP/TLS (docs/MESH.md "Relay").
#
#   namespace S: warren server, [mesh] relay_port 7444 on 127.0.0.1 (TLS, control certificate;
#                and UDP on the same port number)
#                nodes A and B (exported clients) and an impostor M: warren-relay-node processes
#
# Checks:
#   * A and B authenticate (proof of their keys, pinned certificate) and exchange datagrams both
#     ways through the relay; the datagrams arrive unchanged with the right source key;
#   * M, proving its own key but claiming A's, is refused (auth_failed) and closed; A's connection
#     is unaffected (it still receives from B afterwards);
#   * a node with an unenrolled key is refused (not enrolled);
#   * `warren server revoke B`: B's relay connection is closed within 2 s;
#   * `warren status --json` shows the relay's counters (nodes, frames forwarded, drops);
#   * over UDP on the same port number: two more nodes exchange datagrams, an impostor is refused,
#     garbage and non-hello datagrams from unknown sources get no answer.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_tools ip openssl python3

wit_init
W=$WARREN_BIN/warren
NODE=$WARREN_BIN/warren-relay-node
[[ -x $NODE ]] || skip_all "warren-relay-node not built"
S="${WIT_PREFIX}s" SIF="${WIT_PREFIX}s"
new_ns "$S"
ip -n "$S" link set lo up

mkdir -m 700 "$WIT_TMP/srv"
CONF="$WIT_TMP/srv/server.toml"
cat >"$CONF" <<EOF
[interface]
name = "$SIF"
listen_port = 51820
address_v4 = "10.97.0.1/24"

[enrollment]
listen = "127.0.0.1:7443"
public_endpoint = "127.0.0.1:51820"

[mesh]
relay_port = 7444
EOF
bg_start server "$S" env LOG_LEVEL=verbose "$W" server --config "$CONF"
wait_until 10 grep -q "Server $SIF up:" "$WIT_TMP/server.err" ||
  { sed 's/^/#   /' "$WIT_TMP/server.err" | tail -n 20; fatal "server starts"; }
check "server: relay on TCP 127.0.0.1:7444" grep -q 'Relay on TCP 127.0.0.1:7444' "$WIT_TMP/server.err"

PIN=$(openssl x509 -in "$WIT_TMP/srv/$SIF-control.crt" -outform DER | sha256sum | cut -d' ' -f1)
for n in a b; do
  (umask 077 && "$W" server export --config "$CONF" "relay-$n" >"$WIT_TMP/$n.conf" 2>"$WIT_TMP/export-$n.err")
done
pub_from_conf() {
  sed -n 's/^PrivateKey = //p' "$1" | wg pubkey 2>/dev/null ||
    { fatal "wg pubkey"; }
}
require_tools wg
PA=$(pub_from_conf "$WIT_TMP/a.conf")
PB=$(pub_from_conf "$WIT_TMP/b.conf")
gen_keypair stranger
chmod 600 "$(key_file stranger)"

node() { ip netns exec "$S" "$NODE" --relay 127.0.0.1:7444 --pin "$PIN" "$@"; }

# ---- A and B exchange datagrams both ways ----------------------------------------------------
bg_start a "$S" "$NODE" --relay 127.0.0.1:7444 --pin "$PIN" --key-file "$WIT_TMP/a.conf" \
  --send-to "$PB" --count 5 --expect 8 --until-closed --timeout 20
A_PID=$BG_PID
bg_start b "$S" "$NODE" --relay 127.0.0.1:7444 --pin "$PIN" --key-file "$WIT_TMP/b.conf" \
  --send-to "$PA" --count 5 --expect 5 --until-closed --timeout 20
B_PID=$BG_PID
check "A authenticates" wait_until 5 grep -q '^auth ok' "$WIT_TMP/a.out"
check "B authenticates" wait_until 5 grep -q '^auth ok' "$WIT_TMP/b.out"
check "B receives A's 5 datagrams, unchanged, from A's key" \
  wait_until 5 bash -c "[[ \$(grep -c '^recv $PA datagram [0-4] from $PA\$' '$WIT_TMP/b.out') == 5 ]]"
check "A receives B's 5 datagrams, from B's key" \
  wait_until 5 bash -c "[[ \$(grep -c '^recv $PB datagram [0-4] from $PB\$' '$WIT_TMP/a.out') == 5 ]]"

# ---- an impostor claiming A's key ---------------------------------------------------------------
rc=0
node --key-file "$(key_file stranger)" --claim "$PA" --timeout 5 >"$WIT_TMP/m.out" 2>&1 || rc=$?
check_eq "impostor claiming A's key: refused (exit 1)" 1 "$rc"
check "impostor: error 3 (auth failed), then closed" \
  bash -c "grep -q '^error 3 ' '$WIT_TMP/m.out' && grep -q '^closed' '$WIT_TMP/m.out'"
# An unenrolled key proving itself correctly: not enrolled.
rc=0
node --key-file "$(key_file stranger)" --timeout 5 >"$WIT_TMP/u.out" 2>&1 || rc=$?
check "unenrolled key: error 4 (not enrolled)" \
  bash -c "[[ $rc == 1 ]] && grep -q '^error 4 ' '$WIT_TMP/u.out'"
# A is still connected and registered under its key: three more datagrams from B reach it.
rc=0
node --key-file "$WIT_TMP/b.conf" --send-to "$PA" --count 3 --timeout 5 >"$WIT_TMP/b2.out" 2>&1 || rc=$?
# B's second connection replaced the first (roaming): the first gets error 8 and closes.
check "A's connection unaffected by the impostor: it receives 3 more from B" \
  wait_until 5 bash -c "grep -q '^done sent=5 received=8' '$WIT_TMP/a.out'"
check "B's new connection replaced its old one (error 8 there)" \
  wait_until 3 grep -q '^error 8 ' "$WIT_TMP/b.out"

# ---- revocation closes the node's connection within 2 s ----------------------------------------
bg_start b3 "$S" "$NODE" --relay 127.0.0.1:7444 --pin "$PIN" --key-file "$WIT_TMP/b.conf" \
  --until-closed --timeout 30
B3_PID=$BG_PID
check "B reconnects" wait_until 5 grep -q '^done sent=0' "$WIT_TMP/b3.out"
t0=$(date +%s%N)
"$W" server revoke --config "$CONF" relay-b >/dev/null 2>"$WIT_TMP/revoke.err" ||
  { cat "$WIT_TMP/revoke.err"; fatal "revoke"; }
wait_until 3 bash -c "! kill -0 $B3_PID 2>/dev/null" || true
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
log "B's connection closed ${ms} ms after the revoke started"
check "after revoke, B's connection is closed with error 4 within 2 s (${ms} ms)" \
  bash -c "[[ $ms -le 2000 ]] && grep -q '^error 4 ' '$WIT_TMP/b3.out' && grep -q '^closed' '$WIT_TMP/b3.out'"

relay_status() {
  ip netns exec "$S" "$W" status --json "$SIF" | python3 -c '
import json, sys
r = json.load(sys.stdin)["relay"]
ok = (r["port"] == 7444 and r["nodes"] == 1 and r["forwarded_frames"] == 13 and
      r["drops"]["auth_failed"] == 2 and r["drops"]["revoked"] == 1 and r["drops"]["replaced"] == 1)
if not ok:
    print(r, file=sys.stderr)
sys.exit(0 if ok else 1)'
}
check "warren status --json: relay nodes 1 (A), 13 frames forwarded, 2 auth failures, 1 revoked" \
  wait_until 3 relay_status

# ---- the same over UDP (same port number) -------------------------------------------------------
for n in c d; do
  (umask 077 && "$W" server export --config "$CONF" "relay-$n" >"$WIT_TMP/$n.conf" 2>"$WIT_TMP/export-$n.err")
done
PC=$(pub_from_conf "$WIT_TMP/c.conf")
PD=$(pub_from_conf "$WIT_TMP/d.conf")
# `export` has the running server sync before it returns: the relay knows C and D already.
bg_start c "$S" "$NODE" --udp --relay 127.0.0.1:7444 --key-file "$WIT_TMP/c.conf" \
  --send-to "$PD" --count 3 --expect 3 --timeout 10
C_PID=$BG_PID
rc=0
node --udp --key-file "$WIT_TMP/d.conf" --send-to "$PC" --count 3 --expect 3 --timeout 10 \
  >"$WIT_TMP/d.out" 2>&1 || rc=$?
wait "$C_PID" || true
check "UDP: C and D exchange 3 datagrams each way" \
  bash -c "[[ $rc == 0 ]] && grep -q '^done sent=3 received=3' '$WIT_TMP/c.out' &&
           grep -q '^done sent=3 received=3' '$WIT_TMP/d.out' &&
           [[ \$(grep -c '^recv $PC datagram' '$WIT_TMP/d.out') == 3 ]]"
rc=0
node --udp --key-file "$(key_file stranger)" --claim "$PC" --timeout 2 >"$WIT_TMP/mu.out" 2>&1 || rc=$?
# Over UDP a bad proof gets no answer at all (the source may be forged): it is counted.
udp_auth_refused() {
  ip netns exec "$S" "$W" status --json "$SIF" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["relay"]["drops"]["udp_auth_refused"])'
}
check "UDP: impostor claiming C's key gets no auth ok (no answer: the source may be forged)" \
  bash -c "[[ $rc == 3 ]] && grep -q '^timeout' '$WIT_TMP/mu.out' && ! grep -q '^auth ok' '$WIT_TMP/mu.out'"
n_refused=$(udp_auth_refused)
check "UDP: the impostor's udp-auth is counted as refused ($n_refused)" test "$n_refused" -ge 1
# Garbage and a datagram from an unknown source that is not a hello get no answer.
check "UDP: no answer to garbage or to a non-hello from an unknown source" \
  ip netns exec "$S" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
for d in (b"\x01\x00\x00\x00" + bytes(144), bytes.fromhex("c6000008") + bytes(8), b"junk"):
    s.sendto(d, ("127.0.0.1", 7444))
try:
    s.recvfrom(2048)
    sys.exit(1)
except socket.timeout:
    pass'

kill_pid "$A_PID"
kill_pid "$B_PID"
finish
