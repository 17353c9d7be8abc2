#!/usr/bin/env bash
# check.sh — read-only report for ops: each setting of a tuning profile (current,
# recommended, OK/LOW), then the capacity this host allows (connections per process,
# outgoing connections per destination, kernel socket memory, accept-queue depth) and,
# with --target N, whether it can hold N subscribers and what is short: the service's
# open-files limit, memory, orphans, TIME-WAIT buckets, connection tracking. Changes
# nothing; needs no root.
set -euo pipefail

MS_PROG=check.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: check.sh [--profile server|loadgen] [--conf FILE] [--only LIST] [--target N]
                [--pid PID | --unit FILE | --service NAME]

Prints a table (setting, current, recommended, status), then this host's capacity.
Status: OK (meets the recommendation), LOW (below it), HIGH (a timer above our maximum),
DIFF (a switch set differently), SKIP (absent in this kernel or namespace).

  --profile P   server (default) or loadgen [env MATCHSTREAM_TUNING_PROFILE]
  --conf FILE   use this sysctl.d-style file instead of the profile's
  --only LIST   limit the table to some keys: prefixes, netns or global, as in apply.sh
                [env MATCHSTREAM_TUNING_ONLY]
  --target N    also check that this host can hold N subscribers (server) or N client
                connections (loadgen), and name every limit that is short
  --pid PID     take the open-files and memlock limits from this running process (e.g.
                \$(pidof matchstream))
  --unit FILE   take LimitNOFILE from this unit file (and FILE.d/*.conf)
  --service N   the systemd service to ask (default matchstream)

Open-files limit of the server profile (LimitNOFILE), first found: --pid; --unit; \`systemctl show\` of
the service when systemd knows it; its unit file in /etc/systemd/system, /usr/lib/systemd/
system or /lib/systemd/system; this kit's matchstream.service. Never the shell's: the
service does not run with it. LimitMEMLOCK the same way. The loadgen profile uses this shell's limits.

Server ports checked against the local port range come from MATCHSTREAM_API (default
0.0.0.0:8888), MATCHSTREAM_STREAM_PORT (9100) and MATCHSTREAM_CORES (all CPUs), as the
server reads them. Exit status: 0 when every setting is OK and the target (if any) fits,
1 otherwise, 2 on a usage error.
EOF
}

profile=${MATCHSTREAM_TUNING_PROFILE:-server}
only=${MATCHSTREAM_TUNING_ONLY:-}
conf=
target=
pid=
unit=
service=matchstream
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || ms_die "--profile needs a value"; profile=$2; shift 2 ;;
    --conf) [ $# -ge 2 ] || ms_die "--conf needs a file"; conf=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || ms_die "--only needs a list"; only=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || ms_die "--target needs a number"; target=$2; shift 2 ;;
    --pid) [ $# -ge 2 ] || ms_die "--pid needs a process id"; pid=$2; shift 2 ;;
    --unit) [ $# -ge 2 ] || ms_die "--unit needs a file"; unit=$2; shift 2 ;;
    --service) [ $# -ge 2 ] || ms_die "--service needs a name"; service=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; ms_die "unknown argument '$1'" ;;
  esac
done
[ -n "$conf" ] || conf=$(ms_profile_conf "$profile")
ms_check_only "$only"
[ -z "$target" ] || ms_is_num "$target" || ms_die "--target: '$target' is not a number"
[ -z "$pid" ] || [ -r "/proc/$pid/limits" ] || ms_die "--pid: no readable /proc/$pid/limits"
[ -z "$unit" ] || [ -r "$unit" ] || ms_die "--unit: cannot read $unit"

page=$(ms_page_size)
mem=$(ms_mem_bytes)
printf 'matchstream tuning check: profile %s (%s)\n' "$profile" "$conf"
printf 'host: %s, kernel %s, %s CPUs, %s RAM, page %s B\n' "$(uname -n)" "$(uname -r)" \
  "$(nproc)" "$(ms_human "$mem")" "$page"
[ -z "$only" ] || printf 'only: %s\n' "$only"
ms_row SETTING CURRENT RECOMMENDED STATUS

ok=0 bad=0 skipped=0
notes=()
mapfile -t settings < <(ms_conf_read "$conf")
for line in "${settings[@]}"; do
  key=${line%%$'\t'*}
  value=${line#*$'\t'}
  ms_selected "$key" "$only" || continue
  if ! cur=$(ms_read "$key"); then
    ms_row "$key" - "$value" SKIP
    case "$key" in
      *conntrack*) notes+=("$key: nf_conntrack is not loaded here, nothing to tune") ;;
      *) notes+=("$key: not present in this kernel or network namespace") ;;
    esac
    skipped=$((skipped + 1))
    continue
  fi
  ms_recommend "$key" "$value"
  rec=$MS_REC
  [ -z "$MS_REC_NOTE" ] || notes+=("$key: file says $value; $MS_REC_NOTE")
  mode=$(ms_mode "$key")
  if ms_satisfied "$mode" "$cur" "$rec"; then
    status=OK
    ok=$((ok + 1))
  else
    case "$mode" in atmost) status=HIGH ;; exact) status=DIFF ;; *) status=LOW ;; esac
    bad=$((bad + 1))
    [ -w "$(ms_path "$key")" ] || [ "$(id -u)" -ne 0 ] ||
      notes+=("$key: read-only here; machine-wide, set it on the host, not in a container")
  fi
  ms_row "$key" "${cur:-(none)}" "$rec" "$status"
done
for n in "${notes[@]}"; do printf '  note: %s\n' "$n"; done
if [ "$bad" -gt 0 ]; then
  printf 'settings: %d OK, %d not OK, %d skipped (fix: sudo tuning/apply.sh --profile %s%s)\n' \
    "$ok" "$bad" "$skipped" "$profile" "${only:+ --only $only}"
else
  printf 'settings: %d OK, %d skipped\n' "$ok" "$skipped"
fi

# --- Capacity ----------------------------------------------------------------------------

# A key's value, or "" when absent here.
val() { ms_read "$1" 2>/dev/null || true; }

# The soft and hard limits ("Max open files" / "Max locked memory") of --pid or this shell
# (the load generator's: it runs from a shell).
limit_of() {
  local what=$1 soft hard
  if [ -n "$pid" ]; then
    read -r soft hard < <(awk -v w="$what" 'index($0, w) == 1 {
      n = split(substr($0, length(w) + 1), f, " "); print f[1], f[2] }' "/proc/$pid/limits")
  elif [ "$what" = "Max open files" ]; then
    soft=$(ulimit -Sn) hard=$(ulimit -Hn)
  else
    soft=$(ulimit -Sl) hard=$(ulimit -Hl)
    [ "$soft" = unlimited ] || soft=$((soft * 1024))
    [ "$hard" = unlimited ] || hard=$((hard * 1024))
  fi
  printf '%s %s\n' "$soft" "$hard"
}

# A limit of the server (LimitNOFILE or LimitMEMLOCK) as "soft hard source": the service's,
# not this shell's (see the usage), or "unset unset source" when nothing sets it. systemd
# spells no limit "infinity".
service_limit() {
  local key=$1 sc=${MATCHSTREAM_TUNING_SYSTEMCTL:-systemctl} f out soft='' hard=''
  if [ -n "$unit" ]; then
    out=$(ms_unit_limit "$unit" "$key") || out="unset unset"
    printf '%s unit file %s\n' "$out" "$unit"
    return
  fi
  if command -v "$sc" >/dev/null 2>&1 &&
    [ "$("$sc" show -p LoadState --value "$service" 2>/dev/null)" = loaded ]; then
    hard=$("$sc" show -p "$key" --value "$service" 2>/dev/null || true)
    soft=$("$sc" show -p "${key}Soft" --value "$service" 2>/dev/null || true)
    if [ -n "$hard" ]; then
      printf '%s %s systemctl show %s\n' "${soft:-$hard}" "$hard" "$service"
      return
    fi
  fi
  for f in "/etc/systemd/system/$service.service" "/usr/lib/systemd/system/$service.service" \
    "/lib/systemd/system/$service.service"; do
    if [ -r "$f" ]; then
      out=$(ms_unit_limit "$f" "$key") || out="unset unset"
      printf '%s unit file %s\n' "$out" "$f"
      return
    fi
  done
  out=$(ms_unit_limit "$MS_TUNING_DIR/matchstream.service" "$key") || out="unset unset"
  printf '%s this kit'"'"'s unit %s (service %s not installed)\n' "$out" "$MS_TUNING_DIR/matchstream.service" "$service"
}

warns=0
warn() {
  printf '  WARN %s\n' "$*"
  warns=$((warns + 1))
}

nr_open=$(val fs.nr_open)
if [ "$profile" = server ] && [ -z "$pid" ]; then
  read -r nofile_soft nofile_hard nofile_from < <(service_limit LimitNOFILE)
  # Unset: systemd's default (soft 1024, hard 524288); infinity: capped at fs.nr_open.
  case "$nofile_hard" in unset) nofile_soft=1024 nofile_hard=524288 nofile_from="$nofile_from; systemd's default" ;; esac
  case "$nofile_hard" in infinity) nofile_hard=unlimited ;; esac
  case "$nofile_soft" in infinity) nofile_soft=unlimited ;; esac
else
  read -r nofile_soft nofile_hard < <(limit_of "Max open files")
  if [ -n "$pid" ]; then nofile_from="process $pid"; else nofile_from="this shell"; fi
fi
printf '\ncapacity of this host (limits of %s):\n' "$nofile_from"
nr_open=$(val fs.nr_open)
file_max=$(val fs.file-max)
if [ "$nofile_hard" = unlimited ]; then per_proc=${nr_open:-1048576}; else per_proc=$nofile_hard; fi
per_proc_subs=$((per_proc > MS_RESERVED_FDS ? per_proc - MS_RESERVED_FDS : 0))
if [ "$profile" = loadgen ]; then
  printf '  %-26s soft %s, hard %s -> about %s connections per bench worker process\n' \
    "open files per process" "$nofile_soft" "$nofile_hard" "$per_proc_subs"
else
  printf '  %-26s soft %s, hard %s -> about %s subscribers per matchstream process\n' \
    "open files per process" "$nofile_soft" "$nofile_hard" "$per_proc_subs"
  printf '  %-26s (matchstream raises its soft limit to the hard one at start; %s are kept for listeners and files)\n' "" "$MS_RESERVED_FDS"
fi
printf '  %-26s fs.file-max %s for all processes; fs.nr_open %s caps any one open-files limit\n' \
  "open files, system" "${file_max:-?}" "${nr_open:-?}"

read -r -a pr <<<"$(val net.ipv4.ip_local_port_range)"
reserved=$(val net.ipv4.ip_local_reserved_ports)
if [ ${#pr[@]} -eq 2 ]; then
  ports=$((pr[1] - pr[0] + 1))
  printf '  %-26s ip_local_port_range %s-%s: %s connections per (source address, destination address:port)\n' \
    "outgoing per destination" "${pr[0]}" "${pr[1]}" "$ports"
else
  ports=
  printf '  %-26s ip_local_port_range not readable here\n' "outgoing per destination"
fi

read -r -a tm <<<"$(val net.ipv4.tcp_mem)"
if [ ${#tm[@]} -eq 3 ]; then
  press=$((tm[1] * page)) hardmem=$((tm[2] * page))
  printf '  %-26s tcp_mem %s pages x %s B: pressure at %s, hard limit %s -> %s %s at %s each in a fan-out burst\n' \
    "kernel TCP memory" "${tm[*]}" "$page" "$(ms_human "$press")" "$(ms_human "$hardmem")" \
    "$((press / MS_TCP_BYTES_PER_SUBSCRIBER))" "$([ "$profile" = server ] && echo subscribers || echo connections)" \
    "$(ms_human "$MS_TCP_BYTES_PER_SUBSCRIBER")"
else
  press='' hardmem=''
  printf '  %-26s tcp_mem not visible here (machine-wide; check on the host)\n' "kernel TCP memory"
fi

somaxconn=$(val net.core.somaxconn)
synq=$(val net.ipv4.tcp_max_syn_backlog)
cookies=$(val net.ipv4.tcp_syncookies)
backlog=${MATCHSTREAM_BACKLOG:-65535}
if [ -n "$somaxconn" ] && [ "$profile" = server ]; then
  queue=$somaxconn
  ms_num_ge "$backlog" "$somaxconn" || queue=$backlog
  printf '  %-26s somaxconn %s, backlog %s: at most %s connections wait to be accepted per listener\n' \
    "accept queue" "$somaxconn" "$backlog" "$queue"
  if [ "${cookies:-1}" = 0 ]; then
    printf '  %-26s syncookies off: at most %s half-open handshakes per listener, and SYNs are dropped once the queue is within a quarter of tcp_max_syn_backlog %s\n' \
      "SYN queue" "$queue" "${synq:-?}"
  else
    printf '  %-26s syncookies on (%s): %s half-open handshakes per listener (its backlog), then SYN cookies, no drops; tcp_max_syn_backlog %s is not used\n' \
      "SYN queue" "${cookies:-?}" "$queue" "${synq:-?}"
  fi
  if ! ms_num_ge "$somaxconn" "$backlog"; then
    warn "somaxconn $somaxconn is below matchstream's backlog $backlog: the kernel cuts every accept queue to $somaxconn"
  fi
fi

orphans=$(val net.ipv4.tcp_max_orphans)
tw_max=$(val net.ipv4.tcp_max_tw_buckets)
if [ "$profile" = server ]; then
  printf '  %-26s tcp_max_orphans %s (closed, unacknowledged sockets; past it the kernel resets them), tcp_max_tw_buckets %s\n' \
    "closing connections" "${orphans:-not visible here}" "${tw_max:-?}"
fi

ct_max=$(val net.netfilter.nf_conntrack_max)
ct_buckets=$(val net.netfilter.nf_conntrack_buckets)
if [ -n "$ct_max" ]; then
  printf '  %-26s nf_conntrack_max %s on %s buckets (in use now: %s)\n' "connection tracking" "$ct_max" \
    "${ct_buckets:-?}" "$(val net.netfilter.nf_conntrack_count)"
  # Every connection is two entries; a full table's chains are 2 x max / buckets long.
  if ms_is_num "$ct_buckets" && [ "$ct_buckets" -gt 0 ] && [ "$ct_max" -gt $((4 * ct_buckets)) ]; then
    warn "nf_conntrack_max $ct_max on $ct_buckets buckets: $((2 * ct_max / ct_buckets)) entries per bucket when full, walked by every packet; set nf_conntrack_buckets to at least max / 4 ($((ct_max / 4)); module option hashsize), or NOTRACK the stream ports (README)"
  fi
else
  printf '  %-26s nf_conntrack not loaded: no limit\n' "connection tracking"
fi

# matchstream itself: locked memory and io_uring (the bench needs neither).
if [ "$profile" = server ]; then
  # A byte limit for people: "unlimited" or a size.
  limit_human() { if [ "$1" = unlimited ]; then echo unlimited; else ms_human "$1"; fi; }
  if [ -z "$pid" ]; then
    read -r ml_soft ml_hard _ < <(service_limit LimitMEMLOCK)
    # Unset: systemd's default, 8 MiB.
    case "$ml_hard" in unset) ml_soft=8M ml_hard=8M ;; esac
    ml_soft=$(ms_unit_bytes "$ml_soft") ml_hard=$(ms_unit_bytes "$ml_hard")
  else
    read -r ml_soft ml_hard < <(limit_of "Max locked memory")
  fi
  printf '  %-26s soft %s, hard %s (io_uring registered buffers; rings too before Linux 5.12)\n' \
    "locked memory" "$(limit_human "$ml_soft")" "$(limit_human "$ml_hard")"
  # glommio registers 10 MiB of I/O buffers in each of its 3 rings per executor, and the kernel
  # counts every registration against the user's locked-memory limit.
  ml_need=$((30 * 1024 * 1024 * $(nproc)))
  if [ "$ml_soft" != unlimited ] && [ "$ml_soft" -lt 524288 ]; then
    warn "locked-memory limit below 512 KiB: glommio refuses to start (set LimitMEMLOCK, see matchstream.service)"
  elif [ "$ml_soft" != unlimited ] && [ "$ml_soft" -lt "$ml_need" ]; then
    warn "locked-memory limit $(ms_human "$ml_soft") is below $(ms_human "$ml_need") (30 MiB x $(nproc) cores): glommio runs without registered buffers (log: \"registering buffers ... Skipping\"); LimitMEMLOCK=infinity avoids it"
  fi

  iou=$(val kernel.io_uring_disabled)
  case "$iou" in
    '' | 0) printf '  %-26s allowed%s\n' "io_uring" "$([ -z "$iou" ] && echo ' (no kernel.io_uring_disabled switch in this kernel)')" ;;
    1) printf '  %-26s restricted (kernel.io_uring_disabled=1): only root/CAP_SYS_ADMIN or group kernel.io_uring_group=%s\n' "io_uring" "$(val kernel.io_uring_group)" ;;
    *) warn "io_uring is disabled (kernel.io_uring_disabled=$iou): matchstream cannot start on this host" ;;
  esac
fi

if [ "$(val net.ipv4.tcp_tw_recycle)" = 1 ]; then
  warn "net.ipv4.tcp_tw_recycle=1 drops connections from clients behind NAT: set it to 0"
fi

if [ "$profile" = server ]; then
  api_port=${MATCHSTREAM_API:-0.0.0.0:8888}
  api_port=${api_port##*:}
  stream=${MATCHSTREAM_STREAM_PORT:-9100}
  cores=${MATCHSTREAM_CORES:-0}
  [ "$cores" != 0 ] || cores=$(nproc)
  exposed=()
  if [ ${#pr[@]} -eq 2 ]; then
    for p in "$api_port" $(seq "$stream" $((stream + cores - 1))); do
      [ "$p" != 0 ] || continue
      if [ "$p" -ge "${pr[0]}" ] && [ "$p" -le "${pr[1]}" ] && ! ms_ports_cover "$reserved" "$p"; then
        exposed+=("$p")
      fi
    done
  fi
  printf '  %-26s API %s, stream %s-%s (%s cores); reserved: %s\n' "server ports" "$api_port" \
    "$stream" $((stream + cores - 1)) "$cores" "${reserved:-none}"
  if [ ${#exposed[@]} -gt 0 ]; then
    warn "ports ${exposed[*]} lie inside the local port range and are not reserved: an outgoing connection may take one while matchstream is down (\"address in use\" at start); apply the profile's ip_local_reserved_ports"
  fi
fi

# --- Target ------------------------------------------------------------------------------

short=()
if [ -n "$target" ]; then
  need=$((target + MS_RESERVED_FDS))
  what=subscribers
  [ "$profile" = server ] || what="client connections"
  printf '\ntarget: %s %s\n' "$target" "$what"
  if [ "$profile" = server ]; then
    if [ "$per_proc" -lt "$need" ]; then
      msg="open-files limit: hard $nofile_hard (soft $nofile_soft, from $nofile_from) holds about $per_proc_subs subscribers in one matchstream process; $target needs $need: raise LimitNOFILE in matchstream.service (nofile in limits.conf for shells)"
      if [ -n "$nr_open" ] && ! ms_num_ge "$nr_open" "$need"; then
        msg="$msg and fs.nr_open ($nr_open), the ceiling of any open-files limit"
      fi
      short+=("$msg")
    fi
  else
    printf '  info  the bench spreads connections over worker processes of up to %s each\n' "$per_proc_subs"
  fi
  if [ -n "$nr_open" ] && [ "$profile" = server ] && [ "$per_proc" -ge "$need" ] && ! ms_num_ge "$nr_open" "$need"; then
    short+=("fs.nr_open $nr_open is below $need: no process can get that many open files")
  fi
  if [ -n "$file_max" ] && ! ms_num_ge "$file_max" "$need"; then
    short+=("fs.file-max $file_max is below $need open files system-wide")
  fi
  if [ -n "$hardmem" ]; then
    tcp_need=$((target * MS_TCP_BYTES_PER_SUBSCRIBER))
    if [ "$hardmem" -lt "$tcp_need" ]; then
      short+=("kernel TCP memory: tcp_mem hard limit $(ms_human "$hardmem") is below $(ms_human "$tcp_need") ($target x $(ms_human "$MS_TCP_BYTES_PER_SUBSCRIBER") in a fan-out burst): apply the profile's net.ipv4.tcp_mem")
    elif [ "$press" -lt "$tcp_need" ]; then
      warn "tcp_mem pressure starts at $(ms_human "$press"), below $(ms_human "$tcp_need"): bursts at $target will run under memory pressure (smaller buffers, slower)"
    fi
  else
    printf '  info  tcp_mem is not visible here; check the host\n'
  fi
  if [ -n "$ct_max" ] && ! ms_num_ge "$ct_max" "$target"; then
    short+=("connection tracking: nf_conntrack_max $ct_max is below $target; raise it or NOTRACK the stream ports")
  fi
  if [ "$profile" = server ]; then
    if [ -n "$orphans" ] && ! ms_num_ge "$orphans" "$target"; then
      short+=("orphans: tcp_max_orphans $orphans is below $target; when a match of $target subscribers stops (or the node shuts down) the kernel resets the rest, who may lose the last frames: apply the profile's net.ipv4.tcp_max_orphans")
    elif [ -z "$orphans" ]; then
      printf '  info  tcp_max_orphans is not visible here (machine-wide); check the host\n'
    fi
    if [ -n "$tw_max" ] && ! ms_num_ge "$tw_max" "$target"; then
      warn "TIME-WAIT: tcp_max_tw_buckets $tw_max is below $target: when a match of $target subscribers stops, the kernel skips TIME-WAIT past $tw_max and logs \"time wait bucket table overflow\""
    fi
    read -r ram_total ram_kernel ram_buffers ram_user ram_tw ram_ct < <(ms_ram_estimate "$target" "$([ -n "$ct_max" ] && echo 1 || echo 0)")
    printf '  %-5s memory for %s subscribers: about %s = sockets %s (%s B each, outside tcp_mem) + TCP buffers in a burst %s + matchstream %s (%s B each, bench/RESULTS.md) + TIME-WAIT %s%s; this host has %s\n' \
      info "$target" "$(ms_human "$ram_total")" "$(ms_human "$ram_kernel")" "$MS_KERNEL_BYTES_PER_SOCKET" \
      "$(ms_human "$ram_buffers")" "$(ms_human "$ram_user")" "$MS_USER_BYTES_PER_SUBSCRIBER" "$(ms_human "$ram_tw")" \
      "$([ "$ram_ct" -gt 0 ] && echo " + conntrack $(ms_human "$ram_ct")")" "$(ms_human "$mem")"
    if [ "$mem" -gt 0 ] && [ "$ram_total" -gt "$mem" ]; then
      short+=("memory: $target subscribers need about $(ms_human "$ram_total"), more than this host's $(ms_human "$mem")")
    elif [ "$mem" -gt 0 ] && [ "$ram_total" -gt $((mem * 3 / 4)) ]; then
      warn "memory: $target subscribers need about $(ms_human "$ram_total"), over 3/4 of this host's $(ms_human "$mem")"
    fi
  fi
  if [ "$profile" = loadgen ] && [ -n "$ports" ] && [ "$ports" -gt 0 ]; then
    printf '  info  one source address reaches %s connections per stream port: %s connections to one port need %s source addresses (--source-ips)\n' \
      "$ports" "$target" $(((target + ports - 1) / ports))
  fi
  if [ ${#short[@]} -eq 0 ]; then
    printf '  OK    this host can hold %s %s\n' "$target" "$what"
  else
    for s in "${short[@]}"; do printf '  SHORT %s\n' "$s"; done
    printf 'result: this host cannot hold %s %s: %d limit(s) short\n' "$target" "$what" "${#short[@]}"
  fi
fi

[ "$warns" -eq 0 ] || printf '%d warning(s) above\n' "$warns"
[ "$bad" -eq 0 ] && [ ${#short[@]} -eq 0 ]
