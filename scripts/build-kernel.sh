#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the pinned kernel with our patch series and config, outside the repo.
#
#   scripts/build-kernel.sh [--scenario NAME] [--print-dir | --print-stamp]
#
# The tree lives in $ECS_CACHE/kernels/<version>-<scenario>/ (src/, build/,
# modroot/). What it holds is named by the stamp built-<key>, where <key>
# hashes the kernel version, both patch series, the config fragments and the
# toolchain: a finished key is never rebuilt, and a new key rebuilds only
# what its patches and config touch, because the tree stays where it is.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

scenario=default
print=
while [ $# -gt 0 ]; do
	case $1 in
	--scenario) scenario=$2; shift 2 ;;
	--print-dir) print=dir; shift ;;
	--print-stamp) print=stamp; shift ;;
	*) die "unknown argument '$1' (see the header of $0)" ;;
	esac
done

dir=$(kernel_dir "$scenario")
stamp=$(kernel_stamp "$scenario")
case $print in
dir) echo "$dir"; exit 0 ;;
stamp) echo "$stamp"; exit 0 ;;
esac
if [ -f "$stamp" ]; then
	log "kernel $(basename "$dir") is up to date ($(basename "$stamp"))"
	exit 0
fi

[ -f "$PRISTINE_SRC/.complete" ] ||
	die "no pinned kernel source at $PRISTINE_SRC: run scripts/setup.sh first"
command -v bindgen >/dev/null || die "bindgen not found: run scripts/setup.sh first"

mkdir -p "$ECS_CACHE/kernels"
exec 9>"$ECS_CACHE/kernels/.lock"
flock 9
if [ -f "$stamp" ]; then
	log "kernel $(basename "$dir") was built while we waited"
	exit 0
fi

# Files a series touches, from the patches' headers.
patched_files() {
	local p
	for p in "$@"; do
		sed -n -e 's|^+++ b/||p' -e 's|^--- a/||p' "$p"
	done | sort -u
}

mapfile -t patches < <(all_patches)
if [ ! -d "$dir/src" ]; then
	log "creating source tree $dir/src"
	rm -rf "$dir/src.tmp"
	mkdir -p "$dir"
	# Hard links are safe: patch(1) and the restore below write files anew.
	cp -al "$PRISTINE_SRC" "$dir/src.tmp"
	rm -f "$dir/src.tmp/.complete"
	: > "$dir/applied-files"
	mv "$dir/src.tmp" "$dir/src"
fi

# Take the tree back to pristine where the last series touched it, then
# apply the current series. A file that ends up as it was keeps its old
# mtime, every other restored or patched file gets a fresh one, so make
# recompiles exactly what depends on what changed (a patch to KVM alone
# must not rebuild everything that includes a header another patch
# touches).
mapfile -t previous < "$dir/applied-files"
patched_files "${patches[@]}" | sort -u - "$dir/applied-files" > "$dir/applied-files.new"
mv "$dir/applied-files.new" "$dir/applied-files"
rm -rf "$dir/previous-files" && mkdir -p "$dir/previous-files"
for f in "${previous[@]}"; do
	[ -f "$dir/src/$f" ] || continue
	mkdir -p "$dir/previous-files/$(dirname "$f")"
	cp -p "$dir/src/$f" "$dir/previous-files/$f"
done
for f in "${previous[@]}"; do
	if [ -f "$PRISTINE_SRC/$f" ]; then
		cp --remove-destination "$PRISTINE_SRC/$f" "$dir/src/$f"
	else
		rm -f "$dir/src/$f"
	fi
done
for p in "${patches[@]}"; do
	patch -d "$dir/src" -p1 -s --no-backup-if-mismatch -f < "$p" ||
		die "patch ${p#"$ECS_REPO"/} does not apply to $KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION"
done
patched_files "${patches[@]}" > "$dir/applied-files"
for f in "${previous[@]}"; do
	if [ -f "$dir/previous-files/$f" ] && cmp -s "$dir/previous-files/$f" "$dir/src/$f"; then
		touch -r "$dir/previous-files/$f" "$dir/src/$f"
	fi
done
rm -rf "$dir/previous-files"

mkdir -p "$dir/build"
kmake() {
	make -C "$dir/src" O="$dir/build" $KMAKE_LLVM -j"$(nproc)" "$@"
}

mapfile -t fragments < <(config_fragments "$scenario")
cat "${fragments[@]}" > "$dir/build/ecs.fragment"
kmake -s KCONFIG_ALLCONFIG="$dir/build/ecs.fragment" allnoconfig
# Kconfig drops an option whose dependencies fail without a word; we don't.
# A scenario's fragment overrides the base: only an option's last
# assignment counts.
missing=0
# shellcheck disable=SC1087 # awk's arrays, in single quotes
while IFS= read -r line; do
	name=${line%%=*}
	if [ "${line#*=}" = n ]; then
		grep -q "^$name=" "$dir/build/.config" || continue
	else
		grep -qxF "$line" "$dir/build/.config" && continue
	fi
	echo "error: $line was requested but .config has: $(grep -E "^(# )?$name[= ]" "$dir/build/.config" || echo nothing)" >&2
	missing=1
done < <(grep -v -e '^#' -e '^$' "$dir/build/ecs.fragment" | awk -F= '{ last[$1] = $0; order[NR] = $1 }
	END { for (i = 1; i <= NR; i++) if (!seen[order[i]]++) print last[order[i]] }')
[ $missing = 0 ] || die "the config fragments do not hold on this tree (see above)"
kmake -s rustavailable >/dev/null || die "the kernel does not accept this Rust toolchain (make rustavailable)"

rm -f "$dir"/built-*
start=$(date +%s)
targets_file=$(scenario_targets_file "$scenario")
if [ -n "$targets_file" ]; then
	# Compile only: the targets, and no warning in a file the series touch.
	mapfile -t targets < <(grep -v -e '^#' -e '^$' "$targets_file")
	log "compiling ${targets[*]} of $(basename "$dir") ($(basename "$stamp")) with $(nproc) jobs"
	# A run that found a warning left no stamp, but its objects are up to
	# date: compile the series' own files again, so the warning is seen
	# again rather than passed over.
	while IFS= read -r f; do
		case $f in *.c) rm -f "$dir/build/${f%.c}.o" ;; esac
	done < "$dir/applied-files"
	if ! kmake "${targets[@]}" 2>&1 | tee "$dir/build.log"; then
		die "the $scenario scenario does not compile (see $dir/build.log)"
	fi
	ours=$({ grep -E ': (warning|error):' "$dir/build.log" || true; } | while IFS= read -r w; do
		for f in $(cat "$dir/applied-files"); do
			case ${w%%:*} in "$f" | */"$f") echo "$w" ;; esac
		done
	done)
	[ -z "$ours" ] || die "warnings in files our series touch, on the $scenario scenario:
$ours"
	seconds=$(($(date +%s) - start))
	echo "$seconds" > "$dir/build-seconds"
	touch "$stamp"
	log "$scenario scenario compiled in $seconds s without a warning in our files"
	exit 0
fi
log "building $(basename "$dir") ($(basename "$stamp")) with $(nproc) jobs"
kmake bzImage modules
rm -rf "$dir/modroot"
kmake -s INSTALL_MOD_PATH="$dir/modroot" INSTALL_MOD_STRIP=1 modules_install
seconds=$(($(date +%s) - start))
echo "$seconds" > "$dir/build-seconds"
touch "$stamp"
log "kernel built in $seconds s: $dir/build/arch/x86/boot/bzImage"
