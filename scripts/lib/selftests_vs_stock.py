#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the KVM selftests' results in two L1s, as KTAP.

    selftests_vs_stock.py SERIES_KTAP STOCK_KTAP

SERIES_KTAP is the nested-host suite's ktap.log, in which kvm_selftests.sh
ran as one test (its results one level down); STOCK_KTAP is the ktap.log
of kvm_selftests.sh run alone in an L1 of Debian's own build of the pinned
kernel. Each upstream test must give the same result in both (ok, not ok,
skip): a difference is a regression of the series (or a fix that wants
saying). The series' own tests are not upstream's and are checked for what
they must show instead: ecs_test skips on a kernel without eCS, and
tsc_rate_mismatch_test fails on the stock kernel, whose bug it tests.
Exits 0 if every check passes, 1 otherwise.
"""
import re
import sys

RESULT = re.compile(r'^(?P<indent> *)(?P<not>not )?ok \d+ (?P<name>\S+)(?P<rest>.*)$')

# The series' own tests: what each must give in the stock L1, as a label.
SERIES_TESTS = {
    'ecs_test': ('skip', 'skips-on-stock', 'the stock kernel has no eCS'),
    'tsc_rate_mismatch_test': ('not ok', 'fails-on-stock',
                               'the stock kernel has the bug host-patches/0001 fixes'),
}


def status(m):
    if m.group('not'):
        return 'not ok'
    return 'skip' if re.search(r'#\s*SKIP', m.group('rest'), re.I) else 'ok'


def results(path, parent=None):
    """Test name -> status: the top-level results, or those of PARENT."""
    found, pending = {}, {}
    with open(path, errors='replace') as f:
        for line in f:
            m = RESULT.match(line.rstrip('\n'))
            if not m:
                continue
            depth = len(m.group('indent'))
            if parent is None and depth == 0:
                found[m.group('name')] = status(m)
            elif parent is not None and depth == 4:
                pending[m.group('name')] = status(m)
            elif parent is not None and depth == 0:
                if m.group('name') == parent:
                    found = pending
                pending = {}
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    series = results(sys.argv[1], parent='kvm_selftests')
    stock = results(sys.argv[2])
    if not series:
        print('1..0 # SKIP no kvm_selftests results in ' + sys.argv[1])
        return 4
    names = [n for n in series if n != 'l1-host-clean']
    names += [n for n in stock if n not in series and n != 'l1-host-clean']
    print('TAP version 13')
    print(f'1..{len(names)}')
    failed = 0
    for i, name in enumerate(names, 1):
        got, ctl = series.get(name, 'missing'), stock.get(name, 'missing')
        if name in SERIES_TESTS:
            want, what, why = SERIES_TESTS[name]
            ok = ctl == want
            print(f'# {name}: {why}; with the series {got}, stock {ctl}')
            label = f'{name}-{what}'
        else:
            ok = got == ctl
            print(f'# {name}: with the series {got}, stock {ctl}')
            label = f'{name}-same-as-stock'
        failed += not ok
        print(f'{"ok" if ok else "not ok"} {i} {label}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
