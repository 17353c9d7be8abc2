#!/usr/bin/env bash
# Produces the figures of bench/RESULTS.md on one machine: each measurement is repeated
# (RUNS, default 3; the fanout steps use the bench's own --runs, LAT_RUNS default 5) against a
# fresh release server; outputs go to OUT (default ./measure-out). Needs redis-server and
# nats-server for the baselines (and Redis for the multi-node run). Every process it starts
# is stopped by PID; sysctls it changes (somaxconn for the tuned connect burst) are restored.
# A run that fails (the bench exits 1) is recorded, not fatal: its exit status goes to
# <name>.status. Usage: bench/scripts/measure.sh [step ...]   (steps: fanout latency hold
# burst http ramp nodes; default all)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
LAT_RUNS=${LAT_RUNS:-5}
OUT=${OUT:-measure-out}
BIN=target/release
TOKEN=measure
mkdir -p "$OUT"
cargo build --release -p matchstream-engine -p matchstream-bench >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# shellcheck disable=SC2120,SC2119 # extra server flags are optional
start_server() { # extra args...
  "$BIN/matchstream" serve --store memory --api 127.0.0.1:8888 --stream-port 9100 --token "$TOKEN" "$@" \
    >"$OUT/server.log" 2>&1 &
  SERVER=$!
  pids+=("$SERVER")
  for _ in $(seq 100); do grep -q "listening api=" "$OUT/server.log" 2>/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
start_redis() { # port
  redis-server --port "$1" --protected-mode no --save '' --appendonly no --maxclients 19000 \
    >"$OUT/redis-$1.log" 2>&1 &
  REDIS=$!
  pids+=("$REDIS")
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
start_nats() { # port; max_connections above the largest subscriber count
  printf 'max_connections: 65536\nmax_payload: 1048576\n' >"$OUT/nats-$1.conf"
  nats-server -c "$OUT/nats-$1.conf" -a 127.0.0.1 -p "$1" >"$OUT/nats-$1.log" 2>&1 &
  NATS=$!
  pids+=("$NATS")
  sleep 0.5
}
bench() { "$BIN/matchstream-bench" "$@"; }
# measured NAME bench-args...: runs the bench, its table in NAME.txt, its exit status in
# NAME.status (a failed run is a figure too).
measured() {
  local name=$1
  shift
  local rc=0
  "$BIN/matchstream-bench" "$@" >"$OUT/$name.txt" 2>&1 || rc=$?
  echo "$rc" >"$OUT/$name.status"
}

step_fanout() { # max rate, 1 match, 15,000 subscribers; window 64 then 8; Redis and NATS
  # driven by the same flow control in the same runs
  start_redis 6390
  start_nats 4223
  for w in 64 8; do
    start_server
    measured "fanout-max-w$w" fanout --api http://127.0.0.1:8888 --token "$TOKEN" \
      --subscribers 15000 --matches 1 --events 200 --rate max --window "$w" --runs "$LAT_RUNS" \
      --server-pid "$SERVER" --baseline redis://127.0.0.1:6390 --baseline-pid "$REDIS" \
      --baseline nats://127.0.0.1:4223 --baseline-pid "$NATS" --json "$OUT/fanout-max-w$w.json"
    stop_server
  done
  kill "$REDIS" "$NATS"
}

step_latency() { # 15,000 subscribers at 20 events/s, and lighter loads; every run shown
  start_redis 6390
  start_nats 4223
  for load in "15000 20" "15000 5" "5000 20" "2000 20"; do
    read -r subs rate <<<"$load"
    start_server
    measured "fanout-$subs-$rate" fanout --api http://127.0.0.1:8888 --token "$TOKEN" \
      --subscribers "$subs" --matches 1 --events 100 --rate "$rate" --runs "$LAT_RUNS" \
      --server-pid "$SERVER" --baseline redis://127.0.0.1:6390 --baseline-pid "$REDIS" \
      --baseline nats://127.0.0.1:4223 --baseline-pid "$NATS" --json "$OUT/fanout-$subs-$rate.json"
    stop_server
  done
  kill "$REDIS" "$NATS"
}

step_hold() { # one node at its 20,000-fd cap, every event delivered
  for i in $(seq "$RUNS"); do
    start_server
    measured "hold-$i" fanout --api http://127.0.0.1:8888 --token "$TOKEN" --subscribers 19500 \
      --matches 1 --events 20 --rate 5 --server-pid "$SERVER" --json "$OUT/hold-$i.json"
    stop_server
  done
}

step_burst() { # 19,500 clients, 8,000 connects in flight; default somaxconn, then tuned
  local old
  old=$(sysctl -n net.core.somaxconn)
  local oldsyn
  oldsyn=$(sysctl -n net.ipv4.tcp_max_syn_backlog)
  for tuned in default tuned; do
    if [ "$tuned" = tuned ]; then
      sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
    fi
    for i in $(seq "$RUNS"); do
      start_server
      curl -s -H "Authorization: Bearer $TOKEN" -d '{"home":"bur","visit":"st","start_date":"2011-09-10"}' \
        http://127.0.0.1:8888/1/matches >/dev/null
      bench clients --api http://127.0.0.1:8888 --match bur-st-2011-09-10 --n 19500 --c 8000 \
        --source-ips 127.0.0.2-127.0.0.254 --json "$OUT/burst-$tuned-$i.json" >"$OUT/burst-$tuned-$i.txt" 2>&1 || true
      stop_server
    done
    sysctl -qw net.core.somaxconn="$old" net.ipv4.tcp_max_syn_backlog="$oldsyn"
  done
}

step_http() { # the original's ApacheBench paths at c=128
  start_server
  curl -s -H "Authorization: Bearer $TOKEN" -d '{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[{"number":7,"name":"Luna"}]}' \
    http://127.0.0.1:8888/1/matches >/dev/null
  for k in $(seq 30); do
    curl -s -H "Authorization: Bearer $TOKEN" -d '{"kind":"comment","comment":"note '"$k"'"}' \
      http://127.0.0.1:8888/1/match/elp-tig-2011-09-10/events >/dev/null
  done
  for path in /1/checkin /1/matches /1/match/elp-tig-2011-09-10/history; do
    name=$(echo "$path" | tr '/' '_')
    for i in $(seq "$RUNS"); do
      measured "http-ka$name-$i" http --api http://127.0.0.1:8888 --path "$path" --n 300000 \
        --c 128 --keep-alive --json "$OUT/http-ka$name-$i.json"
      measured "http-new$name-$i" http --api http://127.0.0.1:8888 --path "$path" --n 60000 \
        --c 128 --source-ips 127.0.0.2-127.0.0.254 --json "$OUT/http-new$name-$i.json"
    done
  done
  stop_server
}

step_ramp() { # the seed's stage 2, up to the fd cap
  start_server
  bench ramp --api http://127.0.0.1:8888 --token "$TOKEN" --start 16 --max 16384 --max-c 4096 \
    --source-ips 127.0.0.2-127.0.0.254 --json "$OUT/ramp.json" --chart "$OUT/ramp.svg" >"$OUT/ramp.txt" 2>&1 || true
  stop_server
}

step_nodes() { # k nodes on one Redis, together past 100,000 subscribers
  local k=${NODES:-6}
  start_redis 6391
  local first=""
  for n in $(seq "$k"); do
    "$BIN/matchstream" serve --store redis://127.0.0.1:6391 --api 127.0.0.1:$((8900 + n)) \
      --stream-port $((9200 + 10 * n)) --token "$TOKEN" --no-pin >"$OUT/node-$n.log" 2>&1 &
    pids+=($!)
    [ -z "$first" ] && first=$((8900 + n))
  done
  sleep 3
  for i in $(seq "${NODE_RUNS:-1}"); do
    bench fanout --api "http://127.0.0.1:$first" --token "$TOKEN" --subscribers "${NODE_SUBS:-102000}" \
      --matches 1 --events 10 --rate 1 --c "${NODE_C:-2000}" --source-ips 127.0.0.2-127.0.0.254 \
      --json "$OUT/nodes-$i.json" >"$OUT/nodes-$i.txt" 2>&1 || true
  done
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(fanout latency hold burst http ramp nodes)
for s in "${steps[@]}"; do
  echo "== $s ($(date +%T))"
  "step_$s"
done
echo "== done ($(date +%T))"
