#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Pack the test VMs' initramfs (newc cpio, uncompressed: TCG unpacks it
# faster than it could decompress it).
#
#   mkinitramfs.sh guest KDIR OUT
#       busybox, /init, the kernel's modules, our modules, tests/ (as
#       /ecs/tests), the benchmarks' in-VM parts (scripts/bench/vm, as
#       /ecs/bench), the static C tools among them (in /ecs/bin) and
#       KDIR's rseq selftests (in /ecs/selftests/rseq).
#   mkinitramfs.sh host KDIR GUEST_CPIO OUT [L2_BZIMAGE]
#       all of the guest's, plus what an L1 KVM host needs to start L2
#       guests: qemu-system-x86_64 with its libraries and firmware, the
#       L2's kernel image (KDIR's own unless L2_BZIMAGE is given: the debug
#       L1 starts L2s of the default kernel), the guest initramfs (as
#       /ecs/bzImage and /ecs/guest.cpio) and KDIR's KVM selftests (in
#       /ecs/selftests/kvm, scripts/build-selftests.sh).
#
# KDIR is a directory made by build-kernel.sh (with build/ and modroot/);
# our modules are taken from $ECS_MODULES_DIR (default: none).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

kind=${1:-}
case $kind in
guest) [ $# = 3 ] || die "usage: $0 guest KDIR OUT"; kdir=$2; out=$3 ;;
host)
	[ $# = 4 ] || [ $# = 5 ] || die "usage: $0 host KDIR GUEST_CPIO OUT [L2_BZIMAGE]"
	kdir=$2 guest_cpio=$3 out=$4 l2_kernel=${5:-$2/build/arch/x86/boot/bzImage}
	;;
*) die "usage: $0 guest|host ..." ;;
esac
compgen -G "$kdir/built-*" >/dev/null || die "$kdir holds no finished kernel build"

root=$(mktemp -d "${TMPDIR:-/tmp}/ecs-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,lib,ecs/modules}

busybox=$(command -v busybox) || die "busybox not found: run scripts/setup.sh"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static (install busybox-static)"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 755 "$ECS_REPO/scripts/initramfs/init" "$root/init"
cp -a "$kdir/modroot/lib/modules" "$root/lib/"
if [ -n "${ECS_MODULES_DIR:-}" ]; then
	find "$ECS_MODULES_DIR" -name '*.ko' -exec cp {} "$root/ecs/modules/" \;
fi
mkdir -p "$root/ecs/scripts"
# Only what runs inside a VM: not the host-side crates and their build output.
rsync -a --exclude /host/ --exclude /scripts/ "$ECS_REPO/tests/" "$root/ecs/tests/"
# tests/lib/ktap.sh prints its results through the pinned tree's kselftest
# helpers.
helpers=$kdir/src/tools/testing/selftests/kselftest/ktap_helpers.sh
[ -r "$helpers" ] || die "$helpers not found: tests/lib/ktap.sh needs it"
cp "$helpers" "$root/ecs/tests/lib/"
cp "$ECS_REPO/scripts/vm" "$ECS_REPO/scripts/console-check" "$root/ecs/scripts/"
# console-check's patterns: the pinned tree's rcutorture console-badness.sh.
badness=$kdir/src/tools/testing/selftests/rcutorture/bin/console-badness.sh
[ -r "$badness" ] || die "$badness not found: console-check needs it"
cp "$badness" "$root/ecs/scripts/"
# The benchmarks' in-VM drivers and loads (make demo's too).
rsync -a --exclude '*.c' "$ECS_REPO/scripts/bench/vm/" "$root/ecs/bench/"
mkdir -p "$root/ecs/bin"
for src in scripts/bench/vm/psearchy_load.c scripts/bench/vm/pipe_pingpong.c tests/lib/ecs_msr_fuzz.c; do
	tool=$(basename "$src" .c)
	gcc -static -O2 -Wall -pthread -o "$root/ecs/bin/$tool" "$ECS_REPO/$src" ||
		die "cannot build $src statically (build-essential installs libc6-dev)"
done
# The pinned tree's selftests the VMs run (scripts/build-selftests.sh).
"$ECS_REPO/scripts/build-selftests.sh" "$kdir"
mkdir -p "$root/ecs/selftests"
cp -r "$kdir/selftests/rseq" "$root/ecs/selftests/rseq"
git -C "$ECS_REPO" rev-parse --short HEAD > "$root/ecs/COMMIT" 2>/dev/null || echo unknown > "$root/ecs/COMMIT"

if [ "$kind" = host ]; then
	qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found: run scripts/setup.sh"
	cp "$qemu" "$root/usr/bin/"
	# Every library qemu links, and the dynamic loader, at their own paths.
	ldd "$qemu" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	mkdir -p "$root/usr/share/qemu"
	for fw in bios-256k.bin kvmvapic.bin linuxboot.bin linuxboot_dma.bin; do
		src=$(find /usr/share/qemu /usr/share/seabios -name "$fw" 2>/dev/null | head -1)
		[ -n "$src" ] || die "QEMU firmware $fw not found"
		cp -L "$src" "$root/usr/share/qemu/$fw"
	done
	cp "$l2_kernel" "$root/ecs/bzImage"
	cp "$guest_cpio" "$root/ecs/guest.cpio"
	cp -r "$kdir/selftests/kvm" "$root/ecs/selftests/kvm"
	# The VMM's opt-in to eCS for that QEMU (scripts/vm --kvm-ecs).
	mkdir -p "$root/ecs/lib"
	gcc -shared -fPIC -O2 -Wall -o "$root/ecs/lib/kvm_ecs_optin.so" \
		"$ECS_REPO/tests/lib/kvm_ecs_optin.c" || die "cannot build tests/lib/kvm_ecs_optin.c"
fi

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(du -h "$out" | cut -f1)" >&2
