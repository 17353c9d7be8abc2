#!/usr/bin/env bash
# The soak of issue 11 (item 10): a release server (memory store, loopback, ports from the
# kernel, a temporary directory) under 19,000 version 2 subscribers over 20 matches at 2
# events/s each for MINUTES (default 30), 5 % of the subscribers resuming with SINCE every
# minute (spread over half a minute), the server's RSS and open files sampled every 10 s.
# Writes OUT/soak-<date>.csv (the samples), .svg (their chart), .json (the report) and .txt
# (the table); exits with the bench's status: 0 passed (RSS at the end within 5 % of RSS at
# 5 minutes, nothing lost, duplicated or out of order), 1 failed, 2 could not run.
#
# Files: the server holds one per subscriber, one per publishing connection (20) and about 20
# of its own (listeners, io_uring rings, the store; it reserves 64), plus during resume rounds
# the checkins and the old connections it has not yet seen closed: a 2-minute trial peaked at
# 19,077, 923 under the 20,000 cap. The subscribers are spread over WORKERS bench processes (default 2, ~9,500
# sockets each) and over source addresses 127.0.0.2-127.0.0.254.
#
# Usage: bench/scripts/soak.sh [minutes]
#   env: SUBSCRIBERS (19000), MATCHES (20), RATE (2), WORKERS (2), OUT (bench/soak),
#        BIN (a directory holding matchstream and matchstream-bench: no build)
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-30}
SUBSCRIBERS=${SUBSCRIBERS:-19000}
MATCHES=${MATCHES:-20}
RATE=${RATE:-2}
WORKERS=${WORKERS:-2}
OUT=${OUT:-bench/soak}
BIN=${BIN:-}
TOKEN=soak-$$-$RANDOM
STAMP=$(date +%Y-%m-%d-%H%M)

if [ -z "$BIN" ]; then
  cargo build --release -p matchstream-engine -p matchstream-bench
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
mkdir -p "$OUT"

# The server and the bench inherit this limit (each raises its soft limit to the hard one).
ulimit -n "$(ulimit -Hn)"
files=$(ulimit -n)
if [ "$files" != unlimited ] && [ "$files" -lt $((SUBSCRIBERS + 64)) ]; then
  echo "soak: the open-files limit is $files, below $((SUBSCRIBERS + 64)) (subscribers and the" \
    "server's reserve): raise it (limits.conf) or lower SUBSCRIBERS" >&2
  exit 2
fi

tmp=$(mktemp -d)
server=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN/matchstream" serve --store memory --api 127.0.0.1:0 --stream-port 0 --token "$TOKEN" \
  >"$tmp/server.log" 2>&1 &
server=$!
api=""
for _ in $(seq 300); do
  api=$(sed -n 's/.*listening api=\([^ ]*\).*/\1/p' "$tmp/server.log" | head -n 1)
  [ -n "$api" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$api" ]; then
  echo "soak: the server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 2
fi
echo "soak: server pid $server, API $api, open-files limit $files; $MINUTES min," \
  "$SUBSCRIBERS subscribers, $MATCHES matches at $RATE/s" >&2

rc=0
"$BIN/matchstream-bench" soak --api "http://$api" --token "$TOKEN" --server-pid "$server" \
  --subscribers "$SUBSCRIBERS" --matches "$MATCHES" --rate "$RATE" --minutes "$MINUTES" \
  --resume-percent 5 --resume-every 60 --sample-every 10 \
  --workers "$WORKERS" --source-ips 127.0.0.2-127.0.0.254 \
  --csv "$OUT/soak-$STAMP.csv" --chart "$OUT/soak-$STAMP.svg" --json "$OUT/soak-$STAMP.json" \
  | tee "$OUT/soak-$STAMP.txt" || rc=$?
if grep -q " ERROR \|panicked" "$tmp/server.log"; then
  echo "soak: the server logged errors:" >&2
  grep " ERROR \|panicked" "$tmp/server.log" | head -n 20 >&2
fi
echo "soak: $OUT/soak-$STAMP.{csv,svg,json,txt}" >&2
exit "$rc"
