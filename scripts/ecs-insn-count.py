#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Count the instructions the eCS hooks add, from the vmlinux disassembly.

    ecs-insn-count.py [--vmlinux PATH] [--json FILE] [--objdump TOOL] [-v]
                      [--expect LABEL=OFF,ON]... [--expected-from DOC]

For every kvm_ecs_key site in a built, patched vmlinux (guest-patches/0002..
0006), print what the annotation adds to the path that contains it, with the
static key off (as booted) and on (after the ecs module enabled it), counted
in instructions of the disassembly; no pristine build is needed. pyelftools
reads the ELF and its jump table; llvm-objdump-19 disassembles, unless
--objdump or $OBJDUMP names another objdump (GNU objdump works too). The
benchmark table's paths come first, then every other function with a site,
then the spinlock, rwlock, irq and bh paths, which must have none; last, the
counts are checked against the hand counts in docs/ecs-guest.md's cost
table, the one place they are written. What counts as added, and why:
docs/ecs-guest.md, "How scripts/ecs-insn-count.py counts".

Exit status: 0; 1 if the vmlinux is missing, not x86-64 ELF or has no
kvm_ecs_key symbol, jump table or site, or no objdump is found; 2 if a check
fails (a count differs from the doc's, a labelled path has no site, a
no-site path has one).
"""
import argparse
import bisect
import collections
import functools
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

KEY_SYMBOL = "kvm_ecs_key"
OBJDUMPS = ("llvm-objdump-19", "llvm-objdump", "objdump")
# The benchmark table's paths, in its order; each is the function so named.
PATHS = ("mutex_lock", "mutex_unlock", "down_read", "up_read", "down_write",
         "up_write", "__rcu_read_lock", "__rcu_read_unlock", "__schedule")
# The preemption counter covers these: they must have no site.
NO_SITE_PATHS = (
    "_raw_spin_lock", "_raw_spin_unlock", "_raw_spin_lock_irqsave",
    "_raw_spin_unlock_irqrestore", "_raw_spin_lock_irq",
    "_raw_spin_unlock_irq", "_raw_spin_lock_bh", "_raw_spin_unlock_bh",
    "_raw_spin_trylock", "_raw_read_lock", "_raw_read_unlock",
    "_raw_write_lock", "_raw_write_unlock", "preempt_count_add",
    "preempt_count_sub", "__local_bh_enable_ip", "irq_enter", "irq_exit")
EXPECTED_DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "docs", "ecs-guest.md")
WALK_CAP = 64       # loop guard for the key-on walk
PROBE_CAP = 16      # how far a conditional branch's direction is looked at
# The site instruction as objtool leaves it in the image.
SITE_BYTES = {b"\x66\x90": "nop (2 bytes)",
              b"\x0f\x1f\x44\x00\x00": "nopl (5 bytes)"}
# struct kvm_ecs, to name the fields behind kvm_ecs_area+OFFSET.
KVM_PARA_H = "arch/x86/include/uapi/asm/kvm_para.h"
MASK = 2 ** 64 - 1
PREFIXES = {"lock", "rep", "repe", "repz", "repne", "repnz", "notrack",
            "data16", "addr32"}
RETURN_THUNKS = {"__x86_return_thunk", "__ret", "srso_return_thunk",
                 "retbleed_return_thunk", "its_return_thunk"}
LINE = re.compile(r"^\s*([0-9a-f]+):\s*(.*)$")
BRANCH_TARGET = re.compile(r"^(?:0x)?([0-9a-f]+)(?:\s+<[^>]*>)?$")

Sym = collections.namedtuple("Sym", "name value size type bind")


def die(msg):
    print(f"ecs-insn-count: {msg}", file=sys.stderr)
    sys.exit(1)


class Insn:
    def __init__(self, addr, mnem, ops):
        self.addr, self.mnem, self.ops, self.size = addr, mnem, ops, 0
        self.target = None      # direct branch or call target
        self.kind = "other"     # jmp, jcc, call, ret, trap, ijmp, other

    @property
    def end(self):
        return self.addr + self.size


class Vmlinux:
    """An x86-64 vmlinux: its symbols and jump table through pyelftools,
    its code through objdump, and a name for any address."""

    def __init__(self, path, tool):
        self.path, self.tool = path, tool
        self.file = open(path, "rb")
        try:
            self.elf = ELFFile(self.file)
        except ELFError as e:
            die(f"{path}: not an ELF file ({e})")
        if (self.elf.elfclass != 64 or not self.elf.little_endian
                or self.elf["e_machine"] != "EM_X86_64"):
            die(f"{path}: not a 64-bit little-endian x86-64 ELF file")
        self.symbols = [
            Sym(s.name, s["st_value"], s["st_size"], s["st_info"]["type"],
                s["st_info"]["bind"])
            for sec in self.elf.iter_sections()
            if isinstance(sec, SymbolTableSection)
            for s in sec.iter_symbols()
            if s.name and s["st_shndx"] != "SHN_UNDEF"
            and s["st_info"]["type"] not in ("STT_SECTION", "STT_FILE")]
        # On ties (aliases) a global one first.
        self.funcs = sorted((s for s in self.symbols
                             if s.type == "STT_FUNC" and s.size),
                            key=lambda s: (s.value, -s.size,
                                           s.bind != "STB_GLOBAL"))
        # One name per address: a typed one over a linker label such as
        # __sched_text_start, then a sized one, then a global one.
        best = {}
        for s in self.symbols:
            if (s.type not in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC")
                    or s.name.startswith(".")):
                continue
            rank = (s.type != "STT_NOTYPE", s.size > 0, s.bind == "STB_GLOBAL")
            if s.value not in best or rank > best[s.value][0]:
                best[s.value] = (rank, s)
        self.named = [best[a][1] for a in sorted(best)]
        self.addrs = [s.value for s in self.named]
        self.fields = {"kvm_ecs_area": kvm_ecs_fields(path)}

    def symbol(self, name):
        return next((s for s in self.symbols if s.name == name), None)

    def read(self, addr, size):
        for off in self.elf.address_offsets(addr, size):
            self.file.seek(off)
            return self.file.read(size)
        raise ValueError(f"no file bytes at {addr:#x}")

    def jump_entries(self):
        """Every jump-label site as {code, target, key}. In vmlinux the
        table is no section of its own but lies in .rodata."""
        start, stop = (self.symbol("__start___jump_table"),
                       self.symbol("__stop___jump_table"))
        if not (start and stop):
            return []
        base, entries = start.value, []
        table = self.read(base, stop.value - base)
        for off in range(0, len(table) - 15, 16):
            code, target, key = struct.unpack_from("<iiq", table, off)
            entry = base + off
            # Each field is relative to itself; the key's low 2 bits are
            # flags.
            entries.append({"code": (entry + code) & MASK,
                            "target": (entry + 4 + target) & MASK,
                            "key": (entry + 8 + key) & MASK & ~3})
        return entries

    def function_at(self, addr):
        """The smallest FUNC symbol containing addr, or None."""
        best = None
        for name, value, size, _, _ in self.funcs:
            if value > addr:
                break
            if addr < value + size and (best is None or size < best[2]):
                best = (name, value, size)
        return best

    def functions_named(self, name):
        return [(n, v, s) for n, v, s, _, _ in self.funcs if n == name]

    def name(self, addr):
        """name+0xoff, or name.field for a kvm_ecs field."""
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return f"{addr:#x}"
        name, value = self.named[i][:2]
        off = addr - value
        if off in self.fields.get(name, {}):
            return f"{name}.{self.fields[name][off]}"
        return name if off == 0 else f"{name}+{off:#x}"

    def tool_version(self):
        out = subprocess.run([self.tool, "--version"], capture_output=True,
                             text=True).stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        return next((line for line in lines if "version" in line.lower()
                     or line.startswith("GNU")), lines[0] if lines else "?")

    def disassemble(self, start, end):
        """The instructions of [start, end), with sizes and branch kinds."""
        run = subprocess.run(
            [self.tool, "-d", "--no-show-raw-insn",
             f"--start-address={start:#x}", f"--stop-address={end:#x}",
             self.path], capture_output=True, text=True)
        if run.returncode:
            die(f"{self.tool} failed on [{start:#x}, {end:#x}): "
                f"{run.stderr.strip()}")
        insns, prefix = [], None
        for line in run.stdout.splitlines():
            m = LINE.match(line)
            if not m or not m.group(2).strip():
                continue
            text = m.group(2).split("#", 1)[0].strip()
            mnem, ops = (text.split(None, 1) + [""])[:2]
            addr = int(m.group(1), 16)
            # llvm-objdump prints "lock" on a line of its own, GNU objdump
            # "lock cmpxchg ..." on one: either way one instruction.
            if mnem in PREFIXES and not ops:
                prefix = (addr, mnem)
                continue
            if mnem in PREFIXES:
                inner, ops = (ops.split(None, 1) + [""])[:2]
                mnem = f"{mnem} {inner}"
            if prefix:
                addr, mnem = prefix[0], f"{prefix[1]} {mnem}"
                prefix = None
            insns.append(Insn(addr, mnem, ops))
        for cur, nxt in zip(insns, insns[1:] + [None]):
            cur.size = (nxt.addr if nxt else end) - cur.addr
            self.classify(cur)
        return insns

    def classify(self, insn):
        base = insn.mnem.split()[-1]
        m = BRANCH_TARGET.match(insn.ops)
        target = int(m.group(1), 16) if m else None
        if base.startswith("ret"):
            insn.kind = "ret"
        elif base in ("ud2", "int3", "hlt", "ud1"):
            insn.kind = "trap"
        elif base.startswith("call"):
            insn.kind, insn.target = "call", target
        elif base.startswith("jmp"):
            insn.kind, insn.target = ("jmp", target) if target is not None \
                else ("ijmp", None)
            if target is not None and self.name(target) in RETURN_THUNKS:
                insn.kind = "ret"       # keeps its target, for the listing
        elif base.startswith("j") and target is not None:
            insn.kind, insn.target = "jcc", target

    def render(self, insn):
        """The instruction with its branch target, rip-relative or %gs:
        operand named."""
        if insn.target is not None:
            return f"{insn.mnem} {self.name(insn.target)}"
        note = None
        m = re.search(r"(-?0x[0-9a-f]+|\d+)\(%rip\)", insn.ops)
        if m:
            note = self.name((insn.end + int(m.group(1), 0)) & MASK)
        else:
            m = re.search(r"%[gf]s:(-?0x[0-9a-f]+)(?![0-9a-f(])", insn.ops)
            if m:
                note = self.name(int(m.group(1), 0) & MASK)
        text = f"{insn.mnem} {insn.ops}".strip()
        return f"{text}  # {note}" if note else text

    def key(self, insn):
        """What an instruction does, whatever its address."""
        return re.sub(r"\s+", " ", self.render(insn))


def kvm_ecs_fields(vmlinux):
    """{offset: field} of struct kvm_ecs from the kernel source, if found."""
    build = os.path.dirname(os.path.abspath(vmlinux))
    # An O= build links its source tree as build/source.
    path = next((p for p in (os.path.join(build, "source", KVM_PARA_H),
                             os.path.join(build, KVM_PARA_H))
                 if os.path.exists(p)), None)
    if not path:
        return {}
    with open(path) as f:
        m = re.search(r"struct kvm_ecs \{(.*?)\}", f.read(), re.S)
    fields, off = {}, 0
    for bits, name, count in re.findall(r"^\s*__u(\d+)\s+(\w+)(?:\[(\d+)\])?;",
                                        m.group(1) if m else "", re.M):
        size = int(bits) // 8
        off = (off + size - 1) // size * size
        fields[off] = name
        off += size * int(count or 1)
    return fields


class Function:
    """A disassembled function and what its kvm_ecs_key sites add."""

    def __init__(self, sym, image, ours=(), others=()):
        self.name, self.start, size = sym
        self.end = self.start + size
        self.image = image
        self.insns = image.disassemble(self.start, self.end)
        self.at = {i.addr: i for i in self.insns}
        self.our_sites = {e["code"] for e in ours if self.inside(e["code"])}
        self.other_sites = {e["code"]: e["target"] for e in others
                            if self.inside(e["code"])}

    def inside(self, addr):
        return self.start <= addr < self.end

    @functools.cached_property
    def off_code(self):
        """{address: (calls, instructions)} of the cheapest key-off path
        from the entry, for every instruction run with our key off: our
        sites fall through, other keys' sites go either way (those keys may
        be on)."""
        best, heap = {}, [((0, 0), self.start)]
        while heap:
            cost, addr = heapq.heappop(heap)
            if addr in best:
                continue
            best[addr] = cost
            insn = self.at[addr]
            step = (cost[0] + (insn.kind == "call"), cost[1] + 1)
            succ = []
            if insn.addr in self.our_sites or insn.kind in (
                    "other", "call", "jcc"):
                succ.append(insn.end)
            if insn.addr not in self.our_sites:
                if insn.kind in ("jmp", "jcc") and insn.target is not None:
                    succ.append(insn.target)
                if insn.addr in self.other_sites:
                    succ += [insn.end, self.other_sites[insn.addr]]
            for nxt in succ:
                if self.inside(nxt) and nxt in self.at and nxt not in best:
                    heapq.heappush(heap, (step, nxt))
        return best

    def probe(self, addr):
        """Where one direction of a conditional branch leads within
        PROBE_CAP instructions: (instructions, whether it is the cold side
        (a call, a tail call or a trap on the way), description)."""
        name, start = self.image.name, addr
        callee, count, outcome = None, 0, "cap"
        while count < PROBE_CAP:
            if addr in self.off_code:
                outcome = "rejoin"
                break
            if not self.inside(addr) or addr not in self.at:
                outcome, callee = "tail", callee or name(addr)
                break
            insn = self.at[addr]
            count += 1
            if insn.kind in ("ret", "trap", "ijmp"):
                outcome = insn.kind
                break
            if insn.kind == "call" and not callee:
                callee = (name(insn.target) if insn.target is not None
                          else "(indirect)")
            addr = insn.target if insn.kind == "jmp" else insn.end
        if outcome == "rejoin":
            end = "rejoins the key-off code"
            if callee:
                end = f"call {callee}, then {end}"
        elif callee:
            end = f"{'tail call' if outcome == 'tail' else 'call'} {callee}"
        else:
            end = outcome
        cold = callee is not None or outcome in ("tail", "trap", "ijmp", "cap")
        return count, cold, (f"{name(start)}: {count} insn(s), {end}"
                             if count else end)

    def branch(self, insn):
        """(hot address, the other direction described, whether it is
        cold) of a conditional branch in a key-on block."""
        taken, fall = self.probe(insn.target), self.probe(insn.end)
        if taken[1] != fall[1]:
            hot_taken, cold = fall[1], True
        else:       # no telling: the longer one, an upper bound
            hot_taken, cold = taken[0] > fall[0], False
        hot, other, how = ((taken, fall, "not taken") if hot_taken
                           else (fall, taken, "taken"))
        desc = f"{insn.mnem} at {self.image.name(insn.addr)} {how}: {other[2]}"
        if not cold and hot[0] > other[0]:
            desc += f" ({hot[0] - other[0]} insn(s) fewer)"
        return (insn.target if hot_taken else insn.end), desc, cold

    def walk_key_on(self, addr):
        """From the site's target until control is back in the key-off
        code: (insns, how it ended, cold branches, other branches)."""
        insns, cold, alternatives, seen = [], [], [], set()
        name = self.image.name
        while True:
            if addr in self.off_code:
                return insns, f"rejoins at {name(addr)}", cold, alternatives
            if not self.inside(addr) or addr not in self.at:
                return insns, f"tail call {name(addr)}", cold, alternatives
            if addr in seen or len(insns) >= WALK_CAP:
                return insns, "loop or walk cap", cold, alternatives
            seen.add(addr)
            insn = self.at[addr]
            insns.append(insn)
            if insn.kind in ("ret", "trap", "ijmp"):
                end = {"ret": "returns", "trap": "traps",
                       "ijmp": "indirect jmp"}[insn.kind]
                return insns, end, cold, alternatives
            if insn.kind == "jmp":
                addr = insn.target
            elif insn.kind == "jcc":
                addr, desc, is_cold = self.branch(insn)
                (cold if is_cold else alternatives).append(desc)
            else:
                addr = insn.end

    def shared_epilogue(self, site, on_insns):
        """How many of the last key-on instructions, ending in a ret, equal
        the last ones the key-off path runs after the NOP: a copied
        epilogue replaces the original, so it adds nothing."""
        if not on_insns or on_insns[-1].kind != "ret":
            return 0
        tail, addr = [], site.end   # straight-line key-off code to a ret
        while len(tail) < WALK_CAP and addr in self.at:
            insn = self.at[addr]
            tail.append(insn)
            if insn.kind == "ret":
                break
            if insn.kind == "jmp":
                addr = insn.target
            elif insn.kind == "other" or insn.addr in self.our_sites:
                addr = insn.end
            else:
                return 0
        else:
            return 0
        shared, key = 0, self.image.key
        while (shared < min(len(tail), len(on_insns))
               and key(tail[-1 - shared]) == key(on_insns[-1 - shared])):
            shared += 1
        return shared

    def copied_insns(self, site, on_insns):
        """Key-on instructions that repeat the key-off block right after
        the NOP (clang duplicated a test): counted, but named in the
        notes."""
        block, addr = [], site.end
        while addr in self.at and len(block) < 8:
            insn = self.at[addr]
            if insn.kind != "other":
                break
            block.append(self.image.key(insn))
            addr = insn.end
        return [self.image.render(i) for i in on_insns
                if i.kind == "other" and self.image.key(i) in block]

    def site(self, entry):
        name, render = self.image.name, self.image.render
        site = self.at.get(entry["code"])
        if site is None:
            die(f"site {entry['code']:#x} is no instruction boundary in the "
                f"disassembly of {self.name}")
        raw = self.image.read(site.addr, site.size)
        nop = SITE_BYTES.get(raw)
        notes = [] if nop else [f"site is {raw.hex()} in the image, not a NOP"]

        off = [{"address": hex(site.addr), "mnem": "nop" if nop else
                site.mnem, "insn": nop or render(site)}]
        nxt = self.at.get(site.end)
        layout = (nxt is not None and nxt.kind == "jmp"
                  and nxt.addr not in self.our_sites
                  and nxt.addr not in self.other_sites)
        if layout:
            off.append({"address": hex(nxt.addr), "mnem": nxt.mnem,
                        "insn": render(nxt), "layout_jmp": True})

        on_insns, end, cold, alternatives = self.walk_key_on(entry["target"])
        shared = self.shared_epilogue(site, on_insns)
        on = [{"address": hex(site.addr), "mnem": "jmp",
               "insn": f"jmp {name(entry['target'])}", "site": True}]
        for i, insn in enumerate(on_insns):
            on.append({"address": hex(insn.addr), "mnem": insn.mnem,
                       "insn": render(insn)})
            if i >= len(on_insns) - shared:
                on[-1]["shared_tail"] = True

        if end.startswith("loop"):
            notes.append(f"key-on walk stopped after {len(on_insns)} insns")
        elif not end.startswith("rejoins") and not shared:
            notes.append(f"key-on path {end}")
        copies = self.copied_insns(site, on_insns[:len(on_insns) - shared])
        if copies:
            notes.append("key-on block repeats key-off code after the NOP "
                         f"(counted): {', '.join(copies)}")
        return {
            "address": hex(site.addr),
            "where": name(site.addr),
            "nop_bytes": site.size,
            "off": {"count": len(off), "insns": off, "layout_jmp": layout},
            "on": {"count": len(on) - shared, "insns": on, "end": end,
                   "cold_branches": cold, "other_branches": alternatives,
                   "shared_tail": shared},
            "notes": notes,
        }

    def sites(self, entries):
        """The sites of entries, fast-path ones (nearest the entry) first."""
        sites = [self.site(e) for e in entries]
        distance = [self.off_code.get(int(s["address"], 16),
                                      (math.inf, math.inf)) for s in sites]
        for s, d in zip(sites, distance):
            s["fast_path"] = d == min(distance)
        return sorted(sites, key=lambda s: (not s["fast_path"],
                                            int(s["address"], 16)))

    def calls_into(self, targets):
        """Functions of targets that this one calls or jumps into."""
        return sorted({name for insn in self.insns
                       if insn.target is not None
                       and not self.inside(insn.target)
                       for name, start, end in targets
                       if start <= insn.target < end})


def site_row(label, function, count, site, notes=()):
    """A table row: the key-on mnemonics as docs/ecs-guest.md lists them."""
    off, on = site["off"], site["on"]
    mnems = [i["mnem"] + (" %gs:" if "%gs:" in i["insn"] else "")
             for i in on["insns"] if not i.get("shared_tail")]
    on_text = f"+{on['count']}: " + ", ".join(mnems)
    if on["shared_tail"]:
        on_text += f" (+ the key-off epilogue, {on['shared_tail']})"
    notes = ([f"cold: {c}" for c in on["cold_branches"]]
             + [f"or {a}" for a in on["other_branches"]] + site["notes"]
             + list(notes))
    return [label, function, str(count),
            f"+{off['count']}: NOP ({site['nop_bytes']} bytes)"
            + (", layout jmp" if off["layout_jmp"] else ""),
            on_text, "; ".join(notes)]


def verbose_listing(label, site):
    lines = [f"{label}: site {site['where']} ({site['address']})",
             f"  key off (+{site['off']['count']}):"]
    for i in site["off"]["insns"]:
        mark = "  <- layout jmp" if i.get("layout_jmp") else ""
        lines.append(f"    {i['address']}  {i['insn']}{mark}")
    lines.append(f"  key on (+{site['on']['count']}, {site['on']['end']}):")
    for i in site["on"]["insns"]:
        mark = ("  <- the site, patched" if i.get("site") else
                "  <- key-off epilogue, not counted" if i.get("shared_tail")
                else "")
        lines.append(f"    {i['address']}  {i['insn']}{mark}")
    lines += [f"  cold branch: {c}" for c in site["on"]["cold_branches"]]
    lines += [f"  other branch: {c}" for c in site["on"]["other_branches"]]
    lines += [f"  note: {n}" for n in site["notes"]]
    return "\n".join(lines)


def report(image, results, orphans):
    """The table sections, the JSON paths, the -v listings, and what each
    checked path got: (off, on) of its fast path, None for no site, "site"
    for a site where none belongs."""
    paths, verbose, got = [], [], {}

    def path(label, function, group, sites, **extra):
        paths.append({"label": label, "function": function, "group": group,
                      "sites": sites, **extra})

    labelled = []
    for label in PATHS:
        syms = [s for s in results if s[0] == label]
        if not syms:
            labelled.append([label, label, "0", "-", "-",
                             "NO SITE: the hook is missing"
                             if image.functions_named(label)
                             else "NO SUCH FUNCTION in this vmlinux"])
            path(label, label, "annotated", [])
            got[label] = None
        for sym in syms:
            fast, *rest = sites = results[sym]
            labelled.append(site_row(label, sym[0], len(sites), fast, [
                f"other site {s['where']}: +{s['off']['count']} off / "
                f"+{s['on']['count']} on" for s in rest]))
            verbose += [verbose_listing(label, s) for s in sites]
            path(label, sym[0], "annotated", sites)
            got[label] = (fast["off"]["count"], fast["on"]["count"])

    others = []
    for sym, sites in sorted(results.items()):
        if sym[0] in PATHS:
            continue
        for s in sorted(sites, key=lambda s: int(s["address"], 16)):
            others.append(site_row("-", s["where"], len(sites), s))
            verbose.append(verbose_listing(sym[0], s))
        path(sym[0], sym[0], "other", sites)
    others += [["-", f"{e['code']:#x}", "1", "?", "?",
                "site outside any FUNC symbol"] for e in orphans]

    # No site, and no direct call or jmp into a function that has one.
    no_site = []
    site_funcs = [(n, a, a + z) for (n, a, z) in results]
    for label in NO_SITE_PATHS:
        syms = image.functions_named(label)
        if not syms:
            no_site.append([label, "-", "-", "0", "0",
                            "not a function in this vmlinux (inlined)"])
            path(label, None, "no-site", [])
        for sym in syms:
            if sym in results:
                no_site.append([label, sym[0], str(len(results[sym])),
                                "?", "?", "UNEXPECTED SITE"])
                got[label] = "site"
                continue
            calls = Function(sym, image).calls_into(site_funcs)
            no_site.append([label, sym[0], "0", "0", "0", "0 / 0 (no site)"
                            + (f"; calls {', '.join(calls)}, which has sites"
                               if calls else "")])
            path(label, sym[0], "no-site", [],
                 calls_functions_with_sites=calls)

    sections = [
        ("Annotated paths (the benchmark table's labels)", labelled),
        ("Other sites (every other function with a kvm_ecs_key site)",
         others),
        ("Covered by the preemption counter: must have no site", no_site)]
    return sections, paths, verbose, got


def print_tables(sections):
    """One table per (title, rows), with common column widths; the notes
    column is last and not padded."""
    head = ["path", "function", "sites", "key off", "key on", "notes"]
    rows = [head] + [r for _, sec in sections for r in sec]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]

    def line(r):
        return ("  ".join(c.ljust(w) for c, w in zip(r, widths))
                + "  " + r[-1]).rstrip()

    for n, (title, sec) in enumerate(sections):
        print(*([""] if n else []), f"{title}:", line(head),
              line(["-" * w for w in widths] + ["-----"]),
              *map(line, sec), sep="\n")


def expected_counts(path):
    """{path: (off, on)} from the cost table's rows that name paths of
    PATHS: "| `f()`, `g()` ... | +N... | +M... |"."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die(f"cannot read the hand counts: {e}")
    counts = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            continue
        off, on = (re.match(r"\+(\d+)", c) for c in cells[1:])
        if not off or not on:
            continue
        for name in re.findall(r"`(\w+)\(\)`", cells[0]):
            if name in PATHS:
                counts[name] = (int(off.group(1)), int(on.group(1)))
    missing = [p for p in PATHS if p not in counts]
    if missing:
        die(f"{path}: no hand count for {', '.join(missing)} in its cost table")
    return counts


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmlinux", default=os.environ.get("ECS_VMLINUX"),
                    help="the vmlinux (default: $ECS_VMLINUX, which make "
                    "sets to the built one)")
    ap.add_argument("--json", metavar="FILE", help="also write JSON here")
    ap.add_argument("--objdump", default=os.environ.get("OBJDUMP"),
                    help="objdump to disassemble with (default: $OBJDUMP, "
                    f"else the first of {', '.join(OBJDUMPS)} found)")
    ap.add_argument("--expect", metavar="LABEL=OFF,ON", action="append",
                    default=[], help="check LABEL against these counts "
                    "instead of the doc's (tests/scripts/insn_count.sh "
                    "uses it to see the check fail)")
    ap.add_argument("--expected-from", metavar="DOC", default=EXPECTED_DOC,
                    help="the document whose cost table holds the hand "
                    "counts (default: docs/ecs-guest.md)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="also print the key-off and key-on instructions of "
                    "each site")
    return ap.parse_args()


def main():
    args = parse_args()
    expected = expected_counts(args.expected_from)
    for e in args.expect:
        m = re.fullmatch(r"(\w+)=(\d+),(\d+)", e)
        if not m or m.group(1) not in expected:
            die(f"--expect wants LABEL=OFF,ON with LABEL one of "
                f"{', '.join(expected)}, got '{e}'")
        expected[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    if not args.vmlinux:
        die("no vmlinux: pass --vmlinux or set ECS_VMLINUX (make does)")
    if not os.path.isfile(args.vmlinux):
        die(f"{args.vmlinux}: no such file (build the kernel, or pass "
            "--vmlinux or set ECS_VMLINUX)")
    candidates = [args.objdump] if args.objdump else list(OBJDUMPS)
    tool = next((t for t in candidates if shutil.which(t)), None)
    if not tool:
        die(f"no objdump found ({', '.join(candidates)})")

    image = Vmlinux(args.vmlinux, tool)
    key = image.symbol(KEY_SYMBOL)
    if not key:
        die(f"{args.vmlinux}: no {KEY_SYMBOL} symbol "
            "(CONFIG_KVM_ECS_GUEST=n, or not a patched kernel?)")
    entries = image.jump_entries()
    if not entries:
        die(f"{args.vmlinux}: no jump table")
    ours = [e for e in entries if e["key"] == key.value]
    others = [e for e in entries if e["key"] != key.value]
    if not ours:
        die(f"{args.vmlinux}: no {KEY_SYMBOL} site in the jump table")
    version = image.tool_version()
    image.file.seek(0)
    sha256 = hashlib.file_digest(image.file, "sha256").hexdigest()

    # The hooks are __always_inline: a site belongs to the function that
    # inlined them.
    by_func, orphans = {}, []
    for e in ours:
        sym = image.function_at(e["code"])
        if sym is None:
            orphans.append(e)
        else:
            by_func.setdefault(sym, []).append(e)
    results = {sym: Function(sym, image, by_func[sym], others)
               .sites(by_func[sym])
               for sym in sorted(by_func, key=lambda sym: sym[1])}
    sections, paths, verbose, got = report(image, results, orphans)

    print(f"vmlinux: {args.vmlinux}\nsha256:  {sha256}\n"
          f"tool:    {tool} ({version}) for the disassembly, "
          "pyelftools for the ELF, its symbols and the jump table\n"
          f"key:     {KEY_SYMBOL} at {key.value:#x}: {len(ours)} sites in "
          f"{len(results)} functions, of {len(entries)} jump-table entries\n"
          "counts:  instructions added, key off / key on (see "
          "docs/ecs-guest.md for what counts)\n")
    print_tables(sections)
    if args.verbose:
        print()
        print("\n\n".join(verbose))

    bad = [{"label": label, "got": got.get(label), "want": want}
           for label, want in expected.items() if got.get(label) != want]
    bad += [{"label": label, "got": g, "want": None}
            for label, g in got.items()
            if label not in expected and g in (None, "site")]
    print()
    for m in bad:
        if m["got"] is None:
            print(f"check: {m['label']}: no {KEY_SYMBOL} site found")
        elif m["got"] == "site":
            print(f"check: {m['label']}: has a {KEY_SYMBOL} site, should "
                  "have none")
        else:
            print(f"check: {m['label']}: got {m['got']} (key off, key on), "
                  f"the hand count is {m['want']}")
    if not bad:
        print(f"check: all {len(expected)} paths match the hand counts of "
              f"{os.path.relpath(args.expected_from)}, and no site in the "
              "no-site paths")

    if args.json:
        doc = {"vmlinux": os.path.abspath(args.vmlinux), "sha256": sha256,
               "tool": {"disassembler": tool, "version": version,
                        "elf": "pyelftools"},
               "key": KEY_SYMBOL, "key_address": hex(key.value),
               "site_count": len(ours), "paths": paths,
               "check": {"expected": expected, "mismatches": bad}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
