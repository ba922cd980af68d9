#!/usr/bin/env bash
# tests/dist/check_docs_selftest.sh - the drift check (check_docs.py) itself: it passes on the
# tree as it is, and each planted drift makes it fail naming what drifted:
#   an option dropped from the completion, an option dropped from the man page, a config key
#   dropped from warren.toml.5, and a new subcommand and option appearing in a program's usage
#   (a wrapper adds `warren server frobnicate [--config FILE] [--strict]` to the real usage).
# Usage: check_docs_selftest.sh BUILD_BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

fresh() {
  rm -rf "$tmp/dist" "$tmp/bin"
  cp -r "$src/dist" "$tmp/dist"
  mkdir "$tmp/bin"
  ln -s "$bin/warren" "$tmp/bin/warren"
  ln -s "$bin/warren-wg" "$tmp/bin/warren-wg"
}

check() { python3 "$src/tests/dist/check_docs.py" --bin "$tmp/bin" --dist "$tmp/dist" --source "$src"; }

# expect_fail WHAT PATTERN: the check must exit 1 and print PATTERN.
expect_fail() {
  local out rc=0
  out=$(check 2>&1) || rc=$?
  if [[ $rc -ne 1 ]] || ! grep -qF -- "$2" <<<"$out"; then
    echo "NOT CAUGHT: $1 (exit $rc; expected a line with: $2)"
    echo "$out" | sed 's/^/    /'
    fail=1
  else
    echo "caught: $1: $(grep -F -- "$2" <<<"$out" | head -1)"
  fi
}

fresh
if ! check; then
  echo "the unmodified tree fails the check"
  exit 1
fi

fresh
sed -i 's/ --dead-after / /' "$tmp/dist/completion/warren"
expect_fail "--dead-after dropped from the completion" "'warren up -<TAB>' does not offer --dead-after"

fresh
sed -i 's/\\-\\-uses/\\-\\-count/g' "$tmp/dist/man/warren.8"
expect_fail "--uses dropped from warren.8" "option --uses (of 'warren server invite') is not documented"

fresh
sed -i '/^\.B quarantine$/d' "$tmp/dist/man/warren.toml.5"
expect_fail "pool.quarantine dropped from warren.toml.5" "key pool.quarantine is not documented"

fresh
rm "$tmp/bin/warren"
cat >"$tmp/bin/warren" <<WRAP
#!/usr/bin/env bash
# The real warren, whose server usage has grown a subcommand and an option.
if [[ \${1-} == server && \${2-} == --help ]]; then
  "$bin/warren" "\$@"
  echo "  warren server frobnicate [--config FILE] [--strict]"
  exit 0
fi
exec "$bin/warren" "\$@"
WRAP
chmod +x "$tmp/bin/warren"
expect_fail "a new subcommand in the usage" "command 'warren server frobnicate' is not described"
expect_fail "a new option in the usage" "option --strict (of 'warren server frobnicate') is not documented"
expect_fail "a new option the completion lacks" "'warren server frobnicate -<TAB>' does not offer --strict"

exit $fail
