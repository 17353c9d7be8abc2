#!/usr/bin/env bash
# matchstream's HTTP reads against nginx serving the same bytes (issue 14).
#
# Starts a release node (memory store, loopback, ports from the kernel unless given) and plays
# the built-in sample match on it; starts nginx (2 workers, access_log off, its own prefix,
# config and temporary paths under a temporary directory, on loopback) whose root holds the
# node's own answers for /1/checkin, /1/matches and /1/match/<id>/history (checked: identical
# bodies, same Content-Type); then runs, for each round, path and mode, every load tool
# against the node and then nginx (A B A B ...): `matchstream-bench http`, wrk (keep-alive
# only: -t1 -cC) and ab (new connection per request only: -cC), those of wrk and ab that are
# installed. Prints a table of medians and of the median of the ratios matchstream/nginx taken
# within each round, and writes every run to a CSV.
#
# Installs nothing. Needs nginx (Debian package nginx-light), curl and jq; uses wrk (package wrk)
# and ab (package apache2-utils) if present. As root, the node, nginx and the load tools run
# under `nice -n -10`, and the script's scheduler autogroup gets nice -10 too (with
# kernel.sched_autogroup_enabled=1 nice acts only inside a session: other sessions' builds
# would otherwise keep an equal share of the CPU; bench/RESULTS.md, SSE against TCP).
#
# Usage: bench/scripts/http-vs-nginx.sh [options]
#   --seconds S     length of one run (default 5)
#   --rounds N      rounds, each every path x mode x tool x {matchstream, nginx} (default 3)
#   --c C           connections (default 128)
#   --bench-n N     requests of one matchstream-bench run instead of --seconds of them (by
#                   default the bench runs --seconds as wrk and ab do; a run given N also ends
#                   at 4 x --seconds + 10 s)
#   --tools LIST    comma-separated among bench,wrk,ab (default: all those installed)
#   --modes LIST    comma-separated among keep-alive,new-conn (default both)
#   --api-port P    the node's API port (default: the kernel picks)
#   --nginx-port P  nginx's port (default: a free one from 20000-29999)
#   --cores N       the node's cores (default: the node's default, every CPU)
#   --pin           pin both servers' threads to CPUs: the node as it does by default,
#                   nginx with `worker_cpu_affinity auto`. Without it neither is pinned
#                   (the node runs with --no-pin, nginx as it does by default): the load
#                   tools share the same CPUs, and a pinned server thread waits for its CPU
#                   while the other may be idle (bench/RESULTS.md, "HTTP reads against nginx").
#   --out FILE      the CSV of every run (default bench/http-vs-nginx-<date>.csv)
#   --table FILE    only print the table of a CSV this script wrote, and exit
#   --bin DIR       a directory holding matchstream and matchstream-bench (default: build
#                   them with cargo into ${CARGO_TARGET_DIR:-target}/release)
# Exit status: 0 done, 1 a run had errors or non-2xx answers, 2 could not run.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=5
ROUNDS=3
CONNS=128
BENCH_N=""
TOOLS=""
MODES="keep-alive,new-conn"
API_PORT=0
NGINX_PORT=""
CORES=""
PIN=0
OUT=""
BIN=""
TABLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --c) CONNS=$2; shift 2 ;;
    --bench-n) BENCH_N=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --api-port) API_PORT=$2; shift 2 ;;
    --nginx-port) NGINX_PORT=$2; shift 2 ;;
    --cores) CORES=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --table) TABLE=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "http-vs-nginx: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
# The table of a CSV: medians over rounds, and the median of the within-round ratios.
table() {
  awk -F, 'NR > 1 {
      k = $2 "," $3 "," $4
      if (!(k in seen)) { seen[k] = ++nk; key[nk] = k }
      v[k, $5, $1] = $6; err[k] += $7; rounds[$1] = 1
    }
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
      }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      printf "| %-5s | %-10s | %-22s | %11s | %11s | %17s | %6s |\n", "tool", "mode", "path",
        "matchstream", "nginx", "matchstream/nginx", "errors"
      printf "|-------|------------|------------------------|-------------|-------------|-------------------|--------|\n"
      for (i = 1; i <= nk; i++) {
        k = key[i]; n = 0
        for (r in rounds) {
          n++; m[n] = v[k, "matchstream", r] + 0; g[n] = v[k, "nginx", r] + 0
          q[n] = g[n] > 0 ? m[n] / g[n] : 0
        }
        split(k, f, ",")
        printf "| %-5s | %-10s | %-22s | %11.0f | %11.0f | %16.2fx | %6d |\n", f[1], f[2], f[3],
          median(m, n), median(g, n), median(q, n), err[k]
      }
    }' "$1"
}
if [ -n "$TABLE" ]; then
  table "$TABLE"
  exit 0
fi
for n in "$SECONDS_PER_RUN" "$ROUNDS" "$CONNS" "$API_PORT" "${BENCH_N:-1}"; do
  case "$n" in '' | *[!0-9]*) echo "http-vs-nginx: not a number: '$n'" >&2; exit 2 ;; esac
done
if [ "$SECONDS_PER_RUN" -lt 1 ] || [ "$ROUNDS" -lt 1 ] || [ "$CONNS" -lt 1 ]; then
  echo "http-vs-nginx: --seconds, --rounds and --c must be at least 1" >&2
  exit 2
fi

# What is missing, by Debian package; nothing is installed here.
missing=""
command -v nginx >/dev/null || missing="$missing nginx-light"
command -v curl >/dev/null || missing="$missing curl"
command -v jq >/dev/null || missing="$missing jq"
if [ -n "$missing" ]; then
  echo "http-vs-nginx: missing, install with: apt-get install$missing" >&2
  exit 2
fi
if [ -z "$TOOLS" ]; then
  TOOLS=bench
  if command -v wrk >/dev/null; then TOOLS="$TOOLS,wrk"; else
    echo "http-vs-nginx: wrk not found (apt-get install wrk): its runs are skipped" >&2
  fi
  if command -v ab >/dev/null; then TOOLS="$TOOLS,ab"; else
    echo "http-vs-nginx: ab not found (apt-get install apache2-utils): its runs are skipped" >&2
  fi
fi
for tool in ${TOOLS//,/ }; do
  case "$tool" in
    bench) ;;
    wrk) command -v wrk >/dev/null || { echo "http-vs-nginx: apt-get install wrk" >&2; exit 2; } ;;
    ab) command -v ab >/dev/null || { echo "http-vs-nginx: apt-get install apache2-utils" >&2; exit 2; } ;;
    *) echo "http-vs-nginx: unknown tool $tool (bench, wrk, ab)" >&2; exit 2 ;;
  esac
done

if [ -z "$BIN" ]; then
  cargo build --release -p matchstream-engine -p matchstream-bench >&2
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
for exe in matchstream matchstream-bench; do
  [ -x "$BIN/$exe" ] || { echo "http-vs-nginx: no $BIN/$exe" >&2; exit 2; }
done
OUT=${OUT:-bench/http-vs-nginx-$(date +%Y-%m-%d-%H%M).csv}

NICE=()
if [ "$(id -u)" = 0 ]; then
  NICE=(nice -n -10)
  if [ -w /proc/self/autogroup ]; then echo -10 > /proc/self/autogroup || true; fi
fi

tmp=$(mktemp -d)
# nginx's workers may run as another user: they must reach the root.
chmod 755 "$tmp"
node=""
nginx_pid=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$nginx_pid" ]; then
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if [ -n "$node" ]; then
    kill "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# The node.
TOKEN=hvn-$$-$RANDOM
cores=()
if [ -n "$CORES" ]; then cores=(--cores "$CORES"); fi
if [ "$PIN" = 0 ]; then cores+=(--no-pin); fi
"${NICE[@]}" "$BIN/matchstream" serve --store memory --api "127.0.0.1:$API_PORT" \
  --stream-port 0 --token "$TOKEN" "${cores[@]}" >"$tmp/node.log" 2>&1 &
node=$!
api=""
for _ in $(seq 300); do
  api=$(sed -n 's/.*listening api=\([^ ]*\).*/\1/p' "$tmp/node.log" | head -n 1)
  [ -n "$api" ] && break
  kill -0 "$node" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$api" ]; then
  echo "http-vs-nginx: the node did not start:" >&2
  cat "$tmp/node.log" >&2
  exit 2
fi
"$BIN/matchstream" replay sample --url "http://$api" --token "$TOKEN" --speed 0 \
  >"$tmp/replay.log" 2>&1 || { cat "$tmp/replay.log" >&2; exit 2; }
id=$(sed -n 's/^playing \([^ ]*\) on .*/\1/p' "$tmp/replay.log" | head -n 1)
[ -n "$id" ] || { echo "http-vs-nginx: no match id in:" >&2; cat "$tmp/replay.log" >&2; exit 2; }
PATHS=(/1/checkin /1/matches "/1/match/$id/history")

# nginx's root: the node's answers, byte for byte, at the same paths.
mkdir -p "$tmp/root/1/match/$id" "$tmp/temp" "$tmp/logs"
ctype=""
for path in "${PATHS[@]}"; do
  curl -sS -o "$tmp/root$path" -D "$tmp/head" "http://$api$path"
  this=$(sed -n 's/^[Cc]ontent-[Tt]ype: \(.*\)\r$/\1/p' "$tmp/head")
  if [ -n "$ctype" ] && [ "$this" != "$ctype" ]; then
    echo "http-vs-nginx: $path has Content-Type $this, not $ctype" >&2
    exit 2
  fi
  ctype=$this
done
cat >"$tmp/nginx.conf" <<EOF
worker_processes 2;
NGINX_AFFINITY
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  server_tokens off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  etag off;
  keepalive_requests 10000000;
  client_body_temp_path $tmp/temp/body;
  proxy_temp_path $tmp/temp/proxy;
  fastcgi_temp_path $tmp/temp/fastcgi;
  uwsgi_temp_path $tmp/temp/uwsgi;
  scgi_temp_path $tmp/temp/scgi;
  types { }
  default_type "$ctype";
  server {
    listen 127.0.0.1:NGINX_PORT reuseport backlog=4096;
    root $tmp/root;
    add_header Access-Control-Allow-Origin "*";
  }
}
EOF
ports=("$NGINX_PORT")
if [ -z "$NGINX_PORT" ]; then ports=(); for _ in 1 2 3 4 5; do ports+=($((20000 + RANDOM % 10000))); done; fi
nginx_url=""
for port in "${ports[@]}"; do
  affinity=""
  if [ "$PIN" = 1 ]; then affinity="worker_cpu_affinity auto;"; fi
  sed -e "s/NGINX_PORT/$port/" -e "s/^NGINX_AFFINITY$/$affinity/" "$tmp/nginx.conf" >"$tmp/nginx-$port.conf"
  "${NICE[@]}" nginx -p "$tmp/" -c "$tmp/nginx-$port.conf" -g "user $(id -un);" \
    >"$tmp/logs/nginx.out" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 50); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/1/checkin"; then
      nginx_url="http://127.0.0.1:$port"
      break
    fi
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$nginx_url" ] && break
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=""
done
if [ -z "$nginx_url" ]; then
  echo "http-vs-nginx: nginx did not start:" >&2
  cat "$tmp/logs/nginx.out" "$tmp/logs/error.log" >&2 2>/dev/null || true
  exit 2
fi
for path in "${PATHS[@]}"; do
  curl -sS -o "$tmp/got" -D "$tmp/head" "$nginx_url$path"
  this=$(sed -n 's/^[Cc]ontent-[Tt]ype: \(.*\)\r$/\1/p' "$tmp/head")
  if ! cmp -s "$tmp/got" "$tmp/root$path" || [ "$this" != "$ctype" ]; then
    echo "http-vs-nginx: nginx's $path differs from the node's" >&2
    exit 2
  fi
done
echo "http-vs-nginx: node pid $node at http://$api, nginx pid $nginx_pid at $nginx_url;" \
  "match $id; ${SECONDS_PER_RUN} s a run, $ROUNDS rounds, c=$CONNS, tools $TOOLS;" \
  "$([ "$PIN" = 1 ] && echo "both servers pinned" || echo "neither server pinned")" >&2

# One run: prints "req_per_s errors", errors counting socket errors and non-2xx answers.
# Every tool is bounded in time: wrk by -d, ab by -t, the bench by --time-limit.
run_one() {
  local tool=$1 mode=$2 base=$3 path=$4 out=$tmp/run.out
  case "$tool" in
    bench)
      local extra=(--keep-alive) length=(--duration "$SECONDS_PER_RUN")
      if [ "$mode" = new-conn ]; then
        extra=(--source-ips 127.0.0.2-127.0.0.254)
      fi
      if [ -n "$BENCH_N" ]; then length=(--n "$BENCH_N"); fi
      "${NICE[@]}" "$BIN/matchstream-bench" http --api "$base" --path "$path" \
        "${length[@]}" --c "$CONNS" "${extra[@]}" --time-limit $((SECONDS_PER_RUN * 4 + 10)) \
        --quiet --json "$tmp/run.json" >"$out" 2>&1 || true
      if [ -s "$tmp/run.json" ]; then
        jq -r '.report | "\(.requests_per_second) \(.error_total + .non_2xx)"' "$tmp/run.json"
      else
        echo "0 1"
      fi
      rm -f "$tmp/run.json"
      ;;
    wrk)
      timeout $((SECONDS_PER_RUN + 30)) "${NICE[@]}" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" \
        "$base$path" >"$out" 2>&1 || true
      awk '/^Requests\/sec:/ { rps = $2 }
           /Socket errors:/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
           /Non-2xx/ { e += $NF }
           END { printf "%s %d\n", (rps == "" ? 0 : rps), (rps == "" ? 1 : e) }' "$out"
      ;;
    ab)
      timeout $((SECONDS_PER_RUN + 30)) "${NICE[@]}" ab -q -r -c "$CONNS" -t "$SECONDS_PER_RUN" \
        -n $((SECONDS_PER_RUN * 40000)) "$base$path" >"$out" 2>&1 || true
      awk '/^Requests per second:/ { rps = $4 }
           /^Failed requests:/ { e += $3 }
           /^Non-2xx responses:/ { e += $3 }
           END { printf "%s %d\n", (rps == "" ? 0 : rps), (rps == "" ? 1 : e) }' "$out"
      ;;
  esac
}

echo "round,tool,mode,path,server,req_per_s,errors,load1" >"$OUT"
failed=0
for round in $(seq "$ROUNDS"); do
  for mode in ${MODES//,/ }; do
    for tool in ${TOOLS//,/ }; do
      # wrk always keeps connections alive; ab is run without -k only.
      if [ "$tool" = wrk ] && [ "$mode" != keep-alive ]; then continue; fi
      if [ "$tool" = ab ] && [ "$mode" != new-conn ]; then continue; fi
      for path in "${PATHS[@]}"; do
        for server in matchstream nginx; do
          base="http://$api"
          if [ "$server" = nginx ]; then base=$nginx_url; fi
          read -r rps errors < <(run_one "$tool" "$mode" "$base" "$path")
          load=$(cut -d' ' -f1 /proc/loadavg)
          label=$path
          case "$path" in /1/match/*) label=/1/match/ID/history ;; esac
          echo "$round,$tool,$mode,$label,$server,$rps,$errors,$load" >>"$OUT"
          printf '  round %s %-5s %-10s %-22s %-11s %10.0f req/s  errors %s  load %s\n' \
            "$round" "$tool" "$mode" "$label" "$server" "$rps" "$errors" "$load" >&2
          if [ "$errors" != 0 ]; then failed=1; fi
        done
      done
    done
  done
done

echo
echo "matchstream vs nginx: $ROUNDS rounds of ${SECONDS_PER_RUN} s, c=$CONNS; medians (req/s)"
table "$OUT"
echo
echo "every run: $OUT; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$failed"
