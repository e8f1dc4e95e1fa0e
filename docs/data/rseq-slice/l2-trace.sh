#!/bin/sh
# The sched_switch stack traces of docs/benchmarks.md (--rseq): run in a
# 2-vCPU TCG guest as run.sh runs l2.sh; the output is
# tcg-guest-sched-switch-stacks.txt. The counts are of stack traces
# (worker and noise thread alike), frames 2-5 of each.
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
echo 50000 > /sys/kernel/debug/rseq/slice_ext_nsec
insmod /ecs/modules/ecs.ko
GLIBC_TUNABLES=glibc.pthread.rseq=0 /ecs/selftests/rseq/rseq_slice_load /tmp/s 20 2 1000 &
p=$!
sleep 3
echo 'prev_comm == "rseq_slice_load" && prev_state == 0' > $T/events/sched/sched_switch/filter
echo 'stacktrace if prev_comm == "rseq_slice_load" && prev_state == 0' > $T/events/sched/sched_switch/trigger
echo 1 > $T/events/sched/sched_switch/enable
sleep 8
echo 0 > $T/events/sched/sched_switch/enable
head -2 /tmp/s
grep -c sched_switch $T/trace
awk '/<stack trace>/ {n=0; s=""; next} /^ => / {n++; if (n>=2 && n<=5) s=s" "$2; if (n==5) print s}' $T/trace | sort | uniq -c | sort -rn | head -12
grep -m3 "sched_switch" $T/trace
kill $p
