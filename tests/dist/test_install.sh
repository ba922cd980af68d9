#!/usr/bin/env bash
# tests/dist/test_install.sh - `cmake --install` into a scratch root (DESTDIR), then:
#   * every expected file is there (binaries, four units, three man pages, two completions,
#     the example config) at the configured GNUInstallDirs paths, with sane modes, and nothing
#     is installed into etc/ (the example is not silently made a live config);
#   * the installed binaries run (`--version`);
#   * `systemd-analyze verify --root` accepts every unit with its binaries present (the root
#     also gets this host's unit files and the tools the units run: kill, bash, wg-quick, wg);
#     any line it prints fails the test, except a missing man page of another package that is
#     not installed on this host either (man -w fails for it here);
#   * the man pages render without a single groff warning (-ww) and through `man -l`;
#   * the completions are valid bash and register their functions;
#   * the installed `warren server check` passes a good config and fails a bad one (exit 1,
#     naming file:line:key), creating nothing (issue 14, "Done when").
# Needs no root. Usage: test_install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The configured install paths, as dist/CMakeLists.txt resolved them (tests/CMakeLists.txt
# passes them): absolute.
for v in WARREN_INSTALL_PREFIX WARREN_INSTALL_SBINDIR WARREN_INSTALL_MANDIR WARREN_INSTALL_DATADIR \
  WARREN_INSTALL_DOCDIR WARREN_SYSTEMD_UNITDIR; do
  [[ ${!v-} == /* ]] || { echo "FAIL: $v is not set to an absolute path (run through ctest)"; exit 1; }
done
prefix=$WARREN_INSTALL_PREFIX
sbin=$WARREN_INSTALL_SBINDIR man=$WARREN_INSTALL_MANDIR data=$WARREN_INSTALL_DATADIR
doc=$WARREN_INSTALL_DOCDIR unitdir=$WARREN_SYSTEMD_UNITDIR

DESTDIR=$root cmake --install "$build" >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"
  exit 1
}

# --- the files ------------------------------------------------------------------------------
expect() {  # expect MODE PATH...
  local mode=$1 f
  shift
  for f in "$@"; do
    if [[ ! -f $root$f ]]; then
      bad "not installed: $f"
    elif [[ $(stat -c %a "$root$f") != "$mode" ]]; then
      bad "$f has mode $(stat -c %a "$root$f"), expected $mode"
    fi
  done
}
units=(warren-server.service warren@.service warren-wg@.service warren-cleanup.service)
expect 755 "$sbin/warren" "$sbin/warren-wg"
expect 644 "${units[@]/#/$unitdir/}"
expect 644 "$man/man8/warren.8" "$man/man8/warren-wg.8" "$man/man5/warren.toml.5"
expect 644 "$data/bash-completion/completions/warren" "$data/bash-completion/completions/warren-wg"
expect 644 "$doc/examples/server.toml"
if [[ -e $root/etc || -e $root$prefix/etc ]]; then
  bad "something was installed into etc/: $(cd "$root" && find . -path '*etc*' -type f)"
fi
count=$(find "$root" -type f | wc -l)
[[ $count -eq 12 ]] || bad "expected 12 installed files, found $count: $(cd "$root" && find . -type f)"

for b in warren warren-wg; do
  "$root$sbin/$b" --version >/dev/null || bad "$sbin/$b --version failed"
done
# The units run the installed binaries.
for u in "${units[@]}"; do
  grep -q "$sbin/warren" "$root$unitdir/$u" || bad "$u does not run $sbin/warren*"
done

# --- systemd-analyze verify -----------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
  bad "systemd-analyze is missing (Debian package systemd)"
else
  cp -rn /lib/systemd/system/. "$root$unitdir/" 2>/dev/null || true
  # Every absolute program the units run, copied from this host unless installed above.
  for exe in $(sed -n 's/^Exec[A-Za-z]*=[-+!@:]*\(\/[^ ]*\).*/\1/p;s/.*WG_QUICK_USERSPACE_IMPLEMENTATION=//p' \
      "${units[@]/#/$root$unitdir/}" | sort -u); do
    [[ -e $root$exe ]] && continue
    if [[ -x $exe ]]; then
      mkdir -p "$root$(dirname "$exe")"
      cp -L "$exe" "$root$exe"
    else
      bad "the units run $exe, which this host does not have either"
    fi
  done
  out=$(MANPATH="$root$man:" systemd-analyze verify --root="$root" "${units[@]/#/$root$unitdir/}" 2>&1) || true
  while IFS= read -r line; do
    [[ -z $line ]] && continue
    if [[ $line =~ Command\ \'man\ ([^\(]+)\(([0-9])\)\'\ failed ]]; then
      page=${BASH_REMATCH[1]} sect=${BASH_REMATCH[2]}
      if [[ $page != warren* ]] && ! man -w "$sect" "$page" >/dev/null 2>&1; then
        echo "note: $line (not installed on this host)"
        continue
      fi
    fi
    bad "systemd-analyze verify: $line"
  done <<<"$out"
fi

# --- man pages ------------------------------------------------------------------------------
for page in "$man/man8/warren.8" "$man/man8/warren-wg.8" "$man/man5/warren.toml.5"; do
  warnings=$(groff -man -Tutf8 -ww -z "$root$page" 2>&1)
  [[ -z $warnings ]] || bad "groff warns about $page: $warnings"
  lines=$(MANWIDTH=80 man -l "$root$page" 2>"$tmp/man.err" | wc -l)
  [[ -s $tmp/man.err ]] && bad "man -l $page: $(cat "$tmp/man.err")"
  [[ $lines -gt 20 ]] || bad "man -l $page rendered only $lines lines"
done

# --- completions ----------------------------------------------------------------------------
for c in warren warren-wg; do
  f=$root$data/bash-completion/completions/$c
  bash -n "$f" || bad "$f is not valid bash"
  bash --norc -c "source '$f'; complete -p $c" >/dev/null 2>&1 || bad "$f registers no completion for $c"
done

# --- `warren server check` of the installed binary ------------------------------------------
# A good config (state not created yet, free ports) passes; a bad line fails naming file, line
# and key; neither creates anything beside the config. No root needed (ports above 1023).
cfgdir=$tmp/check
mkdir -m 0700 "$cfgdir"
read -r udp tcp < <(python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("", 0))
t = socket.socket(); t.bind(("127.0.0.1", 0))
print(u.getsockname()[1], t.getsockname()[1])')
write_config() {  # write_config EXTRA_INTERFACE_LINE
  printf '[interface]\nname = "wchk0"\naddress_v4 = "10.77.0.1/24"\n%s\nlisten_port = %s\n[enrollment]\nlisten = "127.0.0.1:%s"\npublic_endpoint = "vpn.example.com:51820"\n' \
    "$1" "$udp" "$tcp" >"$cfgdir/server.toml"
}
write_config ""
before=$(ls -A "$cfgdir")
rc=0
out=$("$root$sbin/warren" server check --config "$cfgdir/server.toml" 2>&1) || rc=$?
[[ $rc -eq 0 ]] || bad "warren server check of a good config exited $rc: $out"
grep -qx "ok: config $cfgdir/server.toml" <<<"$out" || bad "warren server check: no 'ok: config' line: $out"
grep -q "will be created at first start" <<<"$out" || bad "warren server check: missing state not reported: $out"
rc=0
json=$("$root$sbin/warren" server check --json --config "$cfgdir/server.toml" 2>&1) || rc=$?
[[ $rc -eq 0 ]] && python3 -c 'import json,sys; d = json.load(sys.stdin); sys.exit(0 if d["would_start"] and d["checks"] else 1)' <<<"$json" ||
  bad "warren server check --json of a good config (exit $rc): $json"
write_config 'mtu = 100'
rc=0
out=$("$root$sbin/warren" server check --config "$cfgdir/server.toml" 2>&1) || rc=$?
[[ $rc -eq 1 ]] || bad "warren server check of a bad config exited $rc (expected 1): $out"
grep -q "^error: $cfgdir/server.toml:4:[0-9]*: interface.mtu: " <<<"$out" ||
  bad "warren server check does not name file:line:key of the bad line: $out"
[[ $(ls -A "$cfgdir") == "$before" ]] || bad "warren server check created files: $(ls -A "$cfgdir")"

[[ $fail -eq 0 ]] && echo "ok: $count files under $prefix and $unitdir; units verified; man pages render; server check runs"
exit $fail
