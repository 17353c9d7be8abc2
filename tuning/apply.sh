#!/usr/bin/env bash
# apply.sh — sets the kernel values of a matchstream tuning profile (sysctl.conf or
# sysctl-loadgen.conf) at run time, after saving every value it replaces, then reads each
# one back and reports it (old -> new, OK/FAILED). revert.sh undoes it; check.sh shows the
# same settings without changing anything. Not persistent across reboots (see README.md).
set -euo pipefail

MS_PROG=apply.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: apply.sh [--profile server|loadgen] [--conf FILE] [--state FILE] [--only LIST] [--dry-run]

Sets every setting of the profile that check.sh reports as not OK, and only those.
Before changing a key it appends the key's current value to the state file, unless that
file already holds an original for the key (so a second apply never overwrites the saved
originals). A second apply finds nothing to do and changes nothing. Needs root, except
with --dry-run.

  --profile P   server (tuning/sysctl.conf, default) or loadgen (tuning/sysctl-loadgen.conf)
                [env MATCHSTREAM_TUNING_PROFILE]
  --conf FILE   use this sysctl.d-style file instead of the profile's
  --state FILE  where originals are saved [env MATCHSTREAM_TUNING_STATE,
                default $MS_DEFAULT_STATE]
  --only LIST   limit to some keys, comma-separated: key prefixes (net., fs.file-max),
                netns (net.* keys private to a network namespace) or global (machine-wide
                keys) [env MATCHSTREAM_TUNING_ONLY]
  --dry-run     print what would change; change nothing, save nothing

Keys absent from this kernel or namespace (e.g. nf_conntrack_max without the module) and
keys read-only here (machine-wide keys inside a container) are skipped with a note.
Exit status: 0 when every selected setting is OK, 1 when one failed, 2 on a usage error.
EOF
}

profile=${MATCHSTREAM_TUNING_PROFILE:-server}
state=${MATCHSTREAM_TUNING_STATE:-$MS_DEFAULT_STATE}
only=${MATCHSTREAM_TUNING_ONLY:-}
conf=
dry_run=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || ms_die "--profile needs a value"; profile=$2; shift 2 ;;
    --conf) [ $# -ge 2 ] || ms_die "--conf needs a file"; conf=$2; shift 2 ;;
    --state) [ $# -ge 2 ] || ms_die "--state needs a file"; state=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || ms_die "--only needs a list"; only=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; ms_die "unknown argument '$1'" ;;
  esac
done
[ -n "$conf" ] || conf=$(ms_profile_conf "$profile")
ms_check_only "$only"
[ -n "$state" ] || ms_die "--state: empty file name"

if [ -z "$dry_run" ] && [ "$(id -u)" -ne 0 ]; then
  printf 'apply.sh: must run as root: it writes /proc/sys and %s.\n' "$state" >&2
  printf '  preview without root: tuning/apply.sh --dry-run   (or tuning/check.sh)\n' >&2
  exit 1
fi

mapfile -t settings < <(ms_conf_read "$conf")
ms_state_load "$state"

# Appends one original to the state file, creating it (owner-only) with a header first.
save_original() {
  if [ ! -f "$state" ]; then
    mkdir -p "$(dirname "$state")"
    (
      umask 077
      printf '# matchstream tuning: original values saved by apply.sh; revert.sh restores them.\n' >"$state"
      printf '# created %s on %s (%s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(uname -r)" >>"$state"
      printf '# format: key<TAB>value\n' >>"$state"
    )
  fi
  printf '%s\t%s\n' "$1" "$2" >>"$state"
  MS_SAVED[$1]=$2
  MS_SAVED_KEYS+=("$1")
}

if [ -n "$dry_run" ]; then
  printf 'apply.sh --dry-run: profile %s (%s); nothing will be changed\n' "$profile" "$conf"
else
  printf 'apply.sh: profile %s (%s), originals saved to %s\n' "$profile" "$conf" "$state"
fi
[ -z "$only" ] || printf '  only: %s\n' "$only"
ms_row SETTING OLD NEW RESULT

changed=0 unchanged=0 skipped=0 failed=0 selected=0
notes=()
for line in "${settings[@]}"; do
  key=${line%%$'\t'*}
  value=${line#*$'\t'}
  ms_selected "$key" "$only" || continue
  selected=$((selected + 1))
  path=$(ms_path "$key")
  if ! cur=$(ms_read "$key"); then
    ms_row "$key" - - "SKIPPED (absent)"
    why=
    case "$key" in *conntrack*) why=" (nf_conntrack not loaded: nothing to track, nothing to tune)" ;; esac
    notes+=("$key: not present in this kernel or network namespace$why; skipped")
    skipped=$((skipped + 1))
    continue
  fi
  ms_recommend "$key" "$value"
  rec=$MS_REC
  [ -z "$MS_REC_NOTE" ] || notes+=("$key: recommendation $rec ($MS_REC_NOTE)")
  mode=$(ms_mode "$key")
  if ms_satisfied "$mode" "$cur" "$rec"; then
    ms_row "$key" "${cur:-(none)}" "(unchanged)" OK
    unchanged=$((unchanged + 1))
    continue
  fi
  target=$(ms_merge "$mode" "$cur" "$rec")
  if [ ! -w "$path" ] && { [ -z "$dry_run" ] || [ "$(id -u)" -eq 0 ]; }; then
    ms_row "$key" "${cur:-(none)}" "$target" "SKIPPED (read-only)"
    notes+=("$key: read-only here; it is machine-wide, set it on the host (initial network namespace), not in a container or namespace")
    skipped=$((skipped + 1))
    continue
  fi
  if [ -n "$dry_run" ]; then
    ms_row "$key" "${cur:-(none)}" "$target" "would change"
    changed=$((changed + 1))
    continue
  fi
  if [ -z "${MS_SAVED[$key]+set}" ]; then
    save_original "$key" "$cur"
  fi
  if ! err=$(printf '%s\n' "$target" 2>&1 >"$path"); then
    ms_row "$key" "${cur:-(none)}" "$target" FAILED
    notes+=("$key: the kernel refused '$target': ${err##*: }")
    failed=$((failed + 1))
    continue
  fi
  new=$(ms_read "$key" || echo '?')
  if ms_satisfied "$mode" "$new" "$target"; then
    ms_row "$key" "${cur:-(none)}" "$new" OK
    changed=$((changed + 1))
  else
    ms_row "$key" "${cur:-(none)}" "${new:-(none)}" "FAILED (wrote $target)"
    failed=$((failed + 1))
  fi
done

[ "$selected" -gt 0 ] || ms_note "no setting of $conf matches --only '$only'"
for n in "${notes[@]}"; do printf '  note: %s\n' "$n"; done
if [ -n "$dry_run" ]; then
  printf 'summary: %d would change, %d already OK, %d skipped; nothing changed (dry run)\n' \
    "$changed" "$unchanged" "$skipped"
else
  printf 'summary: %d changed, %d already OK, %d skipped, %d failed\n' \
    "$changed" "$unchanged" "$skipped" "$failed"
  if [ "$changed" -gt 0 ] || [ "$failed" -gt 0 ]; then
    printf 'originals: %s (undo with: tuning/revert.sh --state %s)\n' "$state" "$state"
    printf 'these values last until reboot; README.md "Making it permanent" keeps them.\n'
  fi
fi
[ "$failed" -eq 0 ]
