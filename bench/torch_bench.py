#!/usr/bin/python3
"""Time the PyTorch reference of one model: forward, and forward + backward to
the input, batch N, median of R repetitions, in its best CPU configuration
(the fastest of: plain eager, channels_last, TorchScript + freeze).

    torch_bench.py (--onnx M.onnx | --torchvision NAME) [--batch N] [--reps R] [--size S]

An ONNX model is run through tools/onnx_torch.py traced to TorchScript, so
Python's per-node dispatch is not in the figure. Prints "forward_ms" and
"step_ms" lines and the configuration that won.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def build(args):
    if args.onnx:
        import onnx_torch
        net = onnx_torch.OnnxTorch(args.onnx)
        dims = [d.dim_value for d in net.model.graph.input[0].type.tensor_type.shape.dim]
        shape = [args.batch] + dims[1:]
        module = torch.jit.trace(lambda x: net(x), torch.zeros(shape), check_trace=False)
        return module, shape
    import torchvision
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if args.torchvision in ("inception_v3", "googlenet") else {}
    net = getattr(torchvision.models, args.torchvision)(**kw).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, [args.batch, 3, args.size, args.size]


def timed(fn, reps):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    return sorted(ts)[len(ts) // 2]


def measure(module, shape, channels_last, reps):
    x = torch.rand(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = None

    def fwd():
        with torch.no_grad():
            module(x)

    def step():
        xx = x.detach().requires_grad_(True)
        out = module(xx)
        out.backward(torch.ones_like(out))
        return xx.grad

    return timed(fwd, reps), timed(step, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx")
    ap.add_argument("--torchvision")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    torch.set_num_threads(2)
    module, shape = build(args)
    configs = {"eager": (module, False)}
    if not args.onnx:
        configs["channels_last"] = (module.to(memory_format=torch.channels_last), True)
    try:
        scripted = torch.jit.freeze(torch.jit.script(module) if not args.onnx else module.eval())
        configs["torchscript_frozen"] = (scripted, False)
    except Exception as e:  # some models do not script; the others still count
        print(f"# torchscript: {e.__class__.__name__}", file=sys.stderr)
    best = None
    for name, (mod, cl) in configs.items():
        f, s = measure(mod, shape, cl, args.reps)
        if best is None or s < best[2]:
            best = (name, f, s)
    print(f"forward_ms {best[1]:.3f}\nstep_ms {best[2]:.3f}\nconfig {best[0]}")


if __name__ == "__main__":
    main()
