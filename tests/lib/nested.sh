# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
# Helpers for tests that run in an L1 guest and start L2 guests under KVM.

# Skip unless this L1 can be a KVM host; load kvm_amd once the TSC rate
# is final, with the parameters of ecs.kvm_amd=A+B on this L1's command
# line (scripts/bench/paired.sh --pause-filter).
nested_prepare() {
	grep -qw svm /proc/cpuinfo || ktap_missing_all "this L1 CPU has no svm: no nested KVM (Intel VMX is not emulated by TCG)"
	[ -f /ecs/bzImage ] && [ -f /ecs/guest.cpio ] || ktap_missing_all "no L2 kernel or initramfs in this initramfs (boot the host image)"
	[ -c /dev/kvm ] && return 0
	# TCG's CPU has no constant_tsc, so KVM takes the host's TSC rate at
	# the moment it loads as every guest's rate. If the host's rate has
	# moved by more than 250 ppm when a guest vCPU is created, KVM 7.3
	# wants TSC scaling, which TCG lacks, and set_tsc_khz() returns before
	# it sets any scaling ratio: the ratio stays 0, KVM reads that guest's
	# TSC as 0, and its TSC-deadline timers fire as many seconds late as
	# this L1 has been up (host-patches/0001 fixes that: such a guest now
	# runs at the host's rate; x86/tsc_rate_mismatch_test). The boot's
	# PIT calibration can be 300 ppm off under TCG; the refined rate
	# replaces it about 1.6 s after boot, when the "tsc" clocksource
	# replaces "tsc-early". Load KVM after that (or after 20 s, if the TSC
	# is never refined), so that guests get the refined rate.
	_n=0
	while grep -qw tsc-early /sys/devices/system/clocksource/clocksource0/available_clocksource &&
		[ $_n -lt 100 ]; do
		sleep 0.2
		_n=$((_n + 1))
	done
	# shellcheck disable=SC2046 # one word per parameter
	modprobe kvm_amd $(ecs_cmdline kvm_amd | tr '+' ' ') 2>&1 | sed 's/^/# /'
}

# l2_vm NAME OUTDIR [vm options] -- COMMAND...: boot an L2 of our kernel;
# its KTAP goes to OUTDIR.ktap, its console to OUTDIR/console.log. Its time
# limit (ecs.l2_timeout=, default 600 s) must end before the L1's, so that
# a hung L2 is reported from inside a live L1; an L2 that stops beating
# (two minutes of silence) ends sooner, and either way vm saves where its
# vCPUs were in OUTDIR/hang-registers.txt. ecs.l2_append=A+B adds the
# kernel arguments "A B" to every L2 (scripts/nested-campaign.sh
# --l2-append). Its VMM opts in to eCS with pcpu_overloaded
# (KVM_CAP_X86_ECS, vm --kvm-ecs 3) unless the options say --kvm-ecs 0.
l2_timeout() {
	t=$(ecs_cmdline l2_timeout)
	echo "${t:-600}"
}

# Every L2 boots with tsc=nowatchdog, as scripts/vm boots TCG guests: its
# vCPUs' TSCs come from one QEMU clock through the L1's KVM, so the
# clocksource watchdog's skew check has nothing to find, and in early boot
# it can deadlock against stop_machine() (docs/testing.md, "Known flakes").
l2_vm() {
	name=$1
	outdir=$2
	shift 2
	set -- --append "tsc=nowatchdog $(ecs_cmdline l2_append | tr '+' ' ')" "$@"
	vm --accel kvm --kvm-ecs 3 --kernel /ecs/bzImage --initrd /ecs/guest.cpio --mem 256M \
		--name "$name" --out "$outdir" --timeout "$(l2_timeout)" --heartbeat 20 "$@" \
		> "$outdir.ktap" 2> "$outdir.err"
	l2_rc=$?
	if [ $l2_rc != 0 ]; then
		sed 's/^/# /' "$outdir.err"
		# This L1 and its /tmp are gone after the run: keep what vm
		# gathered in the KTAP, and the console beyond vm's tail.
		if [ -f "$outdir/console.log" ] && [ "$(wc -l < "$outdir/console.log")" -gt 40 ]; then
			echo "# --- the whole console of $name ---"
			tr -d '\r' < "$outdir/console.log" | sed 's/^/# /'
		fi
		if [ -s "$outdir/hang-registers.txt" ]; then
			echo "# --- $outdir/hang-registers.txt ---"
			sed 's/^/# /' "$outdir/hang-registers.txt"
		fi
	fi
	return $l2_rc
}

# l2_qemu_pid NAME: the pid of the QEMU of the L2 that l2_vm started as
# NAME (it runs with "-name NAME,debug-threads=on").
l2_qemu_pid() {
	# A process may exit between the glob and the read: stderr is
	# redirected first, so that the failed open is silent too.
	for _p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null < "$_p/cmdline" | grep -q -- "-name $1," && echo "${_p#/proc/}"
	done
}

# l2_results OUTDIR RC: the L2's own KTAP (nested here), then two results:
# l2-selftests (its command exited RC = 0) and l2-console-clean.
l2_results() {
	sed 's/^/    /' "$1.ktap"
	ktap_check l2-selftests [ "$2" = 0 ]
	ktap_info "L2 $(grep seconds= "$1/status") (boot, selftests, power-off)"
	l2_console_clean l2-console-clean "$1/console.log"
}

# l2_console_clean NAME CONSOLE: one result, console-check passes an L2's
# console. On a splat the console from 5 lines before the first report
# goes into the KTAP: the L2 and this L1's /tmp are gone after the run.
l2_console_clean() {
	if _found=$(console-check "$2"); then
		ktap_pass "$1"
		return
	fi
	echo "$_found" | sed 's/^/# /'
	_first=$(echo "$_found" | sed -n '1s/^console-check: [^:]*:\([0-9]*\):.*/\1/p')
	_from=$((${_first:-1} - 5))
	[ $_from -ge 1 ] || _from=1
	echo "# --- $2 from line $_from ---"
	tr -d '\r' < "$2" | tail -n +$_from | head -n 80 | sed 's/^/# /'
	ktap_fail "$1" "console-check found a splat"
}

# l1_host_clean: one result, no splat in this L1 host's kernel log.
l1_host_clean() {
	ktap_no_splat l1-host-clean
}

# The per-VM KVM debugfs stats of the eCS host side, in the order the
# samplers print them.
ECS_KVM_STATS="ecs_extensions ecs_preemptions_avoided ecs_give_backs ecs_extensions_expired ecs_preemptions ecs_preempted_in_section ecs_extension_max_ns ecs_extensions_revoked ecs_extensions_unloaded ecs_give_back_writes ecs_preempted_refused ecs_preempted_unseen"

# The knob of KVM's slice extension: 0 (the default) off, else its bound
# in microseconds (5 to 10000).
ECS_SLICE_KNOB=/sys/module/kvm/parameters/ecs_slice_us

# ecs_slice_require: skip the whole test (fail it under CI) unless this
# L1's KVM has the knob. Call it after nested_prepare, which loads KVM.
ecs_slice_require() {
	[ -f $ECS_SLICE_KNOB ] || ktap_missing_all "$ECS_SLICE_KNOB: this L1's KVM lacks the slice extension"
}

# ecs_slice_set US: set kvm.ecs_slice_us to US (0 turns the extension
# off); fails unless the knob then reads US.
ecs_slice_set() {
	echo "$1" > $ECS_SLICE_KNOB && [ "$(cat $ECS_SLICE_KNOB)" = "$1" ]
}

# ecs_slice_check NAME US: one result, ecs_slice_set US.
ecs_slice_check() {
	ktap_check "$1" ecs_slice_set "$2"
}

# l2_ecs_extensions PID: the ecs_extensions KVM stat of the L2 whose QEMU
# is PID, empty once that VM is gone.
l2_ecs_extensions() {
	for _d in /sys/kernel/debug/kvm/"$1"-*; do
		[ -r "$_d/ecs_extensions" ] && cat "$_d/ecs_extensions"
	done
}

# grew A B: both counts were read and B is larger.
grew() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -gt "$1" ]; }

# l2_vm_retry_boot NAME OUTDIR [vm options] -- COMMAND...: l2_vm, and once
# more if the L2 died while booting (scripts/vm's dead-at-boot): under
# nested TCG an L2 sometimes stops with an empty console before its init
# runs, beside another L2 or alone in a debug L1 (once with both vCPUs in
# the clocksource watchdog's stop_machine), a fault of the testbed, not of
# the code under test. Said in the KTAP; the first attempt stays in
# OUTDIR.dead-at-boot.
l2_vm_retry_boot() {
	l2_vm "$@" && return 0
	_rc=$?
	grep -q '^dead-at-boot' "$2/timed-out" 2>/dev/null || return $_rc
	echo "# $1 died while booting; running it once more (first attempt in $2.dead-at-boot)"
	rm -rf "$2.dead-at-boot"
	mv "$2" "$2.dead-at-boot"
	l2_vm "$@"
}

# kvm_stats_sampler OUT SERIAL STAT...: until killed, append to OUT twice a
# second (every $KVM_STATS_PERIOD seconds if set) one line per VM: its KVM
# debugfs directory (<QEMU pid>-<fd>), the phase of the L2 whose serial
# log is SERIAL (boot until it printed "load-started", load until
# "=== churn" or "=== summary", then after) and the named per-VM KVM
# stats. Run it in the background. Shell builtins only, apart from sleep:
# it shares the CPU with the VMs it measures.
kvm_stats_sampler() {
	_out=$1
	_serial=$2
	shift 2
	while :; do
		_phase=boot
		if [ -f "$_serial" ]; then
			while IFS= read -r _l; do
				case $_l in
				load-started*) _phase=load ;;
				"=== churn"* | "=== summary"*) _phase=after ;;
				esac
			done < "$_serial"
		fi
		for _d in /sys/kernel/debug/kvm/*-*; do
			[ -r "$_d/ecs_extensions" ] || continue
			_line="${_d##*/} $_phase"
			for _s in "$@"; do
				read -r _v < "$_d/$_s"
				_line="$_line $_v"
			done
			echo "$_line"
		done >> "$_out"
		sleep "${KVM_STATS_PERIOD:-0.5}"
	done
}

# How much longer than its bound an eCS extension may be seen to last.
# The L1's timers fire late under TCG (13.9 ms seen with one L2, 50.1 ms
# with two), and QEMU 10.0 can lose the L1's timer interrupt until
# scripts/vm's next nudge, a second later (docs/qemu-lost-interrupt.md;
# 928 ms seen under the fuzzer and 201 ms in l2_extension_run, both in a
# debug L1). The tests' guests hold a section for 2 s, which an extension
# that nothing cut short would last.
NUDGE_NS=1000000000
EXTENSION_SLACK_NS=$((NUDGE_NS + 10 * 1000000000 / $(ecs_cmdline hz | grep . || echo 250)))

# l2_extension_run NAME BOUND_US: boot a 2-vCPU L2 with the eCS shim that
# runs tests/lib/ecs_lock_load.sh (lock-heavy kernel code, then a section
# held for 2 s) on this L1's one CPU while KVM's per-VM stats are sampled,
# with whatever grants extensions set up by the caller; then seven
# results: l2-load, extensions-granted, preemptions-avoided,
# endless-section-still-preempted (its extensions reach the bound and it
# is preempted in the section), extension-bounded (no extension lasted
# longer than BOUND_US plus EXTENSION_SLACK_NS; one that nothing cut
# short would last the whole 2 s section), kernel-threads-gave-back, and
# the L2's console.
#
# kernel-threads-gave-back: locktorture's kernel threads gave extensions
# back at their unlocks, at least one a second of locktorture, although
# the L2 runs with kvm_ecs.give_back_at_user at its default (on): such
# threads never return to user mode, and for 16 s the only user-mode
# code is the script's sleep, modprobe and rmmod, so give-backs left to
# a return to user mode would number a handful (1565 and 1416 in two
# runs with the kernel of 93f2f95).
l2_extension_run() {
	_samples=/tmp/$1-kvm-stats
	_out=/tmp/$1
	: > "$_samples"
	# shellcheck disable=SC2086 # the names are split on purpose
	kvm_stats_sampler "$_samples" "$_out/ktap.log" $ECS_KVM_STATS &
	_sampler=$!
	l2_vm_retry_boot "$1" "$_out" --smp 2 --cpu host,migratable=off --append "ecs.expect_ecs=1" -- \
		/ecs/tests/lib/ecs_lock_load.sh 8
	_rc=$?
	kill $_sampler
	wait $_sampler 2>/dev/null
	sed 's/^/    /' "$_out.ktap"
	ktap_check l2-load [ $_rc = 0 ]
	# shellcheck disable=SC2046 # one sample: directory, phase, the stats
	set -- "$2" $(tail -n 1 "$_samples")
	_bound_us=$1
	shift
	[ $# -ge 2 ] && shift 2
	_named=
	_i=1
	for _s in $ECS_KVM_STATS; do
		eval "_named=\"\$_named $_s=\${$_i:-0}\""
		_i=$((_i + 1))
	done
	ktap_info "KVM stats of the L2 (last sample):$_named"
	ktap_check extensions-granted [ "${1:-0}" -gt 0 ]
	ktap_check preemptions-avoided [ "${2:-0}" -gt 0 ]
	ktap_check endless-section-still-preempted [ "${4:-0}" -gt 0 -a "${6:-0}" -gt 0 ]
	ktap_check extension-bounded [ "${7:-0}" -gt 0 -a "${7:-0}" -le $((_bound_us * 1000 + EXTENSION_SLACK_NS)) ]
	_kthread_give_backs=$(sed -n 's/.*give-backs during locktorture: //p' "$_out.ktap")
	ktap_check kernel-threads-gave-back [ "${_kthread_give_backs:-0}" -ge 16 ]
	l2_console_clean l2-console-clean "$_out/console.log"
}

# l2_give_back_at_user_run NAME: with the slice extension on, a 2-vCPU L2
# booted with kvm_ecs.give_back_at_user at its default (1,
# guest-patches/0014) runs a pipe ping-pong (ecs_lock_load.sh --pipe): its
# give-backs, written at the return to user mode from a user return
# notifier, must happen, and its console must stay clean. Two results.
l2_give_back_at_user_run() {
	_out=/tmp/$1
	l2_vm_retry_boot "$1" "$_out" --smp 2 --cpu host,migratable=off \
		--append "ecs.expect_ecs=1" -- /ecs/tests/lib/ecs_lock_load.sh --pipe 8
	_rc=$?
	sed 's/^/    /' "$_out.ktap"
	ktap_check "$1-load" [ $_rc = 0 ]
	l2_console_clean "$1-console-clean" "$_out/console.log"
}
