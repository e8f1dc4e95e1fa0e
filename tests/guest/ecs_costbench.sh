#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ecs_costbench, the annotation-cost benchmark behind `make bench-cost`: a
# short run gives one sample per path, thread and round, each positive, on
# distinct CPUs, with kvm_ecs_key as it is (off, then on under the eCS shim's
# count_without_host=1); bad parameters get EINVAL and an error naming them.
# The figures themselves are for scripts/bench/cost.sh, not for a test.
. /ecs/tests/lib/ktap.sh

ko=/ecs/modules/ecs_costbench.ko
shim=/ecs/modules/ecs.ko
samples=/sys/kernel/debug/ecs_costbench/samples
ktap_require_module $ko

paths="empty api spinlock rwlock_read rwlock_write mutex rwsem_read rwsem_write rcu"
online=$(grep -c '^processor' /proc/cpuinfo)
bad_params="iterations=0 iterations=10000001 rounds=0 rounds=1001 threads=$((online + 1))
threads=-1 rounds=x"
n_bad=$(echo $bad_params | wc -w)

ktap_begin $((10 + n_bad))
ktap_mark ecs_costbench

# complete THREADS ROUNDS: every path has ROUNDS samples on 1 thread and
# THREADS x ROUNDS on THREADS threads, each a positive time on its own CPU.
complete() {
	awk -v paths="$paths" -v threads="$1" -v rounds="$2" '
		NF == 6 && $1 != "#" {
			n[$1 " " $2]++
			if ($6 <= 0) bad = bad " nonpositive:" $1
			if (cpu[$1 " " $2 " " $3] != "" && cpu[$1 " " $2 " " $3] != $4) bad = bad " cpu:" $1
			cpu[$1 " " $2 " " $3] = $4
			seen[$1 " " $2 " cpu" $4 " r" $5]++
			if (seen[$1 " " $2 " cpu" $4 " r" $5] > 1) bad = bad " twice:" $1
		}
		END {
			split(paths, p, " ")
			for (i in p) {
				if (n[p[i] " 1"] != rounds) bad = bad " " p[i] "/1:" n[p[i] " 1"] + 0
				if (threads > 1 && n[p[i] " " threads] != threads * rounds)
					bad = bad " " p[i] "/" threads ":" n[p[i] " " threads] + 0
			}
			if (bad != "") { print "# incomplete:" bad; exit 1 }
		}' $samples
}
key() { sed -n 's/^key //p' $samples; }

# --- Key off: nothing loaded the shim. -----------------------------------------
if insmod $ko iterations=500 rounds=2; then
	ktap_pass load-key-off
	ktap_check reports-key-off [ "$(key)" = off ]
	ktap_check samples-complete-key-off complete "$online" 2
	ktap_check unload rmmod ecs_costbench
else
	ktap_fail load-key-off "insmod failed"
	ktap_skip reports-key-off "not loaded"
	ktap_skip samples-complete-key-off "not loaded"
	ktap_skip unload "not loaded"
fi

# --- One thread only. -----------------------------------------------------------
if insmod $ko iterations=200 rounds=3 threads=1; then
	ktap_check samples-complete-one-thread complete 1 3
	rmmod ecs_costbench
else
	ktap_fail samples-complete-one-thread "insmod threads=1 failed"
fi

# --- Key on, under the shim's test knob. -----------------------------------------
if [ ! -f $shim ]; then
	for t in load-key-on reports-key-on samples-complete-key-on; do
		ktap_missing $t "$shim is not in this initramfs"
	done
elif insmod $shim count_without_host=1 && insmod $ko iterations=500 rounds=2; then
	ktap_pass load-key-on
	ktap_check reports-key-on [ "$(key)" = on ]
	ktap_check samples-complete-key-on complete "$online" 2
	rmmod ecs_costbench
else
	ktap_fail load-key-on "insmod of the shim or the benchmark failed"
	ktap_skip reports-key-on "not loaded"
	ktap_skip samples-complete-key-on "not loaded"
fi
[ -d /sys/module/ecs ] && rmmod ecs

# --- Bad parameters. -------------------------------------------------------------
for p in $bad_params; do
	ktap_rejects "rejects-$p" $ko ecs_costbench "$p" "${p%%=*}"
done
ktap_check not-loaded-after-rejects sh -c '! [ -d /sys/module/ecs_costbench ]'
ktap_no_splat no-splat ecs_costbench
ktap_end
