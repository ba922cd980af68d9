#!/usr/bin/env bash
# tools/bench.sh BIN_DIR - throughput / CPU / memory / latency of warren against wireguard-go
# (run by `sudo make bench`; not part of `make test`).
#
# Topology: two network namespaces ("hosts" A and B) joined by one veth pair (MTU 1500), a tunnel
# interface in each (MTU 1420), the UDP sockets and the TUN of each daemon in its own host. iperf3
# server in B, client in A; "A>B" means A sends (A encrypts, B decrypts), "B>A" is iperf3 -R.
#
#   host A  ── veth 192.168.91.0/24 ──  host B        tunnel 10.91.0.0/24: A .1, B .2
#   daemon A, iperf3 -c                 daemon B, iperf3 -s
#
# References (wireguard-go, the userspace WireGuard to compare with), each measured when present:
#   debian    Debian's wireguard-go (0.0.20220316 on bookworm, no offloads): `wireguard-go` on PATH,
#             or WARREN_BENCH_WGGO_DEBIAN=PATH;
#   upstream  current upstream wireguard-go 0.0.20250522 (TUN and UDP offloads): REPO/../shared/bin/
#             wireguard-go-0.0.20250522 (see that directory's README), or WARREN_BENCH_WGGO_UPSTREAM=PATH.
# Either may be set to "none" to leave it out. The output names the references it measured and
# says which it did not, and why (a new user's machine has only Debian's).
#
# Setups (names for WARREN_BENCH_ONLY; every round runs all of them, in a rotated order, so warren
# and wireguard-go alternate and a load change on the shared machine hits both):
#   raw                    the veth without a tunnel (the ceiling);
#   warren-warren          warren-wg in A and B, configured with `wg`;
#   server-join            `warren server` in A, a client enrolled with `warren join` in B (the
#                          invite over the control channel, the client daemon behind `warren up`);
#                          the issue-11 target: within 10 % of warren-warren;
#   server-quic            the same server and client, with `[quic] listen = ["0.0.0.0:443"]` on
#                          the server and the client on `#@warren Transport = quic` (after the join:
#                          `warren down`, the Transport line edited, `warren up FILE`), so every
#                          WireGuard message travels in a QUIC DATAGRAM frame over UDP 443; the setup
#                          dies unless the client's and the server's `warren status --json` say
#                          transport quic, after the setup and after each round's tests. WireGuard's
#                          UDP between the two daemons is dropped (iptables OUTPUT in A and B), so
#                          QUIC carries everything (see server_join_up for why).
#                          MTU: with [quic] (server) and a QuicEndpoint (client) both ends cap the
#                          tunnel MTU at 1372 (kQuicTunnelMtu), so this row runs at MTU 1372 while
#                          server-join (no [quic], so no QuicEndpoint) keeps 1420; the table header
#                          prints the MTUs each of the two measured.
#                          The issue-15 target: 1 stream, both directions, at least 0.50x
#                          server-join; the CPU seconds per gigabit of both are printed under the table;
#   mesh-direct            a mesh coordinator (`warren server` with [mesh]) in a third namespace
#                          C behind A, and two mesh nodes (`warren join`), one in A and one in B,
#                          talking directly over the veth (the coordinator only enrolls them and
#                          hands out the roster);
#                          the issue-13 target: within 10 % of warren-warren;
#   relay-udp, relay-tcp   warren-wg in A and B as two nodes of a mesh coordinator in C (keys from
#                          `warren server export`, WARREN_RELAY + pin), the direct UDP between A
#                          and B dropped (iptables in A and B), so every datagram goes through the
#                          coordinator's relay ([mesh] relay_port, no rate limit): over UDP, resp.
#                          over TCP/TLS (UDP to the relay port dropped too); the setup dies unless
#                          both nodes are on the relay over that carrier and the relay forwards.
#                          Issue 13: reported against mesh-direct (throughput ratio, added RTT);
#                          the coordinator's CPU seconds per test are printed under the table;
#   debian-debian, upstream-upstream   a reference in A and B;
#   warren-REF, REF-warren warren against the newest reference present (upstream, else debian);
#   warren-warren/udp-off  warren-wg with WARREN_OFFLOADS=tun (UDP GSO/GRO off: veth hands GSO
#                          super-datagrams across unsegmented, which flatters one-host figures;
#                          this row shows what a real NIC without UDP offloads would see);
#   baseline-baseline      only with WARREN_BENCH_BASELINE=DIR: the warren-wg in DIR (an older
#                          build) in A and B, for before/after figures in the same run.
# Per setup: idle ping RTT (20 pings, median), then iperf3 TCP with 1 and 4 streams in both
# directions. Per test: throughput (iperf3 receiver), CPU seconds of the two daemons during the
# test (utime + stime from /proc/PID/stat), megabits per CPU-second, peak RSS of the daemon in A and
# of the one in B (VmHWM since its start). The table shows medians over the rounds.
# Last, a memory row per implementation: VmRSS / VmHWM with 1,000 configured idle peers.
#
# Environment: WARREN_BENCH_ROUNDS (default 3), WARREN_BENCH_SECONDS (iperf3 duration per test,
# default 4), WARREN_BENCH_ONLY (a regular expression over setup names, to run a subset; the memory
# rows always run), WARREN_BENCH_WGGO_DEBIAN, WARREN_BENCH_WGGO_UPSTREAM, WARREN_BENCH_BASELINE.
# Namespaces (with the relay setups' iptables rules), daemons (also `warren down` of the joined
# client), iperf3, state files under /var/run/warren and /var/run/wireguard, /etc/netns/NS, and temp
# files are removed on exit, also on failure or Ctrl-C.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: sudo $0 BIN_DIR   (BIN_DIR holds warren-wg and warren, e.g. build/bin)" >&2
  exit 2
fi
BIN_DIR=$1
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${WARREN_BENCH_ROUNDS:-3}
SECS=${WARREN_BENCH_SECONDS:-4}
ONLY=${WARREN_BENCH_ONLY:-.}
if [[ ! $ROUNDS =~ ^[1-9][0-9]*$ ]] || [[ ! $SECS =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: WARREN_BENCH_ROUNDS and WARREN_BENCH_SECONDS must be positive integers" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "bench: needs root for network namespaces and TUN devices: sudo make bench" >&2
  exit 1
fi
WARREN=$(realpath "$BIN_DIR/warren-wg" 2>/dev/null || true)
WARREN_CLI=$(realpath "$BIN_DIR/warren" 2>/dev/null || true)
[[ -x $WARREN ]] || { echo "bench: $BIN_DIR/warren-wg not found (make build)" >&2; exit 1; }
for t in ip wg ping iperf3 awk ss timeout; do
  command -v "$t" >/dev/null || { echo "bench: missing tool $t (sudo make setup)" >&2; exit 1; }
done

# ---- implementations ------------------------------------------------------------------------
# BIN[key]: absolute path; LABEL[key]: its name in the table; WHAT[key]: the header's description.
declare -A BIN LABEL WHAT
BIN[warren]=$WARREN LABEL[warren]="warren" WHAT[warren]="warren-wg $WARREN"
REFS_MEASURED=()
REFS_MISSING=()

# add_reference KEY DESCRIPTION SETTING DEFAULT: KEY is measured when SETTING (or DEFAULT when the
# setting is unset) names an executable wireguard-go; otherwise the reason is kept for the output.
add_reference() {
  local key=$1 desc=$2 setting=$3 default=$4 path version
  path=${!setting-$default}
  if [[ $path == none ]]; then
    REFS_MISSING+=("$desc: left out ($setting=none)")
    return 0
  fi
  if [[ -z $path || ! -x $path ]]; then
    REFS_MISSING+=("$desc: not found${path:+ at $path} (set $setting=PATH)")
    return 0
  fi
  path=$(realpath "$path")
  version=$("$path" --version 2>/dev/null | sed -n '1s/^wireguard-go v//p')
  if [[ -z $version ]]; then
    REFS_MISSING+=("$desc: $path does not print a wireguard-go version")
    return 0
  fi
  local other
  for other in "${!BIN[@]}"; do
    if [[ ${BIN[$other]} == "$path" ]]; then
      REFS_MISSING+=("$desc: same binary as the $other reference ($path)")
      return 0
    fi
  done
  BIN[$key]=$path LABEL[$key]="wg-go $version" WHAT[$key]="reference: wg-go $version = $desc, $path"
  REFS_MEASURED+=("$key")
}
add_reference debian "Debian's wireguard-go" WARREN_BENCH_WGGO_DEBIAN "$(command -v wireguard-go || true)"
add_reference upstream "upstream wireguard-go" WARREN_BENCH_WGGO_UPSTREAM \
  "$(realpath -m "$REPO/../shared/bin/wireguard-go-0.0.20250522")"
if [[ -n ${WARREN_BENCH_BASELINE:-} ]]; then
  b=$(realpath "$WARREN_BENCH_BASELINE/warren-wg" 2>/dev/null || true)
  [[ -x $b ]] || { echo "bench: WARREN_BENCH_BASELINE: no warren-wg in $WARREN_BENCH_BASELINE" >&2; exit 1; }
  [[ $b != "$WARREN" ]] || { echo "bench: WARREN_BENCH_BASELINE is the warren-wg under test" >&2; exit 1; }
  BIN[baseline]=$b LABEL[baseline]="warren (baseline)" WHAT[baseline]="warren (baseline) = warren-wg $b"
fi

# Setups in their base order (rounds rotate it). server-join sits next to warren-warren, and
# server-quic next to server-join, so that the rows compared by the issue-11 and issue-15 targets
# run close together in time.
ORDER=(raw warren-warren server-join server-quic mesh-direct relay-udp relay-tcp)
[[ -n ${BIN[baseline]:-} ]] && ORDER+=(baseline-baseline)
[[ -n ${BIN[debian]:-} ]] && ORDER+=(debian-debian)
[[ -n ${BIN[upstream]:-} ]] && ORDER+=(upstream-upstream)
REF=""
[[ -n ${BIN[debian]:-} ]] && REF=debian
[[ -n ${BIN[upstream]:-} ]] && REF=upstream
[[ -n $REF ]] && ORDER+=("warren-$REF" "$REF-warren")
ORDER+=(warren-warren/udp-off)
SELECTED=()
for s in "${ORDER[@]}"; do [[ $s =~ $ONLY ]] && SELECTED+=("$s"); done
if ((${#SELECTED[@]} == 0)); then
  echo "bench: WARREN_BENCH_ONLY=$ONLY selects no setup (setups: ${ORDER[*]})" >&2
  exit 2
fi
if [[ " ${SELECTED[*]} " =~ \ (server-join|server-quic|mesh-direct|relay-udp|relay-tcp)\  ]] && [[ ! -x $WARREN_CLI ]]; then
  echo "bench: $BIN_DIR/warren not found (make build), needed by the server-join, server-quic, mesh-direct and relay setups" >&2
  exit 1
fi
if [[ " ${SELECTED[*]} " == *" server-quic "* ]]; then
  for t in iptables python3; do
    command -v "$t" >/dev/null || { echo "bench: missing tool $t, needed by the server-quic setup (sudo make setup)" >&2; exit 1; }
  done
fi
if [[ " ${SELECTED[*]} " =~ \ (relay-udp|relay-tcp)\  ]]; then
  for t in iptables openssl python3; do
    command -v "$t" >/dev/null || { echo "bench: missing tool $t, needed by the relay setups (sudo make setup)" >&2; exit 1; }
  done
fi

label() {
  local base=${1%/udp-off} suffix=""
  [[ $1 == */udp-off ]] && suffix=", UDP GSO/GRO off"
  case $base in
    raw) echo "raw veth (no tunnel)" ;;
    server-join) echo "warren server <-> warren join$suffix" ;;
    server-quic) echo "warren server <-> warren join, QUIC" ;;
    mesh-direct) echo "warren mesh node <-> mesh node$suffix" ;;
    relay-udp) echo "warren-wg <-> warren-wg via relay, UDP" ;;
    relay-tcp) echo "warren-wg <-> warren-wg via relay, TCP/TLS" ;;
    *) echo "${LABEL[${base%%-*}]} <-> ${LABEL[${base#*-}]}$suffix" ;;
  esac
}

# ---- namespaces and cleanup -----------------------------------------------------------------
SFX=$(printf '%04x' $(((RANDOM ^ $$ ^ (RANDOM << 3)) & 0xffff)))
NSA="wib${SFX}a" NSB="wib${SFX}b" NSC="wib${SFX}c"
IFA="wib${SFX}a" IFB="wib${SFX}b" IFS_MESH="wib${SFX}s"
TMP=$(mktemp -d /tmp/warren-bench.XXXXXX)
# The joined client gets its own resolv.conf (ip netns exec bind-mounts /etc/netns/NSB/*), so even
# a server that pushed DNS could never touch the host's; the bench config pushes none.
NETNS_ETC=/etc/netns/$NSB NETNS_ETC_A=/etc/netns/$NSA  # (A's: for mesh-direct's node a)
CREATED_NS=()
DAEMONS=()      # PIDs of the daemons of the current setup: A's first, then B's
SERVER_PID=""   # `warren server`, a child of this shell
CLIENT_UP=0     # a `warren join`ed client is up in B
MESH_UP=0       # mesh-direct: node a (IFA) in A and node b (IFB) in B, the coordinator IFS_MESH in A
RELAY_PID=""    # relay-udp/-tcp: the coordinator, whose relay forwards (its CPU is reported)
RELAY_RULES=()  # relay-udp/-tcp: "NS iptables-rule" appended in A and B, deleted by stop_daemons

# alive PID: the process exists and is not a zombie (the server is our child until reaped).
alive() {
  local state
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

stop_daemons() {
  local pid
  if ((CLIENT_UP)); then
    # `warren down` stops the client daemon and undoes what it changed (routes, journal, pid file).
    if ! timeout 15 ip netns exec "$NSB" "$WARREN_CLI" down "$IFB" >"$TMP/down.log" 2>&1 &&
      ! grep -q "is not up" "$TMP/down.log"; then  # "not up": the join itself failed
      echo "bench: warren down $IFB failed:" >&2
      cat "$TMP/down.log" >&2
    fi
    CLIENT_UP=0
  fi
  if ((MESH_UP)); then
    timeout 15 ip netns exec "$NSA" "$WARREN_CLI" down "$IFA" >"$TMP/down-a.log" 2>&1 ||
      grep -q "is not up" "$TMP/down-a.log" || { echo "bench: warren down $IFA failed:" >&2; cat "$TMP/down-a.log" >&2; }
    timeout 15 ip netns exec "$NSB" "$WARREN_CLI" down "$IFB" >"$TMP/down-b.log" 2>&1 ||
      grep -q "is not up" "$TMP/down-b.log" || { echo "bench: warren down $IFB failed:" >&2; cat "$TMP/down-b.log" >&2; }
    MESH_UP=0
  fi
  local rule
  for rule in "${RELAY_RULES[@]}"; do
    # (word splitting wanted: the rule's arguments; none has spaces)
    # shellcheck disable=SC2086
    ip netns exec ${rule%% *} iptables -D ${rule#* } 2>/dev/null || echo "bench: could not delete iptables rule in $rule" >&2
  done
  RELAY_RULES=()
  RELAY_PID=""
  ip -n "$NSC" link del "$IFS_MESH" 2>/dev/null || true
  ip -n "$NSA" link del "$IFA" 2>/dev/null || true
  ip -n "$NSB" link del "$IFB" 2>/dev/null || true
  for pid in "${DAEMONS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local live=0
    for pid in "${DAEMONS[@]}"; do alive "$pid" && live=1; done
    ((live)) || break
    sleep 0.1
  done
  for pid in "${DAEMONS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ -n $SERVER_PID ]]; then
    # (a setup that died before it put the coordinator into DAEMONS: stop it here, or wait hangs)
    if alive "$SERVER_PID"; then
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      for _ in $(seq 30); do alive "$SERVER_PID" || break; sleep 0.1; done
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    { wait "$SERVER_PID"; } 2>/dev/null || true
    SERVER_PID=""
  fi
  DAEMONS=()
  rm -f "/var/run/wireguard/$IFA.sock" "/var/run/wireguard/$IFB.sock" "/var/run/wireguard/$IFS_MESH.sock"
  rm -f "/var/run/warren/$IFA".* "/var/run/warren/$IFB".* "/var/lib/warren/$IFA".* "/var/lib/warren/$IFB".*
  rm -f "/var/run/warren/$IFS_MESH".* "/var/lib/warren/$IFS_MESH".*
}

cleanup() {
  local rc=$? ns pid
  set +e
  trap - EXIT INT TERM
  stop_daemons
  # Whatever still runs inside our namespaces was started by this script (iperf3, daemons).
  for ns in "${CREATED_NS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -f "/var/run/warren/$IFA".* "/var/run/warren/$IFB".* "/var/lib/warren/$IFA".* "/var/lib/warren/$IFB".*
  [[ -d $NETNS_ETC ]] && rm -rf -- "$NETNS_ETC"
  [[ -d $NETNS_ETC_A ]] && rm -rf -- "$NETNS_ETC_A"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

die() {
  echo "bench: $*" >&2
  exit 1
}

for ns in "$NSA" "$NSB"; do
  ip netns add "$ns"
  CREATED_NS+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$NSA" link add va type veth peer name vb netns "$NSB"
ip -n "$NSA" addr add 192.168.91.1/24 dev va
ip -n "$NSB" addr add 192.168.91.2/24 dev vb
ip -n "$NSA" link set va mtu 1500 up
ip -n "$NSB" link set vb mtu 1500 up
# mesh-direct's coordinator lives in a third namespace C behind A (192.168.92.0/24, A forwards),
# so that node a in A has no other WireGuard interface beside it; the nodes' data path is A-B.
# The relay setups' coordinator lives there too: B reaches its relay through A.
if [[ " ${SELECTED[*]} " =~ \ (mesh-direct|relay-udp|relay-tcp)\  ]]; then
  ip netns add "$NSC"
  CREATED_NS+=("$NSC")
  ip -n "$NSC" link set lo up
  ip -n "$NSA" link add vac type veth peer name vc netns "$NSC"
  ip -n "$NSA" addr add 192.168.92.1/24 dev vac
  ip -n "$NSC" addr add 192.168.92.2/24 dev vc
  ip -n "$NSA" link set vac up
  ip -n "$NSC" link set vc up
  ip -n "$NSC" route add default via 192.168.92.1
  ip -n "$NSB" route add 192.168.92.0/24 via 192.168.91.1
  ip netns exec "$NSA" sysctl -qw net.ipv4.ip_forward=1
fi
(
  umask 077
  wg genkey >"$TMP/a.key"
  wg genkey >"$TMP/b.key"
)
PUBA=$(wg pubkey <"$TMP/a.key")
PUBB=$(wg pubkey <"$TMP/b.key")
mkdir -p "$NETNS_ETC"
printf '# warren bench: %s\nnameserver 127.0.0.1\n' "$NSB" >"$NETNS_ETC/resolv.conf"
mkdir -p "$NETNS_ETC_A"
printf '# warren bench: %s\nnameserver 127.0.0.1\n' "$NSA" >"$NETNS_ETC_A/resolv.conf"

ip netns exec "$NSB" iperf3 -s -p 5201 >"$TMP/iperf-server.log" 2>&1 </dev/null &
disown
for _ in $(seq 50); do
  [[ -n $(ip netns exec "$NSB" ss -Htln 'sport = :5201') ]] && break
  sleep 0.1
done

# pid_of_exe NS EXE: the one process in NS running EXE (an absolute, resolved path).
pid_of_exe() {
  local pid
  for pid in $(ip netns pids "$1"); do
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$2" ]] && { echo "$pid"; return 0; }
  done
  return 1
}

# start_daemon NS IF KEY OFFLOADS LOG [VAR=VALUE...]: a warren-wg or wireguard-go, daemonized the
# wg-quick way, with the given variables in its environment.
start_daemon() {
  local ns=$1 ifname=$2 bin=${BIN[$3]} offloads=$4 log=$5 pid vars=()
  shift 5
  vars=("$@")
  [[ -n $offloads ]] && vars+=("WARREN_OFFLOADS=$offloads")
  ip netns exec "$ns" env "${vars[@]}" "$bin" "$ifname" >"$log" 2>&1 </dev/null ||
    { cat "$log" >&2; die "could not start $bin $ifname"; }
  for _ in $(seq 50); do [[ -S /var/run/wireguard/$ifname.sock ]] && break; sleep 0.1; done
  [[ -S /var/run/wireguard/$ifname.sock ]] || die "no UAPI socket for $ifname"
  pid=$(pid_of_exe "$ns" "$bin") || die "cannot find the $bin process in $ns"
  DAEMONS+=("$pid")
}

cpu_ticks() { # utime + stime of every PID given (all threads of each process)
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
hwm_kib() { # VmHWM of one PID in KiB
  awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ping_through DST: the tunnel carries a ping from A to DST within 5 tries of 2 s.
ping_through() {
  for _ in 1 2 3 4 5; do
    ip netns exec "$NSA" ping -n -c 1 -W 2 "$1" >/dev/null 2>&1 && return 0
  done
  return 1
}

# tunnel_up A_KEY B_KEY A_OFFLOADS B_OFFLOADS: two daemons configured with `wg`.
tunnel_up() {
  start_daemon "$NSA" "$IFA" "$1" "$3" "$TMP/a.log"
  start_daemon "$NSB" "$IFB" "$2" "$4" "$TMP/b.log"
  wg set "$IFA" private-key "$TMP/a.key" listen-port 51820 \
    peer "$PUBB" allowed-ips 10.91.0.2/32 endpoint 192.168.91.2:51821
  wg set "$IFB" private-key "$TMP/b.key" listen-port 51821 \
    peer "$PUBA" allowed-ips 10.91.0.1/32 endpoint 192.168.91.1:51820
  ip -n "$NSA" addr add 10.91.0.1/24 dev "$IFA"
  ip -n "$NSB" addr add 10.91.0.2/24 dev "$IFB"
  ip -n "$NSA" link set "$IFA" mtu 1420 up
  ip -n "$NSB" link set "$IFB" mtu 1420 up
  ping_through 10.91.0.2 || die "no ping through the tunnel ($1 <-> $2)"
}

# server_join_up [quic]: `warren server` in A (a fresh state directory each time), an invite,
# `warren join` in B over the control channel; sets JOIN_ADDR to the client's tunnel address. The
# config pushes no DNS and sets up no NAT: the bench measures the data plane, and must not touch
# the host. With "quic" (server-quic): the server also has `[quic] listen = ["0.0.0.0:443"]`, and
# the joined client is taken down and brought up again with `Transport = quic` in its file (as
# tests/integration/test_quic.sh does), so it never uses WireGuard's UDP; dies unless the
# client's status names the quic transport. Appends "SETUP MTU_A MTU_B" to $TMP/mtus.
server_join_up() {
  local transport=${1:-wireguard} srv="$TMP/srv" cl="$TMP/cl" setup=server-join
  [[ $transport == quic ]] && setup=server-quic
  rm -rf "$srv" "$cl"
  mkdir -m 700 "$srv" "$cl"
  cat >"$srv/server.toml" <<EOF
[interface]
name = "$IFA"
listen_port = 51820
address_v4 = "10.91.0.1/24"
mtu = 1420

[pool]
[pool.reservations]
bench = ["10.91.0.2"]

[enrollment]
listen = "192.168.91.1:7443"
public_endpoint = "192.168.91.1:51820"
EOF
  # (the server caps its interface at 1372 with [quic]; the join then records the QuicEndpoint)
  [[ $transport == quic ]] && printf '\n[quic]\nlisten = ["0.0.0.0:443"]\n' >>"$srv/server.toml"
  ip netns exec "$NSA" "$WARREN_CLI" server --config "$srv/server.toml" >"$TMP/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  DAEMONS+=("$SERVER_PID")
  local ready=0
  for _ in $(seq 100); do
    alive "$SERVER_PID" || break
    if [[ -S /var/run/wireguard/$IFA.sock ]] && [[ -n $(ip netns exec "$NSA" ss -Htln 'sport = :7443') ]] &&
      { [[ $transport != quic ]] || [[ -n $(ip netns exec "$NSA" ss -Huln 'sport = :443') ]]; }; then
      ready=1
      break
    fi
    sleep 0.1
  done
  ((ready)) || { tail -n 20 "$TMP/server.log" >&2; die "warren server did not come up (UAPI socket, enrollment port$([[ $transport == quic ]] && echo ", QUIC port 443"))"; }
  "$WARREN_CLI" server invite --config "$srv/server.toml" --name bench --expires 1h >"$srv/invite" 2>"$TMP/invite.log" ||
    { cat "$TMP/invite.log" >&2; die "warren server invite failed"; }
  CLIENT_UP=1
  timeout 60 ip netns exec "$NSB" "$WARREN_CLI" join "$(cat "$srv/invite")" --interface "$IFB" \
    --config-dir "$cl" --name bench-client >"$TMP/join.log" 2>&1 </dev/null ||
    { tail -n 20 "$TMP/join.log" >&2; die "warren join failed"; }
  grep -qi '^DNS' "$cl/$IFB.conf" && die "the joined client got DNS settings; the bench config must push none"
  if [[ $transport == quic ]]; then
    # `Transport = quic` puts the server peer on the QUIC path from its first packet (nothing
    # goes to WireGuard's UDP port); the check after the setup makes sure both ends say quic.
    grep -qx '#@warren QuicEndpoint = 192.168.91.1:443' "$cl/$IFB.conf" ||
      die "server-quic: the joined client's config has no '#@warren QuicEndpoint = 192.168.91.1:443'"
    timeout 15 ip netns exec "$NSB" "$WARREN_CLI" down "$IFB" >"$TMP/down.log" 2>&1 ||
      { cat "$TMP/down.log" >&2; die "server-quic: warren down $IFB (before Transport = quic) failed"; }
    sed -i 's/^#@warren Transport = auto$/#@warren Transport = quic/' "$cl/$IFB.conf"
    grep -qx '#@warren Transport = quic' "$cl/$IFB.conf" ||
      die "server-quic: no '#@warren Transport = auto' line to switch to quic in the joined client's config"
    timeout 60 ip netns exec "$NSB" "$WARREN_CLI" up "$cl/$IFB.conf" >"$TMP/up.log" 2>&1 </dev/null ||
      { tail -n 20 "$TMP/up.log" >&2; die "server-quic: warren up with Transport = quic failed"; }
  fi
  local pid
  pid=$(pid_of_exe "$NSB" "$WARREN_CLI") || die "cannot find the client daemon in $NSB"
  DAEMONS+=("$pid")
  JOIN_ADDR=$(sed -n 's/^Address *= *\([0-9.]*\)\/.*/\1/p' "$cl/$IFB.conf")
  [[ -n $JOIN_ADDR ]] || die "no IPv4 address in the joined client's config"
  ping_through "$JOIN_ADDR" || die "no ping through the tunnel ($(label "$setup"))"
  [[ $transport == quic ]] && check_quic "after the setup"
  echo "$setup $(ip netns exec "$NSA" cat "/sys/class/net/$IFA/mtu") $(ip netns exec "$NSB" cat "/sys/class/net/$IFB/mtu")" >>"$TMP/mtus"
}

# check_quic WHEN: server-quic dies unless both the client's and the server's `warren status
# --json` say that QUIC carries their peer (peers[0].transport, the only peer on either side).
check_quic() {
  local ns ifn got
  for ns in "$NSB" "$NSA"; do
    ifn=$IFB
    [[ $ns == "$NSA" ]] && ifn=$IFA
    got=$(ip netns exec "$ns" "$WARREN_CLI" status --json "$ifn" 2>"$TMP/status.log" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["peers"][0].get("transport", ""))' 2>>"$TMP/status.log") ||
      { cat "$TMP/status.log" >&2; die "server-quic: cannot read peers[0].transport from warren status --json $ifn"; }
    [[ $got == quic ]] ||
      die "server-quic ($1): the $([[ $ns == "$NSB" ]] && echo client || echo server)'s status says transport '$got', not quic"
  done
}

# start_coordinator CONFIG LOG: `warren server --config CONFIG` in C (SERVER_PID), once its UAPI
# socket and its enrollment port (7443) are there.
start_coordinator() {
  ip netns exec "$NSC" "$WARREN_CLI" server --config "$1" >"$2" 2>&1 </dev/null &
  SERVER_PID=$!
  local ready=0
  for _ in $(seq 100); do
    alive "$SERVER_PID" || break
    if [[ -S /var/run/wireguard/$IFS_MESH.sock ]] && [[ -n $(ip netns exec "$NSC" ss -Htln 'sport = :7443') ]]; then
      ready=1
      break
    fi
    sleep 0.1
  done
  ((ready)) || { tail -n 20 "$2" >&2; die "the mesh coordinator did not come up"; }
}

# mesh_direct_up: a mesh coordinator in C (its own interface IFS_MESH), node a joined in A
# (IFA) and node b in B (IFB); sets MESH_B to node b's key-derived IPv4 address. The nodes reach
# each other directly over the veth (their local candidates); A's pings and iperf3 go from node
# a's interface to node b's address. DAEMONS = node a, node b (their CPU and RSS are measured),
# then the idle coordinator (stopped with them).
mesh_direct_up() {
  local srv="$TMP/msrv" cl="$TMP/mcl" n pid ns ifn pubb
  rm -rf "$srv" "$cl"
  mkdir -m 700 "$srv" "$cl"
  cat >"$srv/server.toml" <<EOF
[interface]
name = "$IFS_MESH"
listen_port = 51820
address_v4 = "10.92.0.1/24"
mtu = 1420

[enrollment]
listen = "192.168.92.2:7443"
public_endpoint = "192.168.92.2:51820"

[mesh]
EOF
  start_coordinator "$srv/server.toml" "$TMP/mserver.log"
  MESH_UP=1
  DAEMONS=()
  for n in a b; do
    ns=$NSA ifn=$IFA
    [[ $n == b ]] && ns=$NSB ifn=$IFB
    "$WARREN_CLI" server invite --config "$srv/server.toml" --name "node-$n" --expires 1h >"$srv/invite-$n" 2>"$TMP/invite.log" ||
      { cat "$TMP/invite.log" >&2; die "warren server invite failed"; }
    timeout 60 ip netns exec "$ns" "$WARREN_CLI" join "$(cat "$srv/invite-$n")" --interface "$ifn" \
      --config-dir "$cl" >"$TMP/mjoin-$n.log" 2>&1 </dev/null ||
      { tail -n 20 "$TMP/mjoin-$n.log" >&2; die "warren join (mesh node $n) failed"; }
    pid=$(cat "/var/run/warren/$ifn.pid" 2>/dev/null) && alive "$pid" || die "no client daemon for $ifn"
    DAEMONS+=("$pid")
  done
  DAEMONS+=("$SERVER_PID")
  MESH_B=$(sed -n 's/^Address *= *\([0-9.]*\)\/.*/\1/p' "$cl/$IFB.conf")
  [[ -n $MESH_B ]] || die "no IPv4 address in node b's config"
  ping_through "$MESH_B" || die "no ping from node a to node b ($MESH_B)"
  pubb=$(wg pubkey <"$cl/$IFB.key")
  [[ $(ip netns exec "$NSA" wg show "$IFA" endpoints | awk -v k="$pubb" '$1 == k { print $2 }') == 192.168.91.2:* ]] ||
    die "node a does not reach node b directly: $(ip netns exec "$NSA" wg show "$IFA" endpoints)"
}

# relay_up CARRIER (UDP or TCP): a mesh coordinator in C with its relay on 192.168.92.2:7444 (no
# per-node rate limit: the bench measures the path, not the limit), and warren-wg in A and B as
# two of its nodes (keys from `warren server export`, configured with `wg`, WARREN_RELAY and its
# pin in their environment, as tests/integration/test_relaypath.sh does). The direct UDP between
# the two WireGuard ports is dropped in A and B (iptables OUTPUT, matched on the other host's
# address and port; the relay's traffic, which A forwards to C, is not matched), so the relay
# policy moves each peer to the relay; for TCP, UDP to the relay's port is dropped too, and both
# nodes fall back to TCP/TLS. The direct path is retried only every hour, so no trial falls into
# a measurement. Dies unless both nodes show the other's endpoint as the relay's ("(none)" in
# `wg show`), both logged the carrier asked for, and the relay's forwarded-frame counter grows
# while A pings B. DAEMONS = node a, node b, then the coordinator (RELAY_PID: its CPU is reported
# under the table).
relay_up() {
  local carrier=$1 srv="$TMP/rsrv" n pin key pa pb f0 f1 want ok
  rm -rf "$srv"
  mkdir -m 700 "$srv"
  cat >"$srv/server.toml" <<EOC
[interface]
name = "$IFS_MESH"
listen_port = 51820
address_v4 = "10.92.0.1/24"
mtu = 1420

[enrollment]
listen = "192.168.92.2:7443"
public_endpoint = "192.168.92.2:51820"

[mesh]
relay_port = 7444
relay_rate = 0
relay_frame_rate = 0
EOC
  start_coordinator "$srv/server.toml" "$TMP/rserver.log"
  pin=$(openssl x509 -in "$srv/$IFS_MESH-control.crt" -outform DER | sha256sum | cut -d' ' -f1)
  [[ $pin =~ ^[0-9a-f]{64}$ ]] || die "no certificate pin for the relay ($srv/$IFS_MESH-control.crt)"
  for n in a b; do
    (umask 077 && "$WARREN_CLI" server export --config "$srv/server.toml" "bench-relay-$n" >"$srv/$n.conf" 2>"$TMP/export.log") ||
      { cat "$TMP/export.log" >&2; die "warren server export (relay node $n) failed"; }
    (umask 077 && sed -n 's/^PrivateKey = //p' "$srv/$n.conf" >"$srv/$n.key")
    [[ -s $srv/$n.key ]] || die "no private key in the exported config of relay node $n"
  done
  pa=$(wg pubkey <"$srv/a.key")
  pb=$(wg pubkey <"$srv/b.key")
  relay_rule "$NSA" OUTPUT -d 192.168.91.2 -p udp --dport 51841 -j DROP
  relay_rule "$NSB" OUTPUT -d 192.168.91.1 -p udp --dport 51840 -j DROP
  if [[ $carrier == TCP ]]; then
    relay_rule "$NSA" OUTPUT -p udp --dport 7444 -j DROP
    relay_rule "$NSB" OUTPUT -p udp --dport 7444 -j DROP
  fi
  local env=(WARREN_RELAY=192.168.92.2:7444 "WARREN_RELAY_PIN=$pin" WARREN_RELAY_DIRECT_RETRY=3600 LOG_LEVEL=verbose)
  start_daemon "$NSA" "$IFA" warren "" "$TMP/ra.log" "${env[@]}"
  start_daemon "$NSB" "$IFB" warren "" "$TMP/rb.log" "${env[@]}"
  wg set "$IFA" private-key "$srv/a.key" listen-port 51840 \
    peer "$pb" allowed-ips 10.93.0.2/32 endpoint 192.168.91.2:51841
  wg set "$IFB" private-key "$srv/b.key" listen-port 51841 \
    peer "$pa" allowed-ips 10.93.0.1/32 endpoint 192.168.91.1:51840
  ip -n "$NSA" addr add 10.93.0.1/24 dev "$IFA"
  ip -n "$NSB" addr add 10.93.0.2/24 dev "$IFB"
  ip -n "$NSA" link set "$IFA" mtu 1420 up
  ip -n "$NSB" link set "$IFB" mtu 1420 up
  DAEMONS+=("$SERVER_PID")
  RELAY_PID=$SERVER_PID
  # The relay policy moves a peer after 5 s without a handshake; a UDP-blocked node needs 3 s
  # more before it tries TCP/TLS.
  ok=0
  for _ in $(seq 30); do
    ip netns exec "$NSA" ping -n -c 1 -W 1 10.93.0.2 >/dev/null 2>&1 && { ok=1; break; }
  done
  ((ok)) || { tail -n 5 "$TMP/ra.log" "$TMP/rb.log" >&2; die "relay-${carrier,,}: no ping from A to B through the relay within 30 s"; }
  [[ $carrier == TCP ]] && want="TCP/TLS" || want=UDP
  for n in a b; do
    for _ in $(seq 50); do
      grep -q "relay 192.168.92.2:7444: connected over $want" "$TMP/r$n.log" && break
      sleep 0.1
    done
    grep -q "relay 192.168.92.2:7444: connected over $want" "$TMP/r$n.log" ||
      { tail -n 5 "$TMP/r$n.log" >&2; die "relay-${carrier,,}: node $n is not connected to the relay over $want"; }
  done
  [[ $(ip netns exec "$NSA" wg show "$IFA" endpoints) == "$pb	(none)" ]] &&
    [[ $(ip netns exec "$NSB" wg show "$IFB" endpoints) == "$pa	(none)" ]] ||
    die "relay-${carrier,,}: a peer is not on the relay: A: $(wg show "$IFA" endpoints) B: $(wg show "$IFB" endpoints)"
  f0=$(relay_forwarded)
  ip netns exec "$NSA" ping -n -c 5 -i 0.05 -W 1 10.93.0.2 >/dev/null 2>&1 || die "relay-${carrier,,}: pings lost through the relay"
  f1=$(relay_forwarded)
  ((f1 >= f0 + 10)) || die "relay-${carrier,,}: the relay forwarded $((f1 - f0)) frames for 5 pings and their replies (expected >= 10)"
}

# relay_rule NS IPTABLES-RULE...: append a rule in NS, deleted again by stop_daemons.
relay_rule() {
  local ns=$1
  shift
  ip netns exec "$ns" iptables -A "$@"
  RELAY_RULES+=("$ns $*")
}

# relay_forwarded: the coordinator's relay forwarded-frame counter (`warren status --json`).
relay_forwarded() {
  ip netns exec "$NSC" "$WARREN_CLI" status --json "$IFS_MESH" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["relay"]["forwarded_frames"])' ||
    die "cannot read the relay's counters from warren status --json $IFS_MESH"
}

# ping_median DST: median RTT of 20 idle pings in ms (the median, because on a shared machine one
# ping that waited for a CPU would otherwise dominate the average).
ping_median() {
  ip netns exec "$NSA" ping -n -c 20 -i 0.05 "$1" 2>/dev/null |
    sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | median
}

# run_iperf SETUP ROUND DST STREAMS DIR
run_iperf() {
  local setup=$1 round=$2 dst=$3 streams=$4 dir=$5 flags=() before after json mbps cpu bytes
  [[ $dir == "B>A" ]] && flags+=(-R)
  json="$TMP/iperf.json"
  local measured=("${DAEMONS[@]:0:2}")  # (mesh-direct's third, the idle coordinator, is not)
  local rbefore=0 rafter=0 rcpu="-"
  before=$(cpu_ticks "${measured[@]}")
  [[ -n $RELAY_PID ]] && rbefore=$(cpu_ticks "$RELAY_PID")
  if ! ip netns exec "$NSA" iperf3 -J -c "$dst" -p 5201 -t "$SECS" -P "$streams" "${flags[@]}" >"$json" 2>&1; then
    echo "bench: iperf3 failed ($setup, $streams streams, $dir):" >&2
    grep -m1 '"error"' "$json" >&2 || true
    echo "$setup $streams $dir $round fail" >>"$TMP/results"
    return 0
  fi
  after=$(cpu_ticks "${measured[@]}")
  if [[ -n $RELAY_PID ]]; then
    rafter=$(cpu_ticks "$RELAY_PID")
    rcpu=$(awk -v a="$rafter" -v b="$rbefore" -v hz="$HZ" 'BEGIN { printf "%.2f", (a - b) / hz }')
  fi
  # end.sum_received: bytes and bits/s as seen by the receiving side.
  read -r bytes mbps < <(awk '
    /"sum_received"/ { inrecv = 1 }
    inrecv && /"bytes"/ { gsub(/,/, "", $2); b = $2 }
    inrecv && /"bits_per_second"/ { gsub(/,/, "", $2); printf "%s %.0f\n", b, $2 / 1e6; exit }
  ' "$json")
  cpu=$(awk -v a="$after" -v b="$before" -v hz="$HZ" 'BEGIN { printf "%.2f", (a - b) / hz }')
  local hwm_a=0 hwm_b=0
  if ((${#measured[@]} == 2)); then
    hwm_a=$(hwm_kib "${DAEMONS[0]}")
    hwm_b=$(hwm_kib "${DAEMONS[1]}")
  fi
  echo "$setup $streams $dir $round ok $mbps $cpu $bytes $hwm_a $hwm_b $rcpu" >>"$TMP/results"
  printf '    %-30s %d stream(s) %s  %6s Mbit/s  cpu %5s s%s\n' "$setup" "$streams" "$dir" "$mbps" "$cpu" \
    "$([[ $rcpu != - ]] && echo "  relay cpu $rcpu s")" >&2
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
echo "bench: ${#SELECTED[@]} setups x 4 tests x $ROUNDS rounds, ${SECS} s each (load before: $LOAD_BEFORE)" >&2
echo "bench: setups: ${SELECTED[*]}" >&2
for k in "${REFS_MEASURED[@]}"; do echo "bench: ${WHAT[$k]}" >&2; done
for msg in "${REFS_MISSING[@]}"; do echo "bench: not measured: $msg" >&2; done
for ((round = 1; round <= ROUNDS; round++)); do
  echo "  round $round" >&2
  n=${#SELECTED[@]}
  for ((k = 0; k < n; k++)); do
    setup=${SELECTED[$(((k + round - 1) % n))]}
    case $setup in
      raw)
        DAEMONS=()
        dst=192.168.91.2
        ;;
      server-join | server-quic)
        server_join_up "$([[ $setup == server-quic ]] && echo quic || echo wireguard)"
        dst=$JOIN_ADDR
        ;;
      mesh-direct)
        mesh_direct_up
        dst=$MESH_B
        ;;
      relay-udp | relay-tcp)
        relay_up "$([[ $setup == relay-udp ]] && echo UDP || echo TCP)"
        dst=10.93.0.2
        ;;
      *)
        base=${setup%/udp-off}
        oa="" ob=""
        if [[ $setup == */udp-off ]]; then
          [[ ${base%%-*} == warren ]] && oa=tun
          [[ ${base#*-} == warren ]] && ob=tun
        fi
        tunnel_up "${base%%-*}" "${base#*-}" "$oa" "$ob"
        dst=10.91.0.2
        ;;
    esac
    echo "$setup rtt $round $(ping_median "$dst")" >>"$TMP/rtts"
    for streams in 1 4; do
      for dir in "A>B" "B>A"; do
        run_iperf "$setup" "$round" "$dst" "$streams" "$dir"
      done
    done
    [[ $setup == server-quic ]] && check_quic "after the tests of round $round"
    [[ $setup == raw ]] || stop_daemons
  done
done

# ---- memory with 1,000 idle peers ----------------------------------------------------------
# peers_config N: a wg setconf file with N peers (random public keys; one /32 and an endpoint each),
# written by one awk instead of a process per key. A key is 42 random base64 characters (31.5
# bytes), one character that leaves the unused low bits zero, and "=": 32 bytes, as wg expects.
# The private key comes from its file, not from a command line.
peers_config() {
  # (whole pairs of lines: 2 lines of 42 characters are 63 bytes)
  # shellcheck disable=SC2017
  head -c $((($1 + 1) / 2 * 63)) /dev/urandom | base64 -w 42 | awk -v n="$1" '
    NR == FNR { priv = $0; next }
    FNR == 1 { print "[Interface]"; print "PrivateKey = " priv; print "ListenPort = 51830" }
    FNR <= n {
      i = FNR - 1
      print "[Peer]"
      printf "PublicKey = %s%s=\n", $0, substr("AEIMQUYcgkosw048", i % 16 + 1, 1)
      printf "AllowedIPs = 10.%d.%d.%d/32\n", 100 + int(i / 65536), int(i / 256) % 256, i % 256
      printf "Endpoint = 192.168.91.%d:%d\n", 3 + i % 200, 20000 + i
    }' "$TMP/a.key" -
}
peers_config 1000 >"$TMP/peers.conf"
MEM_ROWS=()
for key in warren baseline "${REFS_MEASURED[@]}"; do
  [[ -n ${BIN[$key]:-} ]] || continue
  start_daemon "$NSA" "$IFA" "$key" "" "$TMP/mem.log"
  wg setconf "$IFA" "$TMP/peers.conf"
  ip -n "$NSA" link set "$IFA" mtu 1420 up
  sleep 2
  npeers=$(wg show "$IFA" peers | wc -l)
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${DAEMONS[0]}/status")
  hwm=$(hwm_kib "${DAEMONS[0]}")
  MEM_ROWS+=("$key $npeers $rss $hwm")
  stop_daemons
done
# ---- the mesh coordinator's roster fan-out (tests/bench/roster_bench.cc) ---------------------
# Google Benchmark, medians of 3 repetitions: one roster change sent to 1,000 and 10,000 sessions,
# and a whole snapshot to 1,000 (what a coordinator restart costs). No namespaces involved.
ROSTER_ROWS=()
if [[ -x $BIN_DIR/roster_bench ]]; then
  while read -r name t unit; do
    ROSTER_ROWS+=("$name $t $unit")
  done < <("$BIN_DIR/roster_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json 2>/dev/null | python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    if b.get("aggregate_name") == "median":
        print(b["run_name"], "%.3g" % b["real_time"], b["time_unit"])')
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START))

# ---- the table ------------------------------------------------------------------------------
W=20
for setup in "${SELECTED[@]}"; do
  l=$(label "$setup")
  ((${#l} > W)) && W=${#l}
done

echo
echo "warren benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
echo "  ${WHAT[warren]}${WARREN_CLI:+ and warren (server, join) $WARREN_CLI}; iperf3 TCP, $SECS s per test, medians of $ROUNDS rounds"
for key in baseline "${REFS_MEASURED[@]}"; do
  [[ -n ${WHAT[$key]:-} ]] && echo "  ${WHAT[$key]}"
done
if ((${#REFS_MEASURED[@]} == 0)); then
  echo "  references measured: none"
fi
for msg in "${REFS_MISSING[@]}"; do echo "  not measured: $msg"; done
for v in WARREN_OFFLOADS WARREN_WORKERS; do
  [[ -n ${!v:-} ]] && echo "  $v=${!v} in the environment (every warren daemon; udp-off rows set WARREN_OFFLOADS=tun)"
done
echo "  veth MTU 1500, tunnel MTU 1420; A>B = host A sends; CPU = both daemons' CPU seconds during the test"
echo "  warren server <-> warren join: the server is host A, the joined client host B"
if [[ " ${SELECTED[*]} " == *" server-quic "* ]]; then
  echo "  warren server <-> warren join, QUIC: the same, with [quic] listen on the server and the client on"
  echo "    Transport = quic (every WireGuard message in a QUIC DATAGRAM frame, UDP 443)"
fi
for setup in server-join server-quic; do
  # The tunnel MTU these two ran at, as read from the interfaces (QUIC caps both ends at 1372).
  [[ -f $TMP/mtus ]] || break
  mtus=$(awk -v s="$setup" '$1 == s { print $2 "/" $3 }' "$TMP/mtus" | sort -u | paste -sd, -)
  [[ -n $mtus ]] && echo "  $(label "$setup"): tunnel MTU A/B $mtus"
done
echo "  warren mesh node <-> mesh node: node a in host A, node b in host B, the coordinator in a third host behind A"
if [[ " ${SELECTED[*]} " =~ \ (relay-udp|relay-tcp)\  ]]; then
  echo "  via relay: warren-wg in A and B, their direct UDP dropped, every datagram through the coordinator's relay"
  echo "    (a third host behind A; no rate limit); UDP: both nodes reach the relay over UDP, TCP/TLS: over TCP/TLS"
fi
echo "  load average before: $LOAD_BEFORE, after: $LOAD_AFTER; run time ${ELAPSED} s"
echo
dashes() { printf '%*s' "$1" '' | tr ' ' '-'; }
printf "| %-${W}s | %-7s | %-4s | %10s | %7s | %12s | %11s | %8s |\n" "setup" "streams" "dir" "Mbit/s" "CPU s" "Mbit/CPU-s" "RSS A/B MiB" "RTT ms"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(dashes $((W + 2)))" "---------" "------" "------------" "---------" "--------------" "-------------" "----------"
for setup in "${SELECTED[@]}"; do
  rtt=$(awk -v s="$setup" '$1 == s && $4 != "" { print $4 }' "$TMP/rtts" | median)
  for streams in 1 4; do
    for dir in "A>B" "B>A"; do
      sel() { awk -v s="$setup" -v p="$streams" -v d="$dir" -v f="$1" '$1 == s && $2 == p && $3 == d && $5 == "ok" { print $f }' "$TMP/results"; }
      mbps=$(sel 6 | median)
      cpu=$(sel 7 | median)
      eff=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $5 == "ok" && $7 > 0 { printf "%.0f\n", $8 * 8 / 1e6 / $7 }' "$TMP/results" | median)
      rss_a=$(sel 9 | median)
      rss_b=$(sel 10 | median)
      fails=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $5 == "fail"' "$TMP/results" | wc -l)
      rss=$(awk -v a="$rss_a" -v b="$rss_b" 'BEGIN { printf "%.1f/%.1f", a / 1024, b / 1024 }')
      [[ $setup == raw ]] && { cpu="-"; eff="-"; rss="-"; }
      ((fails > 0)) && mbps="$mbps ($fails failed)"
      printf "| %-${W}s | %7s | %-4s | %10s | %7s | %12s | %11s | %8s |\n" "$(label "$setup")" "$streams" "$dir" "$mbps" "$cpu" "$eff" "$rss" "$rtt"
      echo "$setup $streams $dir ${mbps%% *} $rss $rtt $eff" >>"$TMP/medians"
    done
  done
done
for setup in relay-udp relay-tcp; do
  [[ " ${SELECTED[*]} " == *" $setup "* ]] || continue
  line=""
  for streams in 1 4; do
    for dir in "A>B" "B>A"; do
      c=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $5 == "ok" && $11 != "" && $11 != "-" { print $11 }' "$TMP/results" | median)
      line+="${line:+, }$streams/$dir $c"
    done
  done
  echo "  $(label "$setup"): the coordinator's CPU s per test (its relay; not in CPU s above): $line"
done
# Issue 15: CPU seconds per gigabit (both daemons; 1000 / the median Mbit/CPU-s above), per row
# and direction, for the WireGuard and the QUIC transport between the same server and client.
for setup in server-join server-quic; do
  [[ " ${SELECTED[*]} " == *" $setup "* ]] || continue
  for dir in "A>B" "B>A"; do
    line=""
    for streams in 1 4; do
      c=$(awk -v s="$setup" -v p="$streams" -v d="$dir" '$1 == s && $2 == p && $3 == d && $7 != "" && $7 != "-" && $7 > 0 { printf "%.3f", 1000 / $7 }' "$TMP/medians")
      line+="${line:+, }${c:--} ($streams stream(s))"
    done
    echo "  $(label "$setup"), $dir: CPU s per Gbit (both daemons): $line"
  done
done
echo
for row in "${MEM_ROWS[@]}"; do
  read -r key npeers rss hwm <<<"$row"
  printf "| %-${W}s | %7s peers idle | VmRSS %6.1f MiB | VmHWM %6.1f MiB |\n" "${LABEL[$key]}, memory" "$npeers" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')"
done

if ((${#ROSTER_ROWS[@]} > 0)); then
  echo
  echo "Mesh coordinator, roster fan-out (roster_bench, median of 3, wall time per round):"
  for row in "${ROSTER_ROWS[@]}"; do
    read -r name t unit <<<"$row"
    printf '  %-58s %s %s\n' "$name" "$t" "$unit"
  done
else
  echo
  echo "Mesh coordinator, roster fan-out: not measured ($BIN_DIR/roster_bench not built: WARREN_BUILD_BENCH=ON)"
fi

# ---- the targets, from the medians above -----------------------------------------------------
# Lines whose setups did not run (WARREN_BENCH_ONLY, a missing reference) are left out.
echo
m() { awk -v s="$1" -v p="$2" -v d="$3" -v f="$4" '$1 == s && $2 == p && $3 == d { print $f }' "$TMP/medians"; }
# ratio A B [K]: "A/Bx", and "met"/"NOT met" against A >= K*B when K is given; empty if A or B is missing.
ratio() {
  awk -v a="$1" -v b="$2" -v k="${3:-}" 'BEGIN {
    if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) exit
    printf "%.2fx", a / b
    if (k != "") printf " %s", (a >= k * b ? "met" : "NOT met")
    printf "\n" }'
}
# target TEXT A_SETUP B_SETUP K [STREAMS...]: one line per streams x direction with both setups run.
target() {
  local text=$1 a=$2 b=$3 k=$4 streams dir v
  shift 4
  for streams in "${@:-1}"; do
    for dir in "A>B" "B>A"; do
      v=$(ratio "$(m "$a" "$streams" "$dir" 4)" "$(m "$b" "$streams" "$dir" 4)" "$k")
      [[ -n $v ]] && printf '  %-58s %s\n' "$text, $streams stream(s) $dir:" "$v"
    done
  done
  return 0
}
if [[ -f $TMP/medians ]]; then
  echo "Targets, from the medians:"
  target "issue 11: server <-> join vs warren <-> warren (>= 0.90x)" server-join warren-warren 0.90 1 4
  target "issue 15: QUIC vs WireGuard (server-join), >= 0.50x" server-quic server-join 0.50 1
  target "issue 13: mesh nodes (direct) vs warren <-> warren (>= 0.90x)" mesh-direct warren-warren 0.90 1 4
  target "issue 13: relay over UDP vs mesh-direct (reported, no target)" relay-udp mesh-direct "" 1 4
  target "issue 13: relay over TCP/TLS vs mesh-direct (reported, no target)" relay-tcp mesh-direct "" 1 4
  for setup in relay-udp relay-tcp; do
    rr=$(m "$setup" 1 "A>B" 6)
    rd=$(m mesh-direct 1 "A>B" 6)
    [[ -n $rr && -n $rd && $rr != - && $rd != - ]] || continue
    printf '  %-58s %s\n' "issue 13: added RTT, relay over $([[ $setup == relay-udp ]] && echo UDP || echo TCP/TLS) vs mesh-direct:" \
      "$(awk -v a="$rr" -v b="$rd" 'BEGIN { printf "%+.3f ms (%s ms vs %s ms)", a - b, a, b }')"
  done
  target "warren <-> warren vs warren (baseline) pair (no slower)" warren-warren baseline-baseline "" 1 4
  [[ -n ${BIN[debian]:-} ]] &&
    target "issue 4: warren pair vs ${LABEL[debian]} pair (>= 8x)" warren-warren debian-debian 8
  [[ -n ${BIN[upstream]:-} ]] &&
    target "warren pair vs ${LABEL[upstream]} pair (no target)" warren-warren upstream-upstream ""
  if [[ -n $REF ]]; then
    target "warren <-> ${LABEL[$REF]} vs ${LABEL[$REF]} pair (>= 1x)" "warren-$REF" "$REF-$REF" 1
    target "${LABEL[$REF]} <-> warren vs ${LABEL[$REF]} pair (>= 1x)" "$REF-warren" "$REF-$REF" 1
  fi
  for ref in "${REFS_MEASURED[@]}"; do
    rw=$(m warren-warren 1 "A>B" 6)
    rg=$(m "$ref-$ref" 1 "A>B" 6)
    [[ -n $rw && -n $rg ]] || continue
    printf '  %-58s %s\n' "idle RTT warren pair vs ${LABEL[$ref]} pair (<= 1x):" "$rw ms vs $rg ms, $(awk -v a="$rw" -v b="$rg" 'BEGIN { print (a <= b ? "met" : "NOT met") }')"
  done
  maxrss=$(awk '($1 ~ /^warren-warren/ || $1 ~ /^(server-join|server-quic|mesh-direct|relay-udp|relay-tcp)$/) && $5 != "-" { split($5, r, "/"); for (i in r) if (r[i] + 0 > m) m = r[i] + 0 } END { if (m > 0) print m }' "$TMP/medians")
  [[ -n $maxrss ]] && printf '  %-58s %s\n' "peak RSS of warren under load (<= 64 MiB):" "$maxrss MiB"
fi
