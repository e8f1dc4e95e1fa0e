# SPDX-License-Identifier: GPL-2.0
# The eCS suite: one pinned kernel (built outside the repo), our Rust
# modules, test VMs. See README.md.
#
#   make              kernel + modules + initramfs images
#   make demo         boot a TCG guest, load ecs_pvinfo, show its report
#   make check        every test: host-side cargo tests, then the KTAP
#                     selftests in a TCG guest and in an L2 guest of an
#                     L1 KVM host
#   make lint         rustfmt and clippy on our kernel modules
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

KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MODULES_OUT) LLVM=-$(LLVM_VERSION)
MODULE_SOURCES := Kbuild $(shell find modules -name '*.rs' -o -name Kbuild)
TEST_FILES := $(shell find tests -type f -not -path 'tests/host/*' -not -path 'tests/scripts/*')
INITRAMFS_INPUTS := scripts/mkinitramfs.sh scripts/initramfs/init scripts/vm $(TEST_FILES)

.PHONY: all kernel modules images demo check lint clean-modules
all: images

kernel: $(KERNEL_STAMP)
$(KERNEL_STAMP):
	scripts/build-kernel.sh --scenario $(SCENARIO)

modules: $(MODULES_OUT)/.built
$(MODULES_OUT)/.built: $(KERNEL_STAMP) $(MODULE_SOURCES)
	mkdir -p $(MODULES_OUT)
	$(KMAKE) modules
	touch $@

images: $(ECS_GUEST_INITRD) $(ECS_HOST_INITRD)
$(ECS_GUEST_INITRD): $(MODULES_OUT)/.built $(INITRAMFS_INPUTS)
	ECS_MODULES_DIR=$(MODULES_OUT) scripts/mkinitramfs.sh guest $(KERNEL_DIR) $@
$(ECS_HOST_INITRD): $(ECS_GUEST_INITRD) $(KERNEL_STAMP)
	ECS_MODULES_DIR=$(MODULES_OUT) scripts/mkinitramfs.sh host $(KERNEL_DIR) $(ECS_GUEST_INITRD) $@

demo: images
	scripts/vm --initrd $(ECS_GUEST_INITRD) --name demo -- /ecs/tests/demo.sh

check: images
	tests/run-all.sh

lint: $(KERNEL_STAMP)
	rustfmt --check --edition 2021 $(shell find modules -name '*.rs')
	$(KMAKE) CLIPPY=1 KRUSTFLAGS="-Dwarnings" modules
	touch $(MODULES_OUT)/.built

clean-modules:
	rm -rf $(MODULES_OUT)

# Reliability of two L2 guests at once in the L1 host (README figures).
CAMPAIGN_ARGS ?= --runs 20 --l1-smp 1
campaign: images
	scripts/nested-campaign.sh $(CAMPAIGN_ARGS)
.PHONY: campaign
