// SPDX-License-Identifier: GPL-2.0
/*
 * A user-space critical section under rseq's time slice extension, for
 * scripts/bench/vm/lockbench_load.sh --rseq: once the guest kernel has
 * granted a task an extension, does the host still take the vCPU away?
 * Not a test: it keeps cumulative counters in a file that the
 * benchmark's snapshots copy (scripts/bench/paired-report.py reads them).
 *
 *   rseq_slice_load STATS_FILE [SECTION_US [NOISE_US [SLEEP_US]]]
 *
 * On every CPU it may run on, a worker thread and a noise thread, pinned
 * there (the arrangement of the pinned tree's rseq slice_test). The noise
 * thread wakes every SLEEP_US (50) and spins NOISE_US (2), so the guest
 * scheduler wants the worker's CPU now and then while the worker is in
 * its section: that is where the kernel grants. With SLEEP_US 0 it never
 * sleeps, a CPU-bound neighbour: the grants then come at the ticks that
 * end the worker's slice, with no timer interrupts of its own (in a
 * nested guest every timer interrupt costs exits). The worker loops: ask
 * for an extension, spin SECTION_US (20) of wall time reading the TSC,
 * then give the CPU back with rseq_slice_yield() if it was granted. Not
 * the vDSO clock: where the clocksource cannot be read from user space
 * (a kvmclock not marked stable), clock_gettime() is a system call, and a
 * system call ends the grant.
 *
 * Per section it records the longest gap between two TSC readings:
 * after the grant was seen for a granted section, anywhere for one
 * without a grant. The guest preempts a granted task only at the grant's
 * bound (rseq_slice_extension_nsec, 5-50 us); the noise thread's turn
 * takes microseconds. A long gap after the grant (the report counts 512 us
 * or more, docs/benchmarks.md) is the vCPU losing its CPU to the host,
 * which eCS's host side is there to prevent. The file, rewritten every
 * 100 ms:
 *
 *   sections N          sections run
 *   granted N           sections the kernel granted an extension in
 *   yield_late N        grants already over at the yield (bound expired)
 *   unseen N            sections whose request the kernel cleared without
 *                       the worker seeing a grant: refused, or granted and
 *                       revoked before the worker could look
 *   granted_gap H...    granted sections by their longest gap after the
 *                       grant, log2 microsecond buckets (bucket b counts
 *                       gaps in [2^b, 2^(b+1)) us, bucket 0 also < 1 us)
 *   plain_gap H...      sections without a grant, by their longest gap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rseq.h"

#ifndef __NR_rseq_slice_yield
#define __NR_rseq_slice_yield	471
#endif
#ifndef PR_RSEQ_SLICE_EXTENSION
#define PR_RSEQ_SLICE_EXTENSION		79
#define PR_RSEQ_SLICE_EXTENSION_SET	2
#define PR_RSEQ_SLICE_EXT_ENABLE	0x01
#endif

#define BUCKETS	24

struct worker {
	int cpu;
	uint64_t sections;
	uint64_t granted;
	uint64_t yield_late;
	uint64_t unseen;
	uint64_t granted_gap[BUCKETS];
	uint64_t plain_gap[BUCKETS];
} __attribute__((aligned(64)));

static int64_t section_ns = 20000, noise_ns = 2000, sleep_ns = 50000;
/* TSC ticks per microsecond, measured at start (calibrate()). */
static double tsc_per_us;

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The TSC's rate against CLOCK_MONOTONIC over 200 ms. */
static void calibrate(void)
{
	struct timespec nap = { .tv_nsec = 200000000 };
	int64_t t0 = now_ns();
	uint64_t c0 = rdtsc();

	nanosleep(&nap, NULL);
	tsc_per_us = (double)(rdtsc() - c0) * 1000 / (now_ns() - t0);
	if (tsc_per_us < 1) {
		fprintf(stderr, "rseq_slice_load: TSC runs at %.3f ticks/us\n", tsc_per_us);
		exit(1);
	}
}

static int bucket(uint64_t gap_tsc)
{
	uint64_t us = gap_tsc / tsc_per_us;
	int b = 0;

	while (us > 1 && b < BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

/* Only the worker writes its counters; the main thread reads them. */
static void bump(uint64_t *c)
{
	__atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("rseq_slice_load: sched_setaffinity");
		exit(1);
	}
}

static void *noise(void *arg)
{
	struct timespec nap = { .tv_nsec = sleep_ns };
	uint64_t spin = noise_ns / 1000 * tsc_per_us;

	pin(((struct worker *)arg)->cpu);
	for (;;) {
		uint64_t start = rdtsc();

		while (rdtsc() - start < spin)
			;
		if (sleep_ns)
			clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
	}
	return NULL;
}

static void *work(void *arg)
{
	uint64_t section = section_ns / 1000 * tsc_per_us;
	struct worker *w = arg;
	struct rseq_abi *rs;

	pin(w->cpu);
	if (rseq_register_current_thread()) {
		perror("rseq_slice_load: rseq registration");
		exit(1);
	}
	if (prctl(PR_RSEQ_SLICE_EXTENSION, PR_RSEQ_SLICE_EXTENSION_SET,
		  PR_RSEQ_SLICE_EXT_ENABLE, 0, 0)) {
		perror("rseq_slice_load: PR_RSEQ_SLICE_EXTENSION");
		exit(1);
	}
	rs = rseq_get_abi();
	for (;;) {
		uint64_t start, last, t, gap = 0, gap_granted = 0;
		bool granted = false;

		RSEQ_WRITE_ONCE(rs->slice_ctrl.request, 1);
		start = last = rdtsc();
		do {
			t = rdtsc();
			if (t - last > gap)
				gap = t - last;
			if (granted && t - last > gap_granted)
				gap_granted = t - last;
			last = t;
			if (!granted && RSEQ_READ_ONCE(rs->slice_ctrl.granted))
				granted = true;
		} while (t - start < section);
		/* The kernel clears the request when it grants or revokes. */
		if (!granted && !RSEQ_READ_ONCE(rs->slice_ctrl.request) &&
		    !RSEQ_READ_ONCE(rs->slice_ctrl.granted))
			bump(&w->unseen);
		RSEQ_WRITE_ONCE(rs->slice_ctrl.request, 0);
		/* A grant that came between the last reading and the clear. */
		if (!granted && RSEQ_READ_ONCE(rs->slice_ctrl.granted))
			granted = true;
		bump(&w->sections);
		if (granted) {
			bump(&w->granted);
			bump(&w->granted_gap[bucket(gap_granted)]);
			/* 0: the grant was revoked before this call. */
			if (!syscall(__NR_rseq_slice_yield))
				bump(&w->yield_late);
		} else {
			bump(&w->plain_gap[bucket(gap)]);
		}
	}
	return NULL;
}

static void print_hist(FILE *f, const char *name, struct worker *w, int n, size_t off)
{
	fprintf(f, "%s", name);
	for (int b = 0; b < BUCKETS; b++) {
		uint64_t sum = 0;

		for (int i = 0; i < n; i++)
			sum += __atomic_load_n((uint64_t *)((char *)&w[i] + off) + b, __ATOMIC_RELAXED);
		fprintf(f, " %llu", (unsigned long long)sum);
	}
	fprintf(f, "\n");
}

static uint64_t sum(struct worker *w, int n, size_t off)
{
	uint64_t s = 0;

	for (int i = 0; i < n; i++)
		s += __atomic_load_n((uint64_t *)((char *)&w[i] + off), __ATOMIC_RELAXED);
	return s;
}

static int64_t arg_us(char *s, const char *name, long min)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < min || v > 999999) {
		fprintf(stderr, "rseq_slice_load: %s must be %ld..999999 us, got '%s'\n", name, min, s);
		exit(2);
	}
	return v * 1000LL;
}

int main(int argc, char **argv)
{
	struct timespec period = { .tv_nsec = 100000000 };
	struct worker *w;
	char tmp[4096];
	cpu_set_t set;
	int n = 0;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: rseq_slice_load STATS_FILE [SECTION_US [NOISE_US [SLEEP_US]]]\n");
		return 2;
	}
	if (argc > 2)
		section_ns = arg_us(argv[2], "SECTION_US", 1);
	if (argc > 3)
		noise_ns = arg_us(argv[3], "NOISE_US", 1);
	if (argc > 4)
		sleep_ns = arg_us(argv[4], "SLEEP_US", 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	calibrate();
	if (sched_getaffinity(0, sizeof(set), &set)) {
		perror("rseq_slice_load: sched_getaffinity");
		return 1;
	}
	w = aligned_alloc(64, sizeof(*w) * CPU_COUNT(&set));
	if (!w)
		return 1;
	memset(w, 0, sizeof(*w) * CPU_COUNT(&set));
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		pthread_t t;

		if (!CPU_ISSET(cpu, &set))
			continue;
		w[n].cpu = cpu;
		if (pthread_create(&t, NULL, work, &w[n]) || pthread_create(&t, NULL, noise, &w[n])) {
			fprintf(stderr, "rseq_slice_load: cannot start the threads of CPU %d\n", cpu);
			return 1;
		}
		n++;
	}
	for (;;) {
		FILE *f = fopen(tmp, "w");

		if (!f) {
			fprintf(stderr, "rseq_slice_load: %s: %s\n", tmp, strerror(errno));
			return 1;
		}
		fprintf(f, "sections %llu\n", (unsigned long long)sum(w, n, offsetof(struct worker, sections)));
		fprintf(f, "granted %llu\n", (unsigned long long)sum(w, n, offsetof(struct worker, granted)));
		fprintf(f, "yield_late %llu\n", (unsigned long long)sum(w, n, offsetof(struct worker, yield_late)));
		fprintf(f, "unseen %llu\n", (unsigned long long)sum(w, n, offsetof(struct worker, unseen)));
		print_hist(f, "granted_gap", w, n, offsetof(struct worker, granted_gap));
		print_hist(f, "plain_gap", w, n, offsetof(struct worker, plain_gap));
		if (fclose(f) || rename(tmp, argv[1])) {
			fprintf(stderr, "rseq_slice_load: cannot write %s\n", argv[1]);
			return 1;
		}
		nanosleep(&period, NULL);
	}
}
