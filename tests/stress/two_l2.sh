#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in an L1 guest: two 2-vCPU L2 guests at once, each keeping both of
# its vCPUs busy for ECS_BUSY_SECONDS (default 10), sharing L1's CPUs. This
# is the shape of every overcommit experiment, so it must be dependable.
. /ecs/tests/lib/ktap.sh
. /ecs/tests/lib/nested.sh

busy=$(ecs_cmdline busy_seconds)
busy=${busy:-10}
# ecs.l2_pin=LIST pins vCPU i of each L2 to this L1's CPU i mod len(LIST)
# (scripts/nested-campaign.sh --l2-pin).
pin=$(ecs_cmdline l2_pin)
nested_prepare
ktap_begin 2
start=$(date +%s)
l2_vm l2a /tmp/l2a --smp 2 ${pin:+--pin "$pin"} -- /ecs/tests/lib/busy.sh "$busy" &
pid_a=$!
l2_vm l2b /tmp/l2b --smp 2 ${pin:+--pin "$pin"} -- /ecs/tests/lib/busy.sh "$busy" &
pid_b=$!
wait $pid_a
# shellcheck disable=SC2034 # rc_a and rc_b are read through eval below
rc_a=$?
wait $pid_b
# shellcheck disable=SC2034
rc_b=$?
for g in a b; do
	sed 's/^/    /' /tmp/l2$g.ktap
	rc=
	eval "rc=\$rc_$g"
	ktap_check "l2$g-busy-${busy}s" [ "$rc" = 0 ]
done
ktap_info "both L2s done in $(($(date +%s) - start))s; $(grep seconds= /tmp/l2a/status) / $(grep seconds= /tmp/l2b/status)"
ktap_end
