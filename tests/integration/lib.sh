# shellcheck shell=bash
# tests/integration/lib.sh - shared helpers for warren's network-namespace integration tests.
#
# Sourced (never executed) by tests/integration/test_*.sh. It provides:
#   * preconditions: require_root, require_tools, skip_all (exit 77 = ctest skip);
#   * implementations: impl_bin/require_impl ("warren" = $WARREN_BIN/warren-wg, "wgo" = wireguard-go),
#     start_wg NS IFNAME IMPL (daemonizing start; asserts that the UAPI socket exists when the launcher
#     returns; records the daemon PID), daemon_pid, wait_daemon_gone;
#   * topology: unique names (prefix "wit" + 4 hex digits), new_ns, fresh_ns, veth_pair, add_addr, link_up;
#   * keys: gen_keypair NAME -> $WIT_KEYS/NAME.key (0600) and NAME.pub;
#   * background processes inside namespaces (bg_start/bg_stop), bounded waits (wait_until, ping_until);
#   * results: ok / not_ok / check / check_not / check_eq, and finish, which prints exactly
#     "N passed, M failed"; run_isolated runs one part in a subshell so that an unexpected failure ends
#     only that part;
#   * cleanup on EXIT, INT and TERM: kills the PIDs we recorded and every process left in our namespaces
#     (by PID), deletes our namespaces, removes /var/run/wireguard/<our prefix>*.sock, warren client
#     journals /var/lib/warren/<our prefix>*, client logs /var/log/warren/<our prefix>* and the temp dir.
#
# Environment:
#   WARREN_BIN              directory holding warren-wg (ctest sets it; default <repo>/build/bin)
#   WARREN_TEST_FOREGROUND  1 = start daemons with -f in the background instead of daemonizing, with
#                           LOG_LEVEL=verbose, so their logs land in the temp dir (debugging aid)
#   WARREN_TEST_KEEP        1 = keep the temp dir (keys, logs, captures) and print its path
#   WARREN_TEST_VERBOSE     1 = echo every helper command as a "#" comment

set -o errtrace

WIT_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${WARREN_SOURCE_DIR:=$(cd "$WIT_LIB_DIR/../.." && pwd)}"
: "${WARREN_BIN:=$WARREN_SOURCE_DIR/build/bin}"
WIT_RUN_DIR=/var/run/wireguard

WIT_PASS=0
WIT_FAIL=0
WIT_STATE=init          # init -> running -> done
WIT_START_TIME=$SECONDS
WIT_NAMESPACES=()
WIT_PIDS=()
WIT_TMP=""
WIT_KEYS=""
WIT_ERR_LINE=""
WIT_ERR_CMD=""
declare -A WIT_DAEMON_PID=()

# ---------------------------------------------------------------------------------------------------------
# Output and results

log() { printf '# %s\n' "$*"; }

vlog() { [[ ${WARREN_TEST_VERBOSE:-0} == 1 ]] && log "$*"; return 0; }

ok() {
  WIT_PASS=$((WIT_PASS + 1))
  printf 'ok - %s\n' "$*"
}

not_ok() {
  WIT_FAIL=$((WIT_FAIL + 1))
  printf 'not ok - %s\n' "$*"
}

# check DESCRIPTION CMD ARGS... : runs CMD; ok/not ok by its exit status; on failure the tail of its output
# is shown as comments. CMD runs in an `if`, so `set -e` does not apply inside it: functions used as CMD
# must chain their steps with && or return explicitly.
check() {
  local desc=$1
  shift
  local out="$WIT_TMP/check.out"
  if "$@" >"$out" 2>&1; then
    ok "$desc"
  else
    not_ok "$desc"
    tail -n 15 "$out" | sed 's/^/#   /'
  fi
}

# check_not DESCRIPTION CMD ARGS... : ok when CMD fails.
check_not() {
  local desc=$1
  shift
  local out="$WIT_TMP/check.out"
  if "$@" >"$out" 2>&1; then
    not_ok "$desc"
    tail -n 15 "$out" | sed 's/^/#   /'
  else
    ok "$desc"
  fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
  if [[ "$2" == "$3" ]]; then
    ok "$1"
  else
    not_ok "$1"
    printf '#   expected: %q\n#   actual:   %q\n' "$2" "$3"
  fi
}

# finish: prints the elapsed time and the summary line, then exits 0 (all passed) or 1.
finish() {
  WIT_STATE=done
  log "elapsed: $((SECONDS - WIT_START_TIME)) s"
  printf '%d passed, %d failed\n' "$WIT_PASS" "$WIT_FAIL"
  if ((WIT_FAIL > 0)); then exit 1; fi
  exit 0
}

# skip_all REASON: the whole script is skipped (ctest SKIP_RETURN_CODE 77).
skip_all() {
  WIT_STATE=done
  printf 'SKIP: %s\n' "$*"
  exit 77
}

# fatal REASON: a failure that makes the rest of the script pointless.
fatal() {
  not_ok "$*"
  finish
}

# ---------------------------------------------------------------------------------------------------------
# Preconditions

require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    skip_all "needs root (network namespaces, TUN devices, /var/run/wireguard); run with sudo"
  fi
  if ! ip netns list >/dev/null 2>&1; then
    skip_all "cannot use network namespaces (ip netns list failed)"
  fi
  if [[ ! -c /dev/net/tun ]]; then
    skip_all "/dev/net/tun is missing"
  fi
}

require_tools() {
  local t missing=()
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if ((${#missing[@]} > 0)); then
    skip_all "missing tools: ${missing[*]} (sudo make setup installs them)"
  fi
}

# impl_bin IMPL: prints the launcher path of an implementation name.
impl_bin() {
  case $1 in
    warren) printf '%s\n' "$WARREN_BIN/warren-wg" ;;
    wgo) command -v wireguard-go || printf '%s\n' /usr/bin/wireguard-go ;;
    *) return 1 ;;
  esac
}

# require_impl IMPL...: unknown names and a missing warren-wg are failures; a missing wireguard-go is a
# skip (it is an external reference implementation, installed by tools/setup.sh).
require_impl() {
  local impl bin
  for impl in "$@"; do
    case $impl in
      warren)
        bin=$(impl_bin warren)
        [[ -x $bin ]] || fatal "warren-wg not found at $bin (build it, or set WARREN_BIN; to develop the tests against wireguard-go only, use the IMPL/WARREN_PAIRS overrides)"
        ;;
      wgo)
        command -v wireguard-go >/dev/null 2>&1 || skip_all "wireguard-go is not installed"
        ;;
      *) fatal "unknown implementation '$impl' (use warren or wgo)" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------------------
# Setup, cleanup and unique names

# wit_init: must be called once by each test, after sourcing, before creating anything.
wit_init() {
  local n
  WIT_STATE=running
  WIT_TMP=$(mktemp -d /tmp/warren-it.XXXXXX)
  chmod 700 "$WIT_TMP"
  WIT_KEYS="$WIT_TMP/keys"
  mkdir -m 700 "$WIT_KEYS"
  # A prefix not used by any namespace or UAPI socket of a parallel or leftover run.
  for n in 1 2 3 4 5 6 7 8 9 10; do
    WIT_PREFIX=$(printf 'wit%04x' $(((RANDOM ^ ($$ << 3) ^ (n << 11)) & 0xffff)))
    if ! ip netns list 2>/dev/null | grep -q "^$WIT_PREFIX" &&
      ! compgen -G "$WIT_RUN_DIR/$WIT_PREFIX*" >/dev/null; then
      break
    fi
  done
  # A client's DNS method inside the namespaces: the file method writes the namespace's own
  # resolv.conf (new_ns); resolvconf and systemd-resolved would change the host's.
  export WARREN_DNS_BACKEND=${WARREN_DNS_BACKEND:-file}
  trap 'WIT_ERR_LINE=$LINENO; WIT_ERR_CMD=$BASH_COMMAND' ERR
  trap wit_on_exit EXIT
  trap 'wit_on_signal INT' INT
  trap 'wit_on_signal TERM' TERM
  log "prefix $WIT_PREFIX, temp dir $WIT_TMP"
}

wit_on_signal() {
  trap - INT TERM
  printf '# interrupted by SIG%s, cleaning up\n' "$1"
  if [[ $WIT_STATE == running ]]; then
    not_ok "interrupted by SIG$1"
    log "elapsed: $((SECONDS - WIT_START_TIME)) s"
    printf '%d passed, %d failed\n' "$WIT_PASS" "$WIT_FAIL"
  fi
  WIT_STATE=interrupted
  exit 130
}

wit_on_exit() {
  local rc=$?
  set +e
  trap - ERR INT TERM
  if [[ $WIT_STATE == running ]]; then
    not_ok "script aborted (exit status $rc) at line ${WIT_ERR_LINE:-?}: ${WIT_ERR_CMD:-?}"
    log "elapsed: $((SECONDS - WIT_START_TIME)) s"
    printf '%d passed, %d failed\n' "$WIT_PASS" "$WIT_FAIL"
    rc=1
  fi
  wit_cleanup
  exit "$rc"
}

# kill_pid PID: SIGTERM, up to 3 s grace, then SIGKILL. Only ever used on PIDs we started or that live in
# namespaces we created.
kill_pid() {
  local pid=$1 i
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

wit_cleanup() {
  local pid ns pids=() f nss=()
  for pid in "${WIT_PIDS[@]}"; do pids+=("$pid"); done
  # Our namespaces: those recorded here plus any other carrying this run's unique prefix (created in a
  # run_isolated subshell, whose records did not come back).
  nss=("${WIT_NAMESPACES[@]}")
  if [[ -n ${WIT_PREFIX:-} ]]; then
    while read -r ns _; do [[ $ns == "$WIT_PREFIX"* ]] && nss+=("$ns"); done < <(ip netns list 2>/dev/null)
  fi
  for ns in "${nss[@]}"; do
    while read -r pid; do [[ -n $pid ]] && pids+=("$pid"); done < <(ip netns pids "$ns" 2>/dev/null)
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do kill_pid "$pid"; done
  for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for ns in "${nss[@]}"; do
    if [[ -n $ns && -d /etc/netns/$ns ]]; then rm -rf -- "/etc/netns/$ns"; fi
  done
  if [[ -n ${WIT_PREFIX:-} ]]; then
    for f in "$WIT_RUN_DIR/$WIT_PREFIX"*.sock; do
      [[ -e $f ]] && rm -f -- "$f"
    done
    # A warren client killed before it restored leaves its journal on disk (docs/CLIENT.md).
    # ... and a backgrounded client its log (/var/log/warren/IFNAME.log, docs/CLIENT.md).
    for f in "/var/lib/warren/$WIT_PREFIX"*.state "/var/lib/warren/$WIT_PREFIX"*.resolv.conf \
      "/var/log/warren/$WIT_PREFIX"*.log "/var/log/warren/$WIT_PREFIX"*.log.1; do
      [[ -e $f || -L $f ]] && rm -f -- "$f"
    done
  fi
  if [[ -n $WIT_TMP && -d $WIT_TMP ]]; then
    if [[ ${WARREN_TEST_KEEP:-0} == 1 ]]; then
      printf '# kept %s\n' "$WIT_TMP"
    else
      rm -rf -- "$WIT_TMP"
    fi
  fi
}

# run_isolated NAME CMD ARGS...: runs CMD in a subshell with `set -e`, so that an unexpected failure
# ends only this part (reported as one "not ok - NAME: aborted ...") and the next part still runs. The
# part's ok/not ok counts are added to ours. Processes and namespaces it leaves behind are found by the
# final cleanup through the run's unique name prefix.
run_isolated() {
  local name=$1 f p=0 q=1
  shift
  f="$WIT_TMP/counts.$RANDOM$RANDOM"
  set +e
  (
    trap 'rc=$?; ((rc == 0)) || not_ok "$name: aborted (exit status $rc) at line ${WIT_ERR_LINE:-?}: ${WIT_ERR_CMD:-?}"; echo "$WIT_PASS $WIT_FAIL" >"$f"' EXIT
    set -e
    WIT_PASS=0 WIT_FAIL=0
    "$@"
  )
  set -e
  [[ -r $f ]] && read -r p q <"$f"
  WIT_PASS=$((WIT_PASS + p)) WIT_FAIL=$((WIT_FAIL + q))
}

# ---------------------------------------------------------------------------------------------------------
# Topology

# nsx NS CMD...: run CMD inside namespace NS.
nsx() {
  local ns=$1
  shift
  vlog "[$ns] $*"
  ip netns exec "$ns" "$@"
}

# new_ns NAME: creates namespace NAME (callers pass "$WIT_PREFIX..."), brings lo up, records it.
# It gets its own /etc/resolv.conf (/etc/netns/NAME/resolv.conf, a copy of the host's; `ip netns
# exec` bind-mounts it), so that a warren client inside that changes DNS (a mesh node always
# does: docs/MESH.md "Names") changes the namespace's file and never the host's. Removed by
# wit_cleanup.
new_ns() {
  ip netns add "$1"
  WIT_NAMESPACES+=("$1")
  ip -n "$1" link set lo up
  if [[ ! -e /etc/netns/$1/resolv.conf ]]; then
    mkdir -p "/etc/netns/$1"
    cat /etc/resolv.conf >"/etc/netns/$1/resolv.conf" 2>/dev/null || : >"/etc/netns/$1/resolv.conf"
  fi
}

# fresh_ns NAME...: kills whatever runs in these (our) namespaces, deletes and recreates them.
fresh_ns() {
  local ns pid
  for ns in "$@"; do
    if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill_pid "$pid"; done
      ip netns del "$ns"
    fi
    new_ns "$ns"
  done
}

# veth_pair NS1 IF1 NS2 IF2 [MTU]: a veth pair created directly inside the namespaces (never in ours).
veth_pair() {
  ip -n "$1" link add "$2" mtu "${5:-1500}" type veth peer name "$4" netns "$3" mtu "${5:-1500}"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

# Timing a step: t0=$(now); ...; t=$(elapsed "$t0" "$(now)") gives seconds with two decimals;
# within T MAX is true when T <= MAX.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
within() { awk -v t="$1" -v m="$2" 'BEGIN { exit !(t <= m) }'; }

# bridge_hub NS CIDR: a bridge br0 in namespace NS, up, with address CIDR (the hub of a star,
# e.g. a coordinator on its LAN or "the Internet" between routers).
bridge_hub() {
  ip -n "$1" link add br0 type bridge
  ip -n "$1" link set br0 up
  add_addr "$1" br0 "$2"
}

# bridge_join HUB PORT NS IFNAME CIDR: a veth IFNAME in NS whose peer PORT is a port of HUB's
# br0 (bridge_hub); both ends up, IFNAME with address CIDR.
bridge_join() {
  ip -n "$3" link add "$4" type veth peer name "$2" netns "$1"
  ip -n "$1" link set "$2" master br0 up
  ip -n "$3" link set "$4" up
  add_addr "$3" "$4" "$5"
}

# add_addr NS IF ADDR/PLEN: IPv6 addresses get nodad so they are usable at once.
add_addr() {
  if [[ $3 == *:* ]]; then
    ip -n "$1" addr add "$3" dev "$2" nodad
  else
    ip -n "$1" addr add "$3" dev "$2"
  fi
}

# link_up NS IF: sets the link up and waits (max 5 s) until the kernel reports it running.
link_up() {
  ip -n "$1" link set "$2" up
  wait_until 5 link_is_up "$1" "$2"
}

link_is_up() {
  local state
  state=$(ip -n "$1" -o link show dev "$2" 2>/dev/null) || return 1
  [[ $state == *"state UP"* || $state == *"state UNKNOWN"* ]] && [[ $state == *",UP"* || $state == *"<UP"* ]]
}

# ---------------------------------------------------------------------------------------------------------
# Waiting

# wait_until TIMEOUT_SECONDS CMD...: polls CMD every 0.1 s until it succeeds (0) or the time runs out (1).
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  while true; do
    "$@" >/dev/null 2>&1 && return 0
    ((SECONDS >= deadline)) && return 1
    sleep 0.1
  done
}

# ping_until NS TIMEOUT ADDR [PING ARGS...]: pings once a second until a reply or the timeout.
ping_until() {
  local ns=$1 timeout=$2 addr=$3 deadline
  shift 3
  deadline=$((SECONDS + timeout))
  while true; do
    ip netns exec "$ns" ping -n -q -c 1 -W 1 "$@" "$addr" >/dev/null 2>&1 && return 0
    ((SECONDS >= deadline)) && break
    sleep 0.2
  done
  ip netns exec "$ns" ping -n -c 1 -W 1 "$@" "$addr"
}

# ping_fails NS ADDR [ARGS]: two probes, one second each, none answered.
ping_fails() {
  local ns=$1 addr=$2
  shift 2
  ! ip netns exec "$ns" ping -n -q -c 2 -i 0.5 -W 1 "$@" "$addr"
}

# ---------------------------------------------------------------------------------------------------------
# Keys

# gen_keypair NAME: $WIT_KEYS/NAME.key (private, 0600) and NAME.pub.
gen_keypair() {
  (umask 077 && wg genkey >"$WIT_KEYS/$1.key")
  wg pubkey <"$WIT_KEYS/$1.key" >"$WIT_KEYS/$1.pub"
}

key_file() { printf '%s\n' "$WIT_KEYS/$1.key"; }
pub_of() { cat "$WIT_KEYS/$1.pub"; }
priv_of() { cat "$WIT_KEYS/$1.key"; }

# ---------------------------------------------------------------------------------------------------------
# Implementations

# start_wg NS IFNAME IMPL: starts IMPL for IFNAME inside NS the way wg-quick does (no -f: it daemonizes), and
# checks that /var/run/wireguard/IFNAME.sock exists the moment the launcher returns. Records the daemon PID
# (found with `ip netns pids NS` + its command line). Returns non-zero on failure (after a not ok line).
start_wg() {
  local ns=$1 ifname=$2 impl=$3 bin log pid
  bin=$(impl_bin "$impl")
  log="$WIT_TMP/$ifname.$impl.log"
  if [[ ${WARREN_TEST_FOREGROUND:-0} == 1 ]]; then
    LOG_LEVEL=verbose ip netns exec "$ns" "$bin" -f "$ifname" >"$log" 2>&1 &
    pid=$!
    WIT_PIDS+=("$pid")
    WIT_DAEMON_PID[$ifname]=$pid
    if ! wait_until 5 test -S "$WIT_RUN_DIR/$ifname.sock"; then
      not_ok "$impl: $ifname UAPI socket appears (foreground mode)"
      sed 's/^/#   /' "$log" | tail -n 10
      return 1
    fi
    return 0
  fi
  if ! ip netns exec "$ns" "$bin" "$ifname" >"$log" 2>&1 </dev/null; then
    not_ok "$impl: launcher for $ifname exits 0"
    sed 's/^/#   /' "$log" | tail -n 10
    return 1
  fi
  if [[ -S $WIT_RUN_DIR/$ifname.sock ]]; then
    ok "$impl: $ifname UAPI socket exists when the launcher returns"
  else
    not_ok "$impl: $ifname UAPI socket exists when the launcher returns"
    wait_until 5 test -S "$WIT_RUN_DIR/$ifname.sock" || return 1
  fi
  if ! wait_until 5 find_daemon_pid "$ns" "$ifname"; then
    not_ok "$impl: daemon process for $ifname found in namespace $ns"
    return 1
  fi
  pid=$(find_daemon_pid "$ns" "$ifname")
  WIT_PIDS+=("$pid")
  WIT_DAEMON_PID[$ifname]=$pid
  vlog "$impl daemon for $ifname: pid $pid"
}

# find_daemon_pid NS IFNAME: prints the PID of the process in NS whose last argument is IFNAME.
find_daemon_pid() {
  local pid last found=""
  while read -r pid; do
    [[ -r /proc/$pid/cmdline ]] || continue
    last=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | tail -n 1)
    [[ $last == "$2" ]] || continue
    # Skip wrappers such as our own `ip netns exec` or wg-quick's shell.
    case $(tr '\0' ' ' <"/proc/$pid/cmdline") in
      ip\ netns* | *wg-quick* | *bash*) continue ;;
    esac
    found=$pid
  done < <(ip netns pids "$1" 2>/dev/null)
  [[ -n $found ]] && printf '%s\n' "$found"
}

# adopt_daemon NS IFNAME: records the PID of a daemon started by someone else (wg-quick).
adopt_daemon() {
  local pid
  wait_until 5 find_daemon_pid "$1" "$2" || return 1
  pid=$(find_daemon_pid "$1" "$2")
  WIT_PIDS+=("$pid")
  WIT_DAEMON_PID[$2]=$pid
}

daemon_pid() { printf '%s\n' "${WIT_DAEMON_PID[$1]:-}"; }

# wait_daemon_gone IFNAME [TIMEOUT]: the daemon process has exited and its socket is gone.
wait_daemon_gone() {
  local pid=${WIT_DAEMON_PID[$1]:-}
  wait_until "${2:-10}" daemon_gone "$pid" "$1"
}

daemon_gone() {
  if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
    # A zombie (exited child of this shell, foreground mode) counts as gone.
    [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]] || return 1
  fi
  [[ ! -e $WIT_RUN_DIR/$2.sock ]]
}

# ---------------------------------------------------------------------------------------------------------
# Background helpers inside namespaces

# bg_start NAME NS CMD...: runs CMD in NS in the background, stdout/stderr to $WIT_TMP/NAME.{out,err};
# sets BG_PID. `ip netns exec` execs CMD, so the PID is CMD's own.
bg_start() {
  local name=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" >"$WIT_TMP/$name.out" 2>"$WIT_TMP/$name.err" </dev/null &
  BG_PID=$!
  WIT_PIDS+=("$BG_PID")
  vlog "bg $name [$ns] pid $BG_PID: $*"
}

# notify_listen NAME [CMD...]: a unix datagram socket at $WIT_TMP/NAME.notify standing in for
# systemd's NOTIFY_SOCKET (pass it to a daemon as NOTIFY_SOCKET=...). Every datagram becomes one line
# of $WIT_TMP/NAME.notified (newlines inside shown as spaces); with CMD, CMD runs when the datagram
# arrives and " [check=EXIT]" is appended, so a test can tell what was true at that moment.
notify_listen() {
  local name=$1 py=python3
  shift
  [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3  # a pyenv shim alone takes seconds to start
  "$py" - "$WIT_TMP/$name.notify" "$WIT_TMP/$name.notified" "$@" <<'PY' &
import socket, subprocess, sys
path, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(out, "a").close()
while True:
    line = s.recv(4096).decode(errors="replace").replace("\n", " ")
    if cmd:
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        line += " [check=%d]" % rc
    with open(out, "a") as f:
        f.write(line + "\n")
PY
  WIT_PIDS+=($!)
  wait_until 15 test -S "$WIT_TMP/$name.notify"
}

# bg_stop PID [SIGNAL]: stops a background process and reaps it.
bg_stop() {
  local pid=$1 sig=${2:-TERM} i
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# tcpdump_start NAME NS IFACE FILTER...: a line-buffered capture; waits until it is listening.
tcpdump_start() {
  local name=$1 ns=$2 iface=$3
  shift 3
  bg_start "$name" "$ns" tcpdump -n -l -i "$iface" "$@"
  wait_until 5 grep -q "listening on" "$WIT_TMP/$name.err"
}

# iperf_server NS PORT: starts a one-shot iperf3 server, waits until it listens; sets BG_PID.
iperf_server() {
  bg_start "iperf-$1-$2" "$1" iperf3 -s -1 -p "$2"
  wait_until 5 port_listening "$1" "$2"
}

port_listening() {
  [[ -n $(ip netns exec "$1" ss -Htln "sport = :$2") ]]
}

# iperf_mbps JSON_FILE: prints the receiver-side throughput in Mbit/s of an `iperf3 -J` run.
iperf_mbps() {
  awk '
    /"sum_received"/ { inrecv = 1 }
    inrecv && /"bits_per_second"/ { gsub(/[,]/, "", $2); printf "%.0f\n", $2 / 1e6; exit }
  ' "$1"
}

# ---------------------------------------------------------------------------------------------------------
# wg show helpers (single-peer interfaces)

# wg_peer_field IFACE WHAT: the value column of `wg show IFACE WHAT` for the first peer.
wg_peer_field() {
  local _pub rest
  read -r _pub rest < <(wg show "$1" "$2") || return 1
  printf '%s\n' "$rest"
}
