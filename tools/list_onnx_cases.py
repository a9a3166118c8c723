#!/usr/bin/python3
"""List the ONNX backend test cases neuromask claims to pass.

A case qualifies when its model uses only ai.onnx operators from NM_OP_LIST
(src/ops/op.h), imports an opset neuromask accepts (src/onnx/onnx_import.h),
has at least one graph input, and its data is float32 or int64 (shapes, pads,
indices, Shape's output); cases with other element types are left out.

Models older than opset 7 (GlobalAveragePool's tests are opset 1, most of
pytorch-converted is opset 6) are listed when every node means the same at
opset 7: its operator version is unchanged, or opset 7 only dropped a legacy
attribute the node uses in its inference meaning (see LEGACY_SAME). The
conformance test reads such models as opset 7.

Usage: /usr/bin/python3 tools/list_onnx_cases.py > tests/onnx_backend_cases.txt
"""
import collections
import os
import re
import sys

import onnx
import onnx.defs
import onnx.helper
from onnx import TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NM_TESTDATA", "/usr/share/libonnx-testdata/data")
DIRS = ["node", "pytorch-converted", "pytorch-operator", "simple"]
CONVERTIBLE = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.UINT8, TensorProto.INT8,
               TensorProto.UINT16, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
               TensorProto.BOOL, TensorProto.UINT32, TensorProto.UINT64}


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


# Operators whose opset-7 version differs from the older one only in ways that
# leave these nodes' results unchanged.
LEGACY_SAME = {
    "BatchNormalization": lambda n: attr(n, "is_test", 0) == 1,   # inference form
    "Dropout": lambda n: attr(n, "is_test", 0) == 1,
    "AveragePool": lambda n: True,   # count_include_pad added, default = old behaviour
    "PRelu": lambda n: True,         # broadcasting generalised
    "Gemm": lambda n: True,          # `broadcast` attribute dropped, C always broadcasts
    "Add": lambda n: not any(a.name == "axis" for a in n.attribute),
    "Sub": lambda n: not any(a.name == "axis" for a in n.attribute),
    "Mul": lambda n: not any(a.name == "axis" for a in n.attribute),
    "Div": lambda n: not any(a.name == "axis" for a in n.attribute),
}


def same_at_opset(node, opset, target):
    """Does `node` (from a model of `opset`) mean the same at `target`?"""
    schema = onnx.defs.get_schema(node.op_type, target, "")
    if schema.since_version <= opset:
        return True
    return node.op_type in LEGACY_SAME and LEGACY_SAME[node.op_type](node)


def read_ops():
    text = open(os.path.join(ROOT, "src/ops/op.h")).read()
    return set(re.findall(r'X\(\w+, "(\w+)", \w+\)', text))


def read_opset_range():
    text = open(os.path.join(ROOT, "src/onnx/onnx_import.h")).read()
    lo = int(re.search(r"NM_ONNX_OPSET_MIN (\d+)", text).group(1))
    hi = int(re.search(r"NM_ONNX_OPSET_MAX (\d+)", text).group(1))
    return lo, hi


def elem_type(value_info):
    t = value_info.type
    return t.tensor_type.elem_type if t.HasField("tensor_type") else None


def reason_to_skip(model, ops, opsets):
    """None when the case qualifies, else a short reason."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    opset = versions[0] if versions else 1
    graph = model.graph
    unsupported = sorted({n.op_type for n in graph.node
                          if n.domain not in ("", "ai.onnx") or n.op_type not in ops})
    if unsupported:
        return "ops " + ",".join(unsupported)
    if opset > opsets[1]:
        return "opset %d" % opset
    if opset < opsets[0] and not all(same_at_opset(n, opset, opsets[0]) for n in graph.node):
        return "opset %d, operator changed" % opset
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if any(elem_type(i) not in (TensorProto.FLOAT, TensorProto.INT64) for i in inputs):
        return "non-float input"
    if any(elem_type(o) not in (TensorProto.FLOAT, TensorProto.INT64) for o in graph.output):
        return "non-float output"
    if any(i.data_type not in CONVERTIBLE for i in graph.initializer):
        return "initializer type"
    return None


def main():
    ops, opsets = read_ops(), read_opset_range()
    cases, skipped = [], collections.Counter()
    for d in DIRS:
        base = os.path.join(DATA, d)
        for case in sorted(os.listdir(base)):
            path = os.path.join(base, case)
            if not os.path.exists(os.path.join(path, "model.onnx")):
                continue
            if not any(x.startswith("test_data_set_") for x in os.listdir(path)):
                skipped["no data sets"] += 1
                continue
            reason = reason_to_skip(onnx.load(os.path.join(path, "model.onnx")), ops, opsets)
            if reason is None:
                cases.append("%s/%s" % (d, case))
            elif not reason.startswith("ops "):
                skipped["%s/%s" % (d, reason)] += 1
    print("# ONNX backend cases (libonnx-testdata) for operators in NM_OP_LIST,")
    print("# opset %d..%d (older models read as opset %d where that changes nothing),"
          % (opsets[0], opsets[1], opsets[0]))
    print("# float32/int64 data. Generated by tools/list_onnx_cases.py.")
    print("# Cases of listed operators left out, by reason:")
    for reason, n in sorted(skipped.items()):
        print("#   %-40s %d" % (reason, n))
    for c in cases:
        print(c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
