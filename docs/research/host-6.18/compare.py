#!/usr/bin/env python3
"""Compare two cow.c TAP outputs test by test, keyed by the `# [RUN]` name.

usage: compare.py REAL.tap MODEL.tap [--pmd-only]
--pmd-only drops the real run's mTHP variants (THP sizes other than the PMD
size), which the model does not have yet, before comparing.
Prints header/INFO differences, tests only in one file, and tests whose
result (PASS/FAIL/SKIP/XFAIL) or diagnostic lines differ.
"""
import re
import sys


def parse(path):
    head, tests, cur, diags = [], [], None, []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"# \[RUN\] (.*)", line)
        if m and not line.startswith("# [RUN] Non-anonymous"):
            cur, diags = m.group(1), []
            continue
        m = re.match(r"(not ok|ok) (\d+) (?:# (SKIP|XFAIL) )?(.*)", line)
        if m:
            res = m.group(3) or ("PASS" if m.group(1) == "ok" else "FAIL")
            tests.append((cur, res, tuple(diags), m.group(4), int(m.group(2))))
            cur, diags = None, []
            continue
        if cur is None:
            head.append(line)
        else:
            diags.append(line)
    return head, tests


def main():
    real, model = sys.argv[1], sys.argv[2]
    pmd_only = "--pmd-only" in sys.argv
    rh, rt = parse(real)
    mh, mt = parse(model)
    if pmd_only:
        rt = [t for t in rt if not re.search(r"\((?!2048 kB)\d+ kB\)", t[0] or "")
              or "hugetlb" in (t[0] or "")]
        rh = [h for h in rh if not re.match(r"# \[INFO\] detected THP size: (?!2048 )", h)]
    print(f"real: {len(rt)} tests, model: {len(mt)} tests")
    for h in rh:
        if h not in mh:
            print(f"  header only in real : {h}")
    for h in mh:
        if h not in rh:
            print(f"  header only in model: {h}")
    rmap = {t[0]: t for t in rt}
    mmap_ = {t[0]: t for t in mt}
    for t in rt:
        if t[0] not in mmap_:
            print(f"  only in real  #{t[4]}: {t[0]} -> {t[1]}")
    for t in mt:
        if t[0] not in rmap:
            print(f"  only in model #{t[4]}: {t[0]} -> {t[1]}")
    n = 0
    for t in rt:
        o = mmap_.get(t[0])
        if o and (t[1], t[2], t[3]) != (o[1], o[2], o[3]):
            n += 1
            print(f"  DIFF real #{t[4]} / model #{o[4]}: {t[0]}")
            print(f"       real : {t[1]} {list(t[2])} '{t[3]}'")
            print(f"       model: {o[1]} {list(o[2])} '{o[3]}'")
    order_r = [t[0] for t in rt if t[0] in mmap_]
    order_m = [t[0] for t in mt if t[0] in rmap]
    print(f"{n} result differences; same order: {order_r == order_m}")


if __name__ == "__main__":
    main()
