#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: the slice extension KVM grants by itself
# (host-patches/0005, kvm.ecs_slice_us), end to end. The knob rejects
# values out of [5, 10000] us with EINVAL and an error naming it, and
# keeps its value; set to 1 ms, a 2-vCPU L2 sharing the L1's one CPU
# under a lock-heavy load gets extensions, most of which end with the
# guest out of its section; a section held for 2 s is still
# preempted; no extension outlasts the bound plus the slack of TCG's late
# timers (tests/lib/nested.sh, l2_extension_run); its kernel threads give
# extensions back at their unlocks, although a user task gives them back
# at its return to user mode (kvm_ecs.give_back_at_user, on by default);
# an L2 running a pipe ping-pong does give them back there; 0 turns the
# extension off again.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

nested_prepare
ecs_slice_require
knob=$ECS_SLICE_KNOB
slice_us=1000
bad_values="4 10001 4294967295 -1 x"
ktap_begin $(($(echo $bad_values | wc -w) + 13))
ktap_check off-by-default [ "$(cat $knob)" = 0 ]
for v in $bad_values; do
	ktap_mark "rejects-$v"
	if echo "$v" > $knob 2>/dev/null; then
		ktap_fail "rejects-$v" "accepted"
	elif [ "$(cat $knob)" != 0 ]; then
		ktap_fail "rejects-$v" "rejected, but the knob changed to $(cat $knob)"
	elif [ "$v" = 4 ] || [ "$v" = 10001 ]; then
		ktap_check "rejects-$v" ktap_log_has "rejects-$v" "ecs_slice_us=$v is out of range"
	else
		ktap_pass "rejects-$v"
	fi
done
ecs_slice_check slice-set $slice_us

l2_extension_run l2-slice $slice_us
l2_give_back_at_user_run l2-give-back-at-user
ecs_slice_check slice-off 0
l1_host_clean
ktap_end
