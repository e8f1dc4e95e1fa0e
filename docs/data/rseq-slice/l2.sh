#!/bin/sh
# In an L2 (or a TCG guest): rseq_slice_load for 20 s with the arguments
# in $ARGS and rseq's bound at $BOUND ns, 50000 unless set
# (docs/data/rseq-slice/run.sh, bound.sh).
echo "${BOUND:-50000}" > /sys/kernel/debug/rseq/slice_ext_nsec
echo "bound $(cat /sys/kernel/debug/rseq/slice_ext_nsec)"
echo "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
insmod /ecs/modules/ecs.ko
echo "ecs $(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)"
# shellcheck disable=SC2086 # the load's arguments are split on purpose
GLIBC_TUNABLES=glibc.pthread.rseq=0 /ecs/selftests/rseq/rseq_slice_load /tmp/s $ARGS &
p=$!
sleep 20
cat /tmp/s
kill $p
