#!/usr/bin/env bash
# Self-test of tools/check_layering.sh: a small clean tree passes, and each kind of violation
# planted in a copy of it is reported as file:line with its rule (and fails the check).
set -uo pipefail
script=$(cd "$(dirname "$0")/../.." && pwd)/tools/check_layering.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

make_tree() {  # make_tree DIR: every module of the table, linked as the table says
  local d=$1
  mkdir -p "$d/cmake" "$d/src"
  printf 'function(warren_library name dir)\n  file(GLOB srcs ${dir}/*.cc ${dir}/linux/*.cc)\nendfunction()\n' >"$d/cmake/Warren.cmake"
  cat >"$d/CMakeLists.txt" <<'CM'
warren_library(warren_base     src/base)
warren_library(warren_crypto   src/crypto   warren_base OpenSSL::Crypto)
warren_library(warren_net      src/net      warren_base)
warren_library(warren_wg       src/wg       warren_base warren_crypto warren_net)
warren_library(warren_platform src/platform warren_base warren_net)
warren_library(warren_uapi     src/uapi     warren_wg warren_platform)
warren_library(warren_dataplane src/dataplane warren_wg warren_platform warren_uapi)
warren_library(warren_control src/control warren_crypto warren_net warren_wg warren_platform
               OpenSSL::SSL)
warren_library(warren_server src/server warren_control warren_dataplane)
warren_library(warren_client src/client warren_dataplane warren_uapi warren_platform
               warren_control)
CM
  for m in base crypto net wg platform uapi dataplane control server client; do
    mkdir -p "$d/src/$m"
    printf '#pragma once\n#include <string>\n' >"$d/src/$m/$m.h"
  done
  mkdir -p "$d/src/platform/linux"
  printf '#include <sys/socket.h>\n#include "platform/platform.h"\nint f() { return ::socket(0, 0, 0); }\n' \
    >"$d/src/platform/linux/x_linux.cc"
  printf '#include "server/server.h"\n#include "control/control.h"\n#include "net/net.h"\n' >"$d/src/server/ok.cc"
}

expect() {  # expect NAME PATTERN: the last run's output has a line matching PATTERN
  if ! grep -qE -- "$2" "$tmp/out"; then
    echo "FAIL $1: no line matching '$2' in:"; cat "$tmp/out"; fail=1
  fi
}

make_tree "$tmp/clean"
if ! bash "$script" "$tmp/clean" >"$tmp/out" 2>&1; then
  echo "FAIL clean tree rejected:"; cat "$tmp/out"; fail=1
fi

make_tree "$tmp/bad"
printf '#include "platform/platform.h"\n' >>"$tmp/bad/src/wg/wg.h"
printf '#include <string>\n#include "control/control.h"\n' >"$tmp/bad/src/net/up.cc"
printf '#include <fstream>\n#include <unistd.h>\nvoid g() {\n  ::unlink("x");\n  int e = errno;\n  // ::open( in a comment is fine\n  const char* s = "::close(";\n}\n' \
  >"$tmp/bad/src/control/io.cc"
printf '#include "platform/fake/fake_tun.h"\n' >"$tmp/bad/src/dataplane/uses_fake.cc"
printf '#include <thread>\n' >"$tmp/bad/src/crypto/threads.cc"
mkdir -p "$tmp/bad/src/newmod"
sed -i 's/warren_library(warren_server src\/server warren_control warren_dataplane)/warren_library(warren_server src\/server warren_control)/' \
  "$tmp/bad/CMakeLists.txt"
printf 'function(warren_library name dir)\n  file(GLOB srcs ${dir}/*.cc ${dir}/fake/*.cc)\nendfunction()\n' >"$tmp/bad/cmake/Warren.cmake"
if bash "$script" "$tmp/bad" >"$tmp/out" 2>&1; then
  echo "FAIL a tree with violations passed"; fail=1
fi
expect "wg includes platform" '^src/wg/wg.h:3: \[include\] wg may not use platform'
expect "net includes control (upwards)" '^src/net/up.cc:2: \[include\] net may not use control'
expect "fstream" '^src/control/io.cc:1: \[syscall\] <fstream>'
expect "unistd" '^src/control/io.cc:2: \[syscall\] <unistd.h>'
expect "::unlink" '^src/control/io.cc:4: \[syscall\] ::unlink\(\)'
expect "errno" '^src/control/io.cc:5: \[syscall\] reads errno'
expect "fake include" '^src/dataplane/uses_fake.cc:1: \[fakes\]'
expect "core thread" '^src/crypto/threads.cc:1: \[core\]'
expect "module missing from the table" '^src/newmod: \[table\]'
expect "CMake differs from the table" '^CMakeLists.txt:10: \[table\] warren_server links \[control\] but the table says \[control dataplane\]'
expect "fakes compiled into production" '^cmake/Warren.cmake: \[fakes\]'
if grep -qE 'io.cc:(6|7):' "$tmp/out"; then
  echo "FAIL comments or string literals were taken for code:"; grep -E 'io.cc:(6|7):' "$tmp/out"; fail=1
fi
if grep -q '^src/platform/linux' "$tmp/out"; then
  echo "FAIL src/platform/linux was flagged:"; grep 'platform/linux' "$tmp/out"; fail=1
fi
[ $fail -eq 0 ] && echo "check_layering self-test: ok"
exit $fail
