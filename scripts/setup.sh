#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prepare a fresh Debian bookworm machine (as root) to build and test the
# suite. Safe to rerun: every step checks before it acts.
#
#  - apt sources: bookworm-backports, trixie, trixie-backports; trixie is
#    pinned at priority 100 so nothing of bookworm's base (libc6 above all)
#    is ever upgraded from it;
#  - packages: kernel build tools, LLVM/clang/lld/libclang of one version,
#    busybox-static, QEMU 10 from bookworm-backports (its firmware),
#    matplotlib, pyelftools, the linters of make lint (shellcheck,
#    pyflakes), what building QEMU needs;
#  - the suite's L0 QEMU, built from Debian's source with the fix of
#    scripts/qemu/ (KERNEL_PIN's QEMU_PATCHES), into the cache;
#  - Rust: rust-src for the machine's rustup toolchain, bindgen-cli;
#  - the pinned kernel source (KERNEL_PIN), unpacked into the cache;
#  - Debian's own build of that kernel and its KVM modules, the control
#    L1 of the upstream KVM selftests.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

[ "$(id -u)" = 0 ] || die "run as root (it installs packages)"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release ||
	die "this setup is for Debian bookworm; /etc/os-release says: $(grep PRETTY_NAME /etc/os-release)"

KERNEL_SUITE=$(pin KERNEL_SUITE)
BINDGEN_VERSION=$(pin BINDGEN_VERSION)
QEMU_SUITE=$(pin QEMU_SUITE)
export DEBIAN_FRONTEND=noninteractive

sources=/etc/apt/sources.list.d/ecs-suite.sources
prefs=/etc/apt/preferences.d/ecs-suite-trixie
want_sources="Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
want_prefs="# Only what we ask for by name comes from trixie; the base stays bookworm.
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100"
update=0
if [ "$(cat $sources 2>/dev/null)" != "$want_sources" ]; then
	echo "$want_sources" > $sources
	update=1
fi
if [ "$(cat $prefs 2>/dev/null)" != "$want_prefs" ]; then
	echo "$want_prefs" > $prefs
	update=1
fi
stamp=/var/lib/apt/periodic/ecs-suite-update
if [ $update = 1 ] || [ ! -f $stamp ] || [ -n "$(find $stamp -mmin +360)" ]; then
	log "apt-get update"
	apt-get update -q
	mkdir -p "$(dirname $stamp)"
	touch $stamp
fi

libc_before=$(dpkg-query -W -f '${Version}' libc6)
packages=(
	build-essential flex bison bc libelf-dev libssl-dev cpio kmod file
	xz-utils zstd rsync busybox-static python3-matplotlib python3-pyelftools shellcheck pyflakes3
	ninja-build dpkg-dev pkg-config libglib2.0-dev libpixman-1-dev python3-venv
	"clang-$LLVM_VERSION" "lld-$LLVM_VERSION" "llvm-$LLVM_VERSION" "libclang-$LLVM_VERSION-dev"
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! qemu-system-x86_64 --version 2>/dev/null | grep -q 'version 10\.'; then
	log "installing QEMU 10 from $QEMU_SUITE"
	apt-get install -y -q --no-install-recommends -t "$QEMU_SUITE" qemu-system-x86
fi
qemu-system-x86_64 --version | grep -q 'version 10\.' ||
	die "QEMU 10 is required, have: $(qemu-system-x86_64 --version | head -1)"
[ "$(dpkg-query -W -f '${Version}' libc6)" = "$libc_before" ] ||
	die "libc6 changed from $libc_before: the trixie pin failed; fix /etc/apt/preferences.d"

# Rust: the machine's rustup toolchain plus rust-src and bindgen.
command -v rustup >/dev/null || die "rustup not found: this setup uses the machine's rustup toolchain"
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
if [ "$(bindgen --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --version "$BINDGEN_VERSION" bindgen-cli
fi

# download_deb PACKAGE VERSION DEST: fetch one package as DEST. apt-get
# download fetches the package alone, so none of trixie's dependencies
# are installed.
download_deb() {
	local tmp
	tmp=$(mktemp -d)
	# apt fetches as _apt when it can write the directory (and reach it).
	chown _apt "$tmp" 2>/dev/null || chmod 777 "$tmp"
	(cd "$tmp" && apt-get download -q "$1=$2") || die "cannot download $1 $2"
	mv "$tmp"/*.deb "$3"
	rmdir "$tmp"
}

# check_pinned_sha KEY FILE: FILE is what KERNEL_PIN's KEY says it is.
check_pinned_sha() {
	echo "$(pin "$1")  $2" | sha256sum -c --quiet || die "$2 does not match $1 in KERNEL_PIN"
}

# The pinned kernel source.
if [ ! -f "$PRISTINE_SRC/.complete" ]; then
	served=$(apt-cache madison "$KERNEL_PACKAGE" | awk -F'|' -v s="$KERNEL_SUITE" \
		'$3 ~ s"/" {gsub(/ /, "", $2); print $2}' | head -1)
	if [ "$served" != "$KERNEL_DEBIAN_VERSION" ]; then
		die "KERNEL_PIN wants $KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION but $KERNEL_SUITE serves ${served:-no version at all}.
       Re-pin deliberately: set KERNEL_DEBIAN_VERSION and KERNEL_DEB_SHA256 in KERNEL_PIN,
       then rebase guest-patches/ and host-patches/ onto the new tree."
	fi
	mkdir -p "$(dirname "$KERNEL_DEB")"
	if [ ! -f "$KERNEL_DEB" ]; then
		log "downloading $KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION"
		download_deb "$KERNEL_PACKAGE" "$KERNEL_DEBIAN_VERSION" "$KERNEL_DEB"
	fi
	check_pinned_sha KERNEL_DEB_SHA256 "$KERNEL_DEB"
	log "unpacking the kernel source into $PRISTINE_SRC"
	rm -rf "$PRISTINE_SRC.tmp"
	mkdir -p "$PRISTINE_SRC.tmp"
	dpkg-deb --fsys-tarfile "$KERNEL_DEB" |
		tar -xO "./usr/src/$KERNEL_PACKAGE.tar.xz" |
		tar -xJ -C "$PRISTINE_SRC.tmp" --strip-components=1
	rm -rf "$PRISTINE_SRC"
	mv "$PRISTINE_SRC.tmp" "$PRISTINE_SRC"
	touch "$PRISTINE_SRC/.complete"
fi
# Debian's own build of the same kernel, the control of the upstream KVM
# selftests (tests/run-all.sh, nested-host-stock): its vmlinuz, and KVM's
# modules as a cpio to append to the L1's initramfs. The linux-image
# package is only a meta package; the kernel is in linux-binary.
stock=$(stock_dir)
if [ ! -f "$stock/.complete" ]; then
	release=$(pin STOCK_KERNEL_RELEASE)
	log "downloading Debian's $release kernel and modules (the selftests' control)"
	rm -rf "$stock.tmp"
	mkdir -p "$stock.tmp/root"
	for p in binary:STOCK_BINARY_SHA256 modules:STOCK_MODULES_SHA256; do
		deb=$stock.tmp/linux-${p%%:*}.deb
		download_deb "linux-${p%%:*}-$release" "$KERNEL_DEBIAN_VERSION" "$deb"
		check_pinned_sha "${p#*:}" "$deb"
		dpkg-deb -x "$deb" "$stock.tmp/root"
		rm "$deb"
	done
	mods=$stock.tmp/root/usr/lib/modules/$release
	mv "$mods/vmlinuz" "$stock.tmp/vmlinuz"
	# Only what an L1 KVM host needs, uncompressed for busybox's modprobe.
	cpioroot=$stock.tmp/cpio
	for m in arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko virt/lib/irqbypass.ko; do
		mkdir -p "$cpioroot/lib/modules/$release/kernel/$(dirname "$m")"
		xz -dc "$mods/kernel/$m.xz" > "$cpioroot/lib/modules/$release/kernel/$m"
	done
	# None built in, no order to keep: depmod wants the files all the same.
	touch "$cpioroot/lib/modules/$release/"{modules.order,modules.builtin,modules.builtin.modinfo}
	depmod -b "$cpioroot" "$release"
	(cd "$cpioroot" && find . | cpio -o -H newc 2>/dev/null) > "$stock.tmp/kvm-modules.cpio"
	rm -rf "$stock.tmp/root" "$cpioroot"
	rm -rf "$stock"
	mv "$stock.tmp" "$stock"
	touch "$stock/.complete"
fi
# The suite's L0 QEMU: Debian's source of QEMU_SOURCE_VERSION with
# QEMU_PATCHES (the fix of the 2-vCPU L1 fault), cached by its key; make
# exports it as ECS_QEMU. About 4 minutes on two cores, once; last, so
# that a wrong kernel pin is refused before anything is built.
read -ra qemu_patches <<< "$(pin QEMU_PATCHES)"
suite_qemu=$(cd "$ECS_REPO" && scripts/qemu/build.sh "${qemu_patches[@]}") || die "building the suite's QEMU failed"

log "setup done: $KERNEL_PACKAGE $KERNEL_DEBIAN_VERSION, $("$suite_qemu" --version | head -1) ($suite_qemu), $(rustc --version), $(bindgen --version)"
