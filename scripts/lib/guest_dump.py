# SPDX-License-Identifier: GPL-2.0
"""Read what a guest-side dump script printed (scripts/bench/vm/*_dump.sh): "=== NAME"
marker lines, each followed by the contents of one file."""


def sections(path):
    """The "=== NAME" sections of a dump, as lists of lines."""
    out, cur = {}, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("=== "):
                cur = line[4:].strip()
                out[cur] = []
            elif cur is not None:
                out[cur].append(line)
    return out
