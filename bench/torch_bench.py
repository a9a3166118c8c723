#!/usr/bin/python3
"""Time the PyTorch reference of one model: forward, and forward + backward to
the input, batch N, median of R repetitions, in its best CPU configuration
(the fastest of: plain eager, channels_last, TorchScript + freeze).

    torch_bench.py (--onnx M.onnx | --torchvision NAME | --cw-cifar) [--batch N] [--reps R] [--size S]
                   [--neuromask] [--export OUT.onnx]

An ONNX model is run through tools/onnx_torch.py traced to TorchScript, so
Python's per-node dispatch is not in the figure. Prints "forward_ms" and
"step_ms" lines and the configuration that won. With --neuromask, "step_ms"
is one NeuroMask step instead (sigmoid mask, masked and normalised input,
forward, cross-entropy + sparsity + smoothness, backward to the mask, RMSprop
update; the paper's CIFAR or ImageNet preset by input size), median of R steps.
--export writes the model (random weights, seed 0) to ONNX and exits.
--cw-cifar is the Carlini-Wagner CIFAR CNN (defined here).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def cw_cifar():
    """Carlini & Wagner (2017)'s CIFAR-10 network."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Conv2d(128, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 5 * 5, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 10))


def build(args):
    if args.cw_cifar:
        torch.manual_seed(0)
        net = cw_cifar().eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net, [args.batch, 3, 32, 32]
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


def logits_of(out):
    """TorchScript'ed Inception returns InceptionOutputs(logits, aux) even in eval mode."""
    return out if torch.is_tensor(out) else out[0]


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
        out = logits_of(module(xx))
        out.backward(torch.ones_like(out))
        return xx.grad

    return timed(fwd, reps), timed(step, reps)


def neuromask_step(module, shape, channels_last):
    """One NeuroMask step as a closure (black baseline, per-pixel mask)."""
    import torch.nn.functional as F
    cifar = shape[2] <= 64
    temp, ksize, l_pred, l_sparse, l_smooth = (1.0, 3, 0.4, 0.35, 0.15) if cifar else (0.3, 5, 0.4, 0.35, 0.03)
    bound = 10.0
    torch.manual_seed(0)
    x = torch.rand(shape)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    w = ((torch.rand(shape[0], 1, shape[2], shape[3]) * 2 - 1) * bound).requires_grad_(True)
    lap = -torch.ones(1, 1, ksize, ksize)
    lap[0, 0, ksize // 2, ksize // 2] = ksize * ksize - 1
    opt = torch.optim.RMSprop([w], lr=0.03, alpha=0.9, eps=1e-10)

    def prepare(v):
        return v.contiguous(memory_format=torch.channels_last) if channels_last else v

    with torch.no_grad():
        target = logits_of(module(prepare((x - mean) / std))).argmax(1)

    def step():
        opt.zero_grad(set_to_none=True)
        m = torch.sigmoid(w / temp)
        logits = logits_of(module(prepare((x * m - mean) / std)))
        loss = (l_pred * F.cross_entropy(logits, target, reduction="sum") + l_sparse * (w + bound).abs().mean()
                + l_smooth * F.conv2d(w, lap).pow(2).mean())
        loss.backward()
        opt.step()
    return step


def export(module, shape, path):
    torch.onnx.export(module, torch.zeros(shape), path, input_names=["input"], output_names=["logits"],
                      opset_version=13)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx")
    ap.add_argument("--torchvision")
    ap.add_argument("--cw-cifar", action="store_true")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--neuromask", action="store_true")
    ap.add_argument("--export")
    args = ap.parse_args()
    torch.set_num_threads(2)
    module, shape = build(args)
    if args.export:
        export(module, shape, args.export)
        return
    configs = {"eager": (module, False)}
    if not args.onnx:  # (the CW network too)
        configs["channels_last"] = (module.to(memory_format=torch.channels_last), True)
    try:
        scripted = torch.jit.freeze(torch.jit.script(module) if not args.onnx else module.eval())
        configs["torchscript_frozen"] = (scripted, False)
    except Exception as e:  # some models do not script; the others still count
        print(f"# torchscript: {e.__class__.__name__}", file=sys.stderr)
    best = None
    for name, (mod, cl) in configs.items():
        if args.neuromask:
            f, s = 0.0, timed(neuromask_step(mod, shape, cl), args.reps)
        else:
            f, s = measure(mod, shape, cl, args.reps)
        if best is None or s < best[2]:
            best = (name, f, s)
    print(f"forward_ms {best[1]:.3f}\nstep_ms {best[2]:.3f}\nconfig {best[0]}")


if __name__ == "__main__":
    main()
