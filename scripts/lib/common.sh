# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034 # defines variables for the scripts that source it
# Shared by the host-side scripts: pins, cache layout, build key, toolchain.
# Source it from bash; it defines functions and variables only.

ECS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

die() { echo "error: $*" >&2; exit 1; }
log() { echo ">>> $*" >&2; }

# KERNEL_PIN is KEY=VALUE lines; read it without executing it.
# ECS_KERNEL_PIN names another pin file (the selftest of setup.sh uses it).
ECS_KERNEL_PIN=${ECS_KERNEL_PIN:-$ECS_REPO/KERNEL_PIN}
pin() {
	local v
	v=$(sed -n "s/^$1=//p" "$ECS_KERNEL_PIN")
	[ -n "$v" ] || die "$ECS_KERNEL_PIN has no $1"
	printf '%s\n' "$v"
}

KERNEL_PACKAGE=$(pin KERNEL_PACKAGE)
KERNEL_DEBIAN_VERSION=$(pin KERNEL_DEBIAN_VERSION)
LLVM_VERSION=$(pin LLVM_VERSION)

ECS_CACHE=${ECS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecs-suite}
KERNEL_DEB="$ECS_CACHE/debs/${KERNEL_PACKAGE}_${KERNEL_DEBIAN_VERSION}_all.deb"
PRISTINE_SRC="$ECS_CACHE/src/$KERNEL_DEBIAN_VERSION"

# Debian's own build of the pinned kernel, unpacked by scripts/setup.sh:
# vmlinuz and kvm-modules.cpio (KVM's modules, for an L1 of that kernel).
stock_dir() {
	echo "$ECS_CACHE/stock/$(pin STOCK_KERNEL_RELEASE)-$KERNEL_DEBIAN_VERSION"
}

# The kernel is built with LLVM (Rust wants it, and KASAN with Rust needs it).
KMAKE_LLVM="LLVM=-$LLVM_VERSION"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-$LLVM_VERSION/lib}

# Patch files of a series, in order, as paths.
series_patches() {
	local dir=$1 line
	[ -f "$dir/series" ] || return 0
	while IFS= read -r line; do
		line=${line%%#*}
		line=$(echo "$line" | tr -d '[:space:]')
		[ -n "$line" ] || continue
		[ -f "$dir/$line" ] || die "$dir/series names $line, which does not exist"
		printf '%s\n' "$dir/$line"
	done < "$dir/series"
}

all_patches() {
	series_patches "$ECS_REPO/guest-patches"
	series_patches "$ECS_REPO/host-patches"
}

# Config fragments of a scenario: the base, plus the scenario's own.
config_fragments() {
	local scenario=${1:-default}
	printf '%s\n' "$ECS_REPO/scripts/kconfig/base.config"
	if [ "$scenario" != default ]; then
		[ -f "$ECS_REPO/scripts/kconfig/$scenario.config" ] ||
			die "no config fragment scripts/kconfig/$scenario.config for scenario '$scenario'"
		printf '%s\n' "$ECS_REPO/scripts/kconfig/$scenario.config"
	fi
}

toolchain_id() {
	"clang-$LLVM_VERSION" --version 2>/dev/null | head -1
	rustc --version 2>/dev/null
	bindgen --version 2>/dev/null
}

# A scenario that only compiles some targets lists them in
# scripts/kconfig/<scenario>.targets; prints that file if there is one.
scenario_targets_file() {
	local f="$ECS_REPO/scripts/kconfig/${1:-default}.targets"
	[ ! -f "$f" ] || echo "$f"
}

# The build key: everything that changes the kernel image.
kernel_key() {
	local scenario=${1:-default}
	{
		echo "$KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION"
		echo "scenario $scenario"
		local f
		for f in $(all_patches) $(config_fragments "$scenario") $(scenario_targets_file "$scenario"); do
			echo "== ${f#"$ECS_REPO"/}"
			cat "$f"
		done
		toolchain_id
	} | sha256sum | cut -c1-16
}

# One build tree per kernel version and scenario, at a fixed path: kbuild
# records absolute paths, so a tree that moved would be rebuilt from scratch.
kernel_dir() {
	echo "$ECS_CACHE/kernels/$KERNEL_DEBIAN_VERSION-${1:-default}"
}

# The stamp saying the tree holds a finished build of this exact key.
kernel_stamp() {
	echo "$(kernel_dir "${1:-default}")/built-$(kernel_key "${1:-default}")"
}

# The commit the tree is at, "-dirty" appended if it has changes: the name
# results carry.
source_revision() {
	local commit
	commit=$(git -C "$ECS_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if git -C "$ECS_REPO" status --porcelain 2>/dev/null | grep -q .; then
		commit=$commit-dirty
	fi
	echo "$commit"
}

# results_dir KIND [SUFFIX]: a new results/KIND/<UTC time>-<revision>SUFFIX.
results_dir() {
	local dir
	dir="$ECS_REPO/results/$1/$(date -u +%Y%m%dT%H%M%SZ)-$(source_revision)${2:-}"
	mkdir -p "$dir" && echo "$dir"
}

# vm_stopped_dead OUT: scripts/vm (--out OUT) ended the VM because its
# heartbeat (--heartbeat) stopped: nothing in it ran any more. A guest that
# is only slow keeps beating and meets its time limit instead.
vm_stopped_dead() {
	grep -q '^dead' "$1/timed-out" 2>/dev/null
}

# l1_tcg_threads VCPUS: how many QEMU threads an L1 host of VCPUS vCPUs
# runs on (scripts/vm --tcg-threads). A 2-vCPU L1 is dependable only on
# one thread, with the suite's QEMU (docs/nested-reliability.md); its CPUs
# then take turns, so such an L1 must halt when idle, not poll.
l1_tcg_threads() {
	if [ "$1" -gt 1 ]; then echo single; else echo multi; fi
}

# vm_reset OUT: the guest that scripts/vm (--out OUT) ran ended by itself
# without an exit status: it reset (a triple fault, or a panic or reboot,
# under -no-reboot), as a 2-vCPU L1 under TCG sometimes does
# (docs/nested-reliability.md). Not a time-out, not a QEMU error.
vm_reset() {
	[ ! -f "$1/timed-out" ] && grep -qx 'qemu_rc=0' "$1/status" 2>/dev/null &&
		grep -qx 'status=none' "$1/status"
}

# bench_dir KIND OUT: OUT (created) if a benchmark was given --out, else a
# new results_dir KIND.
bench_dir() {
	if [ -n "$2" ]; then
		mkdir -p "$2" && echo "$2"
	else
		results_dir "$1"
	fi
}

# bench_meta FILE KEY=TEXT|KEY:=NUMBER|KEY@=WORDS...: FILE as the JSON
# object of a benchmark run: the commit, date, host CPUs, QEMU (version and
# binary) and load average, then the given keys, a TEXT as a string, a
# NUMBER as a number, WORDS as a list of strings. JSON-escaped, so
# arguments with quotes or backslashes cannot break it.
bench_meta() {
	local file=$1
	shift
	/usr/bin/python3 - "$file" commit="$(source_revision)" \
		date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" host_cpus:="$(nproc)" \
		qemu="$("${ECS_QEMU:-qemu-system-x86_64}" --version | head -1)" \
		qemu_binary="${ECS_QEMU:-qemu-system-x86_64}" \
		loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)" "$@" <<'EOF'
import json
import re
import sys

meta = {}
for arg in sys.argv[2:]:
    key, kind, value = re.match(r"(\w+)(:=|@=|=)(.*)", arg, re.S).groups()
    meta[key] = {"=": value, "@=": value.split()}.get(kind) if kind != ":=" else json.loads(value)
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
EOF
}

# The calling script's header comment, from line 3 to its `set -uo`.
usage() {
	sed -n '3,/^set -uo/p' "$0" | sed -e '/^set -uo/d' -e 's/^# \{0,1\}//' >&2
}

# slice_us_valid WHO US: exit 2 with WHO's message unless US is in
# kvm.ecs_slice_us's range, 5 to 10000.
slice_us_valid() {
	[ "$2" -ge 5 ] && [ "$2" -le 10000 ] ||
		{ echo "$1: --slice-us wants 5 to 10000 (kvm.ecs_slice_us's range)" >&2; exit 2; }
}

# bench_option PROG OPTION VALUE: the options every benchmark takes besides
# its own: --out DIR and --report-only DIR (set $out, $report_only), -h
# (the usage, then exit); anything else is an error that exits.
bench_option() {
	case $2 in
	--out) out=$3 ;;
	--report-only) report_only=$3 ;;
	-h | --help) usage; exit 2 ;;
	*) echo "$1: unknown argument '$2'" >&2; exit 2 ;;
	esac
}
