#!/usr/bin/env bash
# Does a task see fewer grants when rseq's bound is shorter than its way
# back to user space? The load in a 2-vCPU TCG guest with the bound at
# 5 us and at 50 us, each twice in alternation (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/../../.."
K=${ECS_KERNEL_DIR:-$HOME/.cache/ecs-suite/kernels/7.3.4-1~bpo13+1-default}
data=docs/data/rseq-slice
l2=$(base64 -w0 $data/l2.sh)
for run in 1 2; do
	for bound in 5000 50000; do
		scripts/vm --kernel "$K/build/arch/x86/boot/bzImage" --initrd "$K/images/guest.cpio" --smp 2 \
			--mem 1G --timeout 300 -- \
			sh -c "echo $l2 | base64 -d > /tmp/l2.sh; ARGS='20 2 1000' BOUND=$bound sh /tmp/l2.sh" \
			2>&1 | grep -v '^\[' > "$data/tcg-guest-bound-$bound-$run.txt"
	done
done
