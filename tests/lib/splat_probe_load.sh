#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of tests/scripts/splat_oracle.sh: load splat_probe with
# splat=KIND (none, warn, lockdep) and check the in-guest oracle,
# ktap_no_splat: it must pass where nothing happened, fail where the probe
# made a splat, and, after a fresh ktap_mark, pass again (a splat before
# the marker is not counted). The host then runs console-check on this
# guest's console.log, which must agree.
#
#   splat_probe_load.sh none|warn|lockdep
. /ecs/tests/lib/ktap.sh
ko=/ecs/modules/splat_probe.ko
ktap_require_module $ko
kind=$1
case $kind in
none) splat=0 ;;
warn) splat=1 ;;
lockdep) splat=2 ;;
*) echo "usage: splat_probe_load.sh none|warn|lockdep" >&2; exit 2 ;;
esac

ktap_begin 4
ktap_rejects rejects-splat-3 $ko splat_probe "splat=3" "splat=3 is out of range"
ktap_mark "probe-$kind"
ktap_check "load-splat-$kind" sh -c "insmod $ko splat=$splat && rmmod splat_probe"
# ktap_no_splat's own verdict (its last line), inverted where a splat is
# expected; run in a subshell, so that it is not counted here.
verdict=$(ktap_no_splat oracle "probe-$kind")
echo "$verdict" | grep '^# '
case $verdict in *"not ok"*) saw=1 ;; *) saw=0 ;; esac
if [ $kind = none ]; then
	ktap_check oracle-passes-clean-run [ $saw = 0 ]
else
	ktap_check "oracle-fails-$kind" [ $saw = 1 ]
fi
ktap_mark "after-$kind"
ktap_no_splat oracle-clean-after-mark "after-$kind"
ktap_end
