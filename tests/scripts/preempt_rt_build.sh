#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: both series compile with PREEMPT_RT (the rt scenario:
# scripts/kconfig/rt.config and rt.targets, KVM, the scheduler, locking,
# RCU and the KVM guest code), without a warning in any file they touch.
# scripts/build-kernel.sh does the work and fails on either; a finished
# build of the same inputs is kept in the cache, so this costs about 70 s
# once and seconds after.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by scripts/lib/common.sh
ECS_REPO=$repo
. "$repo/scripts/lib/common.sh"
[ -f "$PRISTINE_SRC/.complete" ] || ktap_missing_all "no pinned kernel source (scripts/setup.sh)"

ktap_begin 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if "$repo/scripts/build-kernel.sh" --scenario rt > "$log" 2>&1; then
	ktap_info "$(grep '>>>' "$log" | tail -n 1)"
	ktap_pass series-compile-on-preempt-rt
else
	grep -E 'error|warning|>>>' "$log" | tail -n 30 | sed 's/^/# /'
	ktap_fail series-compile-on-preempt-rt "scripts/build-kernel.sh --scenario rt failed"
fi
ktap_end
