#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# rcu_membench runs at its rate, reports callbacks and sane grace-period
# latencies, frees every object, refuses bad parameters with EINVAL and an
# error naming the parameter, stops on request and unloads mid-run without
# a splat. See docs/rcu_membench.md for the files it reads.
. /ecs/tests/lib/ktap.sh

ko=/ecs/modules/rcu_membench.ko
dir=/sys/kernel/debug/rcu_membench
ktap_require_module $ko

field() { sed -n "s/^$1: //p" $dir/summary; }
# wait_state STATE SECONDS: poll the summary until it says STATE.
wait_state() {
	_n=0
	while [ "$(field state)" != "$1" ] && [ $_n -lt $(($2 * 10)) ]; do
		sleep 0.1
		_n=$((_n + 1))
	done
	[ "$(field state)" = "$1" ]
}
loaded() { [ -d /sys/module/rcu_membench ]; }
unload() { loaded && rmmod rcu_membench; }

# Each bad parameter: "name=value" as given to insmod; the error must name it.
bad_params="obj_size=0 obj_size=1 obj_size=1048577 rate=0 rate=1000001
batch=0 rate=100,batch=101 duration=0 duration=3601 max_outstanding_bytes=0
max_outstanding_bytes=1023 cpus=$(($(nproc) + 1)) sample_every=0 series_ms=0
series_ms=1001"
n_bad=$(echo $bad_params | wc -w)

duration=3
rate=2500
ktap_begin $((28 + n_bad))
ktap_mark rcu_membench

# --- One full run with the paper's settings, shortened. ------------------
sunreclaim_before=$(ktap_settled_kb SUnreclaim)
ktap_check load insmod $ko duration=$duration
ktap_check report-present [ -r $dir/summary -a -r $dir/series -a -r $dir/gp_samples -a -w $dir/control ]
# Draining takes a grace period or two; 30 s allows a slow (TCG, debug) guest.
RUN_DRAIN_MAX_S=30
ktap_check run-done wait_state "done" $((duration + RUN_DRAIN_MAX_S))
sed 's/^/# /' $dir/summary 2>/dev/null

workers=$(field workers)
allocated=$(field allocated)
callbacks=$(field callbacks)
ktap_check one-worker-per-cpu [ "$workers" = "$(nproc)" ]
ktap_check callbacks-nonzero [ "${callbacks:-0}" -gt 0 ]
ktap_check every-object-freed [ "$callbacks" = "$allocated" -a \
	"$(field outstanding_objects)" = 0 -a "$(field outstanding_bytes)" = 0 ]
# Paced, not flat out: within [25%, 101%] of rate x duration x workers,
# plus one batch a worker. The low bound leaves room for a slow TCG host;
# below it the workers must have been busy at least RATE_BUSY_PCT of the
# run, so that the guest, not the pacing, held them back (a debug guest
# on a slow host reached 17% with its workers busy 54% of the time; a
# pacer that sleeps too long leaves them idle).
RATE_MIN_PCT=25
RATE_BUSY_PCT=25
# A worker's schedule holds it to rate x duration; 1% over is only margin.
RATE_MAX_PCT=101
# One batch (batch=10) a worker: a last batch may start just before the end.
RATE_EXTRA_PER_WORKER=10
nominal=$((rate * duration * ${workers:-1}))
busy_ms=$(($(field worker_cpu_ms) + 0))
elapsed_ms=$(($(field elapsed_ms) + 0))
if [ "${allocated:-0}" -lt $((nominal * RATE_MIN_PCT / 100)) ]; then
	ktap_info "rate-paced: $allocated of $nominal allocated, workers busy $busy_ms ms of $elapsed_ms ms x ${workers:-1}"
	ktap_check rate-paced [ $((busy_ms * 100)) -ge $((elapsed_ms * ${workers:-1} * RATE_BUSY_PCT)) ]
else
	ktap_check rate-paced [ "${allocated:-0}" -le $((nominal * RATE_MAX_PCT / 100 + RATE_EXTRA_PER_WORKER * ${workers:-1})) ]
fi
ktap_check no-alloc-failures [ "$(field alloc_failures)" = 0 ]

gp_n=$(field gp_samples)
gp_min=$(field gp_min_us)
gp_p50=$(field gp_p50_us)
gp_p90=$(field gp_p90_us)
gp_p99=$(field gp_p99_us)
gp_max=$(field gp_max_us)
gp_mean=$(field gp_mean_us)
# Every 10th object of each worker is timed (the default sample_every).
GP_SAMPLE_EVERY=10
ktap_check gp-sampled [ "${gp_n:-0}" -ge $((${allocated:-0} / GP_SAMPLE_EVERY - ${workers:-1})) -a "${gp_n:-0}" -gt 0 ]
# The summary's statistics, recomputed here from the raw samples (nearest
# rank, as the module documents): a wrong index, sort or sum breaks it.
gp_recomputed=$(awk '{ print $3 }' $dir/gp_samples | sort -n | awk '
	{ v[NR] = $1; sum += $1 }
	function rank(p,  r) { r = int((p * NR + 99) / 100); if (r < 1) r = 1; return v[r] }
	END { if (NR) printf "%d %d %d %d %d %d", v[1], rank(50), rank(90), rank(99), v[NR], int(sum / NR) }')
ktap_info "summary min p50 p90 p99 max mean: $gp_min $gp_p50 $gp_p90 $gp_p99 $gp_max $gp_mean; from gp_samples: $gp_recomputed"
ktap_check gp-stats-match-samples [ "$gp_recomputed" = "$gp_min $gp_p50 $gp_p90 $gp_p99 $gp_max $gp_mean" ]
# A grace period waits for a quiescent state on every CPU: at HZ=250 a
# median under GP_P50_MIN_US means the clock or the unit is wrong. Idle
# and paced, none takes GP_MAX_US (10 s: an RCU stall warning's order).
GP_P50_MIN_US=100
GP_MAX_US=10000000
ktap_check gp-plausible [ "${gp_p50:-0}" -ge $GP_P50_MIN_US -a "${gp_max:-$GP_MAX_US}" -lt $GP_MAX_US ]
ktap_check gp-samples-file [ "$(wc -l < $dir/gp_samples)" = "$gp_n" -a \
	"$(awk 'NF != 3 || $3 < 1 { bad++ } END { print bad + 0 }' $dir/gp_samples)" = 0 ]
ktap_check gp-samples-max [ "$(awk '$3 > m { m = $3 } END { print m + 0 }' $dir/gp_samples)" = "$gp_max" ]

series_n=$(field series_samples)
# Half the 100 a second of series_ms=10: a late sampler skips its slots.
SERIES_MIN_PER_S=50
ktap_check series-file [ "${series_n:-0}" -gt $((duration * SERIES_MIN_PER_S)) -a "$(wc -l < $dir/series)" = "$series_n" ]
ktap_check series-drains [ "$(tail -n 1 $dir/series)" = "$(tail -n 1 $dir/series | cut -d' ' -f1) 0 0" ]
series_peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' $dir/series)
ktap_check series-below-peak [ "$series_peak" -gt 0 -a "$series_peak" -le "$(field peak_outstanding_objects)" ]

ktap_check unload rmmod rcu_membench
ktap_check debugfs-removed [ ! -e $dir ]
# Had the run leaked its objects (about $allocated KiB), unreclaimable slab
# would have grown by that much; both figures are taken with the caches
# shrunk, so that KASAN's quarantine of freed objects is not counted.
sunreclaim_after=$(ktap_settled_kb SUnreclaim)
ktap_info "SUnreclaim ${sunreclaim_before} kB before load, ${sunreclaim_after} kB after unload"
# Catches a quarter of the objects leaked; clean debug run: +28 kB of 10,240.
SUNRECLAIM_GROWTH_MAX_PCT=25
ktap_check no-slab-growth [ $((sunreclaim_after - sunreclaim_before)) -lt $((${allocated:-0} * SUNRECLAIM_GROWTH_MAX_PCT / 100)) ]

# --- Bad parameters. --------------------------------------------------------
for p in $bad_params; do
	name=$(echo "$p" | sed 's/.*,//; s/=.*//')
	ktap_rejects "rejects-$p" $ko rcu_membench "$(echo "$p" | tr ',' ' ')" "rcu_membench: $name="
done
ktap_check not-loaded-after-rejects sh -c '! [ -d /sys/module/rcu_membench ]'

# --- The outstanding-bytes cap holds workers back. -----------------------------
cap=65536
# Each other worker may add one object (obj_size 1024) past the cap.
CAP_SLACK_PER_CPU_BYTES=1024
# A 2 s run and its drain; as RUN_DRAIN_MAX_S, room for a slow guest.
CAP_RUN_MAX_S=30
insmod $ko duration=2 rate=20000 max_outstanding_bytes=$cap
if wait_state "done" $CAP_RUN_MAX_S; then
	grep -E '^(allocated|peak_outstanding_bytes|cap_stalls|cap_stall_ms|gp_mean_us):' $dir/summary | sed 's/^/# cap: /'
	ktap_check cap-stalls [ "$(field cap_stalls)" -gt 0 ]
	ktap_check cap-respected [ "$(field peak_outstanding_bytes)" -le $((cap + CAP_SLACK_PER_CPU_BYTES * $(nproc))) ]
else
	ktap_fail cap-stalls "run did not finish"
	ktap_skip cap-respected "run did not finish"
fi
unload

# --- Stop through the control file. --------------------------------------------
insmod $ko autostart=0 duration=60
ktap_check control-idle [ "$(cat $dir/control 2>/dev/null)" = idle ]
echo start > $dir/control
sleep 1
ktap_check control-start [ "$(cat $dir/control)" = running ]
echo stop > $dir/control
ktap_check control-stop [ "$(field state)" = "done" -a "$(field stopped_early)" = 1 -a \
	"$(field outstanding_objects)" = 0 -a "$(field callbacks)" = "$(field allocated)" -a "$(field allocated)" -gt 0 ]
unload

# --- Unload in the middle of a run. --------------------------------------------
# rmmod waits out a grace period or two; 10 s is an RCU stall's order.
RMMOD_MAX_S=10
insmod $ko duration=60
sleep 1
running=$(field state)
start=$(cut -d. -f1 /proc/uptime)
if [ "$running" = running ] && rmmod rcu_membench; then
	took=$(($(cut -d. -f1 /proc/uptime) - start))
	ktap_check rmmod-mid-run [ $took -lt $RMMOD_MAX_S -a ! -e $dir ]
else
	ktap_fail rmmod-mid-run "state '$running' or rmmod failed"
	unload
fi
# Kernel threads show up in brackets, as [rcu_membench/0]; the pattern does
# not match its own command line.
left=$(ps | grep '\[rcu_membenc[h]')
[ -n "$left" ] && echo "$left" | sed 's/^/# /'
ktap_check no-threads-left [ -z "$left" ]

ktap_no_splat no-splat rcu_membench 'rcu_membench.*(stall|leak)'
ktap_end
