#!/usr/bin/env bash
# revert.sh — puts back exactly the kernel values apply.sh saved in its state file, reads
# each one back and reports it (old -> restored, OK/FAILED), then removes the state file.
# A key that cannot be restored stays in the file, so a second run can retry it.
set -euo pipefail

MS_PROG=revert.sh
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<EOF
usage: revert.sh [--state FILE] [--only LIST] [--dry-run]

Restores every original value saved by apply.sh, in the order saved, then deletes the state
file (or, with --only, removes the restored keys from it). Needs root, except with --dry-run.
With no state file there is nothing to do: it says so and exits 0.

  --state FILE  the state file apply.sh wrote [env MATCHSTREAM_TUNING_STATE,
                default $MS_DEFAULT_STATE]
  --only LIST   restore only these keys: prefixes, netns or global, as in apply.sh
                [env MATCHSTREAM_TUNING_ONLY]
  --dry-run     print what would be restored; change nothing

Exit status: 0 when every selected key holds its original again, 1 when one failed, 2 on a
usage error.
EOF
}

state=${MATCHSTREAM_TUNING_STATE:-$MS_DEFAULT_STATE}
only=${MATCHSTREAM_TUNING_ONLY:-}
dry_run=
while [ $# -gt 0 ]; do
  case "$1" in
    --state) [ $# -ge 2 ] || ms_die "--state needs a file"; state=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || ms_die "--only needs a list"; only=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; ms_die "unknown argument '$1'" ;;
  esac
done
ms_check_only "$only"

if [ -z "$dry_run" ] && [ "$(id -u)" -ne 0 ]; then
  printf 'revert.sh: must run as root: it writes /proc/sys and %s.\n' "$state" >&2
  printf '  preview without root: tuning/revert.sh --dry-run --state %s\n' "$state" >&2
  exit 1
fi
if [ ! -e "$state" ]; then
  printf 'revert.sh: nothing to revert: no state file at %s (apply.sh writes one when it changes something)\n' "$state"
  exit 0
fi
[ -r "$state" ] || ms_die "cannot read $state"

ms_state_load "$state"
if [ -n "$dry_run" ]; then
  printf 'revert.sh --dry-run: originals in %s; nothing will be changed\n' "$state"
else
  printf 'revert.sh: restoring originals from %s\n' "$state"
fi
[ -z "$only" ] || printf '  only: %s\n' "$only"
ms_row SETTING NOW RESTORED RESULT

restored=0 same=0 failed=0
keep=()
for key in "${MS_SAVED_KEYS[@]}"; do
  orig=${MS_SAVED[$key]}
  if ! ms_selected "$key" "$only"; then
    keep+=("$key")
    continue
  fi
  path=$(ms_path "$key")
  if ! cur=$(ms_read "$key"); then
    ms_row "$key" - "${orig:-(none)}" "FAILED (absent)"
    printf '  note: %s no longer exists here (module unloaded, or not the namespace apply ran in?)\n' "$key"
    keep+=("$key")
    failed=$((failed + 1))
    continue
  fi
  if [ "$cur" = "$orig" ]; then
    ms_row "$key" "${cur:-(none)}" "(already original)" OK
    same=$((same + 1))
    continue
  fi
  if [ -n "$dry_run" ]; then
    ms_row "$key" "${cur:-(none)}" "${orig:-(none)}" "would restore"
    restored=$((restored + 1))
    continue
  fi
  if ! err=$(printf '%s\n' "$orig" 2>&1 >"$path"); then
    ms_row "$key" "${cur:-(none)}" "${orig:-(none)}" FAILED
    printf '  note: the kernel refused %s=%s: %s\n' "$key" "$orig" "${err##*: }"
    keep+=("$key")
    failed=$((failed + 1))
    continue
  fi
  new=$(ms_read "$key" || echo '?')
  if [ "$new" = "$orig" ]; then
    ms_row "$key" "${cur:-(none)}" "${new:-(none)}" OK
    restored=$((restored + 1))
  else
    ms_row "$key" "${cur:-(none)}" "${new:-(none)}" "FAILED (wanted ${orig:-(none)})"
    keep+=("$key")
    failed=$((failed + 1))
  fi
done

if [ -n "$dry_run" ]; then
  printf 'summary: %d would be restored, %d already original; nothing changed (dry run)\n' "$restored" "$same"
  exit 0
fi

if [ ${#keep[@]} -eq 0 ]; then
  rm -f -- "$state"
  printf 'summary: %d restored, %d already original, 0 failed; removed %s\n' "$restored" "$same" "$state"
else
  tmp="$state.tmp.$$"
  (
    umask 077
    grep '^#' "$state" >"$tmp" || true
    for key in "${keep[@]}"; do printf '%s\t%s\n' "$key" "${MS_SAVED[$key]}" >>"$tmp"; done
  )
  mv -f -- "$tmp" "$state"
  printf 'summary: %d restored, %d already original, %d failed; %d key(s) kept in %s\n' \
    "$restored" "$same" "$failed" "${#keep[@]}" "$state"
fi
[ "$failed" -eq 0 ]
