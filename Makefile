# SPDX-License-Identifier: GPL-2.0
# The eCS suite: one pinned kernel (built outside the repo), our Rust
# modules, test VMs. See README.md.
#
#   make              kernel + modules + initramfs images
#   make demo         the problem and the fix in a few minutes: nested VMs,
#                     without and with the host side (scripts/demo.sh)
#   make check        every test: host-side cargo tests, then the KTAP
#                     selftests in a TCG guest and in an L2 guest of an
#                     L1 KVM host, on the default and the debug kernel
#   make check-host   the eCS host side end to end in nested VMs (also
#                     part of make check)
#   make check-debug  the debug kernel's suites whole (make check runs
#                     a cut of them in CI's time): the guest selftests,
#                     the nested ones and the host side in a debug L1
#   make fuzz         random and edge MSR_KVM_ECS values from an L2 for
#                     FUZZ_SECONDS (600) beside an L2 using eCS
#   make lint         rustfmt and clippy on our kernel modules, shellcheck
#                     on our shell scripts, pyflakes on our Python
#   make bench-rcu    the call_rcu() memory microbenchmark, baseline and
#                     overcommitted (scripts/bench/rcu.sh)
#   make bench-cost   the cost of an empty critical section, kvm_ecs_key
#                     off and on, and the instructions the hooks add
#                     (scripts/bench/cost.sh)
#   make bench-host   the eCS host side: preemptions avoided, fairness,
#                     rcu_membench with and without it, in nested VMs
#                     (scripts/bench/host.sh)
#   make bench-spin   eSCHDSPIN: a Psearchy-like load in nested L2s under
#                     stock, SCHDSPIN and eSCHDSPIN (scripts/bench/spin.sh)
#   make bench-yield  directed yield with and without its preference for
#                     a vCPU preempted in its section, through the pause
#                     filter of a patched L0 QEMU (scripts/bench/paired.sh)
#   SCENARIO=debug    any of the above on the debug kernel
#                     (scripts/kconfig/debug.config)

SCENARIO ?= default
SHELL := /bin/bash
LLVM_VERSION := $(shell sed -n 's/^LLVM_VERSION=//p' KERNEL_PIN)
KERNEL_DIR := $(shell scripts/build-kernel.sh --scenario $(SCENARIO) --print-dir)
KERNEL_STAMP := $(shell scripts/build-kernel.sh --scenario $(SCENARIO) --print-stamp)
KDIR := $(KERNEL_DIR)/build
MODULES_OUT := $(KERNEL_DIR)/ecs-modules
IMAGES := $(KERNEL_DIR)/images
BZIMAGE := $(KDIR)/arch/x86/boot/bzImage
export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-$(LLVM_VERSION)/lib
export ECS_KERNEL := $(BZIMAGE)
export ECS_GUEST_INITRD := $(IMAGES)/guest.cpio
export ECS_HOST_INITRD := $(IMAGES)/host.cpio
export ECS_KERNEL_DIR := $(KERNEL_DIR)
# The suite's L0 QEMU (scripts/setup.sh builds it: KERNEL_PIN's
# QEMU_PATCHES on Debian's source); empty if it is not built, and then
# scripts/vm runs qemu-system-x86_64, which make check refuses under CI.
QEMU_PATCHES := $(shell sed -n 's/^QEMU_PATCHES=//p' KERNEL_PIN)
export ECS_QEMU ?= $(shell scripts/qemu/build.sh --if-built $(QEMU_PATCHES))
export ECS_VMLINUX := $(KDIR)/vmlinux
# The debug kernel (scripts/kconfig/debug.config) that make check runs the
# guest selftests on too.
DEBUG_KERNEL_DIR := $(shell scripts/build-kernel.sh --scenario debug --print-dir)
export ECS_DEBUG_KERNEL := $(DEBUG_KERNEL_DIR)/build/arch/x86/boot/bzImage
export ECS_DEBUG_GUEST_INITRD := $(DEBUG_KERNEL_DIR)/images/guest.cpio
# An L1 host of the debug kernel whose L2s run the default kernel: the host
# patches under lockdep and KASAN, without a KASAN guest under nested TCG.
export ECS_DEBUG_HOST_INITRD := $(DEBUG_KERNEL_DIR)/images/host-default-l2.cpio

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MODULES_OUT) LLVM=-$(LLVM_VERSION)
MODULE_SOURCES := Kbuild $(shell find modules -name '*.rs' -o -name Kbuild)
TEST_FILES := $(shell find tests -type f -not -path 'tests/host/*' -not -path 'tests/scripts/*')
VM_FILES := $(TEST_FILES) $(shell find scripts/bench/vm -type f)
INITRAMFS_INPUTS := scripts/mkinitramfs.sh scripts/build-selftests.sh scripts/initramfs/init scripts/vm scripts/console-check $(VM_FILES)

.PHONY: all kernel modules images demo check lint lint-clippy clean-modules
all: images

kernel: $(KERNEL_STAMP)
$(KERNEL_STAMP):
	scripts/build-kernel.sh --scenario $(SCENARIO)

modules: $(MODULES_OUT)/.built
$(MODULES_OUT)/.built: $(KERNEL_STAMP) $(MODULE_SOURCES)
	mkdir -p $(MODULES_OUT)
	# The images take every .ko here: none of a module Kbuild no longer names.
	find $(MODULES_OUT) -name '*.ko' -delete
	$(KMAKE) modules
	touch $@

images: $(ECS_GUEST_INITRD) $(ECS_HOST_INITRD)
$(ECS_GUEST_INITRD): $(MODULES_OUT)/.built $(INITRAMFS_INPUTS)
	ECS_MODULES_DIR=$(MODULES_OUT) scripts/mkinitramfs.sh guest $(KERNEL_DIR) $@
$(ECS_HOST_INITRD): $(ECS_GUEST_INITRD) $(KERNEL_STAMP)
	ECS_MODULES_DIR=$(MODULES_OUT) scripts/mkinitramfs.sh host $(KERNEL_DIR) $(ECS_GUEST_INITRD) $@

DEMO_ARGS ?=
demo: images
	scripts/demo.sh $(DEMO_ARGS)

check: images debug-images
	tests/run-all.sh

debug-images: images
	$(MAKE) --no-print-directory SCENARIO=debug images
	ECS_MODULES_DIR=$(DEBUG_KERNEL_DIR)/ecs-modules scripts/mkinitramfs.sh host $(DEBUG_KERNEL_DIR) \
		$(ECS_GUEST_INITRD) $(ECS_DEBUG_HOST_INITRD) $(BZIMAGE)
.PHONY: debug-images

# The eCS host side end to end in nested VMs (tests/nested-host), and the
# upstream KVM selftests again in an L1 of Debian's own build of the same
# kernel, the control (nested-host-stock).
check-host: images
	ECS_CHECK_ONLY="nested-host nested-host-stock" tests/run-all.sh
.PHONY: check-host

# The suites on the debug kernel (scripts/kconfig/debug.config: lockdep,
# KASAN, atomic-sleep checks, rcu_head debug objects, kmemleak) whole:
# the guest selftests, then the nested ones and the eCS host side in an
# L1 of the debug kernel whose L2s run the default kernel. make check
# runs a cut of them (tests/run-all.sh says which); this takes 45 minutes
# or more (the faster machine) on top. A splat on a console fails them.
check-debug: debug-images
	ECS_DEBUG_FULL=1 ECS_CHECK_ONLY="guest-debug nested-debug nested-host-debug" tests/run-all.sh
.PHONY: check-debug

lint: lint-rustfmt lint-shell lint-python lint-clippy
.PHONY: lint-rustfmt lint-shell lint-python

lint-rustfmt: $(KERNEL_STAMP)
	rustfmt --check --edition 2021 --config-path $(KERNEL_DIR)/src/.rustfmt.toml $(shell find modules -name '*.rs')

# Every tracked shell script: *.sh (the sourced libraries say their shell)
# and the ones without the suffix.
SHELL_SCRIPTS = $(shell git ls-files '*.sh') .ci/run scripts/vm scripts/console-check scripts/initramfs/init
lint-shell:
	shellcheck -S warning $(SHELL_SCRIPTS)

lint-python:
	pyflakes3 $(shell git ls-files '*.py')

# Clippy runs as the compiler, so every crate is rebuilt in a scratch output
# directory; the modules that go into the images are left alone.
lint-clippy: $(KERNEL_STAMP)
	rm -rf $(KERNEL_DIR)/ecs-clippy && mkdir -p $(KERNEL_DIR)/ecs-clippy
	$(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(KERNEL_DIR)/ecs-clippy LLVM=-$(LLVM_VERSION) CLIPPY=1 KRUSTFLAGS="-Dwarnings" modules

clean-modules:
	rm -rf $(MODULES_OUT)

# The fuzzer of the eCS guest-host surface (tests/fuzz/msr_fuzz.sh)
# for FUZZ_SECONDS. Not part of make check while the L2 crashes it finds
# are open (docs/testing.md, "The fuzzer").
# FUZZ_HOTPLUG=0 keeps the fuzzer's vCPUs online.
FUZZ_SECONDS ?= 600
FUZZ_HOTPLUG ?= 1
fuzz: images
	ECS_CHECK_ONLY=fuzz ECS_FUZZ_SECONDS=$(FUZZ_SECONDS) ECS_FUZZ_HOTPLUG=$(FUZZ_HOTPLUG) tests/run-all.sh
.PHONY: fuzz

# Reliability of two L2 guests at once in the L1 host (docs/nested-reliability.md).
CAMPAIGN_ARGS ?= --runs 20 --l1-smp 1
campaign: images
	scripts/nested-campaign.sh $(CAMPAIGN_ARGS)
.PHONY: campaign

# Does the host side make an overcommitted eCS guest faster? Host-side
# arms (kvm.ecs_slice_us off, and KVM's slice extension in its variants)
# switched at runtime in paired phases inside one L1 and one L2 boot,
# Williams-ordered blocks, cluster-bootstrap CIs and a verdict per metric
# (docs/benchmarks.md). Results in results/bench/<time>-<commit>/. See
# scripts/bench/paired.sh. Both run the L1 in deterministic virtual time
# (--icount 5: host load moves no phase; an A/A pair there gave 1.005
# [0.990, 1.019] over 72 blocks, run 20261207T162947Z-4df03fd). bench is
# off, v2 and v2 without the give-back (v2untold) at 1:1 (the negative
# control), 2:1 and 4:1, a spinlock, a mutex and the pipe ping-pong (the
# harm detector), one Williams design of 6 blocks in one L1 boot, where a
# spinlock case at 2:1 needs about 6 for +-5% (docs/benchmarks.md).
# make bench took 41 minutes in run 20261207T222644Z-7696679, before the
# warm-up ran every arm (two more phases a case).
# bench-quick is the spinlock and the mutex at 2:1, 4 blocks in one
# boot: 4.5 minutes (run 20261207T233932Z-6fa892e). Other arms (v2keep,
# v2any, v2lazy, an A/A "off off"), host time (no --icount) and more
# blocks through BENCH_ARGS; blocks are whole Williams designs (2 rows
# for two arms, 6 for three). The slice (--slice-us, default 4000) is
# scaled for TCG as in bench-host.
BENCH_ARGS ?= --levels "1:1 2:1 4:1" --arms "off v2 v2untold" --blocks 6 --boots 1 --icount 5 \
	--lockbench "lock=0 hold=500 think=5000;lock=1 hold=500 think=5000" --pipe 1
BENCH_QUICK_ARGS ?= --levels 2:1 --arms "off v2" --blocks 4 --boots 1 --icount 5 \
	--lockbench "lock=0 hold=500 think=5000;lock=1 hold=500 think=5000"
bench: images
	scripts/bench/paired.sh $(BENCH_ARGS)
bench-quick: images
	scripts/bench/paired.sh $(BENCH_QUICK_ARGS)
.PHONY: bench bench-quick

# Directed yield with and without its preference for a vCPU preempted in
# its section (host-patches/0012-0016; offrr = round-robin), where it has
# a choice: one 4-vCPU L2 on the 1-vCPU L1, its spinning vCPUs exiting
# through the pause filter of an L0 QEMU built with the suite's patches
# and scripts/qemu/0002-target-i386-emulate-the-SVM-pause-filter-under-TCG.patch
# (scripts/qemu/build.sh, about 5 minutes once; needs the packages it
# names). The filter's count and threshold are in TCG's terms
# (docs/benchmarks.md, "Directed yield"). Four L1 boots of 4 blocks, two
# locks: 30 minutes on an idle host. Results in results/bench/.
QEMU_PAUSE_FILTER_PATCH = scripts/qemu/0002-target-i386-emulate-the-SVM-pause-filter-under-TCG.patch
BENCH_YIELD_ARGS ?= --levels 4:1-1vm --arms "offrr off" --blocks 4 --boots 4 --pause-filter 300:65535 \
	--lockbench "lock=0 hold=500 think=5000;lock=1 hold=500 think=5000"
bench-yield: images
	qemu=$$(scripts/qemu/build.sh $(QEMU_PATCHES) $(QEMU_PAUSE_FILTER_PATCH)) && \
		ECS_QEMU=$$qemu scripts/bench/paired.sh $(BENCH_YIELD_ARGS)
.PHONY: bench-yield

# The call_rcu() memory microbenchmark (the paper's Table 2): a pinned
# 2-vCPU guest, baseline then with CPU hogs on the same host CPUs. Results
# in results/bench-rcu/<time>-<commit>/. See scripts/bench/rcu.sh.
BENCH_RCU_ARGS ?= --duration 20
bench-rcu: images
	scripts/bench/rcu.sh $(BENCH_RCU_ARGS)
.PHONY: bench-rcu

# The eCS annotation's cost (the paper's Table 4) in a pinned 2-vCPU guest,
# beside the instructions it adds in vmlinux. Results in
# results/bench-cost/<time>-<commit>/. See scripts/bench/cost.sh.
BENCH_COST_ARGS ?= --repeat 3 -- iterations=50000 rounds=20
bench-cost: images
	scripts/bench/cost.sh $(BENCH_COST_ARGS)
.PHONY: bench-cost

# The eCS host side in a 1-vCPU L1 with L2 guests:
# in-section preemptions avoided, Figure 7 fairness, rcu_membench, without
# and with KVM's slice extension (kvm.ecs_slice_us). Results in
# results/bench-host/<time>-<commit>/. See scripts/bench/host.sh. The
# slice is scaled for TCG, where the L2's kernel runs far slower and every
# exit costs far more than on hardware (the paper's bound is 1 ms).
BENCH_HOST_ARGS ?= --repeat 3 --slice-us 4000
bench-host: images
	scripts/bench/host.sh $(BENCH_HOST_ARGS)
.PHONY: bench-host

# eSCHDSPIN (the paper's Figure 6): the Psearchy-like load in L2
# guests of a 1-vCPU L1 (one, two and four L2 vCPUs on its CPU) and of a
# 2-vCPU L1 (not dependable), under each waiting policy (about 35 min). Results in results/bench-spin/<time>-<commit>/. See
# scripts/bench/spin.sh.
BENCH_SPIN_ARGS ?= --repeat 2
bench-spin: images
	scripts/bench/spin.sh $(BENCH_SPIN_ARGS)
.PHONY: bench-spin
