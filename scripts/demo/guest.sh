#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The README's main job: load ecs_pvinfo in a fresh guest and show what
# KVM paravirtual interface this guest is offered.
set -e
echo "kernel: $(uname -r), $(nproc) vCPUs, commit $(cat /ecs/COMMIT)"
insmod /ecs/modules/ecs_pvinfo.ko
dmesg | grep ecs_pvinfo
cat /sys/kernel/debug/ecs_pvinfo/features
rmmod ecs_pvinfo
