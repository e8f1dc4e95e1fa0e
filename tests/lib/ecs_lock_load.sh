#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest half of l2_extension_run (tests/lib/nested.sh, which
# tests/nested-host/ecs_slice.sh runs) and of the bystander L2s of
# bad_msr_neighbour.sh and msr_fuzz.sh: with the eCS shim registered,
# keep both vCPUs in lock-heavy kernel code (locktorture on mutexes, then
# rwsems), then hold explicit non-preemptible sections back to back for
# 2 s on one vCPU while the other vCPU spins, i.e. a guest that does not
# leave its critical section. KTAP; prints the give-backs each vCPU wrote
# when it found an extension granted at the end of a section.
#
#   ecs_lock_load.sh [SECONDS]         as above
#   ecs_lock_load.sh --pipe [SECONDS]  a pipe ping-pong across the vCPUs
#                                      instead (pipe_pingpong: every
#                                      round trip takes the pipes' mutexes
#                                      in system calls), with
#                                      kvm_ecs.give_back_at_user at its
#                                      default, which must read Y
. /ecs/tests/lib/ktap.sh
shim=/ecs/modules/ecs.ko
dir=/sys/kernel/debug/ecs
pipe=
[ "${1:-}" = --pipe ] && pipe=1 && shift
seconds=${1:-8}
field() { sed -n "s/^$1: //p" $dir/state; }
give_back_sum() { awk '/^cpu/ { s += $6 } END { print s + 0 }' $dir/cpus; }

if [ -n "$pipe" ]; then
	ktap_begin 4
	ktap_check give-back-at-user-set grep -qx Y /sys/module/kvm_ecs/parameters/give_back_at_user
	gave_back=guest-gave-back-at-user
else
	ktap_begin 5
	gave_back=guest-gave-back
fi
ktap_check shim-enabled sh -c "insmod $shim && [ \"\$(sed -n 's/^state: //p' $dir/state)\" = enabled ]"
if [ -n "$pipe" ]; then
	/ecs/bin/pipe_pingpong /tmp/pipe.stats 1 &
	pinger=$!
	sleep "$seconds"
	kill $pinger
	wait $pinger
	ktap_info "pipe_pingpong: $(grep roundtrips /tmp/pipe.stats)"
	ktap_check pipe-pingpong-ran [ "$(sed -n 's/^roundtrips //p' /tmp/pipe.stats)" -gt 0 ]
else
	before=$(give_back_sum)
	for t in mutex_lock rwsem_lock; do
		ktap_mark "locktorture-$t"
		if modprobe locktorture torture_type=$t nwriters_stress=2 nreaders_stress=2 stat_interval=0; then
			sleep "$seconds"
			rmmod locktorture
			ktap_check "locktorture-$t" ktap_log_has "locktorture-$t" 'End of test: SUCCESS'
		else
			ktap_fail "locktorture-$t" "modprobe locktorture failed"
		fi
	done
	# Kernel threads give back at the unlock whatever give_back_at_user
	# says; l2_extension_run (tests/lib/nested.sh) reads this line.
	ktap_info "give-backs during locktorture: $(($(give_back_sum) - before))"
	# A section that outlasts any extension, with the other vCPU competing.
	end=$(($(date +%s) + 4))
	(while [ "$(date +%s)" -lt $end ]; do :; done) &
	spinner=$!
	# The knob holds a non-preemptible section for at most 50 ms (it spins
	# with preemption off): 40 back to back.
	holds=0
	for _ in $(seq 40); do
		echo 'nonpreemptible 50' > $dir/hold && holds=$((holds + 1))
	done
	ktap_check hold-nonpreemptible-2s [ $holds = 40 ]
	wait $spinner
fi
sed 's/^/# /' $dir/cpus
ktap_info "give-backs, summed over the vCPUs: $(give_back_sum)"
ktap_check "$gave_back" [ "$(give_back_sum)" -gt 0 ]
rmmod ecs
ktap_end
