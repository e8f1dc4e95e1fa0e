#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the pinned kernel with our patch series and config, outside the repo.
#
#   scripts/build-kernel.sh [--scenario NAME] [--print-dir]
#
# The output lives in $ECS_CACHE/kernels/<version>-<scenario>-<key>/, where
# <key> hashes the kernel version, both patch series, the config fragments
# and the toolchain. A finished key is never rebuilt. A new key starts from
# a copy of the previous build of the same scenario, so a patch or config
# change recompiles only what it touches.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

scenario=default
print_dir=0
while [ $# -gt 0 ]; do
	case $1 in
	--scenario) scenario=$2; shift 2 ;;
	--print-dir) print_dir=1; shift ;;
	*) die "unknown argument '$1' (see the header of $0)" ;;
	esac
done

dir=$(kernel_dir "$scenario")
if [ $print_dir = 1 ]; then
	echo "$dir"
	exit 0
fi
if [ -f "$dir/.complete" ]; then
	log "kernel $(basename "$dir") is up to date"
	exit 0
fi

[ -f "$PRISTINE_SRC/.complete" ] ||
	die "no pinned kernel source at $PRISTINE_SRC: run scripts/setup.sh first"
command -v bindgen >/dev/null || die "bindgen not found: run scripts/setup.sh first"

mkdir -p "$ECS_CACHE/kernels"
exec 9>"$ECS_CACHE/kernels/.lock"
flock 9

latest="$ECS_CACHE/kernels/latest-$KERNEL_DEBIAN_VERSION-$scenario"

# Files a series touches, from the patches' headers.
patched_files() {
	local p
	for p in "$@"; do
		sed -n -e 's|^+++ b/||p' -e 's|^--- a/||p' "$p"
	done | sort -u
}

if [ ! -d "$dir/src" ]; then
	log "preparing source tree $(basename "$dir")"
	rm -rf "$dir/src.tmp"
	mkdir -p "$dir"
	# Hard links are safe: patch(1) writes each file anew.
	cp -al "$PRISTINE_SRC" "$dir/src.tmp"
	rm -f "$dir/src.tmp/.complete"
	mapfile -t patches < <(all_patches)
	for p in "${patches[@]}"; do
		patch -d "$dir/src.tmp" -p1 -s --no-backup-if-mismatch -f < "$p" ||
			die "patch ${p#"$ECS_REPO"/} does not apply to $KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION"
	done
	patched_files "${patches[@]}" > "$dir/patched-files"
	mv "$dir/src.tmp" "$dir/src"
fi

if [ ! -d "$dir/build" ] && [ -d "$latest/build" ]; then
	log "seeding the build from $(basename "$(readlink -f "$latest")")"
	rm -rf "$dir/build.tmp"
	cp -a "$latest/build" "$dir/build.tmp"
	rm -f "$dir/build.tmp/.complete"
	# A file patched before but not now has an old mtime in the new tree and
	# would not be recompiled: give every file either series touches a fresh
	# private copy.
	sort -u "$latest/patched-files" "$dir/patched-files" | while read -r f; do
		[ -f "$dir/src/$f" ] || continue
		cp "$dir/src/$f" "$dir/src/$f.fresh"
		mv "$dir/src/$f.fresh" "$dir/src/$f"
	done
	mv "$dir/build.tmp" "$dir/build"
fi
mkdir -p "$dir/build"

kmake() {
	make -C "$dir/src" O="$dir/build" $KMAKE_LLVM -j"$(nproc)" "$@"
}

mapfile -t fragments < <(config_fragments "$scenario")
cat "${fragments[@]}" > "$dir/build/ecs.fragment"
kmake -s KCONFIG_ALLCONFIG="$dir/build/ecs.fragment" allnoconfig
# Kconfig drops an option whose dependencies fail without a word; we don't.
missing=0
while IFS= read -r line; do
	case $line in "#"* | "") continue ;; esac
	name=${line%%=*}
	if [ "${line#*=}" = n ]; then
		grep -q "^$name=" "$dir/build/.config" || continue
	else
		grep -qxF "$line" "$dir/build/.config" && continue
	fi
	echo "error: $line was requested but .config has: $(grep -E "^(# )?$name[= ]" "$dir/build/.config" || echo nothing)" >&2
	missing=1
done < "$dir/build/ecs.fragment"
[ $missing = 0 ] || die "the config fragments do not hold on this tree (see above)"
kmake -s rustavailable >/dev/null || die "the kernel does not accept this Rust toolchain (make rustavailable)"

log "building $(basename "$dir") with $(nproc) jobs"
start=$(date +%s)
kmake bzImage modules
rm -rf "$dir/modroot"
kmake -s INSTALL_MOD_PATH="$dir/modroot" INSTALL_MOD_STRIP=1 modules_install
echo "$(( $(date +%s) - start ))" > "$dir/build-seconds"
touch "$dir/.complete"
ln -sfn "$dir" "$latest"
log "kernel built in $(cat "$dir/build-seconds") s: $dir/build/arch/x86/boot/bzImage"
