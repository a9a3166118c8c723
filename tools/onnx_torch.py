"""A small ONNX interpreter on torch.nn.functional, used as an independent
reference for neuromask (Debian ships no ONNX runtime). It covers the ops of
the models in ../shared/models, the bundled Fashion-MNIST CNN and plain
torchvision CNN exports; anything else raises NotImplementedError.

    model = OnnxTorch("model.onnx")
    logits = model(x)            # x: torch tensor [N,C,H,W], differentiable
"""
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads_to_torch(pads):
    """ONNX [x1_begin, x2_begin, x1_end, x2_end] -> F.pad order (last dim first)."""
    n = len(pads) // 2
    out = []
    for i in reversed(range(n)):
        out += [pads[i], pads[i + n]]
    return out


class OnnxTorch:
    def __init__(self, path):
        self.model = onnx.load(path)
        g = self.model.graph
        self.consts = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.input_name = next(i.name for i in g.input if i.name not in self.consts)
        self.output_name = g.output[0].name
        self.opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 13)

    def __call__(self, x, keep=None):
        env = dict(self.consts)
        env[self.input_name] = x
        for node in self.model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            outs = self._run(node.op_type, ins, _attrs(node))
            for name, v in zip(node.output, outs):
                env[name] = v
        if keep is not None:
            keep.update(env)
        return env[self.output_name]

    def _run(self, op, x, a):
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            raise NotImplementedError(op)
        r = fn(x, a)
        return r if isinstance(r, (list, tuple)) else [r]

    # --- operators -------------------------------------------------------
    def op_Conv(self, x, a):
        w = x[1]
        nsp = w.dim() - 2
        pads = a.get("pads", [0] * (2 * nsp))
        inp = x[0]
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise NotImplementedError("Conv auto_pad")
        if any(pads):
            inp = F.pad(inp, _pads_to_torch(pads))
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nsp]
        return conv(inp, w, x[2] if len(x) > 2 else None, stride=a.get("strides", 1),
                    dilation=a.get("dilations", 1), groups=a.get("group", 1))

    def op_BatchNormalization(self, x, a):
        return F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))

    def op_Relu(self, x, a):
        return F.relu(x[0])

    def op_LeakyRelu(self, x, a):
        return F.leaky_relu(x[0], a.get("alpha", 0.01))

    def op_Sigmoid(self, x, a):
        return torch.sigmoid(x[0])

    def op_Clip(self, x, a):
        lo = x[1] if len(x) > 1 and x[1] is not None else a.get("min", None)
        hi = x[2] if len(x) > 2 and x[2] is not None else a.get("max", None)
        lo = float(lo) if lo is not None else None
        hi = float(hi) if hi is not None else None
        return torch.clamp(x[0], lo, hi)

    def op_Add(self, x, a):
        return x[0] + x[1]

    def op_Sub(self, x, a):
        return x[0] - x[1]

    def op_Mul(self, x, a):
        return x[0] * x[1]

    def op_Div(self, x, a):
        return x[0] / x[1]

    def _pool(self, x, a, kind):
        k = a["kernel_shape"]
        pads = a.get("pads", [0] * (2 * len(k)))
        inp = x[0]
        strides = a.get("strides", [1] * len(k))
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            if any(pads):
                inp = F.pad(inp, _pads_to_torch(pads), value=float("-inf"))
            return F.max_pool2d(inp, k, strides, 0, ceil_mode=ceil)
        if any(pads) and a.get("count_include_pad", 0) == 0:
            raise NotImplementedError("AveragePool with pads excluded")
        if any(pads):
            inp = F.pad(inp, _pads_to_torch(pads))
        return F.avg_pool2d(inp, k, strides, 0, ceil_mode=ceil)

    def op_MaxPool(self, x, a):
        return self._pool(x, a, "max")

    def op_AveragePool(self, x, a):
        return self._pool(x, a, "avg")

    def op_GlobalAveragePool(self, x, a):
        return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)

    def op_Flatten(self, x, a):
        axis = a.get("axis", 1)
        s = x[0].shape
        lead = 1
        for d in s[:axis]:
            lead *= d
        return x[0].reshape(lead, -1)

    def op_Gemm(self, x, a):
        A = x[0].t() if a.get("transA", 0) else x[0]
        B = x[1].t() if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        if len(x) > 2 and x[2] is not None:
            y = y + a.get("beta", 1.0) * x[2]
        return y

    def op_MatMul(self, x, a):
        return x[0] @ x[1]

    def op_Reshape(self, x, a):
        shape = [int(v) for v in x[1]]
        shape = [x[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return x[0].reshape(shape)

    def op_Identity(self, x, a):
        return x[0]

    def op_Dropout(self, x, a):
        return x[0]
