#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: scripts/setup.sh refuses a kernel version the mirror does not
# serve, names both versions, and touches no cache.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || ktap_missing_all "setup.sh needs root"
command -v apt-cache >/dev/null || ktap_missing_all "no apt"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/^KERNEL_DEBIAN_VERSION=.*/KERNEL_DEBIAN_VERSION=7.3.0-0~ecs-test/' "$repo/KERNEL_PIN" > "$tmp/pin"

ktap_begin 4
ECS_KERNEL_PIN=$tmp/pin ECS_CACHE=$tmp/cache "$repo/scripts/setup.sh" > "$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out" | tail -n 4
ktap_check refuses [ $rc != 0 ]
ktap_check names-pinned-version grep -q '7.3.0-0~ecs-test' "$tmp/out"
served=$(apt-cache madison linux-source-7.3 | awk -F'|' '$3 ~ /trixie-backports\// {gsub(/ /, "", $2); print $2}' | head -1)
ktap_check names-served-version grep -qF "serves ${served:-no version}" "$tmp/out"
ktap_check no-source-unpacked [ ! -e "$tmp/cache/src" ]
ktap_end
