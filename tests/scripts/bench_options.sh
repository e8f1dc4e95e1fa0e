#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/bench/paired.sh (`make bench`) refuses bad options
# with exit 2 and a message naming the option, before it boots anything.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
paired=$repo/scripts/bench/paired.sh

# refused NAME PATTERN ARG...: paired.sh ARG... exits 2 with PATTERN on
# stderr.
refused() {
	local name=$1 pattern=$2 err rc
	shift 2
	err=$(ECS_KERNEL='' ECS_HOST_INITRD='' "$paired" "$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc = 2 ] && echo "$err" | grep -q -- "$pattern"; then
		ktap_pass "$name"
	else
		echo "# exit $rc: $err"
		ktap_fail "$name" "expected exit 2 and '$pattern'"
	fi
}

ktap_begin 14
refused pipe-zero "--pipe wants 1-64 pairs, got '0'" --pipe 0
refused pipe-too-many "--pipe wants 1-64 pairs, got '65'" --pipe 65
refused nothing-to-run "nothing to run" --lockbench ""
refused unknown-level "unknown level '3:1'" --levels 3:1
refused levels-of-two-l1-shapes "levels '2:1 4:2' mix a 1-vCPU and a 2-vCPU L1" --levels "2:1 4:2"
refused icount-out-of-range "--icount wants a shift of 0-10, got '11'" --icount 11
refused pause-filter-one-number "--pause-filter wants COUNT:THRESH, each 1-65535, got '300'" --pause-filter 300
refused pause-filter-zero "--pause-filter wants COUNT:THRESH, each 1-65535, got '0:100'" --pause-filter 0:100
refused give-back-elsewhere "--give-back wants unlock or user, got 'exit'" --give-back exit
refused pause-filter-too-big "--pause-filter wants COUNT:THRESH, each 1-65535, got '300:65536'" --pause-filter 300:65536
# Valid options get as far as the missing kernel.
refused valid-options-need-make "run through make bench" --lockbench "" --pipe 2 --levels "2:1"
refused valid-yield-options-need-make "run through make bench" --levels 4:1-1vm --arms "offrr off v2rr v2" \
	--pause-filter 300:65535
refused valid-two-cpu-levels-need-make "run through make bench" --levels "2:2 4:2"
refused valid-give-back-needs-make "run through make bench" --give-back user --pipe 1 --lockbench ""
ktap_end
