#!/usr/bin/python3
"""Export torchvision architectures to ONNX with PyTorch reference logits and input gradients.

Usage: tools/make_torch_refs.py OUTDIR [MODEL...]

For each model (random weights, fixed seed, eval mode) writes to OUTDIR:
  <model>.onnx        opset 13, input `input` [1,3,H,W], output `logits` [1,1000]
  <model>.input.bin   x, a fixed random input (raw little-endian float32)
  <model>.g.bin       g, a fixed random weighting of the logits
  <model>.logits.bin  model(x), float32 torch
  <model>.grad.bin    d sum(model(x) * g) / dx, float32 torch autograd
  <model>.logits64.bin, <model>.grad64.bin  the same computed in float64 (stored as float32):
                      the truth to compare with (for resnet50 and inception_v3 torch's
                      float32 input gradient is only 0.9996-0.9998 cosine-similar to the
                      float64 one: ReLU decisions near zero flip under float32 rounding)
  <model>.noise.txt  torch's float32 noise floor: the largest max|logit err| / max|logit|
                      and 1 - cosine(input gradient) against float64 over five float32
                      runs (1 and 2 threads x NCHW and channels_last; BN folded by
                      torch.jit.freeze)
  <model>.json        shapes, export mode, float32-vs-float64 noise floor, script hash
A model whose files exist and whose .json names the current script hash is skipped.

Random initialisation leaves every BatchNorm an identity in eval mode (running
mean 0, var 1, weight 1, bias 0), so activations drift in scale through deep
networks and BN folding would be tested with trivial values. Each BatchNorm
therefore gets a random affine (weight in [0.5,1.5], bias N(0,0.1)) and running
statistics measured on a batch of random inputs (train-mode passes without
gradients); the result is a well-scaled network with non-trivial BN constants.

resnet18 is exported with its BatchNormalization nodes kept (TrainingMode.PRESERVE,
no constant folding) so the engine's BN folding is exercised; the others are
exported in EVAL mode with constant folding, which fuses BN that follows a Conv.
"""
import hashlib
import json
import os
import sys
import time
import zlib

import numpy as np
import torch
import torchvision.models as tvm

BASE_SEED = 1234
CALIB_BATCH = 4


def build(name):
    if name == "inception_v3":
        return tvm.inception_v3(weights=None, aux_logits=False, init_weights=True), 299
    if name == "googlenet":
        return tvm.googlenet(weights=None, aux_logits=False, init_weights=True), 224
    return getattr(tvm, name)(weights=None), 224


MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "inception_v3",
          "squeezenet1_1", "densenet121", "efficientnet_b0", "googlenet"]
KEEP_BN = {"resnet18"}


def script_hash():
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


def calibrate_batchnorm(model, size, gen):
    """Random BN affine, then running statistics from random inputs (see module doc)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(torch.rand(bn.weight.shape, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=gen) * 0.1)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration passes
        model.train()
        model(torch.randn(CALIB_BATCH, 3, size, size, generator=gen))
    model.eval()
    return len(bns)


def reference(model, x, g, dtype):
    m = model if isinstance(model, torch.jit.ScriptModule) else model.to(dtype)
    xi = x.to(dtype).clone().requires_grad_(True)
    logits = m(xi)
    (logits * g.to(dtype)).sum().backward()
    return logits.detach(), xi.grad.detach()


def export(model, x, path, keep_bn):
    kwargs = dict(opset_version=13, input_names=["input"], output_names=["logits"])
    if keep_bn:
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    else:
        kwargs.update(training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
    tmp = path + ".tmp"
    torch.onnx.export(model, x, tmp, **kwargs)
    os.replace(tmp, path)


def float32_noise(model, x, g, logits64, grad64, logits, grad):
    """Worst float32 deviation from float64 over thread counts, memory formats and
    BN folding (logits, grad: the run with 1 thread, NCHW)."""
    peak = float(logits64.abs().max())
    worst_logits, worst_grad = 0.0, 0.0
    for threads, fmt in ((1, torch.contiguous_format), (1, torch.channels_last),
                         (2, torch.contiguous_format), (2, torch.channels_last)):
        torch.set_num_threads(threads)
        l32, g32 = logits, grad
        if threads != 1 or fmt != torch.contiguous_format:
            l32, g32 = reference(model.to(memory_format=fmt), x.to(memory_format=fmt), g,
                                 torch.float32)
        worst_logits = max(worst_logits, float((l32.double() - logits64).abs().max()) / peak)
        worst_grad = max(worst_grad, 1.0 - cosine(g32, grad64))
    torch.set_num_threads(1)
    model.to(memory_format=torch.contiguous_format)
    # BatchNorm folded into the convolutions in float32, as the exporter and the
    # engine do: rounding the folded weights moves the result too.
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, x))
    l32, g32 = reference(frozen, x, g, torch.float32)
    worst_logits = max(worst_logits, float((l32.double() - logits64).abs().max()) / peak)
    worst_grad = max(worst_grad, 1.0 - cosine(g32, grad64))
    return worst_logits, worst_grad


def write_bin(path, t):
    t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(path)


def cosine(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    return float((a @ b) / (a.norm() * b.norm()))


def make(name, outdir, tag):
    stem = os.path.join(outdir, name)
    meta_path = stem + ".json"
    files = [stem + s for s in (".onnx", ".input.bin", ".g.bin", ".logits.bin", ".grad.bin",
                                ".logits64.bin", ".grad64.bin", ".noise.txt")]
    if os.path.exists(meta_path) and all(os.path.exists(f) for f in files):
        with open(meta_path) as f:
            if json.load(f).get("script_hash") == tag:
                print(f"{name}: cached")
                return True
    t0 = time.time()
    seed = BASE_SEED + zlib.crc32(name.encode())
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, size = build(name)
    n_bn = calibrate_batchnorm(model, size, gen)
    model.eval()
    x = torch.randn(1, 3, size, size, generator=gen)
    g = torch.randn(1, 1000, generator=gen)

    logits, grad = reference(model, x, g, torch.float32)
    logits64, grad64 = reference(model, x, g, torch.float64)
    model = model.to(torch.float32)
    noise_logits, noise_grad = float32_noise(model, x, g, logits64, grad64, logits, grad)

    peak = float(logits64.abs().max())
    spread = float(logits64.std())
    noise = {
        "logits_max_abs_err_rel": float((logits.double() - logits64).abs().max()) / peak,
        "grad_cosine": cosine(grad, grad64),
        "worst_logits_max_abs_err_rel": noise_logits,
        "worst_grad_one_minus_cosine": noise_grad,
    }
    useful = spread > 1e-3 * peak and torch.isfinite(logits64).all() and float(grad64.abs().max()) > 0
    export(model, x, stem + ".onnx", name in KEEP_BN)
    for suffix, t in ((".input.bin", x), (".g.bin", g), (".logits.bin", logits), (".grad.bin", grad),
                      (".logits64.bin", logits64), (".grad64.bin", grad64)):
        write_bin(stem + suffix, t)
    with open(stem + ".noise.txt", "w") as f:
        f.write(f"{noise_logits:.6e} {noise_grad:.6e}\n")
    meta = {
        "model": name, "seed": seed, "opset": 13,
        "input": "input", "output": "logits",
        "input_shape": list(x.shape), "output_shape": list(logits.shape),
        "batchnorm_kept": name in KEEP_BN, "batchnorm_calibrated": n_bn,
        "logits_max_abs": peak, "logits_std": spread, "top1": int(logits64.argmax()),
        "float32_vs_float64": noise,
        "seconds": round(time.time() - t0, 1),
        "script_hash": tag,
    }
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    print(f"{name}: |logit| max {peak:.3g} std {spread:.3g}; float32 vs float64: logits rel err "
          f"{noise['logits_max_abs_err_rel']:.2e}, grad cosine {noise['grad_cosine']:.8f}; worst of "
          f"five float32 runs {noise_logits:.2e}, 1-cos {noise_grad:.2e} "
          f"({meta['seconds']} s)", flush=True)
    if not useful:
        print(f"{name}: degenerate reference (logits nearly constant)", file=sys.stderr)
    return bool(useful)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = argv[1]
    names = argv[2:] or MODELS
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s): {' '.join(unknown)}", file=sys.stderr)
        return 2
    # One thread except for the noise-floor runs: on 2 shared cores a 2-thread
    # OpenMP pool next to other jobs runs several times slower.
    torch.set_num_threads(1)
    os.makedirs(outdir, exist_ok=True)
    tag = script_hash()
    ok = True
    t0 = time.time()
    for name in names:
        ok = make(name, outdir, tag) and ok
    print(f"total {time.time() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
