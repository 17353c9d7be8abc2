#!/usr/bin/env bash
# The seed's stage 5 on one machine (issue 15): N subscribers (default 1,000,000), every one
# receiving every event of a live match, held by several nodes on one Redis, all on this host.
#
# What it does, in order, stopping everything it started (by PID) and restoring what it
# changed on exit, Ctrl-C or failure:
#   1. applies tuning/sysctl.conf's net.* keys (tuning/apply.sh --only net., state in a
#      temporary file; tuning/revert.sh on exit) unless --no-tuning;
#   2. starts redis-server on a free port, then K nodes (`serve --store redis://... --cores 1
#      --no-pin`, each under an open-files limit of --files, default the hard limit), K = N /
#      --per-node rounded up (default 19,000 subscribers a node: each subscriber is one
#      descriptor of its node);
#   3. runs `matchstream-bench fanout` against the first node: N subscribers connect through
#      checkin (which spreads them over every node of the cluster), spread over the bench's
#      worker processes (each under its own limit) and the source addresses 127.0.0.2-254;
#      one match of --events events (default 20) at --rate events/s (default 0.5);
#   4. samples every --sample seconds (default 2) the cluster's subscribers (any node's
#      /1/stats cluster_totals), the kernel's sockets and socket memory (/proc/net/sockstat)
#      and the free memory (/proc/meminfo) into subscribers.csv, and draws subscribers.svg;
#   5. prints: connect time, subscribers per node, deliveries expected and received, lost,
#      duplicated, out of order, latency percentiles, RSS per node, kernel socket memory,
#      and what limited the run (the bench's failures by kind, the kernel's counters).
#
# Usage: bench/scripts/million.sh [N] [options]
#   --per-node P   subscribers a node is planned for (default 19000)
#   --nodes K      nodes (default: N / P rounded up)
#   --events E     events of the match (default 20)
#   --rate R       events per second (default 0.5)
#   --c C          connection attempts in flight (default 2000)
#   --files F      each node's open-files limit (default: the hard limit)
#   --timeout S    seconds the bench's run may take (default: 600 + N / 2000)
#   --out DIR      where the report, CSV, chart and logs go (default bench/million-<N>-<date>)
#   --bin DIR      directory of matchstream and matchstream-bench (default: cargo build
#                  --release into ${CARGO_TARGET_DIR:-target}/release)
#   --no-tuning    change no sysctl (for a small N, and the script's own test)
# Exit status: the bench's (0 every subscriber got every event once and in order), 2 could not
# run. Needs root for the tuning (not with --no-tuning), redis-server, curl and jq.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=1000000
PER_NODE=19000
NODES=""
EVENTS=20
RATE=0.5
CONNS=2000
FILES=""
TIMEOUT=""
OUT=""
BIN=""
TUNING=1
SAMPLE=2
if [[ ${1:-} =~ ^[0-9]+$ ]]; then N=$1; shift; fi
while [ $# -gt 0 ]; do
  case $1 in
    --per-node) PER_NODE=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --c) CONNS=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --no-tuning) TUNING=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "million.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
for tool in redis-server curl jq; do
  command -v "$tool" >/dev/null || { echo "million.sh: $tool is not installed" >&2; exit 2; }
done
[ -n "$NODES" ] || NODES=$(( (N + PER_NODE - 1) / PER_NODE ))
[ -n "$TIMEOUT" ] || TIMEOUT=$(( 600 + N / 2000 ))
[ -n "$FILES" ] || FILES=$(ulimit -Hn)
[ -n "$OUT" ] || OUT="bench/million-$N-$(date -u +%Y%m%d-%H%M)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -z "$BIN" ]; then
  cargo build --release -q -p matchstream-engine -p matchstream-bench
  BIN="${CARGO_TARGET_DIR:-target}/release"
fi
BIN=$(cd "$BIN" && pwd)
if [ "$TUNING" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "million.sh: the tuning needs root (or --no-tuning)" >&2
  exit 2
fi

say() { echo "million: $*" >&2; }
pids=()
state="$OUT/tuning.state"
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$TUNING" = 1 ] && [ -f "$state" ]; then
    if tuning/revert.sh --state "$state" >"$OUT/revert.log" 2>&1; then
      say "sysctls restored (revert.log)"
    else
      say "REVERT FAILED: see $OUT/revert.log"
    fi
  fi
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'exit 143' TERM

# A port nothing listens on, from the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A /proc/net/sockstat TCP field.
sockstat() { awk -v k="$1" '$1=="TCP:" { for (i=2;i<NF;i++) if ($i==k) print $(i+1) }' /proc/net/sockstat; }
meminfo() { awk -v k="$1:" '$1==k {print $2}' /proc/meminfo; }

say "N=$N subscribers over $NODES nodes (planned $PER_NODE a node, limit $FILES open files each);" \
  "$EVENTS events at $RATE/s; out $OUT"
mem_before=$(meminfo MemAvailable)
slab_before=$(meminfo Slab)
sock_mem_before=$(sockstat mem)

if [ "$TUNING" = 1 ]; then
  tuning/apply.sh --only net. --state "$state" >"$OUT/apply.log" 2>&1 \
    || { say "tuning/apply.sh failed: see $OUT/apply.log"; exit 2; }
  say "net.* sysctls applied (apply.log), reverted on exit"
fi

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --protected-mode no --save '' \
  --appendonly no --maxclients 10000 >"$OUT/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
TOKEN="million-$$-$RANDOM"
apis=()
node_pids=()
for k in $(seq 1 "$NODES"); do
  ( ulimit -n "$FILES"; exec "$BIN/matchstream" serve --store "redis://127.0.0.1:$redis_port" \
      --api 127.0.0.1:0 --stream-port 0 --cores 1 --no-pin --advertise 127.0.0.1 \
      --token "$TOKEN" ) >"$OUT/node-$k.log" 2>&1 &
  pids+=($!)
  node_pids+=($!)
done
for k in $(seq 1 "$NODES"); do
  api=""
  for _ in $(seq 300); do
    api=$(sed -n 's/.*listening api=\([^ ]*\).*/\1/p' "$OUT/node-$k.log" | head -n 1)
    [ -n "$api" ] && break
    sleep 0.1
  done
  [ -n "$api" ] || { say "node $k did not start:"; cat "$OUT/node-$k.log" >&2; exit 2; }
  apis+=("$api")
done
first="http://${apis[0]}"
for _ in $(seq 100); do
  n=$(curl -sf "$first/1/stats" | jq '.cluster_totals.nodes' 2>/dev/null || echo 0)
  [ "$n" = "$NODES" ] && break
  sleep 0.2
done
say "redis on $redis_port (pid ${pids[0]}); $NODES nodes up (pids ${node_pids[*]}; first at" \
  "$first), $n in the cluster's heartbeats"

# The sampler: the cluster's subscribers, the kernel's sockets and memory.
echo "time_s,subscribers,tcp_inuse,tcp_mem_pages,mem_available_kib,slab_kib,nodes_rss_kib" >"$OUT/subscribers.csv"
(
  t0=$(date +%s.%N)
  while :; do
    stats=$(curl -s -m 2 "$first/1/stats" || true)
    subs=$(jq '.cluster_totals.subscribers' <<<"$stats" 2>/dev/null || echo "")
    # The totals at the most subscribers seen: each node's share at the peak.
    if [ -n "$subs" ] && [ "$subs" -gt "${most:-0}" ]; then
      most=$subs
      jq '.cluster_totals' <<<"$stats" >"$OUT/peak-totals.json" 2>/dev/null || true
    fi
    now=$(date +%s.%N)
    rss=0
    for pid in "${node_pids[@]}"; do
      r=$(awk '$1=="VmRSS:" {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      rss=$((rss + ${r:-0}))
    done
    printf '%.1f,%s,%s,%s,%s,%s,%s\n' "$(echo "$now - $t0" | bc)" "${subs:-}" "$(sockstat inuse)" \
      "$(sockstat mem)" "$(meminfo MemAvailable)" "$(meminfo Slab)" "$rss" >>"$OUT/subscribers.csv"
    sleep "$SAMPLE"
  done
) &
pids+=($!)

started=$(date +%s)
set +e
"$BIN/matchstream-bench" fanout --api "$first" --token "$TOKEN" --subscribers "$N" \
  --matches 1 --events "$EVENTS" --rate "$RATE" --c "$CONNS" \
  --source-ips 127.0.0.2-127.0.0.254 --timeout "$TIMEOUT" --json "$OUT/fanout.json" \
  >"$OUT/bench.txt" 2>"$OUT/bench.err"
status=$?
set -e
say "bench done in $(( $(date +%s) - started )) s, exit status $status (bench.txt, fanout.json)"

# The report.
{
  echo "# $N subscribers on one machine: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(( $(meminfo MemTotal) / 1024 / 1024 )) GiB"
  echo
  echo "nodes: $NODES (1 core each, open-files limit $FILES); redis: 127.0.0.1:$redis_port"
  if [ -s "$OUT/fanout.json" ]; then
    jq -r '.report.systems[0].runs[0] as $r |
      "connected: \($r.connected) of \(.report.subscribers) (failed \($r.failed): \($r.failures))",
      "connect phase: \($r.connect_seconds) s",
      "deliveries: \($r.delivered) of \($r.expected) expected; lost \($r.lost), duplicated \($r.duplicated), out of order \($r.out_of_order)",
      "latency ms: p50 \($r.latency.p50_ms), p99 \($r.latency.p99_ms), p99.9 \($r.latency.p99_9_ms), max \($r.latency.max_ms)",
      "error lines: \($r.error_lines)",
      "bench: \($r.bench.worker_processes) worker processes, \($r.bench.rss_bytes_per_connection) B of its RSS per connection",
      "problems: \(.report.problems)"' "$OUT/fanout.json"
  else
    echo "no report: see bench.err"
  fi
  echo
  echo "per node at the peak (cluster_totals.by_node):"
  if [ -s "$OUT/peak-totals.json" ]; then
    jq -r '.by_node | sort_by(.node) | .[] | "  \(.node): \(.subscribers) subscribers"' \
      "$OUT/peak-totals.json"
    jq -r '.by_node | map(.subscribers) | "  min \(min), max \(max), mean \(add / length | floor)"' \
      "$OUT/peak-totals.json"
  fi
  # After the run every subscriber hangs up at once: the nodes answer once they have closed
  # their sockets (bounded wait).
  for _ in $(seq 120); do
    left=$(curl -s -m 2 "$first/1/stats" | jq '.cluster_totals.subscribers' 2>/dev/null || echo "")
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  echo "per node after the run (sessions: subscribers it accepted):"
  for k in "${!apis[@]}"; do
    line=$(curl -s -m 10 "http://${apis[$k]}/1/stats" \
      | jq -r --arg k "$((k + 1))" '"  node \($k) \(.node_id): rss \(.process.rss_bytes / 1048576 | floor) MiB, open files \(.process.open_files)/\(.process.open_files_limit), sessions \(.cores | map(.sessions_total) | add)"' \
        2>/dev/null || true)
    echo "${line:-  node $((k + 1)): no answer}"
  done
  peak=$(awk -F, 'NR>1 && $2!="" && $2>m {m=$2} END {print m+0}' "$OUT/subscribers.csv")
  peak_mem=$(awk -F, 'NR>1 && $4>m {m=$4} END {print m+0}' "$OUT/subscribers.csv")
  min_avail=$(awk -F, 'NR>1 && (m=="" || $5<m) {m=$5} END {print m+0}' "$OUT/subscribers.csv")
  max_slab=$(awk -F, 'NR>1 && $6>m {m=$6} END {print m+0}' "$OUT/subscribers.csv")
  max_rss=$(awk -F, 'NR>1 && $7>m {m=$7} END {print m+0}' "$OUT/subscribers.csv")
  echo
  # (one node's cluster_totals: the other nodes' figures are up to a heartbeat old)
  echo "peak subscribers (cluster_totals): $peak"
  echo "nodes' RSS at most: $(( max_rss / 1024 )) MiB together, $(( max_rss / 1024 / NODES )) MiB a node on average"
  if [ "$peak" -gt 0 ]; then
    echo "  = $(( max_rss * 1024 / peak )) B of node memory per subscriber"
  fi
  echo "kernel socket buffers (sockstat mem): $(( (peak_mem - sock_mem_before) * 4 / 1024 )) MiB at most"
  echo "kernel slab grew by $(( (max_slab - slab_before) / 1024 )) MiB; available memory fell by $(( (mem_before - min_avail) / 1024 )) MiB at most"
  if [ "$peak" -gt 0 ] && [ "$mem_before" -gt "$min_avail" ]; then
    echo "  = $(( (mem_before - min_avail) * 1024 / peak )) B of the machine's memory per subscriber (both ends, every process and the kernel)"
  fi
  echo "open files now: $(cut -f1 /proc/sys/fs/file-nr) of fs.file-max $(cat /proc/sys/fs/file-max)"
  echo "kernel counters (/proc/net/netstat, since boot):"
  awk '/^TcpExt:/ { if (!h) { split($0, n); h=1 } else { for (i=2;i<=NF;i++) v[n[i]]=$i } }
       END { split("ListenOverflows ListenDrops TCPMemoryPressures TCPAbortOnMemory TCPBacklogDrop TCPReqQFullDrop", k, " ");
             for (i=1;i<=6;i++) printf "  %s %s\n", k[i], v[k[i]] }' /proc/net/netstat
} | tee "$OUT/report.txt"

# The chart: subscribers over time.
awk -F, 'NR>1 && $2!="" { t[++n]=$1; s[n]=$2; if ($1>tm) tm=$1; if ($2>sm) sm=$2 }
  END {
    if (n == 0 || tm == 0 || sm == 0) exit
    w=640; h=320; l=70; b=40
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"%d\" y=\"16\">subscribers connected (cluster_totals), peak %d</text>\n", l, sm
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", l, h-b, w-10, h-b
    printf "<line x1=\"%d\" y1=\"30\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", l, l, h-b
    printf "<text x=\"%d\" y=\"%d\">%.0f s</text>\n", w-60, h-b+20, tm
    printf "<text x=\"4\" y=\"36\">%d</text>\n", sm
    printf "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\""
    for (i=1;i<=n;i++) printf "%.1f,%.1f ", l + (w-10-l)*t[i]/tm, (h-b) - (h-b-30)*s[i]/sm
    printf "\"/>\n</svg>\n"
  }' "$OUT/subscribers.csv" >"$OUT/subscribers.svg"
[ -s "$OUT/subscribers.svg" ] || rm -f "$OUT/subscribers.svg"
say "report: $OUT/report.txt; chart: $OUT/subscribers.svg"
exit "$status"
