#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build QEMU's x86_64 system emulator (TCG, no GUI, no tools, no docs) from
# Debian's source package, with patches of scripts/qemu/, into the cache.
# scripts/setup.sh builds the suite's L0 QEMU so, with QEMU_PATCHES of
# KERNEL_PIN (the fix of the 2-vCPU L1 fault, docs/nested-reliability.md),
# and make exports it as ECS_QEMU; other patch sets are experiments
# (make bench-yield's pause filter).
#
#   scripts/qemu/build.sh [--if-built] [PATCH...]
#
# --if-built: print the build's path if it exists, else exit 1; never
# build.
# PATCH: files of scripts/qemu/ applied in order with patch -p1 (none: the
# package as Debian ships it). The source is QEMU_SOURCE_VERSION of
# KERNEL_PIN, fetched once with apt-get source from QEMU_SOURCE_SUITE
# through a deb-src list of its own (the system's apt sources are not
# touched). Each build lives in $ECS_CACHE/qemu/<version>-<key>, key = the
# patches' contents and this script; a build that exists is reused.
# Prints the path of a qemu-system-x86_64 that scripts/vm runs when given
# as ECS_QEMU. Needs ninja-build, libglib2.0-dev, libpixman-1-dev, flex,
# bison, python3-venv; meson comes from PyPI (QEMU 10 wants a newer one
# than bookworm's), into a venv of the cache.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

version=$(pin QEMU_SOURCE_VERSION)
MESON_VERSION=1.5.0
suite=$(pin QEMU_SOURCE_SUITE)
if_built=
[ "${1:-}" != --if-built ] || { if_built=1; shift; }
patches=()
for p in "$@"; do
	[ -f "$p" ] || die "no patch '$p'"
	patches+=("$(cd "$(dirname "$p")" && pwd)/$(basename "$p")")
done
key=$(cat "$0" ${patches[@]+"${patches[@]}"} | sha256sum | cut -c1-16)
src_dir=$ECS_CACHE/qemu/src
out=$ECS_CACHE/qemu/${version#*:}-$key
if [ -x "$out/build/qemu-system-x86_64" ] && [ -x "$out/qemu-system-x86_64" ]; then
	echo "$out/qemu-system-x86_64"
	exit 0
fi
[ -z "$if_built" ] || exit 1

for tool in ninja dpkg-source pkg-config flex bison; do
	command -v $tool > /dev/null || die "$tool not found (apt-get install ninja-build dpkg-dev pkg-config flex bison)"
done
pkg-config --exists glib-2.0 pixman-1 || die "glib or pixman headers missing (apt-get install libglib2.0-dev libpixman-1-dev)"

# The source package, once.
upstream=${version#*:}
upstream=${upstream%-*}
dsc=$src_dir/qemu_${version#*:}.dsc
if [ ! -f "$dsc" ]; then
	log "fetching Debian's qemu $version source from $suite"
	apt=$(mktemp -d)
	trap 'rm -rf "$apt"' EXIT
	mkdir -p "$apt/lists/partial" "$src_dir"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
		> "$apt/sources.list"
	opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$apt/lists")
	apt-get "${opts[@]}" -q update > /dev/null || die "apt-get update of $suite's sources failed"
	(cd "$src_dir" && apt-get "${opts[@]}" -q source --download-only "qemu=$version") ||
		die "cannot fetch the source of qemu $version"
fi

log "unpacking qemu $upstream into $out"
rm -rf "$out"
mkdir -p "$out"
dpkg-source --no-check -x "$dsc" "$out/src" > /dev/null || die "dpkg-source -x $dsc failed"
for p in ${patches[@]+"${patches[@]}"}; do
	log "applying $(basename "$p")"
	patch -d "$out/src" -p1 --no-backup-if-mismatch < "$p" > /dev/null || die "$(basename "$p") does not apply"
done

# QEMU 10 wants meson 1.5; bookworm has 1.0, and a +ds source has no
# vendored wheel of it. A venv of our own gets it from PyPI; QEMU's
# configure builds its own venv on top of the Python it is given and sees
# that one's packages.
venv=$ECS_CACHE/qemu/python-meson-$MESON_VERSION
if [ ! -x "$venv/bin/meson" ]; then
	log "installing meson $MESON_VERSION from PyPI into $venv"
	/usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q "meson==$MESON_VERSION" ||
		die "cannot install meson $MESON_VERSION (python3-venv, and PyPI reachable?)"
fi

log "configuring (x86_64 system emulator only)"
mkdir -p "$out/build"
(cd "$out/build" && ../src/configure --python="$venv/bin/python3" --target-list=x86_64-softmmu \
	--without-default-features --enable-tcg --enable-kvm --disable-fdt --disable-install-blobs \
	--disable-docs --disable-werror > configure.log 2>&1) ||
	{ tail -n 20 "$out/build/configure.log" >&2; die "configure failed, see $out/build/configure.log"; }
log "building"
start=$(date +%s)
nice ninja -C "$out/build" qemu-system-x86_64 > "$out/build/ninja.log" 2>&1 ||
	{ tail -n 20 "$out/build/ninja.log" >&2; die "build failed, see $out/build/ninja.log"; }
log "built in $(( $(date +%s) - start )) s"
# The firmware is not in a +ds source package: Debian's qemu-system-data,
# seabios and ipxe-qemu (installed with the binary QEMU) provide it.
cat > "$out/qemu-system-x86_64" <<EOF
#!/bin/sh
exec "$out/build/qemu-system-x86_64" -L /usr/share/qemu -L /usr/share/seabios "\$@"
EOF
chmod +x "$out/qemu-system-x86_64"
echo "$out/qemu-system-x86_64"
