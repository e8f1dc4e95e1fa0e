// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's opt-in to eCS (KVM_CAP_X86_ECS, host-patches/0010) for a VMM
 * that does not know the capability, such as QEMU. Preloaded into it
 * (LD_PRELOAD), this library enables the capability on every VM the
 * process creates, right after KVM_CREATE_VM returns and so before any
 * vCPU exists, with the KVM_X86_ECS_* flags in $ECS_KVM_CAP_FLAGS (a
 * number; unset or 0: the library does nothing). It is what a VMM patch
 * would do; scripts/vm --kvm-ecs sets it up.
 *
 * A VM for which enabling fails ends the process with a message on
 * stderr: a VMM asked to opt in must not run the guest without it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* include/uapi/linux/kvm.h after host-patches/0010; Debian's lacks it. */
#ifndef KVM_CAP_X86_ECS
#define KVM_CAP_X86_ECS 1024
#endif

typedef int (*ioctl_fn)(int, unsigned long, ...);

static void enable_ecs(ioctl_fn real_ioctl, int vm_fd, unsigned long long flags)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_ECS, .args = { flags } };

	if (real_ioctl(vm_fd, KVM_ENABLE_CAP, &cap) == 0)
		return;
	fprintf(stderr, "kvm_ecs_optin: KVM_ENABLE_CAP(KVM_CAP_X86_ECS, %#llx): %s\n", flags,
		strerror(errno));
	_exit(1);
}

/* glibc's prototype: every ioctl of the process comes through here. */
int ioctl(int fd, unsigned long request, ...)
{
	static ioctl_fn real_ioctl;
	unsigned long long flags;
	const char *env;
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl)
		real_ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
	ret = real_ioctl(fd, request, arg);
	if (request == KVM_CREATE_VM && ret >= 0) {
		env = getenv("ECS_KVM_CAP_FLAGS");
		flags = env ? strtoull(env, NULL, 0) : 0;
		if (flags)
			enable_ecs(real_ioctl, ret, flags);
	}
	return ret;
}
