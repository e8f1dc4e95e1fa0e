// SPDX-License-Identifier: GPL-2.0
/*
 * A hackbench-like pipe ping-pong, for scripts/bench/vm/lockbench_load.sh
 * --pipe: the harm detector of the paired benchmark. Every message wakes
 * a task on the other vCPU, so the wake-up's IPI makes the host wake that
 * vCPU's thread, and that wake-up is a reschedule request against the
 * sender's vCPU, the kind of request the host's slice extension defers
 * while the sender is in a critical section. If deferring it delays the
 * wake-ups the guest depends on, the round trips get slower and rarer.
 * Not a test: it keeps cumulative counters in a file that the benchmark's
 * snapshots copy (scripts/bench/paired-report.py reads them).
 *
 *   pipe_pingpong STATS_FILE [PAIRS]
 *
 * PAIRS (default 1) pairs of threads, each pair two pipes: the pinger
 * writes one byte, the ponger reads it and writes it back, the pinger
 * reads it. With two or more CPUs the pinger of pair i is pinned to the
 * i-th allowed CPU and its ponger to the next one, so every message
 * crosses vCPUs; with one CPU both share it (the 1:1 level's negative
 * control). The file, rewritten every 100 ms:
 *
 *   roundtrips N       round trips completed
 *   roundtrip_ns H...  round trips by their time, log2 nanosecond buckets
 *                      (bucket b counts [2^b, 2^(b+1)) ns, bucket 0 also
 *                      0 ns), as ecs_lockbench's wait histogram
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS		32
#define MAX_PAIRS	64

struct pair {
	int ping[2], pong[2];
	int pinger_cpu, ponger_cpu;
	/* Written by the pinger, read by the writer of the file. */
	uint64_t roundtrips;
	uint64_t hist[BUCKETS];
} __attribute__((aligned(64)));

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "pipe_pingpong: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
		exit(1);
	}
}

/* Move one byte through fd, dying loudly on anything but a full transfer. */
static void xfer(int fd, int out)
{
	char c = 0;
	ssize_t r = out ? write(fd, &c, 1) : read(fd, &c, 1);

	if (r != 1) {
		fprintf(stderr, "pipe_pingpong: %s: %s\n", out ? "write" : "read",
			r < 0 ? strerror(errno) : "end of file");
		exit(1);
	}
}

static void *ponger(void *arg)
{
	struct pair *p = arg;

	pin(p->ponger_cpu);
	for (;;) {
		xfer(p->ping[0], 0);
		xfer(p->pong[1], 1);
	}
	return NULL;
}

static void *pinger(void *arg)
{
	struct pair *p = arg;

	pin(p->pinger_cpu);
	for (;;) {
		int64_t t0 = now_ns(), ns;
		int b = 0;

		xfer(p->ping[1], 1);
		xfer(p->pong[0], 0);
		ns = now_ns() - t0;
		while (b < BUCKETS - 1 && ns >= 2LL << b)
			b++;
		/* Relaxed: the file is a snapshot, each counter on its own. */
		__atomic_store_n(&p->hist[b], p->hist[b] + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&p->roundtrips, p->roundtrips + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int write_stats(const char *path, const char *tmp, struct pair *pairs, int n)
{
	uint64_t total = 0, hist[BUCKETS] = { 0 };
	FILE *f = fopen(tmp, "w");

	if (!f)
		return -1;
	for (int i = 0; i < n; i++) {
		total += __atomic_load_n(&pairs[i].roundtrips, __ATOMIC_RELAXED);
		for (int b = 0; b < BUCKETS; b++)
			hist[b] += __atomic_load_n(&pairs[i].hist[b], __ATOMIC_RELAXED);
	}
	fprintf(f, "roundtrips %llu\nroundtrip_ns", (unsigned long long)total);
	for (int b = 0; b < BUCKETS; b++)
		fprintf(f, " %llu", (unsigned long long)hist[b]);
	fprintf(f, "\n");
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

int main(int argc, char **argv)
{
	struct timespec period = { .tv_nsec = 100000000 };
	int cpus[CPU_SETSIZE], ncpus = 0, n = 1;
	struct pair *pairs;
	char tmp[4096];
	cpu_set_t set;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pipe_pingpong STATS_FILE [PAIRS]\n");
		return 2;
	}
	if (argc == 3) {
		char *end;
		long v = strtol(argv[2], &end, 10);

		if (*end || v < 1 || v > MAX_PAIRS) {
			fprintf(stderr, "pipe_pingpong: PAIRS wants 1-%d, got '%s'\n",
				MAX_PAIRS, argv[2]);
			return 2;
		}
		n = v;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if (sched_getaffinity(0, sizeof(set), &set)) {
		perror("pipe_pingpong: sched_getaffinity");
		return 1;
	}
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[ncpus++] = cpu;
	pairs = aligned_alloc(64, sizeof(*pairs) * n);
	if (!pairs)
		return 1;
	memset(pairs, 0, sizeof(*pairs) * n);
	for (int i = 0; i < n; i++) {
		struct pair *p = &pairs[i];
		pthread_t t;

		p->pinger_cpu = cpus[i % ncpus];
		p->ponger_cpu = cpus[(i + 1) % ncpus];
		if (pipe(p->ping) || pipe(p->pong)) {
			perror("pipe_pingpong: pipe");
			return 1;
		}
		if (pthread_create(&t, NULL, ponger, p) || pthread_create(&t, NULL, pinger, p)) {
			fprintf(stderr, "pipe_pingpong: cannot start pair %d\n", i);
			return 1;
		}
	}
	for (;;) {
		if (write_stats(argv[1], tmp, pairs, n)) {
			fprintf(stderr, "pipe_pingpong: cannot write %s: %s\n", argv[1],
				strerror(errno));
			return 1;
		}
		nanosleep(&period, NULL);
	}
}
