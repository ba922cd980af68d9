#!/usr/bin/env bash
# Installs the Debian (bookworm) packages warren needs to build, test, benchmark and demo.
# Idempotent and quiet when everything is already present. Nothing is downloaded at build time.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # libraries
  libssl-dev libsodium-dev libmnl-dev libnetfilter-conntrack-dev libtomlplusplus-dev libsqlite3-dev
  nlohmann-json3-dev zlib1g-dev libldns-dev
  # the server's nftables table (NAT, forwarding); nft to inspect it
  libnftables-dev nftables
  # QUIC transport (issue 15): ngtcp2 0.12 with its GnuTLS crypto helper, GnuTLS
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev
  # `warren server export --qr`
  libqrencode-dev
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # interop / network tests
  wireguard-go wireguard-tools iproute2 iputils-ping iperf3 ncat iptables tcpdump procps psmisc
  # conntrack -L: test_server.sh checks that a revoked address's entries are flushed
  conntrack
  # offload checks (ethtool -k on the TUN)
  ethtool
  # the namespace tests' stand-ins for systemd's NOTIFY_SOCKET and for status-socket clients
  python3
  # test_dns.sh: dig (queries through the server's tunnel resolver) and dnsmasq as the outside
  # upstream resolver (-base: the binary only, no system service started)
  bind9-dnsutils dnsmasq-base
  # install test: systemd-analyze verify on the units, man pages rendered (tests/dist)
  systemd man-db groff-base
  # `make deb` (CPack runs dpkg-shlibdeps) and its test in a clean root (tests/dist/test_deb.sh)
  dpkg-dev debootstrap debian-archive-keyring
  # formatting, fuzzing and sanitizers
  clang clang-format clang-tidy libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root (sudo make ...) so they can be installed with apt-get" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
