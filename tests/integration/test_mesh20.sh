#!/usr/bin/env bash
# Mesh mode at 20 nodes (issue 13, "Tests": "20 nodes: every node pings every other by address
# and by name; a node revoked at the coordinator is unreachable from all within 2 s").
#
#   coordinator S (br0 192.168.78.1, [mesh]) ── 20 nodes n01..n20 (192.168.78.11..30), one bridge
#
#   * 20 `warren join`s (five at a time): every node has the 19 others as peers;
#   * every node pings every other by its key-derived IPv4 address (380 pairs), then by its name
#     NAME.warren through its own DNS responder (380 lookups and pings; the file DNS method, each
#     namespace its own resolv.conf);
#   * n20 revoked at the coordinator: within 2 s its peer is gone from all 19 others' `wg show`,
#     its name is NXDOMAIN on them, and none reaches it.
# No NAT here (test_mesh_nat.sh has the NATs): this one is about the roster at a size.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping getent
[[ -x $WARREN_BIN/warren ]] || skip_all "warren not built in $WARREN_BIN"

wit_init
W=$WARREN_BIN/warren
N=${MESH_NODES:-20}
S="${WIT_PREFIX}s"
CONF="$WIT_TMP/srv/server.toml"
CL="$WIT_TMP/cl"
mkdir -m 700 "$WIT_TMP/srv" "$CL"
node() { printf '%sn%02d' "$WIT_PREFIX" "$1"; }  # namespace = interface name of node I

# ---- topology ---------------------------------------------------------------------------------
new_ns "$S"
bridge_hub "$S" 192.168.78.1/24
for ((i = 1; i <= N; i++)); do
  ns=$(node "$i")
  new_ns "$ns"
  bridge_join "$S" "vb$i" "$ns" vn "192.168.78.$((10 + i))/24"
done

cat >"$CONF" <<EOF
[interface]
name = "$S"
listen_port = 51820
address_v4 = "10.68.0.1/24"

[enrollment]
listen = "192.168.78.1:7443"
public_endpoint = "192.168.78.1:51820"

[mesh]
EOF
bg_start server "$S" "$W" server --config "$CONF"
wait_until 10 grep -q "Server $S up:" "$WIT_TMP/server.err" ||
  fatal "server starts: $(tail -n 5 "$WIT_TMP/server.err")"

# ---- 20 joins ---------------------------------------------------------------------------------
t0=$(now)
for ((i = 1; i <= N; i++)); do
  "$W" server invite --config "$CONF" --name "node$i" --expires 1h >"$WIT_TMP/inv-$i"
done
join_one() {
  local ns
  ns=$(node "$1")
  ip netns exec "$ns" "$W" join --invite-file "$WIT_TMP/inv-$1" --interface "$ns" \
    --config-dir "$CL" >"$WIT_TMP/join-$1.out" 2>&1 || echo "$1" >>"$WIT_TMP/join-failed"
}
# (Waiting by PID: a bare `wait` would also wait for the coordinator, our background job.)
pids=()
for ((i = 1; i <= N; i++)); do
  join_one "$i" &
  pids+=($!)
  if ((i % 5 == 0)); then
    wait "${pids[@]}"
    pids=()
  fi
done
((${#pids[@]} == 0)) || wait "${pids[@]}"
[[ -e $WIT_TMP/join-failed ]] &&
  fatal "join failed for node(s) $(paste -sd' ' "$WIT_TMP/join-failed"): $(cat "$WIT_TMP/join-$(head -n1 "$WIT_TMP/join-failed").out")"
log "$N joins in $(elapsed "$t0" "$(now)") s"
declare -A ADDR
for ((i = 1; i <= N; i++)); do
  ADDR[$i]=$(sed -n 's/^Address *= *//p' "$CL/$(node "$i").conf" | tr ',' '\n' | tr -d ' ' | grep '\.' | cut -d/ -f1)
done
all_peers() {  # every node has the N-1 others (and the coordinator) as peers
  local i
  for ((i = 1; i <= N; i++)); do
    (($(wg show "$(node "$i")" peers | wc -l) == N)) || return 1
  done
}
check "every node has the $((N - 1)) others and the coordinator as peers" wait_until 5 all_peers

# ---- every node pings every other, by address, then by name ------------------------------------
# One background loop per node (its 19 pings one after the other, 3 s each at most); a failure
# is written down as "FROM TO".
ping_all() {  # ping_all addr|name
  local i j ns pids=()
  : >"$WIT_TMP/fail-$1"
  for ((i = 1; i <= N; i++)); do
    (
      ns=$(node "$i")
      for ((j = 1; j <= N; j++)); do
        ((i == j)) && continue
        if [[ $1 == addr ]]; then dst=${ADDR[$j]}; else dst="node$j.warren"; fi
        ip netns exec "$ns" ping -n -q -c 1 -w 3 "$dst" >/dev/null 2>&1 || echo "$i $j" >>"$WIT_TMP/fail-$1"
      done
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  [[ ! -s $WIT_TMP/fail-$1 ]]
}
t0=$(now)
check "all $((N * (N - 1))) ordered pairs ping each other by address" ping_all addr
log "pings by address: $(elapsed "$t0" "$(now)") s; failed pairs: $(paste -sd, "$WIT_TMP/fail-addr")"
check_eq "node1 resolves node2.warren to node2's address" "${ADDR[2]}" \
  "$(ip netns exec "$(node 1)" getent ahostsv4 node2.warren | awk 'NR == 1 { print $1 }')"
t0=$(now)
check "all $((N * (N - 1))) ordered pairs ping each other by name (NAME.warren)" ping_all name
log "pings by name: $(elapsed "$t0" "$(now)") s; failed pairs: $(paste -sd, "$WIT_TMP/fail-name")"

# ---- revoke the last node: gone everywhere within 2 s ------------------------------------------
LK=$(wg pubkey <"$CL/$(node "$N").key")
gone_everywhere() {
  local i
  for ((i = 1; i < N; i++)); do
    wg show "$(node "$i")" peers | grep -qF "$LK" && return 1
  done
  return 0
}
t0=$(now)
check "revoke node$N" "$W" server revoke --config "$CONF" "node$N"
if wait_until 5 gone_everywhere; then
  t=$(elapsed "$t0" "$(now)")
  log "node$N's peer left all $((N - 1)) nodes $t s after the revocation"
  check "node$N's peer is gone from all $((N - 1)) others within 2 s ($t s)" within "$t" 2
else
  not_ok "node$N's peer is gone from all $((N - 1)) others"
fi
unreachable_from_all() {  # all 19 at once: each ping waits 1 s for the reply that must not come
  local i pids=() reached=0
  for ((i = 1; i < N; i++)); do
    ip netns exec "$(node "$i")" ping -n -q -c 1 -W 1 "${ADDR[$N]}" >/dev/null 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" && reached=1; done
  ((reached == 0))
}
check "no node reaches node$N any more" unreachable_from_all
nxdomain_everywhere() {
  local i
  for ((i = 1; i < N; i++)); do
    ip netns exec "$(node "$i")" getent hosts "node$N.warren" >/dev/null && return 1
  done
  return 0
}
check "node$N.warren no longer resolves on any node" nxdomain_everywhere
check "node1 still reaches node2 by name" ping_until "$(node 1)" 3 node2.warren

finish
