#!/usr/bin/env bash
# tests/dist/test_deb.sh BUILD_DIR - warren installed into a clean Debian root, from the .deb
# (`make deb`) and from `make install` (issue 14, "Done when"):
#
#   cpack -G DEB ──> warren_V-1_ARCH.deb ──> fields, file list, no conffiles
#                              │
#   debootstrap --variant=minbase bookworm (cached tarball) ──> chroot:
#     apt-get install ./warren.deb   dependencies resolve; nothing enabled; --version of both;
#                                    files, units (systemd-analyze verify), man pages, completion;
#                                    `warren server check` on a good and a bad /etc/warren/server.toml
#     operator state + enablement    then apt-get purge: no file of the package, no /etc/warren,
#                                    no /var/lib/warren, no enablement left; others' files kept
#     DESTDIR=ROOT cmake --install   (what `make install` runs) --version, units, server check
#
# The root is made once by debootstrap from the mirror this host's apt uses and kept as
# /var/cache/warren-tests/debootstrap-bookworm-minbase-ARCH.tar.gz; the .debs apt downloads
# into it are kept beside it (…​.debs/), so a later run needs no network. Without a cached root
# and without a reachable mirror the test is skipped (exit 77) with the reason. Runs in a
# private mount namespace: the mounts it makes (proc, the .deb cache) go away with it.
# Needs root. Environment (tests/CMakeLists.txt): WARREN_VERSION, WARREN_INSTALL_SBINDIR;
# optional WARREN_TEST_CACHE (cache directory), WARREN_DEBOOTSTRAP_MIRROR (a mirror URL).
set -euo pipefail

skip() {
  echo "SKIP: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, chroot, dpkg inside a scratch root)"
# --prepare-root makes only the cached root (and waits for one being made): CI starts it in the
# background while it compiles (.ci/run), so the test itself finds the root ready.
prepare_only=0
[[ ${1-} == --prepare-root ]] && prepare_only=1
[[ $# -eq 1 && ( -d $1 || $prepare_only -eq 1 ) ]] ||
  { echo "usage: $0 BUILD_DIR | --prepare-root" >&2; exit 2; }
if [[ -z ${WARREN_DEB_UNSHARED-} ]]; then
  command -v unshare >/dev/null || skip "unshare missing (util-linux)"
  WARREN_DEB_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
for t in debootstrap cpack dpkg-deb dpkg-shlibdeps chroot python3 systemd-analyze; do
  command -v "$t" >/dev/null || skip "$t missing (run tools/setup.sh as root)"
done
((prepare_only)) || for v in WARREN_VERSION WARREN_INSTALL_SBINDIR; do
  [[ -n ${!v-} ]] || { echo "FAIL: $v is not set (run through ctest)"; exit 1; }
done

((prepare_only)) || build=$(cd "$1" && pwd)
suite=bookworm
arch=$(dpkg --print-architecture)
cache=${WARREN_TEST_CACHE:-/var/cache/warren-tests}
rootfs=$cache/debootstrap-$suite-minbase-$arch.tar.gz
debcache=$cache/debootstrap-$suite-minbase-$arch.debs
tmp=$(mktemp -d /tmp/warren-deb.XXXXXX)
# The roots live in a tmpfs of this mount namespace: unpacking is quick, and removing them is
# one unmount (or the end of the namespace, however the script ends).
mount -t tmpfs -o size=3G,mode=0755 warren-deb "$tmp" || { rmdir "$tmp"; echo "FAIL: mount tmpfs"; exit 1; }
mkdir -p "$tmp/fs"
root=$tmp/fs/root
cleanup() {
  # Everything (the root, its proc and the bind-mounted .deb cache) goes with the tmpfs; the
  # empty directory is removed only once nothing is mounted below it any more.
  umount -R "$tmp" 2>/dev/null || umount -R -l "$tmp" 2>/dev/null || true
  mountpoint -q "$tmp" || rmdir -- "$tmp"
}
trap cleanup EXIT
fail=0
bad() {
  echo "FAIL: $*"
  fail=1
}
step() { echo "== $* (at $SECONDS s)"; }
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
}

# The first bookworm mirror of this host's apt sources (deb822 .sources, then one-line .list).
find_mirror() {
  if [[ -n ${WARREN_DEBOOTSTRAP_MIRROR-} ]]; then
    echo "$WARREN_DEBOOTSTRAP_MIRROR"
    return
  fi
  {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f $f ]] || continue
      awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
        { uris = ""; ok = 0; deb = 0
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
            if ($i ~ /^Suites:/ && (" " $i " ") ~ (" " suite " ")) ok = 1
            if ($i ~ /^Types:/ && ($i " ") ~ / deb /) deb = 1
          }
          if (ok && deb && uris != "") { split(uris, u, " "); print u[1] } }' "$f"
    done
    sed -n "s/^deb \(\[[^]]*\] \)\?\([^ ]*\) $suite .*/\2/p" /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list 2>/dev/null || true
    echo http://deb.debian.org/debian
  }
}
mirror=$(find_mirror)
mirror=${mirror%%$'\n'*}
# reachable: the mirror answers for the suite's Release file within 10 s.
reachable() {
  python3 - "$mirror/dists/$suite/Release" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=10)
EOF
}

# The cached root, made once; a lock on the cache makes a second caller (the test while CI's
# background --prepare-root still runs) wait for the first and use its root.
make_root() {
  mkdir -p "$cache"
  exec 9>"$cache/.root.lock"
  flock 9
  if [[ ! -s $rootfs ]]; then
    step "debootstrap --variant=minbase $suite $mirror (no cached $rootfs)"
    mkdir -p "$cache"
    if ! debootstrap --variant=minbase "$suite" "$tmp/fs/boot" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
      tail -n 30 "$tmp/debootstrap.log"
      echo "FAIL: debootstrap from $mirror (reachable) failed"
      exit 1
    fi
    # Without the downloaded .debs, with apt's binary cache of the lists (built once, here).
    rm -f "$tmp"/fs/boot/var/cache/apt/archives/*.deb
    chroot "$tmp/fs/boot" apt-cache gencaches >/dev/null
    tar -C "$tmp/fs/boot" -czf "$rootfs.$$" . && mv "$rootfs.$$" "$rootfs"
    rm -rf --one-file-system -- "$tmp/fs/boot"
  fi
  flock -u 9
}

if ((prepare_only)); then
  [[ -s $rootfs ]] || reachable || skip "no cached root ($rootfs) and the mirror $mirror is unreachable"
  make_root
  echo "root ready: $rootfs"
  exit 0
fi

[[ -s $rootfs ]] || reachable || skip "no cached root ($rootfs) and the mirror $mirror is unreachable"

# --- the package ------------------------------------------------------------------------------
step "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/cpack.log" 2>&1 || {
  cat "$tmp/cpack.log"
  echo "FAIL: cpack -G DEB"
  exit 1
}
deb=$(echo "$tmp"/pkg/warren_*.deb)
debname=warren_$WARREN_VERSION-1_$arch.deb
[[ $(basename "$deb") == "$debname" ]] || bad "package file is $(basename "$deb"), expected $debname"
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == warren ]] || bad "Package: $(field Package)"
[[ $(field Version) == "$WARREN_VERSION-1" ]] || bad "Version: $(field Version), expected $WARREN_VERSION-1"
depends=$(field Depends)
# From dpkg-shlibdeps (libraries) and from package.cmake (programs warren runs).
for d in libc6 libssl3 libsodium23 libmnl0 libsqlite3-0 iptables procps; do
  [[ ", $depends," == *", $d"[\ ,]* ]] || bad "Depends lacks $d: $depends"
done
[[ $(field Recommends) == *wireguard-tools* ]] || bad "Recommends lacks wireguard-tools: $(field Recommends)"
# These files (a file other parts add to install() comes along), all under /usr or the unit
# directory: nothing in /etc, so no conffiles.
expected=(/lib/systemd/system/warren-cleanup.service /lib/systemd/system/warren-server.service
  /lib/systemd/system/warren-wg@.service /lib/systemd/system/warren@.service
  /usr/sbin/warren /usr/sbin/warren-wg
  /usr/share/bash-completion/completions/warren /usr/share/bash-completion/completions/warren-wg
  /usr/share/doc/warren/examples/server.toml /usr/share/man/man5/warren.toml.5
  /usr/share/man/man8/warren-wg.8 /usr/share/man/man8/warren.8)
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)
for f in "${expected[@]}"; do
  grep -qx "$f" <<<"$files" || bad "the package lacks $f"
done
outside=$(grep -v -e '^/usr/' -e '^/lib/systemd/system/[^/]*$' <<<"$files" || true)
[[ -z $outside ]] || bad "the package installs outside /usr and the unit directory: $outside"
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q conffiles && bad "the package has conffiles"
for s in postinst prerm postrm; do
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$s" >"$tmp/$s" || bad "no $s in the package"
  sh -n "$tmp/$s" || bad "$s is not valid sh"
done

# --- the clean root ---------------------------------------------------------------------------
make_root
step "unpack $rootfs"
mkdir "$root"
tar -C "$root" -xzf "$rootfs"
mount -t proc proc "$root/proc"
mkdir -p "$debcache/partial"
mount --bind "$debcache" "$root/var/cache/apt/archives"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$root/tmp/$debname"
# No systemd runs in the chroot: a stand-in systemctl, and the directory by which the maintainer
# scripts tell that systemd runs, record what they would have asked of it.
mkdir -p "$root/run/systemd/system"
# dpkg names the package whose script runs (wireguard-tools' scripts call systemctl too).
cat >"$root/usr/bin/systemctl" <<'EOF'
#!/bin/sh
[ "$DPKG_MAINTSCRIPT_PACKAGE" = warren ] && echo "$*" >>/tmp/systemctl.log
exit 0
EOF
chmod 755 "$root/usr/bin/systemctl"

# apt, so that the dependencies resolve; offline when the kept .debs suffice (apt downloads
# nothing it finds in its archive; --no-download would be wrong here: apt 2.6 then loses the
# path of a local .deb). Lists too old for the mirror: update and try again.
# wireguard-tools (the Recommends; --no-install-recommends keeps its wireguard-dkms out) gives
# warren-wg@.service its wg-quick for systemd-analyze.
step "apt-get install ./$debname wireguard-tools"
# A throw-away root: dpkg need not fsync every file it unpacks.
install=(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io
  -o Dpkg::Use-Pty=0 "/tmp/$debname" wireguard-tools)
if ! in_root "${install[@]}" >"$tmp/apt.log" 2>&1; then
  reachable || skip "the kept .debs do not cover the dependencies and $mirror is unreachable"
  echo "note: the kept .debs did not suffice; apt-get update from $mirror"
  if ! in_root apt-get update -q >>"$tmp/apt.log" 2>&1 || ! in_root "${install[@]}" >>"$tmp/apt.log" 2>&1; then
    tail -n 30 "$tmp/apt.log"
    echo "FAIL: apt-get install of the package"
    exit 1
  fi
fi
[[ $(in_root dpkg-query -W -f '${db:Status-Status} ${Version}' warren) == "installed $WARREN_VERSION-1" ]] ||
  bad "dpkg does not list warren $WARREN_VERSION-1 as installed"
# postinst: systemd re-reads its units, nothing is enabled or started.
[[ $(cat "$root/tmp/systemctl.log" 2>/dev/null) == daemon-reload ]] ||
  bad "postinst asked systemctl for '$(cat "$root/tmp/systemctl.log" 2>/dev/null)', expected only daemon-reload"
rm -f "$root/tmp/systemctl.log"

# --- checks shared by both installs -----------------------------------------------------------
# Host units (targets the ones of warren name) for systemd-analyze; none is called warren*.
cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
read -r udp tcp < <(python3 -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("", 0))
t = socket.socket(); t.bind(("127.0.0.1", 0))
print(u.getsockname()[1], t.getsockname()[1])')
write_config() {  # write_config EXTRA_INTERFACE_LINE: /etc/warren/server.toml of the root
  install -d -m 0700 "$root/etc/warren"
  printf '[interface]\nname = "wdeb0"\naddress_v4 = "10.78.0.1/24"\n%s\nlisten_port = %s\n[enrollment]\nlisten = "127.0.0.1:%s"\npublic_endpoint = "vpn.example.com:51820"\n' \
    "$1" "$udp" "$tcp" >"$root/etc/warren/server.toml"
}
check_install() {  # check_install HOW SBINDIR
  local how=$1 sbin=$2 b out rc line page sect
  for b in warren warren-wg; do
    out=$(in_root "$sbin/$b" --version 2>&1 | head -n 1) || true
    [[ $out == "$b v$WARREN_VERSION" ]] || bad "$how: $sbin/$b --version printed '$out'"
  done
  local units=(warren-server.service warren@.service warren-wg@.service warren-cleanup.service)
  for u in "${units[@]}"; do
    grep -q "$sbin/warren" "$root/lib/systemd/system/$u" || bad "$how: $u does not run $sbin/warren*"
  done
  out=$(MANPATH="$root/usr/share/man:$root/usr/local/share/man:" \
    systemd-analyze verify --root="$root" "${units[@]/#/$root/lib/systemd/system/}" 2>&1) || true
  while IFS= read -r line; do
    [[ -z $line ]] && continue
    # Another package's man page that this host lacks too (as test_install.sh).
    if [[ $line =~ Command\ \'man\ ([^\(]+)\(([0-9])\)\'\ failed ]]; then
      page=${BASH_REMATCH[1]} sect=${BASH_REMATCH[2]}
      if [[ $page != warren* ]] && ! man -w "$sect" "$page" >/dev/null 2>&1; then
        continue
      fi
    fi
    bad "$how: systemd-analyze verify: $line"
  done <<<"$out"
  # `warren server check` inside the root, on the default config path.
  write_config ""
  rc=0
  out=$(in_root "$sbin/warren" server check 2>&1) || rc=$?
  [[ $rc -eq 0 ]] && grep -qx "ok: config /etc/warren/server.toml" <<<"$out" ||
    bad "$how: warren server check of a good config exited $rc: $out"
  write_config 'mtu = 100'
  rc=0
  out=$(in_root "$sbin/warren" server check 2>&1) || rc=$?
  [[ $rc -eq 1 ]] && grep -q "^error: /etc/warren/server.toml:4:[0-9]*: interface.mtu: " <<<"$out" ||
    bad "$how: warren server check of a bad config: exit $rc (expected 1 and file:line:key): $out"
}

step "checks of the package's install"
dpkg_list=$(in_root dpkg -L warren)
for f in "${expected[@]}"; do
  grep -qx "$f" <<<"$dpkg_list" || bad "dpkg -L warren lacks $f"
  [[ -f $root$f ]] || bad "package: $f not installed"
done
[[ -z $(find "$root/etc" -name '*warren*') ]] || bad "installing made something in /etc: $(find "$root/etc" -name '*warren*')"
[[ -e $root/var/lib/warren ]] && bad "installing created /var/lib/warren"
in_root bash -n /usr/share/bash-completion/completions/warren || bad "the completion is not valid bash"
check_install package /usr/sbin

# An upgrade (the same version again, which runs the upgrade paths of prerm and postinst)
# stops, starts and restarts nothing; postinst only looks for units still on the old binary.
step "dpkg -i again (upgrade)"
in_root dpkg -i --force-unsafe-io "/tmp/$debname" >"$tmp/upgrade.log" 2>&1 || {
  cat "$tmp/upgrade.log"
  bad "dpkg -i of the package over itself failed"
}
calls=$(cat "$root/tmp/systemctl.log" 2>/dev/null || true)
rm -f "$root/tmp/systemctl.log"
[[ $calls == daemon-reload$'\n'"list-units --state=active "* && $calls != *$'\n'*$'\n'* ]] ||
  bad "an upgrade asked systemctl for: $calls"

# --- purge ------------------------------------------------------------------------------------
# What an operator leaves: state, a config, enabled and overridden units (as `systemctl enable`
# and `systemctl edit` make them), next to another package's enabled unit that must stay.
step "apt-get purge warren"
install -d -m 0700 "$root/var/lib/warren" && echo state >"$root/var/lib/warren/warren0.db"
wants=$root/etc/systemd/system/multi-user.target.wants
mkdir -p "$wants" "$root/etc/systemd/system/warren-server.service.d"
ln -s /lib/systemd/system/warren-server.service "$wants/warren-server.service"
ln -s /lib/systemd/system/warren@.service "$wants/warren@wg0.service"
echo '[Service]' >"$root/etc/systemd/system/warren-server.service.d/override.conf"
ln -s /lib/systemd/system/other.service "$wants/other.service"
rm -f "$root/tmp/$debname"
in_root apt-get purge -y -q -o Dpkg::Use-Pty=0 warren >"$tmp/purge.log" 2>&1 || {
  cat "$tmp/purge.log"
  bad "apt-get purge warren failed"
}
in_root dpkg -L warren >/dev/null 2>&1 && bad "dpkg -L warren still lists the package after purge"
# prerm stopped the units (clients, server, wg-quick ones), postrm reloaded systemd after.
calls=$(cat "$root/tmp/systemctl.log" 2>/dev/null || true)
[[ $calls == "stop warren-server.service warren@*.service warren-wg@*.service"$'\n'daemon-reload* ]] ||
  bad "remove/purge asked systemctl for: $calls"
while IFS= read -r f; do
  # Directories (and /lib, a symlink to one in a merged-/usr root) belong to others too.
  [[ -n $f && ( -e $root$f || -L $root$f ) && ! -d $root$f ]] && bad "purge left $f"
done <<<"$dpkg_list"
[[ -e $root/etc/warren ]] && bad "purge left /etc/warren"
[[ -e $root/var/lib/warren ]] && bad "purge left /var/lib/warren"
left=$(cd "$root" && find . -xdev -name '*warren*' -not -path './tmp/*' | head)
[[ -z $left ]] || bad "purge left: $left"
[[ -L $wants/other.service ]] || bad "purge removed another package's enablement"

# --- make install -----------------------------------------------------------------------------
# What `make install DESTDIR=ROOT` runs, into the same root (the package's dependencies stay).
step "make install (cmake --install, DESTDIR=root)"
DESTDIR=$root cmake --install "$build" >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"
  bad "cmake --install into the root failed"
}
check_install "make install" "$WARREN_INSTALL_SBINDIR"

echo "elapsed: $SECONDS s"
[[ $fail -eq 0 ]] && echo "ok: $debname installs, runs and purges in a clean $suite root; make install runs there"
exit $fail
