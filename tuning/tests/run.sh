#!/usr/bin/env bash
# run.sh — tests of the tuning kit, run by CI through engine/tests/tuning_scripts.rs.
#
#   bash tuning/tests/run.sh
#
# (a) shellcheck over every script; (b) the profile files, the unit and the shared
# library's decisions; (c) inside a fresh network namespace (unshare -n, where net.*
# sysctls are private, so nothing on the host changes): apply, a second apply that changes
# nothing, check, revert back to the exact originals; (d) on the host only --dry-run for
# the machine-wide keys (fs.*, tcp_mem, ...), proving nothing changed; (e) check.sh
# --target naming the limit that is short. It never writes a host setting: a dump of every
# key of both profiles taken at the start must match the one taken at the end.
# Prints "N passed, M failed" and exits 1 on any failure, or when fewer or more checks ran
# than EXPECTED_CHECKS: a check that is skipped (a missing tool, a branch not taken) fails
# the run instead of passing it unseen.
set -euo pipefail

# Every pass/fail line below counts one, whatever the machine: root or not, tools present
# or not. Change it with the checks.
EXPECTED_CHECKS=160

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TUNING=$(cd "$TESTS_DIR/.." && pwd)

# --- Helpers -----------------------------------------------------------------------------

pass() {
  printf 'PASS %s\n' "$1"
  echo PASS >>"$RESULTS"
}

fail() {
  printf 'FAIL %s\n' "$1"
  [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     | /'
  echo FAIL >>"$RESULTS"
}

# check NAME CMD...: passes when CMD succeeds.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# run CMD...: runs a command, keeping its output in OUT and its status in RC.
run() {
  RC=0
  OUT=$("$@" 2>&1) || RC=$?
}

# expect_rc NAME WANT: passes when the last run's status is WANT (shows its output if not).
expect_rc() {
  if [ "$RC" -eq "$2" ]; then pass "$1"; else fail "$1 (exit $RC, want $2)" "$OUT"; fi
}

# expect_out NAME REGEX: passes when the last run's output matches.
expect_out() {
  if grep -Eq -- "$2" <<<"$OUT"; then pass "$1"; else fail "$1 (no /$2/ in output)" "$OUT"; fi
}

# expect_no_out NAME REGEX: passes when the last run's output does not match.
expect_no_out() {
  if grep -Eq -- "$2" <<<"$OUT"; then fail "$1 (/$2/ in output)" "$OUT"; else pass "$1"; fi
}

# Every key of both profiles plus the ones tests touch, as key=value (or key=<absent>).
all_keys() {
  (
    # shellcheck source=../lib.sh
    . "$TUNING/lib.sh"
    {
      ms_conf_read "$TUNING/sysctl.conf"
      ms_conf_read "$TUNING/sysctl-loadgen.conf"
    } | cut -f1
    printf '%s\n' net.ipv4.tcp_tw_reuse net.core.rmem_default net.core.wmem_default
  ) | sort -u
}

# dump [FILTER]: key=value for every key (FILTER: netns = only those private to a namespace).
dump() {
  local key path
  # shellcheck source=../lib.sh
  (. "$TUNING/lib.sh"
  for key in $(all_keys); do
    if [ "${1:-}" = netns ] && ! ms_selected "$key" netns; then continue; fi
    path=$(ms_path "$key")
    if [ -r "$path" ]; then printf '%s=%s\n' "$key" "$(ms_norm "$(cat "$path")")"; else printf '%s=<absent>\n' "$key"; fi
  done)
}

# sysctl value, normalized.
get() { tr -s ' \t' '  ' <"/proc/sys/${1//.//}" | sed 's/ $//'; }

# --- (c) inside a fresh network namespace ------------------------------------------------

netns_suite() {
  local tmp=$1 st="$1/state" before after sum1
  printf -- '-- inside a fresh network namespace (%s)\n' "$(readlink /proc/self/ns/net)"

  # Start from values that are not the kernel's defaults, so "revert restores exactly" is
  # not the same as "resets to defaults".
  echo 1234 >/proc/sys/net/core/somaxconn
  echo "40000 50001" >/proc/sys/net/ipv4/ip_local_port_range
  echo 7000 >/proc/sys/net/ipv4/ip_local_reserved_ports
  echo 7199 >/proc/sys/net/ipv4/tcp_keepalive_time
  before=$(dump netns)

  run bash "$TUNING/apply.sh" --only netns --state "$st" --dry-run
  expect_rc "netns: apply --dry-run exits 0" 0
  expect_out "netns: apply --dry-run lists what it would change" 'somaxconn +1234 +65535 +would change'
  check "netns: apply --dry-run changes nothing" [ "$(dump netns)" = "$before" ]
  check "netns: apply --dry-run writes no state file" [ ! -e "$st" ]

  run bash "$TUNING/apply.sh" --only netns --state "$st"
  expect_rc "netns: apply exits 0" 0
  expect_no_out "netns: apply reports no FAILED" FAILED
  expect_out "netns: apply reports old -> new" 'somaxconn +1234 +65535 +OK'
  check "netns: apply re-read somaxconn = 65535" [ "$(get net.core.somaxconn)" = 65535 ]
  check "netns: apply re-read tcp_max_syn_backlog = 65535" [ "$(get net.ipv4.tcp_max_syn_backlog)" = 65535 ]
  check "netns: the server profile leaves the port range alone" [ "$(get net.ipv4.ip_local_port_range)" = "40000 50001" ]
  check "netns: apply added the server ports to the reserved ones" \
    [ "$(get net.ipv4.ip_local_reserved_ports)" = "7000,8888,9100-9163" ]
  check "netns: apply set keepalive 600/60/5" \
    [ "$(get net.ipv4.tcp_keepalive_time)/$(get net.ipv4.tcp_keepalive_intvl)/$(get net.ipv4.tcp_keepalive_probes)" = 600/60/5 ]
  check "netns: apply set tcp_max_tw_buckets" [ "$(get net.ipv4.tcp_max_tw_buckets)" = 1048576 ]
  check "netns: state file exists, owner-only" [ "$(stat -c %a "$st" 2>/dev/null)" = 600 ]
  check "netns: state file holds the originals" \
    grep -qxF "$(printf 'net.core.somaxconn\t1234')" "$st"
  check "netns: state file has no port range (the server keeps it)" bash -c "! grep -q '^net.ipv4.ip_local_port_range' '$st'"
  check "netns: state file holds the original reserved ports" \
    grep -qxF "$(printf 'net.ipv4.ip_local_reserved_ports\t7000')" "$st"
  check "netns: state file has no key that was already OK" bash -c "! grep -q '^net.ipv4.tcp_syncookies' '$st'"

  sum1=$(md5sum <"$st")
  after=$(dump netns)
  run bash "$TUNING/apply.sh" --only netns --state "$st"
  expect_rc "netns: second apply exits 0" 0
  expect_out "netns: second apply changes nothing" 'summary: 0 changed'
  check "netns: second apply leaves the values alone" [ "$(dump netns)" = "$after" ]
  check "netns: second apply leaves the saved originals alone" [ "$(md5sum <"$st")" = "$sum1" ]

  run bash "$TUNING/check.sh" --only netns
  expect_rc "netns: check after apply exits 0" 0
  expect_no_out "netns: check after apply reports every setting OK" ' (LOW|HIGH|DIFF)$'
  run bash "$TUNING/check.sh" --only netns --target 100
  expect_rc "netns: check --target 100 fits" 0
  expect_out "netns: check --target 100 says so" 'can hold 100 subscribers'

  # A host that is both server and load generator: the second profile goes into the same
  # state file and must not replace the originals saved by the first.
  run bash "$TUNING/apply.sh" --profile loadgen --only netns --state "$st"
  expect_rc "netns: loadgen apply on top exits 0" 0
  check "netns: loadgen widened the range to 1024-65535" [ "$(get net.ipv4.ip_local_port_range)" = "1024 65535" ]
  check "netns: loadgen set tcp_tw_reuse = 1" [ "$(get net.ipv4.tcp_tw_reuse)" = 1 ]
  check "netns: server ports stay reserved" [ "$(get net.ipv4.ip_local_reserved_ports)" = "7000,8888,9100-9163" ]
  check "netns: the first original of the port range is kept" \
    [ "$(grep -c '^net.ipv4.ip_local_port_range' "$st")" = 1 ]
  run bash "$TUNING/check.sh" --profile loadgen --only netns
  expect_rc "netns: check --profile loadgen after apply exits 0" 0

  run bash "$TUNING/apply.sh" --only net. --state "$tmp/other" --dry-run
  expect_rc "netns: absent or read-only keys do not fail the run" 0
  expect_out "netns: an absent key is skipped with a note" 'tcp_mem: not present in this kernel or network namespace'

  # The same scripts as a user other than root. Run as root, that is nobody (setpriv).
  # Run without root, this suite is root only by the mapping of `unshare -r`, and setpriv
  # cannot switch to an unmapped user: a nested user namespace maps us back to an ordinary
  # id, still our own unprivileged user on the host (so even a broken refusal could not
  # write a machine-wide key).
  local nonroot
  if [ "$real_uid" -eq 0 ]; then
    nonroot=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  else
    nonroot=(unshare --user --map-user=65534 --map-group=65534)
  fi
  local unchanged
  unchanged=$(dump netns)
  run "${nonroot[@]}" id -u
  if [ "$RC" -eq 0 ] && [ "$OUT" != 0 ]; then pass "non-root: runs as uid $OUT"; else fail "non-root: cannot run as a user other than root (${nonroot[*]})" "$OUT"; fi
  run "${nonroot[@]}" bash "$TUNING/apply.sh" --state "$tmp/nobody"
  expect_rc "non-root: apply refuses" 1
  expect_out "non-root: apply says it needs root" 'must run as root'
  run "${nonroot[@]}" bash "$TUNING/revert.sh" --state "$st"
  expect_rc "non-root: revert refuses" 1
  expect_out "non-root: revert says it needs root" 'must run as root'
  check "non-root: the refusals changed no setting" [ "$(dump netns)" = "$unchanged" ]
  check "non-root: apply wrote no state file" [ ! -e "$tmp/nobody" ]
  run "${nonroot[@]}" bash "$TUNING/check.sh" --only netns
  expect_rc "non-root: check runs without root" 0
  expect_no_out "non-root: check reports every setting OK" ' (LOW|HIGH|DIFF)$'

  run bash "$TUNING/revert.sh" --state "$st"
  expect_rc "netns: revert exits 0" 0
  expect_no_out "netns: revert reports no FAILED" FAILED
  if [ "$(dump netns)" = "$before" ]; then
    pass "netns: revert restored every value exactly"
  else
    fail "netns: revert restored every value exactly" "$(diff <(echo "$before") <(dump netns) || true)"
  fi
  check "netns: revert removed the state file" [ ! -e "$st" ]
  run bash "$TUNING/revert.sh" --state "$st"
  expect_rc "netns: revert without a state file exits 0" 0
  expect_out "netns: revert without a state file says so" 'nothing to revert'

  # The SYN queue line follows tcp_syncookies (per namespace).
  echo 1 >/proc/sys/net/ipv4/tcp_syncookies
  run bash "$TUNING/check.sh" --only netns --unit "$tmp/high.service"
  expect_out "netns: with syncookies the SYN queue is the backlog, then cookies" \
    'SYN queue +syncookies on \(1\): [0-9]+ half-open handshakes per listener \(its backlog\), then SYN cookies, no drops; tcp_max_syn_backlog [0-9]+ is not used'
  echo 0 >/proc/sys/net/ipv4/tcp_syncookies
  run bash "$TUNING/check.sh" --only netns --unit "$tmp/high.service"
  expect_out "netns: without syncookies SYNs are dropped" 'SYN queue +syncookies off: .* dropped .* tcp_max_syn_backlog'
  echo 1 >/proc/sys/net/ipv4/tcp_syncookies

  # TIME-WAIT buckets below the target: a warning (the kernel skips TIME-WAIT, no failure).
  echo 1000 >/proc/sys/net/ipv4/tcp_max_tw_buckets
  run bash "$TUNING/check.sh" --only netns --target 5000 --unit "$tmp/high.service"
  expect_out "netns: check --target warns about TIME-WAIT buckets" 'WARN TIME-WAIT: tcp_max_tw_buckets 1000 is below 5000'

  fake_proc_suite "$tmp"
}

# Machine-wide keys in a fake /proc/sys tree (MATCHSTREAM_TUNING_PROC_SYS): apply raises, never
# lowers; conntrack's max and buckets; orphans. Needs root (apply), so it runs in the namespace.
fake_proc_suite() {
  local tmp=$1 fake="$1/fake-sys" st="$1/fake-state"
  mkdir -p "$fake/fs" "$fake/net/netfilter" "$fake/net/ipv4"
  # fs.file-max at systemd's 2^63-1 and fs.nr_open at systemd's 1073741816: above ours.
  echo 9223372036854775807 >"$fake/fs/file-max"
  echo 1073741816 >"$fake/fs/nr_open"
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/apply.sh" --only fs. --state "$st"
  expect_rc "fake /proc/sys: apply exits 0" 0
  expect_out "fake /proc/sys: nothing to raise, nothing changed" 'summary: 0 changed, 2 already OK'
  check "fake /proc/sys: a larger fs.file-max stays" [ "$(cat "$fake/fs/file-max")" = 9223372036854775807 ]
  check "fake /proc/sys: a larger fs.nr_open stays" [ "$(cat "$fake/fs/nr_open")" = 1073741816 ]
  check "fake /proc/sys: no state file when nothing changed" [ ! -e "$st" ]
  echo 100000 >"$fake/fs/file-max"
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/apply.sh" --only fs. --state "$st"
  expect_out "fake /proc/sys: a lower fs.file-max is raised" 'fs.file-max +100000 +2097152 +OK'
  check "fake /proc/sys: fs.nr_open is still not lowered" [ "$(cat "$fake/fs/nr_open")" = 1073741816 ]
  check "fake /proc/sys: only the raised key is saved" [ "$(grep -vc '^#' "$st")" = 1 ]

  # conntrack: the profile's max on the default buckets is 16 entries per bucket.
  echo 2097152 >"$fake/net/netfilter/nf_conntrack_max"
  echo 131072 >"$fake/net/netfilter/nf_conntrack_buckets"
  echo 131072 >"$fake/net/ipv4/tcp_max_orphans"
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/check.sh" --only net.netfilter,net.ipv4.tcp_max_orphans --target 1000000 --unit "$tmp/high.service"
  expect_rc "fake /proc/sys: check exits 1" 1
  expect_out "fake /proc/sys: buckets below max / 4 are LOW" 'nf_conntrack_buckets +131072 +524288 +LOW'
  expect_out "fake /proc/sys: check flags the max / buckets ratio" 'WARN nf_conntrack_max 2097152 on 131072 buckets: 32 entries per bucket'
  expect_out "fake /proc/sys: check --target names the orphan limit" 'SHORT orphans: tcp_max_orphans 131072 is below 1000000'
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/apply.sh" --only net.netfilter,net.ipv4.tcp_max_orphans --state "$st"
  expect_rc "fake /proc/sys: apply conntrack and orphans exits 0" 0
  check "fake /proc/sys: buckets raised to max / 4" [ "$(cat "$fake/net/netfilter/nf_conntrack_buckets")" = 524288 ]
  check "fake /proc/sys: orphans raised to the profile's" [ "$(cat "$fake/net/ipv4/tcp_max_orphans")" = 1048576 ]
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/check.sh" --only net.netfilter,net.ipv4.tcp_max_orphans --target 1000000 --unit "$tmp/high.service"
  expect_no_out "fake /proc/sys: no ratio warning once paired" 'entries per bucket'
  expect_no_out "fake /proc/sys: no orphan shortage after apply" 'SHORT orphans'
  run env MATCHSTREAM_TUNING_PROC_SYS="$fake" bash "$TUNING/revert.sh" --state "$st"
  expect_rc "fake /proc/sys: revert exits 0" 0
  check "fake /proc/sys: revert restored the fake values" \
    [ "$(cat "$fake/fs/file-max") $(cat "$fake/net/netfilter/nf_conntrack_buckets")" = "100000 131072" ]
}

if [ "${1:-}" = --inside-netns ]; then
  RESULTS=$3
  real_uid=$4
  netns_suite "$2"
  exit 0
fi

# --- Main --------------------------------------------------------------------------------

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RESULTS=$TMP/results
: >"$RESULTS"
HOST_BEFORE=$(dump)
DEFAULT_STATE_BEFORE=$([ -e /var/lib/matchstream-tuning/state ] && echo present || echo absent)
cd "$TUNING/.."

printf -- '-- (a) shellcheck\n'
if command -v shellcheck >/dev/null 2>&1; then
  for f in "$TUNING"/*.sh "$TUNING"/tests/*.sh; do
    run shellcheck -x -P SCRIPTDIR "$f"
    expect_rc "shellcheck ${f#"$TUNING"/}" 0
  done
else
  fail "shellcheck is not installed: apt-get install -y shellcheck (scripts/test does it)"
fi

printf -- '-- (b) files and library\n'
for f in sysctl.conf sysctl-loadgen.conf sysctl.d/90-matchstream.conf; do
  run bash -c ". '$TUNING/lib.sh'; ms_conf_read '$TUNING/$f'"
  expect_rc "$f parses" 0
  # Every setting is explained: the line before each key line is a comment.
  unexplained=$(awk '/^[a-z]/ && prev !~ /^#/ && prev !~ /^[a-z]/ {print FNR": "$0} {prev=$0}' "$TUNING/$f")
  check "$f: every setting has a comment above it" [ -z "$unexplained" ]
  check "$f: never sets tcp_tw_recycle" bash -c "! grep -Eq '^[^#]*tcp_tw_recycle' '$TUNING/$f'"
done
# The sysctl.d drop-in (the Debian package ships it, inactive): the profile's values, and
# every profile key it leaves out is named with a reason; never the keys it would lower.
dropin=$TUNING/sysctl.d/90-matchstream.conf
run bash -c ". '$TUNING/lib.sh'; diff <(ms_conf_read '$dropin' | sort) <(ms_conf_read '$TUNING/sysctl.conf' | sort) | grep '^<' || true"
check "sysctl.d drop-in: every key has the server profile's value" [ -z "$OUT" ]
run bash -c ". '$TUNING/lib.sh'; ms_conf_read '$TUNING/sysctl.conf' | cut -f1 | while read -r k; do ms_conf_read '$dropin' | cut -f1 | grep -qxF \"\$k\" || grep -q \"^# left out: \$k \" '$dropin' || echo \"\$k\"; done"
check "sysctl.d drop-in: every profile key it does not set is left out with a reason" [ -z "$OUT" ]
run bash -c ". '$TUNING/lib.sh'; ms_conf_read '$dropin' | cut -f1 | grep -xE 'fs.file-max|fs.nr_open|net.ipv4.tcp_mem|net.ipv4.tcp_rmem|net.ipv4.ip_local_port_range' || true"
check "sysctl.d drop-in: sets none of the keys it would lower on many hosts" [ -z "$OUT" ]
check "sysctl.conf reserves the API and stream ports" \
  grep -qxF 'net.ipv4.ip_local_reserved_ports = 8888,9100-9163' "$TUNING/sysctl.conf"
check "sysctl.conf keeps the kernel's default port range on a server" \
  bash -c "! grep -Eq '^[^#]*ip_local_port_range' '$TUNING/sysctl.conf'"
check "sysctl-loadgen.conf keeps the wide port range" \
  grep -qxF 'net.ipv4.ip_local_port_range = 1024 65535' "$TUNING/sysctl-loadgen.conf"
check "sysctl.conf: tcp_max_orphans holds 1M subscribers" \
  grep -qxF 'net.ipv4.tcp_max_orphans = 1048576' "$TUNING/sysctl.conf"
run bash -c ". '$TUNING/lib.sh'; ms_conf_read '$TUNING/sysctl.conf' | awk -F'\t' '\$1 == \"net.netfilter.nf_conntrack_buckets\" {b = \$2; bl = NR} \$1 == \"net.netfilter.nf_conntrack_max\" {m = \$2; ml = NR} END {print m / b, (bl < ml)}'"
check "sysctl.conf: conntrack buckets are max / 4, set before the max" [ "$OUT" = "4 1" ]
check "limits.conf: every line is <domain> <type> <item> <value>" \
  bash -c "! grep -Ev '^(#|$)' '$TUNING/limits.conf' | awk 'NF != 4 || (\$2 != \"soft\" && \$2 != \"hard\" && \$2 != \"-\")' | grep -q ."
for line in LimitNOFILE=1048576 LimitMEMLOCK=infinity Restart=on-failure KillSignal=SIGTERM \
  TimeoutStopSec=30s StateDirectory=matchstream \
  Environment=MATCHSTREAM_STORE=embedded:/var/lib/matchstream \
  'ExecStart=/usr/local/bin/matchstream serve'; do
  check "matchstream.service has $line" grep -qxF "$line" "$TUNING/matchstream.service"
done
check "matchstream.service allows io_uring in its syscall filter" \
  grep -Eq '^SystemCallFilter=.*io_uring_setup.*io_uring_enter.*io_uring_register' "$TUNING/matchstream.service"
# Restart= paced by RestartSec can never exceed the start limit: a node crashing mid-match
# is restarted however often it crashes (interval / RestartSec + 1 starts fit the interval).
run awk -F= '/^RestartSec=/ {r = $2 + 0} /^StartLimitIntervalSec=/ {i = $2 + 0} /^StartLimitBurst=/ {b = $2 + 0}
  END { if (r > 0 && i > 0 && int(i / r) + 1 <= b) print "ok"; else print "interval", i, "restart", r, "burst", b }' "$TUNING/matchstream.service"
check "matchstream.service: Restart= never reaches the start limit" [ "$OUT" = ok ]
check "matchstream.service passes the token as a credential" \
  grep -qxF 'LoadCredential=token:/etc/matchstream/token' "$TUNING/matchstream.service"
check "matchstream.service sets no token in its environment" \
  bash -c "! grep -Eq '^Environment=.*MATCHSTREAM_TOKEN' '$TUNING/matchstream.service'"
check "matchstream.service shows how to allow ports below 1024" \
  grep -qxF '#AmbientCapabilities=CAP_NET_BIND_SERVICE' "$TUNING/matchstream.service"
if command -v systemd-analyze >/dev/null 2>&1; then
  sed 's#^ExecStart=/usr/local/bin/matchstream#ExecStart=/bin/true#' "$TUNING/matchstream.service" >"$TMP/matchstream.service"
  run systemd-analyze verify --man=no "$TMP/matchstream.service"
  if [ "$RC" -eq 0 ] && [ -z "$OUT" ]; then pass "systemd-analyze verify matchstream.service"; else fail "systemd-analyze verify matchstream.service" "$OUT"; fi
else
  fail "systemd-analyze is not installed: apt-get install -y systemd (scripts/test does it)"
fi

# The library's decisions, one case per behaviour: mode current recommended -> satisfied? merged
lib_case() {
  local name=$1 mode=$2 cur=$3 rec=$4 want_ok=$5 want_merge=$6 got_ok got_merge
  got_ok=$(bash -c ". '$TUNING/lib.sh'; ms_satisfied '$mode' '$cur' '$rec' && echo yes || echo no")
  got_merge=$(bash -c ". '$TUNING/lib.sh'; ms_merge '$mode' '$cur' '$rec'")
  if [ "$got_ok" = "$want_ok" ] && [ "$got_merge" = "$want_merge" ]; then
    pass "lib: $name"
  else
    fail "lib: $name" "satisfied=$got_ok (want $want_ok), merge='$got_merge' (want '$want_merge')"
  fi
}
lib_case "a limit below ours is raised" atleast 4096 65535 no 65535
lib_case "a limit above ours is kept" atleast 131072 65535 yes 131072
lib_case "triples compare field by field" atleast "4096 131072 33554432" "4096 131072 6291456" yes "4096 131072 33554432"
lib_case "triples merge field by field" atleast "4096 87380 33554432" "4096 131072 6291456" no "4096 131072 33554432"
lib_case "fs.file-max at 2^63-1 is enough" atleast 9223372036854775807 2097152 yes 9223372036854775807
lib_case "a timer above our maximum is lowered" atmost 7200 600 no 600
lib_case "a shorter timer is kept" atmost 300 600 yes 300
lib_case "a narrower port range is widened" range "32768 60999" "10000 65535" no "10000 65535"
lib_case "a wider port range is kept" range "1024 65535" "10000 65535" yes "1024 65535"
lib_case "port ranges merge as their union" range "1024 60999" "10000 65535" no "1024 65535"
lib_case "no reserved ports: ours are added" ports "" "8888,9100-9163" no "8888,9100-9163"
lib_case "other reserved ports are kept" ports "7000" "8888,9100-9163" no "7000,8888,9100-9163"
lib_case "reserved ports covering ours are OK" ports "7000,8888,9000-9200" "8888,9100-9163" yes "7000,8888,9000-9200,8888,9100-9163"
lib_case "one missing reserved port is not OK" ports "8888,9100-9162" "8888,9100-9163" no "8888,9100-9162,8888,9100-9163"
lib_case "switches must match" exact 2 1 no 1
run bash -c ". '$TUNING/lib.sh'; for k in net.core.somaxconn net.ipv4.tcp_mem fs.file-max net.netfilter.nf_conntrack_max; do ms_selected \$k netns && echo \$k; done"
check "lib: --only netns keeps per-namespace keys and drops machine-wide ones" [ "$OUT" = net.core.somaxconn ]
run bash -c ". '$TUNING/lib.sh'; for k in net.core.somaxconn net.ipv4.tcp_mem fs.file-max; do ms_selected \$k global && echo \$k; done | paste -sd,"
check "lib: --only global selects fs.* and tcp_mem" [ "$OUT" = net.ipv4.tcp_mem,fs.file-max ]
run bash -c ". '$TUNING/lib.sh'; ms_selected fs.nr_open 'net.,fs.nr' && ms_selected net.core.somaxconn net. && ! ms_selected fs.file-max net."
expect_rc "lib: --only takes key prefixes" 0
printf '# c\n; c\n\n  a.b = 1\t2 \n-x/y/z=3\n' >"$TMP/parse.conf"
run bash -c ". '$TUNING/lib.sh'; ms_conf_read '$TMP/parse.conf'"
check "lib: parser skips comments, trims, drops '-', maps a/b to a.b" [ "$OUT" = "$(printf 'a.b\t1 2\nx.y.z\t3')" ]
run bash -c ". '$TUNING/lib.sh'; ms_mem_bytes() { echo 4294967296; }; ms_page_size() { echo 4096; }; ms_recommend net.ipv4.tcp_mem '786432 1048576 1572864'; echo \"\$MS_REC\""
check "lib: tcp_mem is capped at half of RAM on a small host" [ "$OUT" = "262144 349525 524288" ]
run bash -c ". '$TUNING/lib.sh'; ms_mem_bytes() { echo 274877906944; }; ms_page_size() { echo 65536; }; ms_recommend net.ipv4.tcp_mem '786432 1048576 1572864'; echo \"\$MS_REC\""
check "lib: tcp_mem is converted for 64 KiB pages" [ "$OUT" = "49152 65536 98304" ]
printf '[Service]\nLimitNOFILE=65536\nLimitMEMLOCK=infinity\n' >"$TMP/low.service"
printf '[Service]\nLimitNOFILE=1048576\nLimitMEMLOCK=64M\n' >"$TMP/high.service"
mkdir -p "$TMP/dropin.service.d"
cp "$TMP/low.service" "$TMP/dropin.service"
printf '[Service]\nLimitNOFILE=4096:2000000\n' >"$TMP/dropin.service.d/50-more.conf"
run bash -c ". '$TUNING/lib.sh'; ms_unit_limit '$TMP/low.service' LimitNOFILE; ms_unit_limit '$TMP/dropin.service' LimitNOFILE; ms_unit_limit '$TMP/low.service' LimitMEMLOCK; ms_unit_bytes 64M; ms_unit_limit '$TMP/parse.conf' LimitNOFILE || echo unset"
check "lib: LimitNOFILE read from a unit, its drop-ins (SOFT:HARD) and infinity" \
  [ "$OUT" = "$(printf '65536 65536\n4096 2000000\ninfinity infinity\n67108864\nunset')" ]
run bash -c ". '$TUNING/lib.sh'; ms_ram_estimate 1000 0; ms_ram_estimate 1000 1"
check "lib: memory estimate per subscriber: 5120 kernel + 4096 buffers + 560 ours + 256 TIME-WAIT (+ 256 conntrack)" \
  [ "$OUT" = "$(printf '10032000 5120000 4096000 560000 256000 0\n10288000 5120000 4096000 560000 256000 256000')" ]
run bash "$TUNING/apply.sh" --bogus
expect_rc "apply rejects an unknown option (exit 2)" 2
run bash "$TUNING/check.sh" --only nonsense
expect_rc "check rejects a bad --only (exit 2)" 2

printf -- '-- (c) apply, check, revert in a fresh network namespace\n'
if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
  unshare -n bash "$TESTS_DIR/run.sh" --inside-netns "$TMP" "$RESULTS" 0
elif unshare -r -n true 2>/dev/null; then
  # Not root: a user namespace makes us root of a private network namespace.
  unshare -r -n bash "$TESTS_DIR/run.sh" --inside-netns "$TMP" "$RESULTS" "$(id -u)"
else
  fail "cannot create a network namespace (unshare -n needs root, unshare -rn needs user namespaces): run as root"
fi

printf -- '-- (d) machine-wide keys on the host: --dry-run only\n'
run bash "$TUNING/apply.sh" --dry-run --only global --state "$TMP/host-state"
expect_rc "host: apply --dry-run --only global exits 0" 0
expect_out "host: dry run says nothing changed" 'nothing changed \(dry run\)'
expect_out "host: dry run covers fs.* and tcp_mem" 'net.ipv4.tcp_mem|fs.file-max'
for p in server loadgen; do
  run bash "$TUNING/apply.sh" --dry-run --profile "$p" --state "$TMP/host-state"
  expect_rc "host: apply --dry-run --profile $p exits 0" 0
done
check "host: dry runs wrote no state file" [ ! -e "$TMP/host-state" ]
printf '# test\nfs.file-max\t1\n' >"$TMP/fake-state"
run bash "$TUNING/revert.sh" --dry-run --state "$TMP/fake-state"
expect_rc "host: revert --dry-run exits 0" 0
expect_out "host: revert --dry-run shows what it would restore" 'fs.file-max .* 1 +would restore'
check "host: revert --dry-run keeps its state file" [ -e "$TMP/fake-state" ]
if [ "$(dump)" = "$HOST_BEFORE" ]; then
  pass "host: no setting changed on the machine"
else
  fail "host: no setting changed on the machine" "$(diff <(echo "$HOST_BEFORE") <(dump) || true)"
fi

printf -- '-- (e) capacity\n'
run bash "$TUNING/check.sh" --target 1000000 --unit "$TMP/low.service"
check "check --target 1000000 exits non-zero with LimitNOFILE 65536" [ "$RC" -ne 0 ]
expect_out "check --target names the service's open-files limit and where it comes from" \
  "SHORT open-files limit: hard 65536 \\(soft 65536, from unit file $TMP/low.service\\)"
expect_out "check --target says what it cannot hold" 'cannot hold 1000000 subscribers'
expect_out "check --target estimates the memory" 'memory for 1000000 subscribers: about [0-9.]+ GiB = sockets'
expect_out "check reports connections per process" 'subscribers per matchstream process'
expect_out "check reports outgoing connections per destination" 'connections per \(source address, destination'
expect_out "check reports kernel TCP memory in bytes" 'pressure at [0-9.]+ [KMGT]iB'
expect_out "check reports the accept-queue depth" 'somaxconn [0-9]+, backlog 65535: at most'
expect_out "check reports the unit's locked-memory limit" 'locked memory +soft unlimited, hard unlimited'
run bash "$TUNING/check.sh" --target 1000000 --unit "$TMP/high.service"
expect_no_out "check --target does not blame a LimitNOFILE that fits" 'SHORT open-files limit'
expect_out "check --target reads the unit's LimitMEMLOCK" 'locked memory +soft 64 MiB, hard 64 MiB'
run bash "$TUNING/check.sh" --target 100000000 --unit "$TMP/high.service"
expect_out "check --target names memory when the host is too small" 'SHORT memory: 100000000 subscribers need about'
# systemctl show, when systemd knows the service (a stand-in systemctl answers here).
cat >"$TMP/systemctl" <<'EOS'
#!/bin/sh
case "$*" in
  *"-p LoadState "*) echo loaded ;;
  *"-p LimitNOFILE "*) echo 524288 ;;
  *"-p LimitNOFILESoft "*) echo 1024 ;;
  *) echo ;;
esac
EOS
chmod +x "$TMP/systemctl"
run env MATCHSTREAM_TUNING_SYSTEMCTL="$TMP/systemctl" bash "$TUNING/check.sh" --target 1000000
expect_out "check --target reads LimitNOFILE from systemctl show" \
  'SHORT open-files limit: hard 524288 \(soft 1024, from systemctl show matchstream\)'
run bash "$TUNING/check.sh"
expect_no_out "check never takes the server's open-files limit from the shell" 'limits of this shell'
run bash "$TUNING/check.sh" --profile loadgen
expect_out "check --profile loadgen takes the shell's limits (the bench runs there)" 'limits of this shell'

printf -- '-- safety\n'
check "host: every key still has its value from the start" [ "$(dump)" = "$HOST_BEFORE" ]
check "host: the default state file was not touched" \
  [ "$([ -e /var/lib/matchstream-tuning/state ] && echo present || echo absent)" = "$DEFAULT_STATE_BEFORE" ]

passed=$(grep -c PASS "$RESULTS" || true)
failed=$(grep -c FAIL "$RESULTS" || true)
if [ $((passed + failed)) -ne "$EXPECTED_CHECKS" ]; then
  fail "$((passed + failed)) checks ran, $EXPECTED_CHECKS expected (a part stopped early or was left out; if checks were added or removed, update EXPECTED_CHECKS)"
  failed=$((failed + 1))
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
