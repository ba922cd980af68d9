#!/usr/bin/env bash
# Layering check (ctest `layering`, run by `make test`). docs/ARCHITECTURE.md states the rules;
# this script is their only enforcement. Usage: tools/check_layering.sh [SOURCE_ROOT]
#
#   1. table    every module under src/ is in MODULES below, and MODULES equals the warren_*
#               libraries that CMakeLists.txt links to each warren_<module> library;
#   2. include  a file in src/M includes headers of M and of the modules below M only (the
#               transitive closure of MODULES[M]); includes are rooted at src/ ("wg/noise.h");
#   3. syscall  only src/platform/linux makes system calls: everywhere else in src/ and apps/
#               no header that declares them, no call of them, no read of errno, no file
#               streams (file I/O goes through platform/files.h);
#   4. core     src/base, crypto, net, wg, dns, mesh and quic also start no threads and write to no console;
#   5. fakes    production code includes no fake/ header, no production library links a
#               *_fake library, and warren_library() compiles no fake/ directory.
#
# Each violation is printed as "file:line: [rule] what is wrong"; the exit status is 1 if there
# is any, else 0.
set -uo pipefail
root=${1:-.}
cd "$root" || exit 2

# ---- 1. The module table ---------------------------------------------------------------------
# MODULE -> the modules it links directly (CMake target warren_MODULE; warren_library() in
# CMakeLists.txt must list exactly these, in any order). Lower layers first.
declare -A MODULES=(
  [base]=""
  [crypto]="base"
  [net]="base"
  [wg]="base crypto net"
  [platform]="base net"
  [dns]="base net"
  [quic]="base crypto net"
  [mesh]="base crypto net dns"
  [host]="net platform"
  [uapi]="wg platform"
  [dataplane]="wg platform uapi mesh"
  [control]="crypto net wg platform mesh"
  [runtime]="dataplane uapi control platform dns quic"
  [server]="control dataplane runtime host dns"
  [client]="dataplane uapi platform control runtime host"
)
# Modules with no I/O at all (rule 4): the protocol core and what it is built from.
CORE="base crypto net wg dns mesh quic"
# Headers outside src/platform/linux that are allowed although rule 3 names them: path regex,
# header, why.
EXCEPTIONS=(
  "^src/net/ip_address\.cc$|arpa/inet.h|inet_pton/inet_ntop: text conversion in libc, no system call"
)

violations=0
say() {  # say FILE:LINE RULE MESSAGE
  echo "$1: [$2] $3"
  violations=$((violations + 1))
}

# A module exists once its directory does; the table may name modules that are still to come
# (their edges are then not required of CMakeLists.txt yet).
exists() { [ -d "src/$1" ]; }

for d in src/*/; do
  m=$(basename "$d")
  [ -n "${MODULES[$m]+x}" ] || say "src/$m" table "module '$m' is not in the table of tools/check_layering.sh"
done

# Transitive closure, with a cycle check.
declare -A CLOSURE=()
closure_of() {  # closure_of MODULE STACK
  local m=$1 stack=$2 out="" d
  if [[ " $stack " == *" $m "* ]]; then
    say tools/check_layering.sh table "dependency cycle: $stack $m"
    return
  fi
  if [ -n "${CLOSURE[$m]+x}" ]; then return; fi
  for d in ${MODULES[$m]}; do
    closure_of "$d" "$stack $m"
    out="$out $d ${CLOSURE[$d]:-}"
  done
  CLOSURE[$m]=$(tr ' ' '\n' <<<"$out" | sed '/^$/d' | sort -u | tr '\n' ' ')
}
for m in "${!MODULES[@]}"; do closure_of "$m" ""; done

# CMake: warren_library(warren_NAME src/DIR deps...) and target_link_libraries(warren_NAME ...),
# possibly over several lines; collect the warren_* dependencies of each warren_<module>.
declare -A CMAKE_DEPS=() CMAKE_LINE=()
while IFS='|' read -r line kind name args; do
  [ -n "$name" ] || continue
  m=${name#warren_}
  CMAKE_LINE[$m]=${CMAKE_LINE[$m]:-$line}
  for a in $args; do
    case $a in
      warren_*_fake) say "CMakeLists.txt:$line" fakes "production library $name links the test fake $a" ;;
      warren_*) CMAKE_DEPS[$m]="${CMAKE_DEPS[$m]:-} ${a#warren_}" ;;
    esac
  done
  if [ "$kind" = warren_library ] && [ -z "${MODULES[$m]+x}" ]; then
    say "CMakeLists.txt:$line" table "library $name is not a module in the table of tools/check_layering.sh"
  fi
done < <(awk '
  function flush() { if (call != "") { gsub(/[()]/, " ", call); n = split(call, w, /[ \t]+/);
      k = 0; name = ""; args = "";
      for (i = 1; i <= n; i++) { if (w[i] == "") continue; k++;
        if (k == 1) kind = w[i]; else if (k == 2) name = w[i];
        else if (w[i] != "PUBLIC" && w[i] != "PRIVATE" && w[i] != "INTERFACE") args = args " " w[i] }
      if (name ~ /^warren_[a-z]+$/) print start "|" kind "|" name "|" args; call = "" } }
  { sub(/#.*/, "") }
  call == "" && /^[ \t]*(warren_library|target_link_libraries)[ \t]*\(/ { start = FNR }
  call != "" || /^[ \t]*(warren_library|target_link_libraries)[ \t]*\(/ {
    call = call " " $0; if ($0 ~ /\)/) flush() }
' CMakeLists.txt)

for m in "${!MODULES[@]}"; do
  exists "$m" || continue
  if [ -z "${CMAKE_LINE[$m]+x}" ]; then
    say CMakeLists.txt table "module $m (src/$m) has no warren_library(warren_$m ...)"
    continue
  fi
  want=""
  for d in ${MODULES[$m]}; do exists "$d" && want="$want $d"; done
  want=$(tr ' ' '\n' <<<"$want" | sed '/^$/d' | sort -u | tr '\n' ' ')
  have=$(tr ' ' '\n' <<<"${CMAKE_DEPS[$m]:-}" | sed '/^$/d' | sort -u | tr '\n' ' ')
  if [ "$want" != "$have" ]; then
    say "CMakeLists.txt:${CMAKE_LINE[$m]}" table \
      "warren_$m links [${have% }] but the table says [${want% }]; change one so they agree"
  fi
done

# ---- 2. Include edges ------------------------------------------------------------------------
for m in "${!MODULES[@]}"; do
  exists "$m" || continue
  allowed=" $m ${CLOSURE[$m]} "
  while IFS= read -r hit; do
    file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
    [[ $rest =~ \"([^\"]+)\" ]] && inc=${BASH_REMATCH[1]}
    if [[ $inc != */* ]]; then
      say "$file:$line" include "\"$inc\" is not rooted at src/ (write \"$m/$inc\")"
      continue
    fi
    top=${inc%%/*}
    if [ -z "${MODULES[$top]+x}" ]; then
      say "$file:$line" include "\"$inc\" is not a header of any module"
    elif [[ $allowed != *" $top "* ]]; then
      uses=${CLOSURE[$m]% }
      say "$file:$line" include "$m may not use $top (\"$inc\"); $m may use: ${uses:-nothing}"
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "src/$m" --include='*.h' --include='*.cc' || true)
done

# ---- 3. System calls only in src/platform/linux ----------------------------------------------
# Headers whose purpose is to call the operating system (POSIX/Linux APIs), and the standard
# library's file access. <cstdio> stays allowed for stdout/stderr; its file functions are
# caught as calls below.
SYS_HEADERS='sys/.*|unistd\.h|fcntl\.h|netinet/.*|arpa/.*|netdb\.h|signal\.h|csignal|poll\.h|linux/.*|dirent\.h|pwd\.h|grp\.h|spawn\.h|ifaddrs\.h|net/if\.h|termios\.h|dlfcn\.h|sched\.h|pthread\.h|syslog\.h|wait\.h|mqueue\.h|semaphore\.h|ftw\.h|glob\.h|resolv\.h|fstream|filesystem'
# System calls (and libc wrappers around them) written as ::name( or std::name(.
SYS_CALLS='open|openat|creat|read|write|pread|pwrite|readv|writev|close|dup|dup2|dup3|pipe|pipe2|lseek|fsync|fdatasync|ftruncate|truncate|stat|fstat|lstat|fstatat|access|chmod|fchmod|chown|fchown|mkdir|rmdir|unlink|unlinkat|rename|renameat|link|symlink|readlink|opendir|readdir|closedir|umask|chdir|socket|socketpair|bind|listen|accept|accept4|connect|shutdown|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|setsockopt|getsockopt|getsockname|getpeername|getaddrinfo|poll|ppoll|select|epoll_create1|epoll_ctl|epoll_wait|ioctl|fcntl|mmap|munmap|fork|vfork|execv|execve|execvp|execl|execlp|waitpid|wait|kill|signal|sigaction|sigprocmask|pthread_sigmask|setsid|getpid|getppid|getuid|geteuid|getgid|getegid|setuid|setgid|_exit|syscall|getrandom|prctl|fopen|freopen|popen|system|mkstemp|tmpfile|sleep|usleep|nanosleep'
is_exception() {  # is_exception FILE HEADER
  local e re hdr
  for e in "${EXCEPTIONS[@]}"; do
    IFS='|' read -r re hdr _ <<<"$e"
    [[ $1 =~ $re && $2 == "$hdr" ]] && return 0
  done
  return 1
}
mapfile -t outside < <(find src apps -type f \( -name '*.h' -o -name '*.cc' \) -not -path 'src/platform/linux/*' 2>/dev/null | sort)
# One pass over every file: string literals and comments are not code, so they are blanked
# before matching; only lines that can match are handed to the loop.
while IFS= read -r hit; do
  file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; text=${rest#*:}
  if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^>]+)\> ]]; then
    hdr=${BASH_REMATCH[1]}
    if [[ $hdr =~ ^($SYS_HEADERS)$ ]] && ! is_exception "$file" "$hdr"; then
      if [[ $hdr == fstream || $hdr == filesystem ]]; then
        say "$file:$line" syscall "<$hdr>: file access outside src/platform/linux (use platform/files.h)"
      else
        say "$file:$line" syscall "<$hdr>: a system interface outside src/platform/linux"
      fi
    fi
    continue
  fi
  if [[ $text =~ (^|[^A-Za-z0-9_.>:])(::|std::)($SYS_CALLS)[[:space:]]*\( ]]; then
    say "$file:$line" syscall "${BASH_REMATCH[2]}${BASH_REMATCH[3]}(): a system call outside src/platform/linux"
  elif [[ $text =~ (^|[^A-Za-z0-9_])(std::)?(i|o)?fstream([^A-Za-z0-9_]|$) ]]; then
    say "$file:$line" syscall "file stream outside src/platform/linux (use platform/files.h)"
  elif [[ $text =~ (^|[^A-Za-z0-9_])std::filesystem:: ]]; then
    say "$file:$line" syscall "std::filesystem outside src/platform/linux (use platform/files.h)"
  elif [[ $text =~ (^|[^A-Za-z0-9_.>])errno([^A-Za-z0-9_]|$) ]]; then
    say "$file:$line" syscall "reads errno: only src/platform/linux makes the calls that set it"
  fi
done < <([ ${#outside[@]} -eq 0 ] || awk '
  { t = $0
    if (t !~ /^[ \t]*#[ \t]*include/) { gsub(/"([^"\\]|\\.)*"/, "\"\"", t); gsub(/\/\*.*\*\//, "", t); sub(/\/\/.*$/, "", t) }
    if (t ~ /#[ \t]*include|::|errno|fstream/) print FILENAME ":" FNR ":" t }' "${outside[@]}")

# ---- 4. The core starts no threads and has no console -----------------------------------------
for m in $CORE; do
  exists "$m" || continue
  grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(thread|iostream)>' "src/$m" --include='*.h' --include='*.cc' |
    while IFS= read -r hit; do
      file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
      echo "$file:$line: [core] ${rest#*:}: the protocol core ($CORE) starts no threads and writes to no console"
    done
done > /tmp/check_layering.core.$$
if [ -s /tmp/check_layering.core.$$ ]; then
  cat /tmp/check_layering.core.$$
  violations=$((violations + $(wc -l </tmp/check_layering.core.$$)))
fi
rm -f /tmp/check_layering.core.$$

# ---- 5. Test fakes stay out of production ------------------------------------------------------
while IFS= read -r hit; do
  file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
  say "$file:$line" fakes "production code includes a test fake (${rest#*:})"
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z]+/fake/' src apps --include='*.h' --include='*.cc' 2>/dev/null |
         grep -vE '^src/[a-z]+/fake/' || true)
if awk '/^function\(warren_library/,/^endfunction/' cmake/Warren.cmake | grep -n 'fake' >/dev/null; then
  say cmake/Warren.cmake fakes "warren_library() compiles fake/ sources into a production library"
fi

if [ "$violations" -ne 0 ]; then
  echo "layering: $violations violation(s); the rules are in docs/ARCHITECTURE.md (\"Modules and layers\")"
  exit 1
fi
echo "layering: ok (${#MODULES[@]} modules)"
