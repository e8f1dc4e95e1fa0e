#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side: bench_meta (scripts/lib/common.sh), the meta.json of every
# benchmark, writes valid JSON whatever its arguments hold: text with
# quotes and backslashes as strings, KEY:= as numbers, KEY@= as lists, and
# the run's common facts first.
. "$(dirname "$0")/../lib/ktap.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by scripts/lib/common.sh
ECS_REPO=$repo
. "$repo/scripts/lib/common.sh"
command -v qemu-system-x86_64 >/dev/null || ktap_missing_all "no qemu-system-x86_64"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ktap_begin 3
args='extension_us=4000 name="a \"b\"" path=C:\x'
bench_meta "$tmp/meta.json" policy_args="$args" blocks:=8 ratio:=0.5 levels@="2:1 4:1"
ktap_check valid-json /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/meta.json"
ktap_check values-typed /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert m["policy_args"] == sys.argv[2], m["policy_args"]
assert m["blocks"] == 8 and m["ratio"] == 0.5 and m["levels"] == ["2:1", "4:1"], m' "$tmp/meta.json" "$args"
ktap_check common-facts /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert list(m)[:6] == ["commit", "date", "host_cpus", "qemu", "qemu_binary", "loadavg_start"], list(m)
assert isinstance(m["host_cpus"], int) and m["qemu"].startswith("QEMU"), m
assert m["qemu_binary"].endswith("qemu-system-x86_64"), m' "$tmp/meta.json"
ktap_end
