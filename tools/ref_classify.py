#!/usr/bin/python3
"""Independent reference for `neuromask classify`: PIL/torchvision preprocessing
and a small ONNX interpreter on torch.nn.functional (Debian has no onnxruntime).

Usage: tools/ref_classify.py --model M.onnx --preprocess RECIPE [--top K] [--batch N]
                             IMAGE|DIR...

Prints one JSON object per image, like `neuromask classify --json`:
  {"image": PATH, "top": [{"class": I, "label": S or null, "prob": P}, ...]}
(labels from the model's "neuromask.labels" metadata when it has them)

Recipes (as the shared models' README and torchvision define them):
  cifar        x/255, then (x - mean) / std with ImageNet mean/std; no resizing
  torchvision  Resize(256) + CenterCrop(224), then ImageNet mean/std
  darknet      Resize(256) + CenterCrop(224), x/255 only
  inception    TensorFlow central_crop(0.875), bilinear resize to the model's size,
               then (v - 128) / 128 on 0..255 values
  fashion      grey, (x/255 - 0.2860) / 0.3530
Resizing is PIL's BILINEAR (what torchvision applies to PIL images).

The interpreter covers the operators of the shared models and of the bundled
Fashion-MNIST model: Conv (groups, asymmetric pads), Relu, LeakyRelu, Clip, Add,
Sub, Mul, Div, Sigmoid, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape,
Gemm, MatMul, BatchNormalization, Concat, Softmax, Dropout, Identity.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".png", ".jpg", ".jpeg")


# ------------------------------------------------------------ interpreter

def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pad_spatial(x, pads, value):
    """ONNX pads [b1, b2, ..., e1, e2, ...] on the trailing spatial axes."""
    n = len(pads) // 2
    if not any(pads):
        return x
    torch_pads = []
    for i in reversed(range(n)):  # F.pad lists the last axis first
        torch_pads += [pads[i], pads[i + n]]
    return F.pad(x, torch_pads, value=value)


def _auto_pads(a, x, kernel, strides, dilations):
    mode = a.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    n = len(kernel)
    if mode in ("NOTSET", ""):
        return list(a.get("pads", [0] * 2 * n))
    if mode == "VALID":
        return [0] * 2 * n
    begin, end = [], []
    for i in range(n):
        size = x.shape[2 + i]
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return begin + end


def op_conv(a, x, w, b=None):
    k = list(w.shape[2:])
    n = len(k)
    strides = a.get("strides", [1] * n)
    dil = a.get("dilations", [1] * n)
    pads = _auto_pads(a, x, k, strides, dil)
    x = _pad_spatial(x, pads, 0.0)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    return conv(x, w, b, stride=strides, dilation=dil, groups=a.get("group", 1))


def op_maxpool(a, x):
    k = a["kernel_shape"]
    n = len(k)
    strides = a.get("strides", [1] * n)
    dil = a.get("dilations", [1] * n)
    pads = _auto_pads(a, x, k, strides, dil)
    if a.get("ceil_mode", 0):
        # ONNX: out = ceil((in + pads - dil*(k-1) - 1) / s) + 1 windows; pad the end
        # with -inf so that every window exists, then pool without ceil mode.
        for i in range(n):
            size = x.shape[2 + i] + pads[i] + pads[i + n]
            span = dil[i] * (k[i] - 1) + 1
            out = -(-(size - span) // strides[i]) + 1
            pads[i + n] += max(0, (out - 1) * strides[i] + span - size)
    x = _pad_spatial(x, pads, float("-inf"))
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
    return pool(x, k, strides, 0, dil)


def op_averagepool(a, x):
    k = a["kernel_shape"]
    n = len(k)
    strides = a.get("strides", [1] * n)
    pads = _auto_pads(a, x, k, strides, [1] * n)
    if a.get("ceil_mode", 0):
        raise NotImplementedError("AveragePool ceil_mode")
    if a.get("count_include_pad", 0):
        x = _pad_spatial(x, pads, 0.0)
        return {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n](x, k, strides)
    # Divide by the in-image count: pool the padded image and a padded mask of ones.
    ones = torch.ones_like(x[:1, :1])
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
    s = pool(_pad_spatial(x, pads, 0.0), k, strides)
    c = pool(_pad_spatial(ones, pads, 0.0), k, strides)
    return s / c


def op_gemm(a, A, B, C=None):
    if a.get("transA", 0):
        A = A.t()
    if a.get("transB", 0):
        B = B.t()
    y = a.get("alpha", 1.0) * (A @ B)
    if C is not None:
        y = y + a.get("beta", 1.0) * C
    return y


def op_clip(a, x, lo=None, hi=None):
    lo = a.get("min", None) if lo is None else float(lo)
    hi = a.get("max", None) if hi is None else float(hi)
    return torch.clamp(x, lo, hi)


def op_flatten(a, x):
    axis = a.get("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    lead = int(np.prod(x.shape[:axis])) if axis else 1
    return x.reshape(lead, -1)


def op_reshape(a, x, shape):
    shape = [int(v) for v in shape.tolist()]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def op_batchnorm(a, x, scale, bias, mean, var):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


OPS = {
    "Conv": op_conv,
    "MaxPool": op_maxpool,
    "AveragePool": op_averagepool,
    "Gemm": op_gemm,
    "Clip": op_clip,
    "Flatten": op_flatten,
    "Reshape": op_reshape,
    "BatchNormalization": op_batchnorm,
    "Relu": lambda a, x: F.relu(x),
    "LeakyRelu": lambda a, x: F.leaky_relu(x, a.get("alpha", 0.01)),
    "Sigmoid": lambda a, x: torch.sigmoid(x),
    "Add": lambda a, x, y: x + y,
    "Sub": lambda a, x, y: x - y,
    "Mul": lambda a, x, y: x * y,
    "Div": lambda a, x, y: x / y,
    "MatMul": lambda a, x, y: x @ y,
    "GlobalAveragePool": lambda a, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "Concat": lambda a, *xs: torch.cat(xs, dim=a["axis"]),
    "Softmax": lambda a, x: torch.softmax(x, dim=a.get("axis", -1)),
    "Dropout": lambda a, x, *rest: x,
    "Identity": lambda a, x: x,
}


class OnnxModel:
    """An ONNX graph evaluated node by node with torch (float32, no autograd)."""

    def __init__(self, path):
        import onnx
        from onnx import numpy_helper
        self.proto = onnx.load(path)
        g = self.proto.graph
        self.consts = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = torch.from_numpy(
                    numpy_helper.to_array(_attrs(node)["value"]).copy())
        self.nodes = [(n, _attrs(n)) for n in g.node if n.op_type != "Constant"]
        missing = sorted({n.op_type for n, _ in self.nodes} - OPS.keys())
        if missing:
            raise NotImplementedError(f"{path}: operators not in the reference: {' '.join(missing)}")
        inputs = [i for i in g.input if i.name not in self.consts]
        self.input_name = inputs[0].name
        self.input_shape = [d.dim_value or 1 for d in inputs[0].type.tensor_type.shape.dim]
        self.output_name = g.output[0].name
        self.metadata = {p.key: p.value for p in self.proto.metadata_props}

    @torch.no_grad()
    def __call__(self, x):
        env = dict(self.consts)
        env[self.input_name] = x
        for node, a in self.nodes:
            args = [env[name] if name else None for name in node.input]
            while args and args[-1] is None:
                args.pop()
            env[node.output[0]] = OPS[node.op_type](a, *args)
        return env[self.output_name]


# ----------------------------------------------------------- preprocessing

def _centre_crop(img, size):
    w, h = img.size
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def _resize_short(img, short):
    from PIL import Image
    w, h = img.size
    if w <= h:
        size = (short, int(short * h / w))
    else:
        size = (int(short * w / h), short)
    return img if size == (w, h) else img.resize(size, Image.BILINEAR)


def _resize(img, h, w):
    from PIL import Image
    return img if img.size == (w, h) else img.resize((w, h), Image.BILINEAR)


def preprocess(path, recipe, h, w, channels=3):
    """Image file -> float32 tensor [C, h, w] for the named recipe."""
    from PIL import Image
    img = Image.open(path)
    img = img.convert("L" if channels == 1 else "RGB")
    if recipe in ("torchvision", "darknet"):
        img = _centre_crop(_resize_short(img, 256), 224)
        img = _resize(img, h, w)
    elif recipe == "inception":
        # TensorFlow's central_crop: the same integer margin off both sides.
        iw, ih = img.size
        top, left = int((ih - ih * 0.875) / 2), int((iw - iw * 0.875) / 2)
        img = _resize(img.crop((left, top, iw - left, ih - top)), h, w)
    elif recipe in ("cifar", "fashion"):
        img = _resize(img, h, w)
    else:
        raise ValueError(f"unknown recipe '{recipe}'")
    v = np.asarray(img, dtype=np.float64)
    v = v[:, :, None] if v.ndim == 2 else v
    v = v.transpose(2, 0, 1)
    if recipe == "inception":
        x = (v - 128.0) / 128.0
    elif recipe == "darknet":
        x = v / 255.0
    elif recipe == "fashion":
        x = (v / 255.0 - 0.2860) / 0.3530
    else:
        mean = np.array(IMAGENET_MEAN)[:, None, None]
        std = np.array(IMAGENET_STD)[:, None, None]
        x = (v / 255.0 - mean) / std
    return torch.from_numpy(x.astype(np.float32))


# ---------------------------------------------------------------- classify

def list_images(items):
    paths = []
    for item in items:
        if os.path.isdir(item):
            paths += sorted(os.path.join(item, f) for f in os.listdir(item)
                            if f.lower().endswith(IMAGE_EXTS))
        else:
            paths.append(item)
    return paths


def classify(model_path, recipe, paths, batch=32, model=None):
    """Logits (numpy [len(paths), classes]) of the reference for each image."""
    model = model or OnnxModel(model_path)
    _, c, h, w = model.input_shape
    out = []
    for i in range(0, len(paths), batch):
        x = torch.stack([preprocess(p, recipe, h, w, c) for p in paths[i:i + batch]])
        out.append(model(x).reshape(len(x), -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--preprocess", required=True)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    paths = list_images(args.images)
    model = OnnxModel(args.model)
    names = model.metadata.get("neuromask.labels", "").split("|")
    logits = classify(args.model, args.preprocess, paths, args.batch, model)
    probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
    for path, p in zip(paths, probs):
        top = [int(k) for k in np.argsort(-p, kind="stable")[:args.top]]
        print(json.dumps({"image": path, "top": [
            {"class": k, "label": names[k] if k < len(names) and names[k] else None,
             "prob": float(f"{p[k]:.6g}")} for k in top]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
