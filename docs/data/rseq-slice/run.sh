#!/usr/bin/env bash
# How docs/data/rseq-slice/*.txt were made (docs/benchmarks.md): the
# rseq_slice_load of the initramfs in a 2-vCPU TCG guest, then in a 2-vCPU
# L2 of a 1-vCPU L1 with the host side off and with kvm.ecs_slice_us=4000,
# each with a noise thread that sleeps 1 ms and one that never sleeps.
set -euo pipefail
cd "$(dirname "$0")/../../.."
K=${ECS_KERNEL_DIR:-$HOME/.cache/ecs-suite/kernels/7.3.4-1~bpo13+1-default}
data=docs/data/rseq-slice
l2=$(base64 -w0 $data/l2.sh)
for args in "20 2 1000" "20 2 0"; do
	scripts/vm --kernel "$K/build/arch/x86/boot/bzImage" --initrd "$K/images/guest.cpio" --smp 2 \
		--mem 1G --timeout 300 -- sh -c "echo $l2 | base64 -d > /tmp/l2.sh; ARGS='$args' sh /tmp/l2.sh" \
		2>&1 | grep -v '^\[' > "$data/tcg-guest-${args// /-}.txt"
	l1="
. /ecs/tests/lib/ktap.sh; . /ecs/tests/lib/nested.sh; nested_prepare
mkdir -p /tmp/off /tmp/v2
l2_vm off /tmp/off --smp 2 --cpu host,migratable=off -- sh -c \"echo $l2 | base64 -d > /tmp/l2.sh; ARGS='$args' sh /tmp/l2.sh\"
echo '==== host side off'; grep -v '^\[' /tmp/off.ktap
echo 4000 > /sys/module/kvm/parameters/ecs_slice_us
l2_vm v2 /tmp/v2 --smp 2 --cpu host,migratable=off -- sh -c \"echo $l2 | base64 -d > /tmp/l2.sh; ARGS='$args' sh /tmp/l2.sh\"
echo '==== kvm.ecs_slice_us=4000'; grep -v '^\[' /tmp/v2.ktap"
	scripts/vm --kernel "$K/build/arch/x86/boot/bzImage" --initrd "$K/images/host.cpio" --smp 1 \
		--mem 2G --timeout 800 --append idle=poll -- \
		sh -c "echo $(echo "$l1" | base64 -w0) | base64 -d > /tmp/l1.sh; sh /tmp/l1.sh" \
		2>&1 | grep -v '^\[' > "$data/nested-l2-${args// /-}.txt"
done
