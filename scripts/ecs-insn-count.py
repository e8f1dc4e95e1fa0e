#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Count the instructions the eCS hooks add, from the vmlinux disassembly.

    ecs-insn-count.py [--vmlinux PATH] [--json FILE] [--objdump TOOL] [-v]

For every kvm_ecs_key site in a built, patched vmlinux (guest-patches/0002..
0006), print what the annotation adds to the path that contains it, with the
static key off (as booted) and on (after the ecs module enabled it), counted
in instructions of the objdump disassembly. No pristine build is needed.

Method:

1. The sites: `__jump_table` entries whose key is kvm_ecs_key. Each x86-64
   entry is 16 bytes, s32 code, s32 target, s64 key, each relative to the
   address of its own field; the low 2 bits of key are flags (bit 0: branch
   default, bit 1: set by the "jmp, objtool NOPs this" hack) and are masked
   off. In vmlinux the table is no section of its own but lies between
   __start___jump_table and __stop___jump_table (in .rodata); a linked
   image that keeps a __jump_table section of its own works too (an
   unlinked .o does not: its entries still need relocating).
2. Each site belongs to the FUNC symbol (with a size) that contains it; the
   hooks are __always_inline, so the site lives in the function that inlined
   them (mutex_lock() holds __mutex_trylock_fast()'s, down_read() its own).
3. The containing function is disassembled (objdump --start-address
   --stop-address) and a control-flow graph is built from the direct
   branches. The "key-off code" is every instruction reachable from the
   function's entry when each kvm_ecs_key site is a NOP (other keys' sites
   may go either way).

What counts as "added":

- Key off: the site instruction, a 2- or 5-byte NOP (1). If the instruction
  right after it is an unconditional jmp that is not itself a jump-label
  site, it is counted too and shown as "layout jmp": clang sometimes lays
  the function out so that the key-off path jumps over the out-of-line
  key-on block or to a shared ret. Whether an unpatched build has that jmp
  can only be told from a pristine build, hence reported separately (it is
  included in the key-off count, as docs/ecs-guest.md counts it).
- Key on: the site becomes "jmp target" (1), plus every instruction run
  from target until control comes back into the key-off code (a jmp back
  included). "Back" means an address of the key-off code, not merely one
  at or after the site: the out-of-line block itself usually lies after
  the site in the same function (mutex_unlock()'s starts 2 bytes after
  it). The walk follows jmps and stops after 64 instructions (loop guard).
- At a conditional branch the hot direction is the one that reaches no
  call, tail call or trap within 16 instructions: deactivate's
  unlikely(extension_granted) test leads to kvm_ecs_give_back() only while
  the host granted an extension. The branch is counted, the other side is
  reported as a cold branch. Which side is cold depends on the layout: in
  __rcu_read_unlock() the give-back is the taken jne, in up_read(),
  up_write() and mutex_unlock() the fall-through after a je that is taken
  back to the shared epilogue, so "always follow the fall-through" would
  count the cold path there. Where neither side (or both) calls anything,
  e.g. the "if (ctx)" test that clang copies into ww_mutex_lock()'s key-on
  block, the walk takes the longer side (an upper bound) and the notes say
  how many fewer the other side runs.
- A key-on block that ends in its own ret (clang duplicated the epilogue,
  e.g. "incl %gs:..; popq %rbx; retq" in mutex_lock()) is a tail: its last
  instructions equal to the ones the key-off path runs after the NOP are
  not counted, since they replace those ("popq; retq" are run with the key
  off as well). So mutex_lock() is +2 on (jmp, incl), not +4. Other copies
  of key-off code in a key-on block (ww_mutex_lock()'s "testq") are
  counted and named in the notes.
- The layout jmp is not run with the key on, and is not subtracted there:
  both columns are relative to the same function without the hook.

The functions that docs/ecs-guest.md's cost table and the benchmark use are
printed first, under their labels; where a function has more than one site
(mutex_unlock(): the fast path and after __mutex_unlock_slowpath()), the
row is the fast-path site, the one reached from the entry with the fewest
calls, then instructions, and the notes give the others. Every other
function with a site follows, one row per site; then the spinlock, rwlock,
irq and bh paths, which must have no site (the host reads the preemption
counter for those) and get "0 / 0 (no site)". Last, the counts are checked
against the hand counts in docs/ecs-guest.md's cost table, which this
reads (the one place they are written).

Check on the default vmlinux (clang 19, 7.3.4 default scenario): all nine
paths match the hand counts, given the rules above. Counting the
duplicated epilogue would give mutex_lock(), down_read(), down_write() +4
on and __rcu_read_lock() +3; the hand counts leave it out, rightly, as the
key-off path runs the same "popq %rbx; retq" (or "retq"). mutex_unlock()'s
second site, after __mutex_unlock_slowpath(), adds +1 / +5 (no layout jmp,
no second jmp). No spinlock, rwlock, bh or irq function has a site or
calls into a function with one; preempt_count_add()/_sub() are inlined
(no CONFIG_DEBUG_PREEMPT), so no such function exists to check.

Tools: pyelftools reads the ELF (sections, symbols, the bytes of the jump
table), the entries are decoded here; the disassembly comes from
llvm-objdump-19 (the kernel's toolchain) unless
--objdump or $OBJDUMP names another objdump (GNU objdump works too). The
output names the tool and its version.

Exit status: 0; 1 if the vmlinux is missing or has no kvm_ecs_key symbol,
jump table or site, or no objdump is found; 2 if a check fails (a count
differs from the doc's, a labelled path has no site, a no-site path has
one).
"""
import argparse
import bisect
import collections
import hashlib
import heapq
import json
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

# The annotated paths, in the order and with the labels of the benchmark
# table; each is the function of that name.
PATHS = ("mutex_lock", "mutex_unlock", "down_read", "up_read", "down_write",
         "up_write", "__rcu_read_lock", "__rcu_read_unlock", "__schedule")

# Paths that the preemption counter covers: they must have no site.
NO_SITE_PATHS = (
    "_raw_spin_lock", "_raw_spin_unlock", "_raw_spin_lock_irqsave",
    "_raw_spin_unlock_irqrestore", "_raw_spin_lock_irq",
    "_raw_spin_unlock_irq", "_raw_spin_lock_bh", "_raw_spin_unlock_bh",
    "_raw_spin_trylock", "_raw_read_lock", "_raw_read_unlock",
    "_raw_write_lock", "_raw_write_unlock", "preempt_count_add",
    "preempt_count_sub", "__local_bh_enable_ip", "irq_enter", "irq_exit")

# The hand counts, (key off, key on) per path, live in one place: the
# cost table of docs/ecs-guest.md, read by expected_counts().
EXPECTED_DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "docs", "ecs-guest.md")
EXPECTED = {}

WALK_CAP = 64       # loop guard for the key-on walk
PROBE_CAP = 16      # how far a conditional branch's direction is looked at

# Bytes of the site instruction in the image, as objtool leaves them.
SITE_BYTES = {b"\x66\x90": "nop (2 bytes)",
              b"\x0f\x1f\x44\x00\x00": "nopl (5 bytes)"}

# struct kvm_ecs, to name the fields behind kvm_ecs_area+OFFSET.
KVM_PARA_H = "arch/x86/include/uapi/asm/kvm_para.h"


def die(msg):
    print(f"ecs-insn-count: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- ELF ----

Sym = collections.namedtuple("Sym", "name value size type bind")


class Elf:
    """The sections, symbols and mapped bytes of an x86-64 vmlinux, read
    through pyelftools."""

    def __init__(self, path):
        self.file = open(path, "rb")
        try:
            self.elf = ELFFile(self.file)
        except ELFError as e:
            die(f"{path}: not an ELF file ({e})")
        if (self.elf.elfclass != 64 or not self.elf.little_endian
                or self.elf["e_machine"] != "EM_X86_64"):
            die(f"{path}: not a 64-bit little-endian x86-64 ELF file")
        # Section and file symbols name no code; nor do undefined ones.
        self.symbols = [
            Sym(sym.name, sym["st_value"], sym["st_size"],
                sym["st_info"]["type"], sym["st_info"]["bind"])
            for sec in self.elf.iter_sections()
            if isinstance(sec, SymbolTableSection)
            for sym in sec.iter_symbols()
            if sym.name and sym["st_shndx"] != "SHN_UNDEF"
            and sym["st_info"]["type"] not in ("STT_SECTION", "STT_FILE")]

    def symbol(self, name):
        return next((sym for sym in self.symbols if sym.name == name), None)

    def section_bytes(self, name):
        """(address, bytes) of the section NAME, or None."""
        sec = self.elf.get_section_by_name(name)
        return (sec["sh_addr"], sec.data()) if sec else None

    def read(self, addr, size):
        """Bytes at a virtual address, from the segment that maps them."""
        for off in self.elf.address_offsets(addr, size):
            self.file.seek(off)
            return self.file.read(size)
        raise ValueError(f"no file bytes at {addr:#x}")

    def sha256(self):
        self.file.seek(0)
        return hashlib.file_digest(self.file, "sha256").hexdigest()


def jump_table(elf):
    """(start address, bytes) of the jump table."""
    start, stop = (elf.symbol("__start___jump_table"),
                   elf.symbol("__stop___jump_table"))
    if start and stop:
        return start.value, elf.read(start.value, stop.value - start.value)
    return elf.section_bytes("__jump_table") or (None, b"")


def jump_entries(elf):
    """Every jump-label site: dicts of code, target, key, flags."""
    base, table = jump_table(elf)
    if base is None:
        return []
    entries = []
    for off in range(0, len(table) - 15, 16):
        code, target, key = struct.unpack_from("<iiq", table, off)
        entry = base + off
        key = (entry + 8 + key) & 0xffffffffffffffff
        entries.append({"code": (entry + code) & 0xffffffffffffffff,
                        "target": (entry + 4 + target) & 0xffffffffffffffff,
                        "key": key & ~3, "flags": key & 3})
    return entries


class Symbols:
    """Address lookups: containing FUNC symbols and a name for any
    address."""

    def __init__(self, elf):
        # FUNC symbols with a size; on ties (aliases) a global one first.
        self.funcs = sorted((s for s in elf.symbols
                             if s.type == "STT_FUNC" and s.size),
                            key=lambda s: (s.value, -s.size,
                                           s.bind != "STB_GLOBAL"))
        # One name per address: a typed (FUNC, OBJECT) one over a linker
        # label such as __sched_text_start, then a sized one, a global one.
        best = {}
        for s in elf.symbols:
            if (s.type not in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC")
                    or s.name.startswith(".")):
                continue
            rank = (s.type != "STT_NOTYPE", s.size > 0, s.bind == "STB_GLOBAL")
            if s.value not in best or rank > best[s.value][0]:
                best[s.value] = (rank, s)
        self.named = [best[a][1] for a in sorted(best)]
        self.addrs = [s.value for s in self.named]
        self.fields = {}    # symbol -> {offset: field name}

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
        """name+0xoff for addr, with a kvm_ecs field name where known."""
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return f"{addr:#x}"
        name, value = self.named[i][:2]
        off = addr - value
        if off in self.fields.get(name, {}):
            return f"{name}.{self.fields[name][off]}"
        return name if off == 0 else f"{name}+{off:#x}"


def kvm_ecs_fields(vmlinux):
    """{offset: field} of struct kvm_ecs from the kernel source, if found:
    only names the operands in the listing."""
    build = os.path.dirname(os.path.abspath(vmlinux))
    for src in (os.path.join(build, "source"), build,
                os.path.join(os.path.dirname(build), "src")):
        path = os.path.join(src, KVM_PARA_H)
        if os.path.exists(path):
            break
    else:
        return {}
    with open(path) as f:
        m = re.search(r"struct kvm_ecs \{(.*?)\}", f.read(), re.S)
    if not m:
        return {}
    sizes = {"__u8": 1, "__u16": 2, "__u32": 4, "__u64": 8}
    fields, off = {}, 0
    for typ, name, count in re.findall(
            r"^\s*(__u\d+)\s+(\w+)(?:\[(\d+)\])?;", m.group(1), re.M):
        size = sizes[typ]
        off = (off + size - 1) // size * size
        fields[off] = name
        off += size * int(count or 1)
    return fields


# --------------------------------------------------------- disassembly ----

class Insn:
    """One instruction of the listing, with a prefix line (llvm-objdump's
    "lock" on its own) folded into it."""

    def __init__(self, addr, mnem, ops):
        self.addr, self.mnem, self.ops = addr, mnem, ops
        self.size = 0
        self.target = None      # direct branch or call target
        self.kind = "other"     # jmp, jcc, call, ret, trap, ijmp, other

    @property
    def end(self):
        return self.addr + self.size


PREFIXES = {"lock", "rep", "repe", "repz", "repne", "repnz", "notrack",
            "data16", "addr32"}
RETURN_THUNKS = {"__x86_return_thunk", "__ret", "srso_return_thunk",
                 "retbleed_return_thunk", "its_return_thunk"}
LINE = re.compile(r"^\s*([0-9a-f]+):\s*(.*)$")
BRANCH_TARGET = re.compile(r"^(?:0x)?([0-9a-f]+)(?:\s+<[^>]*>)?$")


class Disassembler:
    def __init__(self, tool, vmlinux, symbols):
        self.tool, self.vmlinux, self.symbols = tool, vmlinux, symbols
        out = subprocess.run([tool, "--version"], capture_output=True,
                             text=True).stdout
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        version = next((l for l in lines if "version" in l.lower()
                        or l.startswith("GNU")), lines[0] if lines else "?")
        self.version = version
        self.cache = {}

    def function(self, start, end):
        """The instructions of [start, end), with sizes and branch kinds."""
        if (start, end) in self.cache:
            return self.cache[(start, end)]
        run = subprocess.run(
            [self.tool, "-d", "--no-show-raw-insn",
             f"--start-address={start:#x}", f"--stop-address={end:#x}",
             self.vmlinux], capture_output=True, text=True)
        if run.returncode:
            die(f"{self.tool} failed on [{start:#x}, {end:#x}): "
                f"{run.stderr.strip()}")
        out = run.stdout
        insns, prefix = [], None
        for line in out.splitlines():
            m = LINE.match(line)
            if not m or not m.group(2).strip():
                continue
            text = m.group(2).split("#", 1)[0].strip()   # drop comments
            mnem, ops = (text.split(None, 1) + [""])[:2]
            if mnem in PREFIXES and not ops:
                prefix = (int(m.group(1), 16), mnem)
                continue
            if mnem in PREFIXES:        # GNU: "lock cmpxchg ..." on one line
                inner, ops = (ops.split(None, 1) + [""])[:2]
                mnem = f"{mnem} {inner}"
            addr = int(m.group(1), 16)
            if prefix:                  # "lock" + "cmpxchgq": one insn
                addr, mnem = prefix[0], f"{prefix[1]} {mnem}"
                prefix = None
            insns.append(Insn(addr, mnem, ops))
        for cur, nxt in zip(insns, insns[1:] + [None]):
            cur.size = (nxt.addr if nxt else end) - cur.addr
            self._classify(cur)
        self.cache[(start, end)] = insns
        return insns

    def _classify(self, insn):
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
            if target is not None and \
                    self.symbols.name(target) in RETURN_THUNKS:
                insn.kind = "ret"       # a return thunk is the ret
        elif base.startswith("j") and target is not None:
            insn.kind, insn.target = "jcc", target

    def render(self, insn):
        """mnemonic + operands, branch targets and rip-relative or absolute
        %gs: operands symbolised."""
        name = self.symbols.name
        if insn.target is not None:
            return f"{insn.mnem} {name(insn.target)}"
        note = None
        m = re.search(r"(-?0x[0-9a-f]+|\d+)\(%rip\)", insn.ops)
        if m:
            note = name((insn.end + int(m.group(1), 0)) & (2 ** 64 - 1))
        else:
            m = re.search(r"%[gf]s:(-?0x[0-9a-f]+)(?![0-9a-f(])", insn.ops)
            if m:
                note = name(int(m.group(1), 0) & (2 ** 64 - 1))
        text = f"{insn.mnem} {insn.ops}".strip()
        return f"{text}  # {note}" if note else text

    def key(self, insn):
        """What an instruction does, whatever its address: for comparing a
        duplicated epilogue with the original."""
        return re.sub(r"\s+", " ", self.render(insn))


# ------------------------------------------------------------ analysis ----

class Function:
    """A disassembled function with its key-off control-flow graph."""

    def __init__(self, sym, disasm, our_entries=(), other_entries=()):
        self.name, self.start, size = sym
        self.end = self.start + size
        self.insns = disasm.function(self.start, self.end)
        self.at = {i.addr: i for i in self.insns}
        self.our_sites = {e["code"] for e in our_entries
                          if self.inside(e["code"])}
        # Other keys' sites: code address -> jump target.
        self.other_sites = {e["code"]: e["target"] for e in other_entries
                            if self.inside(e["code"])}

    def inside(self, addr):
        return self.start <= addr < self.end

    def successors(self, insn):
        """Key-off successors: our sites fall through, other keys' sites go
        either way (those keys may be on), branches out of the function
        leave it."""
        if insn.addr in self.our_sites:
            return [insn.end]
        succ = []
        if insn.kind in ("other", "call", "jcc"):
            succ.append(insn.end)
        if insn.kind in ("jmp", "jcc") and insn.target is not None:
            succ.append(insn.target)
        if insn.addr in self.other_sites:
            succ += [insn.end, self.other_sites[insn.addr]]
        return [a for a in succ if self.inside(a) and a in self.at]

    def key_off_code(self):
        """Addresses run with kvm_ecs_key off: reachable from the entry."""
        seen, todo = set(), [self.start]
        while todo:
            addr = todo.pop()
            if addr in seen or addr not in self.at:
                continue
            seen.add(addr)
            todo.extend(self.successors(self.at[addr]))
        return seen

    def distance(self, goal):
        """(calls, instructions) on the cheapest key-off path from the
        entry to goal: the fast-path site is the one with the least."""
        best, heap = {}, [((0, 0), self.start)]
        while heap:
            cost, addr = heapq.heappop(heap)
            if addr in best:
                continue
            best[addr] = cost
            if addr == goal:
                return cost
            insn = self.at[addr]
            step = (cost[0] + (insn.kind == "call"), cost[1] + 1)
            for nxt in self.successors(insn):
                if nxt not in best:
                    heapq.heappush(heap, (step, nxt))
        return (float("inf"), float("inf"))


class Probe:
    """Where one direction of a conditional branch leads, within PROBE_CAP
    instructions (following jmps, falling through inner branches): outcome
    is rejoin (key-off code), ret, tail (leaves the function), trap, ijmp or
    cap; callee names the first call or tail call on the way."""

    def __init__(self, func, addr, off_code, name):
        self.addr, self.callee, self.count = addr, None, 0
        self.outcome = "cap"
        while self.count < PROBE_CAP:
            if addr in off_code:
                self.outcome = "rejoin"
                break
            if not func.inside(addr) or addr not in func.at:
                self.outcome = "tail"
                self.callee = self.callee or name(addr)
                break
            insn = func.at[addr]
            self.count += 1
            if insn.kind in ("ret", "trap", "ijmp"):
                self.outcome = insn.kind
                break
            if insn.kind == "call" and not self.callee:
                self.callee = (name(insn.target) if insn.target is not None
                               else "(indirect)")
            addr = insn.target if insn.kind == "jmp" else insn.end

    @property
    def cold(self):
        """A call, a tail call or a trap on the way: the unlikely() side."""
        return self.callee is not None or self.outcome in (
            "tail", "trap", "ijmp", "cap")

    def describe(self, name):
        if self.outcome == "rejoin":
            end = "rejoins the key-off code"
            if self.callee:
                end = f"call {self.callee}, then {end}"
        elif self.callee:
            kind = "tail call" if self.outcome == "tail" else "call"
            end = f"{kind} {self.callee}"
        else:
            end = self.outcome
        if self.count == 0:
            return end
        return f"{name(self.addr)}: {self.count} insn(s), {end}"


def choose_direction(func, insn, off_code, name):
    """At a conditional branch of the key-on block: (hot address,
    description of the other direction, whether it is cold).

    The cold direction is the one with a call, a tail call or a trap on the
    way (the give-back).  If both or neither have one, the walk goes on
    along the longer direction (an upper bound) and the other is reported
    as an alternative, not as cold."""
    taken = Probe(func, insn.target, off_code, name)
    fall = Probe(func, insn.end, off_code, name)
    if taken.cold != fall.cold:
        hot_taken, cold = fall.cold, True
    else:
        hot_taken, cold = taken.count > fall.count, False
    hot, other, how = ((taken, fall, "not taken") if hot_taken
                       else (fall, taken, "taken"))
    desc = (f"{insn.mnem} at {name(insn.addr)} {how}: "
            f"{other.describe(name)}")
    if not cold and hot.count > other.count:
        desc += f" ({hot.count - other.count} insn(s) fewer)"
    return (insn.target if hot_taken else insn.end), desc, cold


def key_off_tail(func, addr):
    """The straight-line key-off instructions from addr to a ret (through
    unconditional jmps), or None if a conditional branch comes first."""
    tail = []
    while len(tail) < WALK_CAP and addr in func.at:
        insn = func.at[addr]
        tail.append(insn)
        if insn.kind == "ret":
            return tail
        if insn.kind == "jmp":
            addr = insn.target
        elif insn.kind == "other" or insn.addr in func.our_sites:
            addr = insn.end
        else:
            return None
    return None


def key_off_insns(func, site, disasm, nop):
    """The NOP, and the jmp right after it (the layout jmp) unless that
    jmp is a jump-label site itself."""
    off = [{"address": hex(site.addr), "mnem": "nop" if nop else site.mnem,
            "insn": nop or disasm.render(site)}]
    nxt = func.at.get(site.end)
    layout = (nxt is not None and nxt.kind == "jmp"
              and nxt.addr not in func.our_sites
              and nxt.addr not in func.other_sites)
    if layout:
        off.append({"address": hex(nxt.addr), "mnem": nxt.mnem,
                    "insn": disasm.render(nxt), "layout_jmp": True})
    return off, layout


def walk_key_on(func, target, off_code, name):
    """The instructions run from the site's target until control is back
    in the key-off code: (insns, how it ended, cold branches, other
    branches)."""
    insns, cold, alternatives = [], [], []
    addr, seen = target, set()
    while True:
        if addr in off_code:
            return insns, f"rejoins at {name(addr)}", cold, alternatives
        if not func.inside(addr) or addr not in func.at:
            return insns, f"tail call {name(addr)}", cold, alternatives
        if addr in seen or len(insns) >= WALK_CAP:
            return insns, "loop or walk cap", cold, alternatives
        seen.add(addr)
        insn = func.at[addr]
        insns.append(insn)
        if insn.kind in ("ret", "trap", "ijmp"):
            end = {"ret": "returns", "trap": "traps", "ijmp": "indirect jmp"}
            return insns, end[insn.kind], cold, alternatives
        if insn.kind == "jmp":
            addr = insn.target
        elif insn.kind == "jcc":
            addr, desc, is_cold = choose_direction(func, insn, off_code, name)
            (cold if is_cold else alternatives).append(desc)
        else:
            addr = insn.end


def shared_epilogue(func, site, on_insns, disasm):
    """How many of the last key-on instructions, ending in a ret, are the
    same as the last ones the key-off path runs after the NOP: clang copied
    the epilogue into the key-on block, and the copy replaces the
    original, so it adds nothing."""
    if not on_insns or on_insns[-1].kind != "ret":
        return 0
    tail = key_off_tail(func, site.end) or []
    shared = 0
    while (shared < min(len(tail), len(on_insns))
           and disasm.key(tail[-1 - shared])
           == disasm.key(on_insns[-1 - shared])):
        shared += 1
    return shared


def copied_insns(func, site, on_insns, disasm):
    """Key-on instructions (not branches) that repeat one of the key-off
    block right after the NOP: clang duplicated a test into the key-on
    block. Counted, but named in the notes."""
    block, addr = [], site.end
    while addr in func.at and len(block) < 8:
        insn = func.at[addr]
        if insn.kind != "other":
            break
        block.append(disasm.key(insn))
        addr = insn.end
    return [disasm.render(i) for i in on_insns
            if i.kind == "other" and disasm.key(i) in block]


def analyse_site(func, entry, off_code, disasm, elf):
    """The key-off and key-on counts of one site."""
    name = disasm.symbols.name
    site = func.at.get(entry["code"])
    if site is None:
        die(f"site {entry['code']:#x} is no instruction boundary in the "
            f"disassembly of {func.name}")
    raw = elf.read(site.addr, site.size)
    nop = SITE_BYTES.get(raw)
    notes = [] if nop else [f"site is {raw.hex()} in the image, not a NOP"]

    off, layout = key_off_insns(func, site, disasm, nop)

    on_insns, end, cold, alternatives = walk_key_on(
        func, entry["target"], off_code, name)
    shared = shared_epilogue(func, site, on_insns, disasm)
    on = [{"address": hex(site.addr), "mnem": "jmp",
           "insn": f"jmp {name(entry['target'])}", "site": True}]
    for i, insn in enumerate(on_insns):
        item = {"address": hex(insn.addr), "mnem": insn.mnem,
                "insn": disasm.render(insn)}
        if i >= len(on_insns) - shared:
            item["shared_tail"] = True
        on.append(item)

    if end.startswith("loop"):
        notes.append(f"key-on walk stopped after {len(on_insns)} insns")
    elif not end.startswith("rejoins") and not shared:
        notes.append(f"key-on path {end}")
    copies = copied_insns(func, site, on_insns[:len(on_insns) - shared],
                          disasm)
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


def analyse_function(sym, entries, disasm, elf, other_entries):
    """All kvm_ecs_key sites of one function, fast-path site first."""
    func = Function(sym, disasm, entries, other_entries)
    off_code = func.key_off_code()
    sites = [analyse_site(func, e, off_code, disasm, elf)
             for e in entries if func.inside(e["code"])]
    for s in sites:
        s["distance"] = func.distance(int(s["address"], 16))
    fastest = min(s["distance"] for s in sites) if sites else None
    for s in sites:
        s["fast_path"] = s["distance"] == fastest
        s.pop("distance")
    sites.sort(key=lambda s: (not s["fast_path"], int(s["address"], 16)))
    return sites


def calls_into(func, targets):
    """Direct calls and jmps of func into any of targets (functions)."""
    hits = set()
    for insn in func.insns:
        if insn.target is not None and not func.inside(insn.target):
            for name, start, end in targets:
                if start <= insn.target < end:
                    hits.add(name)
    return sorted(hits)


# -------------------------------------------------------------- output ----

def on_summary(site):
    """The key-on mnemonics, as docs/ecs-guest.md lists them."""
    on = site["on"]
    mnems = [i["mnem"] + (" %gs:" if "%gs:" in i["insn"] else "")
             for i in on["insns"] if not i.get("shared_tail")]
    text = f"+{on['count']}: " + ", ".join(mnems)
    if on["shared_tail"]:
        text += f" (+ the key-off epilogue, {on['shared_tail']})"
    return text


def off_summary(site):
    off = site["off"]
    text = f"+{off['count']}: NOP ({site['nop_bytes']} bytes)"
    if off["layout_jmp"]:
        text += ", layout jmp"
    return text


def site_notes(site):
    """The notes column: cold branches, alternatives, remarks."""
    on = site["on"]
    return ([f"cold: {c}" for c in on["cold_branches"]]
            + [f"or {a}" for a in on["other_branches"]] + site["notes"])


HEAD = ["path", "function", "sites", "key off", "key on", "notes"]


def print_tables(sections):
    """Plain-text tables, one per (title, rows), with common column widths;
    the notes column is last and not padded."""
    rows = [HEAD] + [r for _, sec in sections for r in sec]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD) - 1)]

    def line(r):
        return ("  ".join(c.ljust(w) for c, w in zip(r, widths))
                + "  " + r[-1]).rstrip()

    for n, (title, sec) in enumerate(sections):
        if n:
            print()
        print(f"{title}:")
        print(line(HEAD))
        print(line(["-" * w for w in widths] + ["-----"]))
        for r in sec:
            print(line(r))


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


class Report:
    """The three sections: labelled paths, other sites, no-site paths."""

    def __init__(self, symbols, disasm, results):
        self.symbols, self.disasm, self.results = symbols, disasm, results
        self.paths, self.verbose, self.check = [], [], {}

    def labelled(self):
        rows = []
        for label in PATHS:
            syms = [s for s in self.results if s[0] == label]
            if not syms:
                present = self.symbols.functions_named(label)
                rows.append([label, label, "0", "-", "-",
                             "NO SITE: the hook is missing" if present
                             else "NO SUCH FUNCTION in this vmlinux"])
                self.paths.append({"label": label, "function": label,
                                   "group": "annotated", "sites": []})
                self.check[label] = None
            for sym in syms:
                sites = self.results[sym]
                fast = sites[0]
                notes = site_notes(fast)
                notes += [f"other site {s['where']}: +{s['off']['count']} "
                          f"off / +{s['on']['count']} on" for s in sites[1:]]
                rows.append([label, sym[0], str(len(sites)),
                             off_summary(fast), on_summary(fast),
                             "; ".join(notes)])
                self.verbose += [verbose_listing(label, s) for s in sites]
                self.paths.append({"label": label, "function": sym[0],
                                   "group": "annotated", "sites": sites})
                self.check[label] = (fast["off"]["count"],
                                     fast["on"]["count"])
        return rows

    def others(self, orphans):
        rows = []
        for sym, sites in sorted(self.results.items()):
            if sym[0] in PATHS:
                continue
            for s in sorted(sites, key=lambda s: int(s["address"], 16)):
                rows.append(["-", s["where"], str(len(sites)),
                             off_summary(s), on_summary(s),
                             "; ".join(site_notes(s))])
                self.verbose.append(verbose_listing(sym[0], s))
            self.paths.append({"label": sym[0], "function": sym[0],
                               "group": "other", "sites": sites})
        for e in orphans:
            rows.append(["-", f"{e['code']:#x}", "1", "?", "?",
                         "site outside any FUNC symbol"])
        return rows

    def no_site(self):
        """The paths the preemption counter covers: no site, and no direct
        call or jmp into a function that has one."""
        rows = []
        site_funcs = [(n, a, a + z) for (n, a, z) in self.results]
        for label in NO_SITE_PATHS:
            syms = self.symbols.functions_named(label)
            if not syms:
                rows.append([label, "-", "-", "0", "0",
                             "not a function in this vmlinux (inlined)"])
                self.paths.append({"label": label, "function": None,
                                   "group": "no-site", "sites": []})
            for sym in syms:
                if sym in self.results:
                    rows.append([label, sym[0], str(len(self.results[sym])),
                                 "?", "?", "UNEXPECTED SITE"])
                    self.check[label] = "site"
                    continue
                calls = calls_into(Function(sym, self.disasm), site_funcs)
                rows.append([label, sym[0], "0", "0", "0",
                             "0 / 0 (no site)" + (
                                 f"; calls {', '.join(calls)}, which has "
                                 "sites" if calls else "")])
                self.paths.append({"label": label, "function": sym[0],
                                   "group": "no-site", "sites": [],
                                   "calls_functions_with_sites": calls})
        return rows

    def mismatches(self):
        """Hand counts (EXPECTED) not met, labelled paths without a site
        and no-site paths with one."""
        bad = [{"label": label, "got": self.check.get(label), "want": want}
               for label, want in EXPECTED.items()
               if self.check.get(label) != want]
        bad += [{"label": label, "got": got, "want": None}
                for label, got in self.check.items()
                if label not in EXPECTED and got in (None, "site")]
        return bad


def expected_counts(path):
    """{path: (off, on)} from the rows of the doc's cost table that name
    paths of PATHS: "| `f()`, `g()` ... | +N... | +M... |"."""
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
    EXPECTED.update(expected_counts(args.expected_from))
    for e in args.expect:
        m = re.fullmatch(r"(\w+)=(\d+),(\d+)", e)
        if not m or m.group(1) not in EXPECTED:
            die(f"--expect wants LABEL=OFF,ON with LABEL one of "
                f"{', '.join(EXPECTED)}, got '{e}'")
        EXPECTED[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    if not args.vmlinux:
        die("no vmlinux: pass --vmlinux or set ECS_VMLINUX (make does)")
    if not os.path.isfile(args.vmlinux):
        die(f"{args.vmlinux}: no such file (build the kernel, or pass "
            "--vmlinux or set ECS_VMLINUX)")
    candidates = [args.objdump] if args.objdump else list(OBJDUMPS)
    tool = next((t for t in candidates if shutil.which(t)), None)
    if not tool:
        die(f"no objdump found ({', '.join(candidates)})")

    elf = Elf(args.vmlinux)
    key = elf.symbol(KEY_SYMBOL)
    if not key:
        die(f"{args.vmlinux}: no {KEY_SYMBOL} symbol "
            "(CONFIG_KVM_ECS_GUEST=n, or not a patched kernel?)")
    entries = jump_entries(elf)
    if not entries:
        die(f"{args.vmlinux}: no jump table")
    ours = [e for e in entries if e["key"] == key.value]
    others = [e for e in entries if e["key"] != key.value]
    if not ours:
        die(f"{args.vmlinux}: no {KEY_SYMBOL} site in the jump table")

    symbols = Symbols(elf)
    fields = kvm_ecs_fields(args.vmlinux)
    if fields:
        symbols.fields["kvm_ecs_area"] = fields
    disasm = Disassembler(tool, args.vmlinux, symbols)
    sha256 = elf.sha256()

    by_func, orphans = {}, []
    for e in ours:
        sym = symbols.function_at(e["code"])
        if sym is None:
            orphans.append(e)
        else:
            by_func.setdefault(sym, []).append(e)
    results = {sym: analyse_function(sym, sym_entries, disasm, elf, others)
               for sym, sym_entries in sorted(by_func.items(),
                                              key=lambda kv: kv[0][1])}

    report = Report(symbols, disasm, results)
    sections = [
        ("Annotated paths (the benchmark table's labels)",
         report.labelled()),
        ("Other sites (every other function with a kvm_ecs_key site)",
         report.others(orphans)),
        ("Covered by the preemption counter: must have no site",
         report.no_site()),
    ]

    print(f"vmlinux: {args.vmlinux}")
    print(f"sha256:  {sha256}")
    print(f"tool:    {tool} ({disasm.version}) for the disassembly, "
          "pyelftools for the ELF, its symbols and the jump table")
    print(f"key:     {KEY_SYMBOL} at {key.value:#x}: {len(ours)} sites in "
          f"{len(results)} functions, of {len(entries)} jump-table entries")
    print("counts:  instructions added, key off / key on (see the script's "
          "docstring for what counts)")
    print()
    print_tables(sections)
    if args.verbose:
        print()
        print("\n\n".join(report.verbose))

    bad = report.mismatches()
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
        print(f"check: all {len(EXPECTED)} paths match the hand counts of "
              f"{os.path.relpath(args.expected_from)}, and no site in the "
              "no-site paths")

    if args.json:
        doc = {"vmlinux": os.path.abspath(args.vmlinux), "sha256": sha256,
               "tool": {"disassembler": tool, "version": disasm.version,
                        "elf": "pyelftools"},
               "key": KEY_SYMBOL, "key_address": hex(key.value),
               "site_count": len(ours),
               "paths": report.paths,
               "check": {"expected": EXPECTED, "mismatches": bad}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
