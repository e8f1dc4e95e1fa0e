#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run every *.sh in a directory as one KTAP subtest each (kselftest style):
# a test's own KTAP is indented under its result line, its exit code
# (0 pass, 1 fail, 4 skip) decides the result, and a test that outlives
# its time limit fails. Each result is preceded by how long the test took.
#
#   run-suite.sh DIR [TIMEOUT_SECONDS]
#
# ECS_SUITE_ONLY="name ..." runs only those tests of DIR.
dir=$1
limit=${2:-600}
tests=$(ls "$dir"/*.sh 2>/dev/null)
if [ -n "${ECS_SUITE_ONLY:-}" ]; then
	tests=$(for t in $tests; do
		case " $ECS_SUITE_ONLY " in *" $(basename "$t" .sh) "*) echo "$t" ;; esac
	done)
fi
n=$(echo "$tests" | grep -c .)
echo "TAP version 13"
echo "1..$n"
i=0
fails=0
for t in $tests; do
	i=$((i + 1))
	name=$(basename "$t" .sh)
	rcfile=/tmp/ktap-rc.$$
	start=$(cut -d. -f1 /proc/uptime)
	{ timeout "$limit" "$t"; echo $? > "$rcfile"; } 2>&1 | sed 's/^/    /'
	rc=$(cat "$rcfile")
	echo "# $name took $(($(cut -d. -f1 /proc/uptime) - start))s"
	case $rc in
	0) echo "ok $i $name" ;;
	4) echo "ok $i $name # SKIP" ;;
	*) [ "$rc" = 124 ] || [ "$rc" = 143 ] && echo "# $name: timed out after ${limit}s"
	   echo "not ok $i $name # exit=$rc"; fails=$((fails + 1)) ;;
	esac
done
[ $fails -eq 0 ]
