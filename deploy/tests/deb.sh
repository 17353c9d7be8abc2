#!/usr/bin/env bash
# deb.sh — builds the matchstream Debian package with cargo-deb and checks it: the file list,
# modes, conffiles and dependencies; an install with `dpkg --root` into a temporary root
# (maintainer scripts included, run chrootless with DPKG_ROOT); the account, the watcher
# token, that nothing is enabled or active; `systemd-analyze verify` of the installed unit
# with its drop-in; a second install (upgrade) that keeps the token; and a purge. Run by
# engine/tests/deb.rs; nothing outside the temporary directory changes.
#
#   deploy/tests/deb.sh [--binary PATH]   package a built binary (default: the workspace's
#                                         debug build, built if missing): no release build
#   deploy/tests/deb.sh --release         `cargo deb` from scratch: a release build (minutes)
#
# Prints "N passed, M failed" and exits 1 on any failure or when fewer or more checks ran
# than EXPECTED_CHECKS.
set -euo pipefail

# Every pass/fail line below counts one. Change it with the checks.
EXPECTED_CHECKS=41

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

mode=binary
binary=
while [ $# -gt 0 ]; do
  case "$1" in
    --release) mode=release; shift ;;
    --binary) [ $# -ge 2 ] || { echo "deb.sh: --binary needs a path" >&2; exit 2; }; binary=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "deb.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RESULTS=$TMP/results
: >"$RESULTS"

pass() { printf 'PASS %s\n' "$1"; echo PASS >>"$RESULTS"; }
fail() {
  printf 'FAIL %s\n' "$1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     | /'
  echo FAIL >>"$RESULTS"
}
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
run() {
  RC=0
  OUT=$("$@" 2>&1) || RC=$?
}
expect_rc() { if [ "$RC" -eq "$2" ]; then pass "$1"; else fail "$1 (exit $RC, want $2)" "$OUT"; fi; }
expect_out() { if grep -Eq -- "$2" <<<"$OUT"; then pass "$1"; else fail "$1 (no /$2/ in output)" "$OUT"; fi; }
finish() {
  local passed failed
  passed=$(grep -c PASS "$RESULTS" || true)
  failed=$(grep -c FAIL "$RESULTS" || true)
  if [ $((passed + failed)) -ne "$EXPECTED_CHECKS" ]; then
    fail "$((passed + failed)) checks ran, $EXPECTED_CHECKS expected (a part stopped early, or update EXPECTED_CHECKS)"
    failed=$((failed + 1))
  fi
  printf '%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}

for tool in cargo-deb dpkg dpkg-deb systemd-analyze; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case "$tool" in
      cargo-deb) fail "cargo-deb is not installed: cargo install --locked cargo-deb (scripts/test does it)" ;;
      systemd-analyze) fail "systemd-analyze is not installed: apt-get install systemd (scripts/test does it)" ;;
      *) fail "$tool is not installed: this test needs a Debian-like host" ;;
    esac
    finish
  fi
done

# --- Scripts -----------------------------------------------------------------------------

printf -- '-- shellcheck\n'
for f in deploy/tests/deb.sh deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm; do
  if command -v shellcheck >/dev/null 2>&1; then
    run shellcheck "$f"
    expect_rc "shellcheck $f" 0
  else
    fail "shellcheck $f: shellcheck is not installed (apt-get install shellcheck; scripts/test does it)"
  fi
done

# --- Build -------------------------------------------------------------------------------

printf -- '-- build (%s)\n' "$mode"
out=$TMP/out
mkdir -p "$out"
if [ "$mode" = release ]; then
  run cargo deb -p matchstream-engine -o "$out"
else
  if [ -z "$binary" ]; then
    binary=${CARGO_TARGET_DIR:-$REPO/target}/debug/matchstream
    [ -x "$binary" ] || cargo build -q -p matchstream-engine --bin matchstream
  fi
  # cargo-deb packages target/release/matchstream: give it the built binary there, in a
  # target directory of its own, and let it strip it (a release build takes minutes here).
  mkdir -p "$TMP/target/release"
  cp "$binary" "$TMP/target/release/matchstream"
  run env CARGO_TARGET_DIR="$TMP/target" cargo deb -p matchstream-engine --no-build --strip --no-dbgsym --fast -o "$out"
fi
expect_rc "cargo deb builds the package" 0
deb=$(find "$out" -name 'matchstream_*.deb' | head -1)
if [ -z "$deb" ]; then
  fail "no matchstream_*.deb in $out" "$OUT"
  finish
fi
printf '   %s (%s bytes)\n' "${deb##*/}" "$(stat -c %s "$deb")"

# --- The package -------------------------------------------------------------------------

printf -- '-- contents\n'
expected_files=$(
  cat <<'EOF'
./etc/default/matchstream
./usr/bin/matchstream
./usr/lib/systemd/system/matchstream.service
./usr/lib/systemd/system/matchstream.service.d/debian.conf
./usr/lib/sysusers.d/matchstream.conf
./usr/share/doc/matchstream/README.md
./usr/share/doc/matchstream/copyright
./usr/share/doc/matchstream/deploy.md
./usr/share/matchstream/grafana/matchstream.json
./usr/share/matchstream/prometheus/alerts.yml
./usr/share/matchstream/sysctl.d/90-matchstream.conf
./usr/share/matchstream/tuning/README.md
./usr/share/matchstream/tuning/apply.sh
./usr/share/matchstream/tuning/check.sh
./usr/share/matchstream/tuning/lib.sh
./usr/share/matchstream/tuning/limits.conf
./usr/share/matchstream/tuning/matchstream.service
./usr/share/matchstream/tuning/revert.sh
./usr/share/matchstream/tuning/sysctl-loadgen.conf
./usr/share/matchstream/tuning/sysctl.conf
EOF
)
listing=$(dpkg-deb -c "$deb")
files=$(awk '$1 !~ /^d/ {print $6}' <<<"$listing" | sort)
if [ "$files" = "$expected_files" ]; then
  pass "the package holds exactly the expected files"
else
  fail "the package holds exactly the expected files" "$(diff <(echo "$expected_files") <(echo "$files") || true)"
fi
mode_of() { awk -v f="$1" '$6 == f {print $1}' <<<"$listing"; }
check "the binary is executable" [ "$(mode_of ./usr/bin/matchstream)" = -rwxr-xr-x ]
check "/etc/default/matchstream is root's only (it may hold a Redis password)" [ "$(mode_of ./etc/default/matchstream)" = -rw------- ]
check "the tuning scripts are executable" [ "$(mode_of ./usr/share/matchstream/tuning/check.sh)" = -rwxr-xr-x ]
active=$(awk '{print $6}' <<<"$listing" | grep -E '^\./(etc|usr/lib|lib|run)/sysctl\.d/' || true)
check "no sysctl file is active: nothing in a sysctl.d directory systemd reads" [ -z "$active" ]
run dpkg-deb -I "$deb" conffiles
check "/etc/default/matchstream is a conffile" [ "$OUT" = /etc/default/matchstream ]
run dpkg-deb -f "$deb" Package Depends
expect_out "the package is called matchstream" '^Package: matchstream$'
expect_out "it depends on libc and systemd" '^Depends: libc6 .*, systemd$'
check "the packaged unit is tuning/matchstream.service as it is" \
  cmp -s <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/matchstream.service) tuning/matchstream.service

# --- Install into a temporary root -------------------------------------------------------

printf -- '-- dpkg --root install\n'
root=$TMP/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
dpkg_root=(dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null)
[ "$(id -u)" -eq 0 ] || dpkg_root+=(--force-not-root)
run "${dpkg_root[@]}" -i "$deb"
expect_rc "dpkg --root -i installs it, maintainer scripts included" 0
expect_out "postinst made the watcher token" 'watcher token created in /etc/matchstream/token'
expect_out "postinst says it started nothing" 'installed, not started'
check "the binary runs" "$root/usr/bin/matchstream" --version
check "postinst created the matchstream account" grep -q '^matchstream:x:[0-9]*:[0-9]*:matchstream server:/var/lib/matchstream:/usr/sbin/nologin$' "$root/etc/passwd"
check "and its group" grep -q '^matchstream:x:' "$root/etc/group"
check "the token is 32 hex digits" grep -Eqx '[0-9a-f]{32}' "$root/etc/matchstream/token"
check "the token is root's only (mode 0600)" [ "$(stat -c %a "$root/etc/matchstream/token")" = 600 ]
check "/etc/matchstream is not world-readable" [ "$(stat -c %a "$root/etc/matchstream")" = 750 ]
check "no sysctl drop-in is active" bash -c "! ls '$root/etc/sysctl.d' '$root/usr/lib/sysctl.d' 2>/dev/null | grep -q ."
run systemctl --root="$root" is-enabled matchstream.service
check "the service is installed but not enabled" [ "$OUT" = disabled ]

# systemd-analyze verify resolves the unit's dependencies (sysinit.target, ...) in the same
# root: give it the host's stock units beside the package's, in /lib.
mkdir -p "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
run systemd-analyze verify --root="$root" --man=no matchstream.service
if [ "$RC" -eq 0 ] && [ -z "$OUT" ]; then pass "systemd-analyze verify the installed unit"; else fail "systemd-analyze verify the installed unit" "$OUT"; fi
# The unit as systemd loads it (the debug dump of verify): the drop-in applies.
run env SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --root="$root" --man=no matchstream.service
expect_out "the package's drop-in is loaded" 'DropIn Path: .*/usr/lib/systemd/system/matchstream.service.d/debian.conf'
check "it runs /usr/bin/matchstream serve, and only that" \
  [ "$(grep -E '^\s*Command Line:' <<<"$OUT" | sed 's/^\s*//')" = "Command Line: /usr/bin/matchstream serve" ]
expect_out "it reads /etc/default/matchstream" 'EnvironmentFile: -/etc/default/matchstream'
check "no token in the unit's environment (it is a credential)" bash -c "! grep -q MATCHSTREAM_TOKEN <<<\"\$1\"" _ "$OUT"
expect_out "LimitNOFILE is 1048576" 'LimitNOFILE: 1048576$'

# The tuning kit works from where the package put it, reading the installed unit.
run "$root/usr/share/matchstream/tuning/check.sh" --unit "$root/usr/lib/systemd/system/matchstream.service" --target 1000
expect_out "the installed check.sh reads the installed unit's LimitNOFILE" 'soft 1048576, hard 1048576 -> about 1048512 subscribers'

# An upgrade (the same package again) keeps the token and the conffile's edits.
token=$(cat "$root/etc/matchstream/token")
echo 'MATCHSTREAM_NODE_ID=edited' >>"$root/etc/default/matchstream"
run "${dpkg_root[@]}" -i "$deb"
expect_rc "a second install (upgrade) succeeds" 0
check "the upgrade keeps the token" [ "$(cat "$root/etc/matchstream/token")" = "$token" ]
check "the upgrade keeps the edited conffile" grep -qx 'MATCHSTREAM_NODE_ID=edited' "$root/etc/default/matchstream"

# --- Remove and purge --------------------------------------------------------------------

printf -- '-- remove, purge\n'
run "${dpkg_root[@]}" -r matchstream
expect_rc "dpkg -r removes it" 0
check "remove takes the binary and the unit" \
  test ! -e "$root/usr/bin/matchstream" -a ! -e "$root/usr/lib/systemd/system/matchstream.service"
check "remove keeps the conffile and the token" \
  test -e "$root/etc/default/matchstream" -a -e "$root/etc/matchstream/token"
run "${dpkg_root[@]}" -P matchstream
expect_rc "dpkg -P purges it" 0
check "purge removes /etc/default/matchstream and /etc/matchstream" \
  test ! -e "$root/etc/default/matchstream" -a ! -e "$root/etc/matchstream"
check "purge keeps the account (Debian does not reuse system accounts)" grep -q '^matchstream:' "$root/etc/passwd"

finish
