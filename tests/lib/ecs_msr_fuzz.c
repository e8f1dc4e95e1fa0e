// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz MSR_KVM_ECS from a guest's user space, on every online vCPU at once.
 *
 *   ecs_msr_fuzz SECONDS SEED [HOTPLUG_CPU]
 *
 * One thread per online CPU, pinned to it, writes values that no host may
 * accept through /dev/cpu/N/msr (random ones with a reserved bit set,
 * enabled areas at random addresses above the guest's RAM or above its
 * MAXPHYADDR, and fixed edge values), reading the MSR before and after
 * each write. Every write must get #GP (EIO from the msr driver) and leave
 * the MSR as it was: the registration of the eCS shim, if it is loaded,
 * else 0. Values that would be valid (an enabled, aligned area inside RAM)
 * are never generated: the host would then write into guest memory that
 * this program does not own. With HOTPLUG_CPU, a further thread takes that
 * CPU offline and online again, over and over; an access to it while it
 * is offline fails with ENXIO, and a check that spans a hotplug is not
 * counted (the shim re-registers, or not, as it comes back).
 *
 * Prints one "key=value" line per counter and, for the first few bad
 * results, what was written where. Exits 0 if every write got #GP and no
 * registration changed, 1 if not, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MSR_KVM_ECS 0x4b564d80
#define KVM_MSR_ENABLED 1ull
#define ECS_RESERVED_MASK 0x3cull
#define MAX_CPUS 64
#define REPORTS_MAX 10

enum kind { K_RESERVED, K_BEYOND_RAM, K_ABOVE_MAXPHYADDR, K_EDGE, K_NR };
static const char *const kind_name[K_NR] = {
	"reserved-bits", "beyond-ram", "above-maxphyaddr", "edge",
};

static uint64_t beyond_ram;	/* first aligned address 4 GiB past the last RAM */
static unsigned int maxphyaddr;
static double deadline;
/* Odd while a hotplug is under way; a check that saw it change is void. */
static atomic_uint hotplug_gen;
static atomic_int reports;

struct worker {
	pthread_t thread;
	int cpu, fd;
	uint64_t rng;
	unsigned long writes[K_NR], gp[K_NR], accepted, changed, offline, other_errors, void_checks;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t value_of(enum kind k, uint64_t *rng)
{
	static const uint64_t edge[] = {
		~0ull, 1ull << 63 | KVM_MSR_ENABLED, ECS_RESERVED_MASK, 2,
		0x8000000000000003ull, 0x40 | 2, ~0ull << 6 | KVM_MSR_ENABLED,
	};
	uint64_t r = xorshift(rng), top;

	switch (k) {
	case K_RESERVED:
		/* Any value, but with at least one of bits 5:2 set. */
		return r | ((xorshift(rng) % 15 + 1) << 2);
	case K_BEYOND_RAM:
		/* Enabled, aligned, between the RAM's end and MAXPHYADDR. */
		top = 1ull << maxphyaddr;
		return ((beyond_ram + r % (top - beyond_ram)) & ~0x3full) | KVM_MSR_ENABLED;
	case K_ABOVE_MAXPHYADDR:
		/* Enabled, aligned, with an address bit at or above MAXPHYADDR. */
		return ((r | 1ull << (maxphyaddr + xorshift(rng) % (64 - maxphyaddr))) & ~0x3full) |
		       KVM_MSR_ENABLED;
	default:
		return edge[r % (sizeof(edge) / sizeof(edge[0]))];
	}
}

static void report(const struct worker *w, const char *what, uint64_t v, uint64_t before,
		   uint64_t after)
{
	if (atomic_fetch_add(&reports, 1) < REPORTS_MAX)
		printf("bad: cpu%d %s: wrote %#llx, MSR %#llx before, %#llx after\n", w->cpu, what,
		       (unsigned long long)v, (unsigned long long)before,
		       (unsigned long long)after);
}

static void *fuzz(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	int fd = w->fd;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (now() < deadline) {
		enum kind k = xorshift(&w->rng) % K_NR;
		uint64_t v = value_of(k, &w->rng), before, after;
		unsigned int gen = atomic_load(&hotplug_gen);

		/*
		 * ENXIO: the CPU is offline.  EIO would be #GP on RDMSR, which
		 * the host must never give for this MSR.
		 */
		if (pread(fd, &before, 8, MSR_KVM_ECS) != 8) {
			if (errno == ENXIO) {
				w->offline++;
				usleep(1000);
			} else {
				w->other_errors++;
				report(w, strerror(errno), 0, 0, 0);
			}
			continue;
		}
		w->writes[k]++;
		if (pwrite(fd, &v, 8, MSR_KVM_ECS) == 8) {
			w->accepted++;
			report(w, "accepted", v, before, before);
			/* Put the registration back, so that later checks mean something. */
			if (pwrite(fd, &before, 8, MSR_KVM_ECS) != 8)
				w->other_errors++;
			continue;
		}
		if (errno == ENXIO) {
			w->offline++;
			continue;
		}
		if (errno != EIO) {
			w->other_errors++;
			continue;
		}
		w->gp[k]++;
		if (pread(fd, &after, 8, MSR_KVM_ECS) != 8) {
			if (errno == ENXIO) {
				w->offline++;
			} else {
				w->other_errors++;
				report(w, strerror(errno), v, before, 0);
			}
			continue;
		}
		if (gen & 1 || atomic_load(&hotplug_gen) != gen) {
			w->void_checks++;
			continue;
		}
		if (after != before) {
			w->changed++;
			report(w, "changed", v, before, after);
		}
	}
	return NULL;
}

static int write_online(int cpu, const char *val)
{
	char path[64];
	int fd, ok;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, val, 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static unsigned long hotplugs, hotplug_errors;

static void *hotplug(void *arg)
{
	int cpu = *(int *)arg;

	while (now() < deadline) {
		atomic_fetch_add(&hotplug_gen, 1);
		if (write_online(cpu, "0"))
			hotplug_errors++;
		usleep(50000);
		if (write_online(cpu, "1"))
			hotplug_errors++;
		atomic_fetch_add(&hotplug_gen, 1);
		hotplugs++;
		usleep(200000);
	}
	return NULL;
}

/* The end of the last "System RAM" range in /proc/iomem. */
static uint64_t ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	unsigned long long start, end, last = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "System RAM") && sscanf(line, " %llx-%llx", &start, &end) == 2)
			last = end;
	fclose(f);
	return last;
}

static unsigned int phys_bits(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	unsigned int bits = 0;
	char line[256];

	if (!f)
		return 0;
	while (!bits && fgets(line, sizeof(line), f))
		sscanf(line, "address sizes : %u bits physical", &bits);
	fclose(f);
	return bits;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_CPUS];
	unsigned long total[K_NR + 1] = { 0 }, gp = 0, accepted = 0, changed = 0, offline = 0;
	unsigned long other = 0, voids = 0;
	int ncpus, i, hp_cpu = -1;
	pthread_t hp_thread;
	uint64_t seed;

	if (argc < 3 || argc > 4 || atof(argv[1]) <= 0) {
		fprintf(stderr, "usage: ecs_msr_fuzz SECONDS SEED [HOTPLUG_CPU]\n");
		return 2;
	}
	seed = strtoull(argv[2], NULL, 0) | 1;
	if (argc == 4)
		hp_cpu = atoi(argv[3]);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	maxphyaddr = phys_bits();
	/*
	 * What keeps the values invalid is that no memslot lies there: the
	 * L2 (-machine pc, -nodefaults) has its ROMs and KVM's APIC page
	 * below 4 GiB and no RAM-backed device memory above its RAM.
	 */
	beyond_ram = (ram_end() + (1ull << 32)) & ~0x3full;
	if (ncpus < 1 || ncpus > MAX_CPUS || maxphyaddr < 32 || maxphyaddr > 63 ||
	    beyond_ram == 1ull << 32 || beyond_ram >= 1ull << maxphyaddr) {
		fprintf(stderr,
			"ecs_msr_fuzz: cannot size the guest (%d CPUs, %u address bits, RAM to %#llx)\n",
			ncpus, maxphyaddr, (unsigned long long)ram_end());
		return 2;
	}
	printf("seed=%#llx cpus=%d maxphyaddr=%u beyond_ram=%#llx hotplug_cpu=%d\n",
	       (unsigned long long)seed, ncpus, maxphyaddr, (unsigned long long)beyond_ram,
	       hp_cpu);
	/* Every device is opened before the hotplug thread can take its CPU away. */
	for (i = 0; i < ncpus; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/dev/cpu/%d/msr", i);
		workers[i].fd = open(path, O_RDWR);
		if (workers[i].fd < 0) {
			fprintf(stderr, "ecs_msr_fuzz: %s: %s\n", path, strerror(errno));
			return 2;
		}
	}
	deadline = now() + atof(argv[1]);
	for (i = 0; i < ncpus; i++) {
		workers[i].cpu = i;
		workers[i].rng = seed * (2 * i + 3);
		if (pthread_create(&workers[i].thread, NULL, fuzz, &workers[i])) {
			fprintf(stderr, "ecs_msr_fuzz: pthread_create failed\n");
			return 2;
		}
	}
	if (hp_cpu >= 0 && pthread_create(&hp_thread, NULL, hotplug, &hp_cpu)) {
		fprintf(stderr, "ecs_msr_fuzz: pthread_create failed\n");
		return 2;
	}
	for (i = 0; i < ncpus; i++) {
		struct worker *w = &workers[i];
		int k;

		pthread_join(w->thread, NULL);
		close(w->fd);
		for (k = 0; k < K_NR; k++) {
			total[k] += w->writes[k];
			total[K_NR] += w->writes[k];
			gp += w->gp[k];
		}
		accepted += w->accepted;
		changed += w->changed;
		offline += w->offline;
		other += w->other_errors;
		voids += w->void_checks;
	}
	if (hp_cpu >= 0)
		pthread_join(hp_thread, NULL);
	for (i = 0; i < K_NR; i++)
		printf("writes_%s=%lu\n", kind_name[i], total[i]);
	printf("writes=%lu\ngp=%lu\naccepted=%lu\nchanged=%lu\n", total[K_NR], gp, accepted,
	       changed);
	printf("offline=%lu\nother_errors=%lu\nvoid_checks=%lu\n", offline, other, voids);
	printf("hotplugs=%lu\nhotplug_errors=%lu\n", hotplugs, hotplug_errors);
	return accepted || changed || other || hotplug_errors || !total[K_NR] ? 1 : 0;
}
