// SPDX-License-Identifier: GPL-2.0
/*
 * A Psearchy-like load for the eSCHDSPIN benchmark and selftests: THREADS
 * threads of one process, each repeating for SECONDS
 *   - mmap/munmap of small and large anonymous regions, touching each (the
 *     process's mmap_lock, an rwsem taken for writing),
 *   - create, write, close and unlink of a file in one shared directory
 *     (the directory's i_rwsem for writing, the inode and dentry allocators).
 * Prints "ops N threads T seconds S" (N: rounds of both, all threads) and
 * exits 0, or prints the failing call and exits 1.
 *
 *   psearchy_load THREADS SECONDS DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SMALL_MAPS	8
#define SMALL_SIZE	(8 << 10)
#define LARGE_SIZE	(256 << 10)
#define FILE_SIZE	4096

static const char *dir;
static atomic_bool stop;
static atomic_bool failed;

static void fail(const char *what)
{
	fprintf(stderr, "psearchy_load: %s: %s\n", what, strerror(errno));
	atomic_store(&failed, true);
	atomic_store(&stop, true);
}

static int map_round(void)
{
	void *small[SMALL_MAPS];
	void *large;
	int i;

	for (i = 0; i < SMALL_MAPS; i++) {
		small[i] = mmap(NULL, SMALL_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (small[i] == MAP_FAILED) {
			fail("mmap");
			while (i--)
				munmap(small[i], SMALL_SIZE);
			return -1;
		}
		*(volatile char *)small[i] = 1;
	}
	large = mmap(NULL, LARGE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (large == MAP_FAILED)
		fail("mmap");
	else
		memset(large, 1, LARGE_SIZE);
	for (i = 0; i < SMALL_MAPS; i++)
		munmap(small[i], SMALL_SIZE);
	if (large != MAP_FAILED)
		munmap(large, LARGE_SIZE);
	return large == MAP_FAILED ? -1 : 0;
}

static int file_round(long id, unsigned long n)
{
	static const char data[FILE_SIZE];
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/t%ld-%lu", dir, id, n);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0) {
		fail("open");
		return -1;
	}
	if (write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
		fail("write");
	close(fd);
	if (unlink(path))
		fail("unlink");
	return atomic_load(&failed) ? -1 : 0;
}

static void *worker(void *arg)
{
	long id = (long)arg;
	unsigned long n = 0;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (map_round() || file_round(id, n))
			break;
		n++;
	}
	return (void *)n;
}

int main(int argc, char **argv)
{
	unsigned long total = 0;
	struct timespec t = { 0 };
	pthread_t *threads;
	long nthreads, i;
	int seconds;

	if (argc != 4 || (nthreads = atol(argv[1])) < 1 || nthreads > 1024 ||
	    (seconds = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: psearchy_load THREADS(1-1024) SECONDS(>0) DIR\n");
		return 2;
	}
	dir = argv[3];
	threads = calloc(nthreads, sizeof(*threads));
	if (!threads)
		return 1;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[i], NULL, worker, (void *)i)) {
			fprintf(stderr, "psearchy_load: pthread_create failed\n");
			atomic_store(&stop, true);
			nthreads = i;
			atomic_store(&failed, true);
			break;
		}
	}
	t.tv_sec = seconds;
	while (!atomic_load(&stop) && nanosleep(&t, &t) && errno == EINTR)
		;
	atomic_store(&stop, true);
	for (i = 0; i < nthreads; i++) {
		void *n;

		pthread_join(threads[i], &n);
		total += (unsigned long)n;
	}
	printf("ops %lu threads %ld seconds %d\n", total, nthreads, seconds);
	return atomic_load(&failed) ? 1 : 0;
}
