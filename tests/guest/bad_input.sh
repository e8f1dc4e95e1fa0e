#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad input to our guest modules: every parameter gets zero,
# negative, huge, overflowing and non-numeric values it cannot use; each
# load must fail with a kernel message naming the parameter and leave
# nothing behind (no module, no debugfs directory). The debugfs knobs get
# malformed writes; each must fail with EINVAL and the knob must still work
# afterwards. Nothing may leak: the slab and vmalloc totals before and after
# all attempts are compared (the slab total once every cache is shrunk,
# KASAN's quarantine included; a loose bound, as other activity moves them
# too) and printed; on the debug kernel kmemleak must find nothing
# allocated during the attempts unreferenced. (KVM's kvm.ecs_slice_us
# refuses bad values in tests/nested-host/ecs_slice.sh, in an L1 that has
# KVM.)
. /ecs/tests/lib/ktap.sh

mods=/ecs/modules
for m in rcu_membench ecs_costbench ecs eschdspin; do
	ktap_require_module $mods/$m.ko
done
online=$(grep -c '^processor' /proc/cpuinfo)
# Loose, as other activity moves the total too (debug kernel: +360 kB).
SLAB_GROWTH_MAX_KB=1024
# A vmalloc leak per refused load adds dozens of areas; a clean run: 8 -> 8.
VMALLOC_GROWTH_MAX=16

# MODULE "FIXED ARGS" PARAM VALUE...: values PARAM must refuse. FIXED ARGS
# keep a load that wrongly succeeded short (no run at load time).
cases() {
	cat <<EOF
rcu_membench|autostart=0|obj_size|0 -1 1048577 4294967296 99999999999999999999 abc 0x
rcu_membench|autostart=0|rate|0 -1 1000001 4294967296 1e3
rcu_membench|autostart=0|batch|0 2501 -3
rcu_membench|autostart=0|duration|0 3601 -1 18446744073709551616
rcu_membench|autostart=0|max_outstanding_bytes|0 1023 17179869185 18446744073709551616 -1
rcu_membench|autostart=0|cpus|$((online + 1)) -1 4294967295
rcu_membench|autostart=0|sample_every|0 1000001
rcu_membench|autostart=0|series_ms|0 1001
rcu_membench||autostart|2 maybe -1
ecs_costbench|iterations=100 rounds=1|iterations|0 10000001 -1 4294967296 abc
ecs_costbench|iterations=100 rounds=1|rounds|0 1001 -1
ecs_costbench|iterations=100 rounds=1|threads|$((online + 1)) -1 4294967295
ecs|count_without_host=0|count_without_host|2 maybe -1
eschdspin|policy=0|policy|3 -1 4294967296 abc
eschdspin|policy=0|fallback|2 3 -1 abc
eschdspin|policy=0|spin_limit_us|0 10001 -1 4294967296
EOF
}
n_params=$(cases | grep -c .)

# Malformed writes: KNOB|GOOD|BAD... (BAD separated by ';').
knobs() {
	cat <<EOF
ecs|/sys/kernel/debug/ecs/hold|nonpreemptible 1| ;bogus;nonpreemptible -1;nonpreemptible 51;nonpreemptible 99999999999;nonpreemptible 1 2;rcu 1001;mutex 10001;nonpreemptible 1 and a tail longer than thirty-two bytes
rcu_membench|/sys/kernel/debug/rcu_membench/control|stop| ;bogus;start start;stopstopstopstopstop;START
eschdspin|/sys/kernel/debug/eschdspin/policy|schdspin| ;bogus;fallback eschdspin;fallback;fallback stock stock;eschdspin eschdspin;ESCHDSPIN;2;stock and a tail longer than thirty-two bytes
EOF
}
n_knobs=$(knobs | grep -c .)

vmalloc_n() { grep -c . /proc/vmallocinfo; }

ktap_begin $((n_params + 2 * n_knobs + 3))

# Warm the caches a failed load touches, so that the totals compare like
# with like.
insmod $mods/rcu_membench.ko rate=0 2>/dev/null
slab_before=$(ktap_settled_kb Slab)
vmalloc_before=$(vmalloc_n)
ktap_kmemleak_begin
tried=0

# One result per parameter: every bad value refused and nothing left.
while IFS='|' read -r m fixed param values; do
	bad=
	for v in $values; do
		tried=$((tried + 1))
		ktap_mark "bad-$m-$param-$v"
		# shellcheck disable=SC2086 # FIXED ARGS are split on purpose
		if err=$(insmod $mods/$m.ko $fixed "$param=$v" 2>&1 < /dev/null); then
			rmmod $m
			bad="$bad $v:loaded"
			continue
		fi
		msg=$(ktap_dmesg_since "bad-$m-$param-$v" | grep -E "$m: .*$param" | tail -n 1)
		[ -n "$msg" ] || bad="$bad $v:no-message($err)"
		[ -d /sys/module/$m ] && bad="$bad $v:module-left"
		[ -d /sys/kernel/debug/$m ] && bad="$bad $v:debugfs-left"
	done
	if [ -z "$bad" ]; then
		ktap_pass "refuses-$m-$param"
	else
		ktap_fail "refuses-$m-$param" "$bad"
	fi
done <<EOF
$(cases)
EOF

# One result per knob for the malformed writes, one for a good write after.
writes=0
while IFS='|' read -r m knob good bads; do
	case $m in
	rcu_membench) insmod $mods/$m.ko autostart=0 < /dev/null ;;
	*) insmod $mods/$m.ko < /dev/null ;;
	esac
	bad=
	while [ -n "$bads" ]; do
		v=${bads%%;*}
		case $bads in *";"*) bads=${bads#*;} ;; *) bads= ;; esac
		writes=$((writes + 1))
		# dd, not the shell's printf: it says why a write failed.
		if err=$(printf '%s' "$v" | dd of="$knob" bs=4096 2>&1); then
			bad="$bad '$v':accepted"
		elif ! echo "$err" | grep -q 'Invalid argument'; then
			bad="$bad '$v':$err"
		fi
	done
	if [ -z "$bad" ]; then ktap_pass "knob-refuses-$m"; else ktap_fail "knob-refuses-$m" "$bad"; fi
	ktap_check "knob-works-after-$m" sh -c "printf '%s' '$good' > $knob"
	rmmod $m
done <<EOF
$(knobs)
EOF

slab_after=$(ktap_settled_kb Slab)
vmalloc_after=$(vmalloc_n)
ktap_info "$tried bad parameter values, $writes malformed writes: Slab ${slab_before} -> ${slab_after} kB, vmalloc areas ${vmalloc_before} -> ${vmalloc_after}"
ktap_slab_not_leaked "$slab_before" "$slab_after" $SLAB_GROWTH_MAX_KB
ktap_check vmalloc-not-leaked [ $((vmalloc_after - vmalloc_before)) -lt $VMALLOC_GROWTH_MAX ]
ktap_kmemleak_check
ktap_end
