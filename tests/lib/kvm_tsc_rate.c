// SPDX-License-Identifier: GPL-2.0
/*
 * Does a vCPU's TSC run when KVM cannot give it the rate its VM asked for?
 *
 *   kvm_tsc_rate PPM
 *
 * Creates a VM, sets the VM's TSC rate PPM parts per million away from
 * the host's (KVM_SET_TSC_KHZ on the VM, before any vCPU exists: the same
 * state as a KVM that recorded the host's rate before the host refined
 * it), creates one vCPU and reads its TSC (MSR 0x10, as userspace does
 * for migration) twice, 200 ms apart. Prints both readings, the rates and
 * the TSC's apparent rate in MHz; exits 0 if the TSC advanced, 1 if it
 * stood still, 2 if KVM refused a step.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MSR_IA32_TSC 0x10

static int step(int ret, const char *what)
{
	if (ret < 0) {
		perror(what);
		exit(2);
	}
	return ret;
}

static uint64_t read_tsc(int vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = { .hdr.nmsrs = 1, .entry.index = MSR_IA32_TSC };

	if (step(ioctl(vcpu, KVM_GET_MSRS, &msrs), "KVM_GET_MSRS") != 1) {
		fprintf(stderr, "KVM_GET_MSRS: TSC not read\n");
		exit(2);
	}
	return msrs.entry.data;
}

int main(int argc, char **argv)
{
	struct timespec nap = { .tv_nsec = 200 * 1000 * 1000 };
	long host_khz, vm_khz, vcpu_khz, ppm;
	uint64_t before, after;
	int kvm, vm, vcpu;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PPM (the VM's TSC rate offset from the host's)\n", argv[0]);
		return 2;
	}
	ppm = strtol(argv[1], NULL, 10);
	kvm = step(open("/dev/kvm", O_RDWR), "/dev/kvm");
	vm = step(ioctl(kvm, KVM_CREATE_VM, 0), "KVM_CREATE_VM");
	host_khz = step(ioctl(vm, KVM_GET_TSC_KHZ, 0), "KVM_GET_TSC_KHZ (VM)");
	vm_khz = host_khz + host_khz * ppm / 1000000;
	step(ioctl(vm, KVM_SET_TSC_KHZ, vm_khz), "KVM_SET_TSC_KHZ (VM)");
	vcpu = step(ioctl(vm, KVM_CREATE_VCPU, 0), "KVM_CREATE_VCPU");
	vcpu_khz = step(ioctl(vcpu, KVM_GET_TSC_KHZ, 0), "KVM_GET_TSC_KHZ (vCPU)");
	before = read_tsc(vcpu);
	nanosleep(&nap, NULL);
	after = read_tsc(vcpu);
	printf("host %ld kHz, VM asked %ld kHz (%+ld ppm), vCPU %ld kHz\n",
	       host_khz, vm_khz, ppm, vcpu_khz);
	printf("vCPU TSC %llu, 200 ms later %llu: %.1f MHz\n",
	       (unsigned long long)before, (unsigned long long)after,
	       (double)(after - before) / 200000.0);
	return after > before ? 0 : 1;
}
