#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Keep every vCPU busy for $1 seconds, then report it in KTAP.
. /ecs/tests/lib/ktap.sh
seconds=${1:-10}
ktap_begin 1
end=$(($(date +%s) + seconds))
i=0
while [ $i -lt "$(nproc)" ]; do
	(while [ "$(date +%s)" -lt $end ]; do :; done) &
	i=$((i + 1))
done
wait
ktap_check "busy-${seconds}s-on-$(nproc)-vcpus" [ "$(date +%s)" -ge $end ]
ktap_end
