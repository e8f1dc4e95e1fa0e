#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A guest load of short kernel critical sections with ordinary code between
# them, in the spirit of the paper's Psearchy: one worker per vCPU creates,
# reads and removes small files on a tmpfs and starts a short-lived process
# for each (fork, exec, mmap and munmap: mmap_lock, i_rwsem, dcache and
# page-table locks, RCU path walks). Not a test: for scripts/bench/host.sh.
#
#   file_churn_load.sh [--shim] SECONDS
#
#   --shim   load the eCS shim first (an annotated guest); without it the
#            guest is plain
#
# Prints "load-started" when the workers start, then "=== churn" and one
# line per worker: "worker N files F" (F files written and read), and
# "=== end". Exit 1 if the shim does not load or enable.
shim=
[ "${1:-}" = --shim ] && { shim=1; shift; }
seconds=${1:?usage: file_churn_load.sh [--shim] SECONDS}

if [ -n "$shim" ]; then
	insmod /ecs/modules/ecs.ko || exit 1
	state=$(sed -n 's/^state: //p' /sys/kernel/debug/ecs/state)
	[ "$state" = enabled ] || { echo "file_churn_load: shim state '$state', not enabled" >&2; exit 1; }
fi
dir=/tmp/churn
mkdir -p $dir
mount -t tmpfs churn $dir || exit 1

worker() {
	mkdir $dir/$1
	files=0
	end=$(($(date +%s) + seconds))
	while [ "$(date +%s)" -lt $end ]; do
		f=$((files % 10))
		echo "$files" > $dir/$1/$f
		cat $dir/$1/$f > /dev/null
		files=$((files + 1))
		[ $f = 9 ] && rm $dir/$1/*
	done
	echo "worker $1 files $files" > $dir/result-$1
}

n=$(grep -c '^processor' /proc/cpuinfo)
echo load-started
i=0
while [ $i -lt "$n" ]; do
	worker $i &
	i=$((i + 1))
done
wait
echo "=== churn"
cat $dir/result-*
umount $dir
echo "=== end"
