#!/usr/bin/env python3
"""Print the kernel modules to load, dependencies first, one path a line.

usage: modorder.py MODULES_DIR NAME...

MODULES_DIR is lib/modules/<version> of an unpacked kernel package holding a
modules.dep (generated with `depmod -b`). Paths are printed relative to
MODULES_DIR, e.g. kernel/net/llc/llc.ko. Names built into the kernel
(modules.builtin) are skipped with a note on stderr; unknown names are an
error (exit 1).
"""
import os
import re
import sys


def modname(path):
    base = os.path.basename(path)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mdir, names = sys.argv[1], sys.argv[2:]
    deps, by_name = {}, {}
    with open(os.path.join(mdir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            mod = mod.strip()
            deps[mod] = rest.split()
            by_name[modname(mod)] = mod
    builtin = set()
    try:
        with open(os.path.join(mdir, "modules.builtin")) as f:
            builtin = {modname(line.strip()) for line in f if line.strip()}
    except OSError:
        pass

    order, seen, missing = [], set(), []

    def visit(mod, stack):
        if mod in seen:
            return
        if mod in stack:  # cycles cannot load anyway; break them
            return
        for dep in deps.get(mod, []):
            visit(dep, stack | {mod})
        seen.add(mod)
        order.append(mod)

    for name in names:
        key = modname(name)
        if key in by_name:
            visit(by_name[key], frozenset())
        elif key in builtin:
            print(f"note: module {name} is built into the kernel", file=sys.stderr)
        else:
            missing.append(name)
    if missing:
        print("error: no such kernel module: " + " ".join(missing), file=sys.stderr)
        return 1
    for mod in order:
        print(mod)
    return 0


if __name__ == "__main__":
    sys.exit(main())
