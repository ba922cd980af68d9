#!/usr/bin/env bash
# The protocol core must not know about I/O: files under src/wg, src/crypto, src/net and
# src/base may include only the standard library, their own layer and the layers below.
set -euo pipefail
root=${1:-.}
fail=0
check() {  # check DIR allowed-prefix...
  local dir=$1; shift
  local allowed="$*"
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")
    ok=0
    for a in $allowed; do [[ $inc == $a/* ]] && ok=1; done
    if [ $ok -eq 0 ]; then echo "layering: $file includes \"$inc\" (allowed: $allowed)"; fail=1; fi
  done < <(grep -rHE '^[[:space:]]*#include[[:space:]]*"' "$root/$dir" --include='*.h' --include='*.cc' || true)
  # System headers that mean I/O have no place in the core either.
  if grep -rnE '#include[[:space:]]*<(sys/|unistd\.h|fcntl\.h|netinet/|linux/|thread>|fstream>|iostream>)' \
       "$root/$dir" --include='*.h' --include='*.cc'; then
    echo "layering: $dir includes an I/O or threading system header"; fail=1
  fi
}
check src/base base
check src/net base net
check src/wg base crypto net wg
# Host changes: policy only; the system calls are in src/platform/linux (host_io, netlink).
check src/host base net platform host
if [ $fail -ne 0 ]; then exit 1; fi
echo "layering: ok"
