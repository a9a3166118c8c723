#!/usr/bin/python3
"""Count the ONNX backend cases of tests/onnx_backend_cases.txt per operator
(a case counts for every listed operator its model uses), as a Markdown
table. With a CTest log (ctest output) as argument, also counts the passes.

    onnx_case_ops.py [CTEST_LOG]
"""
import collections
import os
import re
import sys

import onnx

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = "/usr/share/libonnx-testdata/data"


def main():
    ops_h = open(os.path.join(ROOT, "src/ops/op.h")).read()
    listed = set(re.findall(r'X\(\w+, "(\w+)", \w+\)', ops_h))
    cases = [l.strip() for l in open(os.path.join(ROOT, "tests/onnx_backend_cases.txt"))
             if l.strip() and not l.startswith("#")]
    passed = None
    if len(sys.argv) > 1:
        log = open(sys.argv[1]).read()
        passed = set(re.findall(r"Test\s+#\d+: onnx_(\S+) \.+\s+Passed", log))
    total, ok = collections.Counter(), collections.Counter()
    for case in cases:
        model = onnx.load(os.path.join(DATA, case, "model.onnx"))
        for op in {n.op_type for n in model.graph.node} & listed:
            total[op] += 1
            if passed is not None and case.replace("/", "_") in passed:
                ok[op] += 1
    print("| operator | cases |" + (" passed |" if passed is not None else ""))
    print("|---|---|" + ("---|" if passed is not None else ""))
    for op in sorted(total):
        print(f"| {op} | {total[op]} |" + (f" {ok[op]} |" if passed is not None else ""))
    print(f"\n{len(cases)} cases" + (f", {sum(c.replace('/', '_') in passed for c in cases)} passed" if passed is not None else ""))


if __name__ == "__main__":
    main()
