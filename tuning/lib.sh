# shellcheck shell=bash
# lib.sh — shared by apply.sh, revert.sh and check.sh: reads the profile files (sysctl.d
# syntax), reads /proc/sys, decides whether a current value already meets a recommendation
# and what to write when it does not. Sourced, never run; it changes nothing by itself.
#
# One rule makes the three scripts agree: a setting is OK when its current value already
# meets the recommendation in that setting's direction (see ms_mode), and apply.sh writes
# only the settings check.sh reports as not OK. apply.sh never lowers a limit the host
# already has above ours (a 256 GiB host's autotuned tcp_mem stays as it is).

# The constants below are read by the scripts that source this file.
# shellcheck disable=SC2034

export LC_ALL=C

# Where the profile files live (this directory).
MS_TUNING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Where apply.sh saves the values it replaced, unless --state or MATCHSTREAM_TUNING_STATE.
MS_DEFAULT_STATE=/var/lib/matchstream-tuning/state
# File descriptors matchstream keeps besides subscribers (listeners, store, logs); the same
# number as RESERVED_FDS in engine/src/limits.rs.
MS_RESERVED_FDS=64
# Kernel TCP buffer memory one subscriber needs while a fan-out burst is in flight: one
# small event in the send queue, its skb overhead and the ACK-pending copy. 4 KiB is the
# planning figure behind the profile's tcp_mem (pressure 4 GiB = 1M subscribers).
MS_TCP_BYTES_PER_SUBSCRIBER=4096
# The page size the profile files' tcp_mem values are written for.
MS_CONF_PAGE_SIZE=4096
# Kernel memory of one established TCP socket outside tcp_mem (which counts only buffers),
# measured: /proc/meminfo's Slab grew by 9,597-9,632 MiB for 2,000,000 socket ends in
# bench/scripts/million.sh's runs (bench/RESULTS.md, "One million subscribers"), 5,032-5,050 B
# each, rounded up. The slab objects alone add up to less — TCP (2368 B), sock_inode_cache
# (832 B), filp (192 B) and dentry (192 B) of Linux 6.x = 3584 B, `grep -E
# '^(TCP|sock_inode_cache|filp|dentry) ' /proc/slabinfo` (column 4) — the rest is the epoll
# item, partly filled slabs and per-socket allocations the objects point to.
MS_KERNEL_BYTES_PER_SOCKET=5120
# matchstream's own memory per subscriber: measured 550-558 B of server RSS per subscriber
# with 19,500 subscribers (bench/RESULTS.md, "One node at its open-files cap"), rounded up.
MS_USER_BYTES_PER_SUBSCRIBER=560
# A TIME-WAIT socket (tw_sock_TCP) and a conntrack entry (nf_conntrack) are 256 B each.
MS_TIMEWAIT_BYTES=256
MS_CONNTRACK_BYTES=256
# Where the sysctl files are read and written. Tests point it at a fake tree (a directory
# laid out like /proc/sys) to try machine-wide keys without touching the machine.
MS_PROC_SYS=${MATCHSTREAM_TUNING_PROC_SYS:-/proc/sys}

# Prints "prog: message" on stderr and exits 2 (usage or setup error).
ms_die() {
  printf '%s: %s\n' "${MS_PROG:-tuning}" "$*" >&2
  exit 2
}

# Prints a note on stderr without stopping.
ms_note() {
  printf '%s: %s\n' "${MS_PROG:-tuning}" "$*" >&2
}

# The conf file of a profile: server (sysctl.conf) or loadgen (sysctl-loadgen.conf).
ms_profile_conf() {
  case "$1" in
    server) printf '%s\n' "$MS_TUNING_DIR/sysctl.conf" ;;
    loadgen) printf '%s\n' "$MS_TUNING_DIR/sysctl-loadgen.conf" ;;
    *) ms_die "unknown profile '$1': use server or loadgen" ;;
  esac
}

# Collapses runs of blanks (the kernel separates fields by tabs) into single spaces and
# trims both ends, in place, without a subshell: ms_squeeze VARNAME.
ms_squeeze() {
  local -n ms_v=$1
  ms_v=${ms_v//[$'\t\r\n']/ }
  while [[ $ms_v == *'  '* ]]; do ms_v=${ms_v//  / }; done
  ms_v=${ms_v# }
  ms_v=${ms_v% }
}

# Prints a value normalized as ms_squeeze does.
ms_norm() {
  local v=$1
  ms_squeeze v
  printf '%s' "$v"
}

# Prints "key<TAB>value" for every setting of a sysctl.d-style file: "key = value" lines,
# full-line comments starting with # or ;, blank lines ignored, a leading "-" (sysctl.d's
# "ignore failure" mark) dropped. Exits 2 on a line it cannot read.
ms_conf_read() {
  local file=$1 line key value n=0
  [ -r "$file" ] || ms_die "cannot read $file"
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    ms_squeeze line
    case "$line" in '' | '#'* | ';'*) continue ;; esac
    case "$line" in *=*) ;; *) ms_die "$file:$n: expected 'key = value', got '$line'" ;; esac
    key=${line%%=*}
    value=${line#*=}
    ms_squeeze key
    ms_squeeze value
    key=${key#-}
    key=${key//\//.}
    [ -n "$key" ] || ms_die "$file:$n: empty key"
    printf '%s\t%s\n' "$key" "$value"
  done <"$file"
}

# The /proc/sys file of a key (net.core.somaxconn -> /proc/sys/net/core/somaxconn).
ms_path() {
  printf '%s/%s\n' "$MS_PROC_SYS" "${1//.//}"
}

# Prints the current value of a key, normalized; fails when the key does not exist here
# (not in this kernel, module not loaded, or not visible in this network namespace).
ms_read() {
  local path raw
  path=$MS_PROC_SYS/${1//.//}
  [ -e "$path" ] || return 1
  { raw=$(<"$path"); } 2>/dev/null || return 1
  ms_squeeze raw
  printf '%s' "$raw"
}

# Keys that hold one value for the whole machine even inside a network namespace (on some
# or all kernels). Setting them changes every container on the host; inside a child network
# namespace they are hidden or read-only. Everything not under net. is machine-wide too.
ms_is_global() {
  case "$1" in
    net.*) ;;
    *) return 0 ;;
  esac
  case "$1" in
    net.ipv4.tcp_mem | net.ipv4.udp_mem | net.ipv4.tcp_max_orphans | \
      net.core.rmem_max | net.core.wmem_max | net.core.rmem_default | net.core.wmem_default | \
      net.core.netdev_max_backlog | net.netfilter.nf_conntrack_max | net.nf_conntrack_max | \
      net.netfilter.nf_conntrack_buckets)
      return 0
      ;;
  esac
  return 1
}

# Whether a key is in the scope selected by --only (a comma-separated list; empty = all).
# Items: a key or key prefix ("net.", "fs.file-max"), "netns" (net.* keys private to a
# network namespace) or "global" (machine-wide keys, see ms_is_global).
ms_selected() {
  local key=$1 only=$2 item
  [ -n "$only" ] || return 0
  local IFS=,
  for item in $only; do
    item=$(ms_norm "$item")
    case "$item" in
      '') ;;
      netns) case "$key" in net.*) ms_is_global "$key" || return 0 ;; esac ;;
      global) ms_is_global "$key" && return 0 ;;
      *) case "$key" in "$item"*) return 0 ;; esac ;;
    esac
  done
  return 1
}

# Checks an --only list: every item must be a word or look like a key prefix.
ms_check_only() {
  local item
  local IFS=,
  for item in $1; do
    case "$item" in
      netns | global | net.* | fs.* | vm.* | kernel.* | net) ;;
      *) ms_die "--only: '$item' is not netns, global or a key prefix such as net. or fs.file-max" ;;
    esac
  done
}

# How a key's current value is compared with the recommendation:
#   atleast  every field >= ours (limits, queues, buffers); writing takes the larger per field
#   atmost   every field <= ours (keepalive timers: lower finds dead peers sooner)
#   range    a port range that contains ours (low <= our low, high >= our high)
#   ports    a port list that contains ours (reserved ports); writing adds ours to it
#   exact    the same value (on/off switches and modes)
ms_mode() {
  case "$1" in
    net.ipv4.ip_local_port_range) echo range ;;
    net.ipv4.ip_local_reserved_ports) echo ports ;;
    net.ipv4.tcp_keepalive_time | net.ipv4.tcp_keepalive_intvl | net.ipv4.tcp_keepalive_probes | \
      net.ipv4.tcp_fin_timeout)
      echo atmost
      ;;
    net.ipv4.tcp_syncookies | net.ipv4.tcp_tw_reuse | net.ipv4.tcp_tw_recycle) echo exact ;;
    *) echo atleast ;;
  esac
}

# a >= b for non-negative integers of any length (fs.file-max may be 2^63-1).
ms_num_ge() {
  local a=$1 b=$2
  while [ "${a#0}" != "$a" ] && [ ${#a} -gt 1 ]; do a=${a#0}; done
  while [ "${b#0}" != "$b" ] && [ ${#b} -gt 1 ]; do b=${b#0}; done
  if [ ${#a} -ne ${#b} ]; then
    [ ${#a} -gt ${#b} ]
    return
  fi
  [[ "$a" > "$b" || "$a" == "$b" ]]
}

# Whether a string is a non-negative integer.
ms_is_num() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
  return 0
}

# Prints the port ranges of a list ("8888,9100-9163") as "low high" lines.
ms_port_ranges() {
  local item
  local IFS=,
  for item in $1; do
    item=$(ms_norm "$item")
    [ -n "$item" ] || continue
    case "$item" in
      *-*) printf '%s %s\n' "${item%-*}" "${item#*-}" ;;
      *) printf '%s %s\n' "$item" "$item" ;;
    esac
  done
}

# Whether every port of list $2 is in list $1.
ms_ports_cover() {
  local have=$1 want=$2 lo hi p found a b r
  local -a ranges
  mapfile -t ranges < <(ms_port_ranges "$have")
  while read -r lo hi; do
    [ -n "$lo" ] || continue
    p=$lo
    while [ "$p" -le "$hi" ]; do
      found=
      for r in "${ranges[@]}"; do
        read -r a b <<<"$r"
        if [ "$p" -ge "$a" ] && [ "$p" -le "$b" ]; then
          found=$b
          break
        fi
      done
      [ -n "$found" ] || return 1
      p=$((found + 1))
    done
  done < <(ms_port_ranges "$want")
  return 0
}

# Whether the current value $2 meets the recommendation $3 for mode $1.
ms_satisfied() {
  local mode=$1 cur=$2 rec=$3 i
  local -a c r
  case "$mode" in
    exact) [ "$cur" = "$rec" ] ;;
    ports) ms_ports_cover "$cur" "$rec" ;;
    range)
      read -r -a c <<<"$cur"
      read -r -a r <<<"$rec"
      [ ${#c[@]} -eq 2 ] && [ ${#r[@]} -eq 2 ] || return 1
      ms_num_ge "${r[0]}" "${c[0]}" && ms_num_ge "${c[1]}" "${r[1]}"
      ;;
    atleast | atmost)
      read -r -a c <<<"$cur"
      read -r -a r <<<"$rec"
      [ ${#c[@]} -eq ${#r[@]} ] || return 1
      for i in "${!r[@]}"; do
        ms_is_num "${c[$i]}" && ms_is_num "${r[$i]}" || return 1
        if [ "$mode" = atleast ]; then
          ms_num_ge "${c[$i]}" "${r[$i]}" || return 1
        else
          ms_num_ge "${r[$i]}" "${c[$i]}" || return 1
        fi
      done
      ;;
    *) return 1 ;;
  esac
}

# Prints the value to write so that the key meets the recommendation while keeping whatever
# the host has beyond it: the larger field (atleast), the smaller field (atmost), the union
# of two port ranges or port lists, or simply ours (exact, or fields that do not line up).
ms_merge() {
  local mode=$1 cur=$2 rec=$3 i out=()
  local -a c r
  read -r -a c <<<"$cur"
  read -r -a r <<<"$rec"
  case "$mode" in
    ports)
      if [ -n "$cur" ]; then printf '%s,%s' "$cur" "$rec"; else printf '%s' "$rec"; fi
      return
      ;;
    range)
      if [ ${#c[@]} -eq 2 ] && [ ${#r[@]} -eq 2 ]; then
        local lo=${r[0]} hi=${r[1]}
        ms_num_ge "$lo" "${c[0]}" && lo=${c[0]}
        ms_num_ge "${c[1]}" "$hi" && hi=${c[1]}
        printf '%s %s' "$lo" "$hi"
        return
      fi
      ;;
    atleast | atmost)
      if [ ${#c[@]} -eq ${#r[@]} ]; then
        for i in "${!r[@]}"; do
          if ! ms_is_num "${c[$i]}"; then
            out+=("${r[$i]}")
          elif [ "$mode" = atleast ] && ms_num_ge "${c[$i]}" "${r[$i]}"; then
            out+=("${c[$i]}")
          elif [ "$mode" = atmost ] && ms_num_ge "${r[$i]}" "${c[$i]}"; then
            out+=("${c[$i]}")
          else
            out+=("${r[$i]}")
          fi
        done
        printf '%s' "${out[*]}"
        return
      fi
      ;;
  esac
  printf '%s' "$rec"
}

# Total RAM in bytes.
ms_mem_bytes() {
  local kb
  kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)
  ms_is_num "$kb" || kb=0
  printf '%s' $((kb * 1024))
}

# The page size in bytes (tcp_mem counts pages).
ms_page_size() {
  local p
  p=$(getconf PAGESIZE 2>/dev/null || echo 4096)
  ms_is_num "$p" || p=4096
  printf '%s' "$p"
}

# The recommendation for this host, in MS_REC (no subshell, so the reason for any change
# can come back in MS_REC_NOTE). Only tcp_mem is adapted: the files write it in 4 KiB pages,
# so it is converted to this kernel's page size, and scaled down so that its hard limit
# stays at or below half of RAM (on a small host the profile's 6 GiB would let TCP buffers
# take all memory before the kernel pushes back).
ms_recommend() {
  local key=$1 value=$2 page mem_pages i top
  local -a f
  MS_REC=$value
  MS_REC_NOTE=
  [ "$key" = net.ipv4.tcp_mem ] || return 0
  read -r -a f <<<"$value"
  [ ${#f[@]} -eq 3 ] || return 0
  page=$(ms_page_size)
  for i in 0 1 2; do f[i]=$((f[i] * MS_CONF_PAGE_SIZE / page)); done
  [ "$page" -eq "$MS_CONF_PAGE_SIZE" ] || MS_REC_NOTE="converted from 4 KiB pages to $page-byte pages"
  mem_pages=$(($(ms_mem_bytes) / 2 / page))
  if [ "$mem_pages" -gt 0 ] && [ "${f[2]}" -gt "$mem_pages" ]; then
    top=${f[2]}
    for i in 0 1 2; do f[i]=$((f[i] * mem_pages / top)); done
    MS_REC_NOTE="${MS_REC_NOTE:+$MS_REC_NOTE; }scaled down so the hard limit is half of this host's RAM"
  fi
  MS_REC="${f[0]} ${f[1]} ${f[2]}"
}

# Human size of a byte count: 1.5 GiB, 300 MiB, 12 KiB.
ms_human() {
  awk -v b="$1" 'BEGIN {
    split("B KiB MiB GiB TiB", u, " "); i = 1
    while (b >= 1024 && i < 5) { b /= 1024; i++ }
    if (b == int(b)) printf "%d %s", b, u[i]; else printf "%.1f %s", b, u[i]
  }'
}

# Prints "soft hard" of a Limit*= setting (LimitNOFILE, LimitMEMLOCK) of a systemd unit file
# and its drop-ins (FILE.d/*.conf, in name order; the last assignment wins, as in systemd).
# A value is one number for both, SOFT:HARD, or infinity; sizes keep systemd's suffixes
# (see ms_unit_bytes). Fails when none of them sets it (systemd's default then applies).
ms_unit_limit() {
  local file=$1 key=$2 value='' f
  local -a files=("$file")
  [ -r "$file" ] || return 1
  for f in "$file.d"/*.conf; do [ -r "$f" ] && files+=("$f"); done
  value=$(awk -F= -v k="$key" '$1 ~ "^[ \t]*" k "[ \t]*$" { v = $2; gsub(/[ \t]/, "", v) } END { print v }' "${files[@]}")
  [ -n "$value" ] || return 1
  case "$value" in
    *:*) printf '%s %s\n' "${value%%:*}" "${value#*:}" ;;
    *) printf '%s %s\n' "$value" "$value" ;;
  esac
}

# A systemd size (1024-based K, M, G, T suffixes) or "infinity" as bytes or "unlimited".
ms_unit_bytes() {
  local v=$1 n
  case "$v" in
    infinity) echo unlimited; return ;;
    *[Kk]) n=${v%?}; echo $((n * 1024)) ;;
    *[Mm]) n=${v%?}; echo $((n * 1024 * 1024)) ;;
    *[Gg]) n=${v%?}; echo $((n * 1024 * 1024 * 1024)) ;;
    *[Tt]) n=${v%?}; echo $((n * 1024 * 1024 * 1024 * 1024)) ;;
    *) echo "$v" ;;
  esac
}

# Memory one node needs for N subscribers, in bytes, printed as "total kernel buffers user
# timewait conntrack": sockets outside tcp_mem, TCP buffers in a fan-out burst (what tcp_mem
# must cover), matchstream's own, N TIME-WAIT sockets after a match of N ends, and N
# conntrack entries when $2 is 1 (nf_conntrack loaded).
ms_ram_estimate() {
  local n=$1 ct=${2:-0} kernel buffers user tw conn
  kernel=$((n * MS_KERNEL_BYTES_PER_SOCKET))
  buffers=$((n * MS_TCP_BYTES_PER_SUBSCRIBER))
  user=$((n * MS_USER_BYTES_PER_SUBSCRIBER))
  tw=$((n * MS_TIMEWAIT_BYTES))
  conn=0
  [ "$ct" != 1 ] || conn=$((n * MS_CONNTRACK_BYTES))
  printf '%s %s %s %s %s %s\n' $((kernel + buffers + user + tw + conn)) "$kernel" "$buffers" "$user" "$tw" "$conn"
}

declare -A MS_SAVED=()
MS_SAVED_KEYS=()

# Reads a state file into the associative array MS_SAVED (key -> original value) and the
# array MS_SAVED_KEYS (in file order).
ms_state_load() {
  local file=$1 k v
  MS_SAVED=()
  MS_SAVED_KEYS=()
  [ -f "$file" ] || return 0
  while IFS=$'\t' read -r k v || [ -n "$k" ]; do
    case "$k" in '' | '#'*) continue ;; esac
    if [ -z "${MS_SAVED[$k]+set}" ]; then
      MS_SAVED_KEYS+=("$k")
    fi
    MS_SAVED[$k]=$v
  done <"$file"
}

# Prints one report row: setting, two value columns, status.
ms_row() {
  printf '  %-34s %-24s %-24s %s\n' "$1" "$2" "$3" "$4"
}
