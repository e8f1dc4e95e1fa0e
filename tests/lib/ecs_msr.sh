# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
# MSR_KVM_ECS from a guest's user space, through /dev/cpu/N/msr and cpuid
# (busybox has no rdmsr/wrmsr). Source after ktap.sh; ecs_msr_require skips
# the whole test where the host does not offer eCS.

ECS_MSR=0x4b564d80

# cpuid_reg LEAF N: register N (0 eax .. 3 edx) of CPUID LEAF on CPU 0.
cpuid_reg() {
	dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=$(($1)) iflag=skip_bytes 2>/dev/null |
		od -An -tu4 -w16 | awk -v n="$2" '{ print $(n + 1) }'
}

# ecs_msr_require [--host-offers]: skip the test unless this is a KVM guest
# whose host offers KVM_FEATURE_ECS. With --host-offers (an L2 of our own
# L1 host) a host without it is a missing part (ktap_missing_all): a
# failure under CI.
ecs_msr_require() {
	_absent=ktap_skip_test
	[ "${1:-}" = --host-offers ] && _absent=ktap_missing_all
	[ -c /dev/cpu/0/msr ] && [ -c /dev/cpu/0/cpuid ] || ktap_missing_all "no /dev/cpu/0/msr or cpuid"
	_sig=$(dd if=/dev/cpu/0/cpuid bs=16 count=1 skip=$((0x40000000)) iflag=skip_bytes 2>/dev/null |
		dd bs=1 skip=4 count=12 2>/dev/null | tr -d '\0')
	[ "$_sig" = KVMKVMKVM ] || $_absent "not a KVM guest (signature '$_sig')"
	_features=$(cpuid_reg 0x40000001 0)
	[ $(((_features >> 23) & 1)) = 1 ] ||
		$_absent "the host does not offer KVM_FEATURE_ECS (features $(printf '%#x' "$_features"))"
}

# rdmsr_ecs CPU: the MSR's value in hex, empty if the read faults.
rdmsr_ecs() {
	dd if=/dev/cpu/$1/msr bs=8 count=1 skip=$((ECS_MSR)) iflag=skip_bytes 2>/dev/null |
		od -An -tx8 | tr -d ' '
}

# wrmsr_ecs VALUE [CPU]: write VALUE (decimal or 0x) on CPU (default 0);
# fails on #GP (EIO).
wrmsr_ecs() {
	_v=$(($1))
	_i=0
	_bytes=
	while [ $_i -lt 8 ]; do
		_bytes="$_bytes\\$(printf '%03o' $(((_v >> (8 * _i)) & 255)))"
		_i=$((_i + 1))
	done
	# shellcheck disable=SC2059 # the octal escapes are the format
	printf "$_bytes" | dd of=/dev/cpu/"${2:-0}"/msr bs=8 count=1 seek=$((ECS_MSR)) oflag=seek_bytes \
		conv=notrunc 2>/dev/null
}

# ecs_msr_bad_values: one malformed value of each kind, a line each:
# "VALUE KIND". Reserved bits 5:2 are the address's low bits, so an
# unaligned area is a reserved-bit write too; bit 1 is the give-back
# action, which #GPs with any value but the MSR's own.
ecs_msr_bad_values() {
	_ram_end=$(awk -F'[- :]+' '/System RAM/ { end = $2 } END { print "0x" end }' /proc/iomem)
	_beyond_ram=$(((_ram_end + 0x100000000) & ~0x3f))
	echo "0x4 reserved-bit-disabled"
	echo "0x3c reserved-bits-disabled"
	echo "0x1000004 reserved-bit-with-address-disabled"
	echo "0x1000003 give-back-with-another-address"
	echo "0x1000021 unaligned-enabled"
	echo "$(printf '%#x' $((_beyond_ram | 1))) beyond-ram-enabled"
	echo "0x8000000000000001 non-canonical-enabled"
	echo "-1 all-bits"
}
