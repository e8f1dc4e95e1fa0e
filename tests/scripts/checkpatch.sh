#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: the pinned tree's checkpatch.pl --strict over every patch of
# both series (guest-patches/, host-patches/, in series order), one result
# a patch. A finding fails unless tests/scripts/checkpatch.known lists it,
# with the reason it stays; a known finding that is gone is reported, so
# that the list shrinks with the series.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by scripts/lib/common.sh
ECS_REPO=$repo
. "$repo/scripts/lib/common.sh"
checkpatch=$PRISTINE_SRC/scripts/checkpatch.pl
[ -f "$checkpatch" ] || ktap_missing_all "no $checkpatch (scripts/setup.sh unpacks the pinned tree)"
known=$repo/tests/scripts/checkpatch.known

mapfile -t patches < <(all_patches)
ktap_begin ${#patches[@]}
for p in "${patches[@]}"; do
	name=$(basename "$(dirname "$p")")/$(basename "$p")
	# From standard input: given a tracked file's path, checkpatch would
	# check it as a source file (docs/ecs-abi.md).
	out=$(perl "$checkpatch" --strict --no-tree --no-summary --terse --showfile - < "$p" 2>&1)
	rc=$?
	found=$(sed -n 's/^\([^:]*\):[0-9]*: \(ERROR\|WARNING\|CHECK\): /\1: \2: /p' <<< "$out")
	# checkpatch exits 1 when it reports something, which then parses as a
	# finding; any other failure (perl dying on a missing module, say)
	# reports nothing and must not pass as a clean patch.
	if [ $rc -gt 1 ] || { [ $rc = 1 ] && [ -z "$found" ]; }; then
		echo "$out" | tail -n 5 | sed 's/^/# /'
		ktap_fail "checkpatch-$name" "checkpatch.pl failed (exit $rc) without a finding"
		continue
	fi
	new=
	while IFS= read -r f; do
		[ -n "$f" ] || continue
		grep -qxF "$name	$f" <(cut -f1,2 "$known") || new="$new
$f"
	done <<< "$found"
	while IFS=$'\t' read -r kp kf _; do
		[ "$kp" = "$name" ] && ! grep -qxF "$kf" <<< "$found" && ktap_info "$name: known finding gone, drop it from checkpatch.known: $kf"
	done < <(grep -v '^#' "$known")
	if [ -z "$new" ]; then
		ktap_pass "checkpatch-$name"
	else
		echo "$new" | grep . | sed 's/^/# /'
		ktap_fail "checkpatch-$name" "new checkpatch --strict findings"
	fi
done
ktap_end
