#!/usr/bin/python3
"""Prepare one model for bench/ort.sh: a copy whose batch dimension is BATCH
(the shared models fix [1,3,H,W]; ONNX Runtime needs the batch in the graph,
neuromask takes it as a load option), and the input both engines read: BATCH
images of uniform values in [-1, 1) (seed 0), raw float32, native byte order.

    ort_prepare.py MODEL.onnx BATCH OUT.onnx OUT_INPUT.f32
"""
import sys

import numpy as np
import onnx


def main():
    src, batch, out_model, out_input = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    m = onnx.load(src)
    inits = {t.name for t in m.graph.initializer}
    feeds = [i for i in m.graph.input if i.name not in inits]
    if len(feeds) != 1:
        sys.exit(f"{src}: expected one input, found {len(feeds)}")
    for v in list(feeds) + list(m.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        d0.ClearField("dim_param")
        d0.dim_value = batch
    del m.graph.value_info[:]   # inner shapes at batch 1 would contradict the new batch
    onnx.checker.check_model(m)
    onnx.save(m, out_model)
    dims = [d.dim_value for d in feeds[0].type.tensor_type.shape.dim]
    x = np.random.RandomState(0).uniform(-1, 1, size=dims).astype(np.float32)
    x.tofile(out_input)


if __name__ == "__main__":
    main()
