#!/usr/bin/env bash
# tests/integration/test_secrets.sh - keys stay secret.
#   * Two warren-wg daemons at LOG_LEVEL=debug (the most talkative level) go through a handshake
#     with a preshared key, traffic, a rekeying key change and shutdown; their logs contain none
#     of the private or preshared keys, in base64 or hex (either case), whole or as a prefix;
#   * `wg show` prints both as "(hidden)" and nowhere the keys themselves (only `wg showconf`,
#     the UAPI owner's explicit request, prints them - by design);
#   * the UAPI socket is srwx------ and owned by root, and a non-root user (nobody) cannot
#     connect to it (`wg show` as nobody fails, and `wg set` as nobody changes nothing).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
require_tools ip wg ping setpriv stat od awk
require_impl warren
wit_init

nsa="${WIT_PREFIX}a" nsb="${WIT_PREFIX}b" wa="${WIT_PREFIX}a" wb="${WIT_PREFIX}b"
new_ns "$nsa"
new_ns "$nsb"
veth_pair "$nsa" va "$nsb" vb
add_addr "$nsa" va 10.93.0.1/24
add_addr "$nsb" vb 10.93.0.2/24
gen_keypair a
gen_keypair b
gen_keypair a2
(umask 077 && wg genpsk >"$WIT_KEYS/psk")
export LOG_LEVEL=debug
start_wg "$nsa" "$wa" warren || fatal "start A"
start_wg "$nsb" "$wb" warren || fatal "start B"
unset LOG_LEVEL
wg set "$wa" private-key "$(key_file a)" listen-port 51001 peer "$(pub_of b)" \
  preshared-key "$WIT_KEYS/psk" allowed-ips 10.94.0.2/32 endpoint 10.93.0.2:51002
wg set "$wb" private-key "$(key_file b)" listen-port 51002 peer "$(pub_of a)" \
  preshared-key "$WIT_KEYS/psk" allowed-ips 10.94.0.1/32 endpoint 10.93.0.1:51001
for x in a:"$nsa":"$wa":10.94.0.1 b:"$nsb":"$wb":10.94.0.2; do
  IFS=: read -r _ ns ifn ip <<<"$x"
  add_addr "$ns" "$ifn" "$ip/24"
  link_up "$ns" "$ifn"
done
check "handshake with a preshared key, traffic" ping_until "$nsa" 10 10.94.0.2
nsx "$nsb" ping -n -q -c 5 -i 0.1 10.94.0.1 >/dev/null
# A key change (a second handshake, new keypairs) and a peer swap.
wg set "$wa" private-key "$(key_file a2)"
wg set "$wb" peer "$(pub_of a)" remove peer "$(pub_of a2)" preshared-key "$WIT_KEYS/psk" allowed-ips 10.94.0.1/32
check "traffic after the key change" ping_until "$nsa" 10 10.94.0.2

# ---- wg show / showconf
show=$(wg show "$wa")
check "wg show: private key (hidden)" grep -q 'private key: (hidden)' <<<"$show"
check "wg show: preshared key (hidden)" grep -q 'preshared key: (hidden)' <<<"$show"
check "wg showconf (the owner's explicit request) does return the private key" \
  grep -qF "$(priv_of a2)" <(wg showconf "$wa")

# ---- the socket
sock=$WIT_RUN_DIR/$wa.sock
check_eq "UAPI socket mode and owner" "srwx------ root" "$(stat -c '%A %U' "$sock")"
check_not "nobody cannot read the configuration (wg show as nobody)" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups wg show "$wa"
check_not "nobody cannot change it (wg set as nobody)" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups wg set "$wa" listen-port 4444
check_eq "... and nothing changed" 51001 "$(wg show "$wa" listen-port)"

# ---- shut down (the shutdown path logs too), then search the logs
ip -n "$nsa" link del "$wa"
ip -n "$nsb" link del "$wb"
wait_daemon_gone "$wa" 10 || true
wait_daemon_gone "$wb" 10 || true
logs=("$WIT_TMP/$wa.warren.log" "$WIT_TMP/$wb.warren.log")
check "the daemons logged at debug level" grep -q 'DEBUG' "${logs[@]}"
log "log lines: $(cat "${logs[@]}" | wc -l)"
leaks=0
for k in a b a2 psk; do
  f=$WIT_KEYS/$k.key
  [[ $k == psk ]] && f=$WIT_KEYS/psk
  b64=$(cat "$f")
  hex=$(base64 -d <"$f" | od -An -v -tx1 | tr -d ' \n')
  hexu=${hex^^}
  for needle in "$b64" "$hex" "$hexu" "${b64:0:16}" "${hex:0:24}"; do
    if grep -qiF -- "$needle" "${logs[@]}" "$WIT_TMP"/*.out 2>/dev/null; then
      not_ok "key $k found in a log ($needle)"
      leaks=$((leaks + 1))
    fi
  done
done
check_eq "no private or preshared key (base64, hex, prefixes) in the debug logs" 0 "$leaks"
finish
