#!/usr/bin/python3
"""PyTorch reference for neuromask's saliency methods (nm_explain): gradient,
gradient x input, integrated gradients, Grad-CAM, occlusion and RISE, on an
ONNX model run by tools/onnx_torch.py. tests/test_saliency.c compares the C
maps with these.

    saliency_ref.py --model M.onnx --image IMG --outdir DIR
                    [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225]
                    [--scale 1 --offset 0] [--ig-steps 32] [--occ-patch 4
                    --occ-stride 2] [--rise-masks 512 --rise-cell 7
                    --rise-p 0.5] [--seed 0] [--gradcam-layer NAME]
                    [--methods gradient,gradxinput,ig,gradcam,occlusion,rise]
                    [--float64]

--float64 runs the whole reference in double precision (the maps are still
written as float32): the yardstick for how far float32 arithmetic, PyTorch's
or neuromask's, moves a map (tools/gradient_precision.py).

The image is read as pixel-space x in [0,1] ([C,H,W], C from the model's
input) and written to DIR/x.bin, so that both sides see the same x. Maps are
raw float32 [H,W] files (DIR/<method>.bin); DIR/meta.txt holds "key value"
lines: the target class, the parameters, the Grad-CAM layer and the IG
completeness error.

Definitions (the same as src/explain/):
- gradient: max over channels of |d logit_c / dx|; gradxinput: sum over
  channels of x * d logit_c / dx, x in pixel space, through the normalisation.
- integrated gradients: black baseline, midpoint Riemann sum with alphas
  (k + 1/2) / steps; map = sum over channels of (x - x0) * mean gradient.
- Grad-CAM: ReLU(sum_k mean(dlogit_c/dA_k) A_k), F.interpolate bilinear,
  align_corners=False; layer: the last node output that is 4-D with more than
  one row (the C library's default).
- occlusion: black patches at k * stride for k = 0 .. ceil((side - patch) /
  stride), clipped at the border; each pixel gets the mean over the windows
  covering it of p_c(x) - p_c(x occluded) (softmax probabilities).
- RISE: masks from splitmix64 (uniform = top 24 bits / 2^24): for each mask,
  cell^2 keep bits (u < p, row-major), then the row and column shifts
  ((u24 * cell_size) >> 24), the grid upsampled bilinearly (align_corners=False)
  to (cell + 1) * cell_size, cropped at the shift; map = sum_i p_c(x M_i) M_i / (N p).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_torch  # noqa: E402

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def u24(self):
        return self.next() >> 40


def rise_masks(n, cell, p, h, w, seed):
    rng = SplitMix64(seed)
    ch, cw = -(-h // cell), -(-w // cell)
    uh, uw = (cell + 1) * ch, (cell + 1) * cw
    p32 = float(np.float32(p))
    masks = torch.empty(n, 1, h, w)
    for i in range(n):
        bits = [1.0 if rng.u24() / 16777216.0 < p32 else 0.0 for _ in range(cell * cell)]
        dy = (rng.u24() * ch) >> 24
        dx = (rng.u24() * cw) >> 24
        grid = torch.tensor(bits, dtype=torch.float32).view(1, 1, cell, cell)
        up = F.interpolate(grid, size=(uh, uw), mode="bilinear", align_corners=False)
        masks[i] = up[0, :, dy:dy + h, dx:dx + w]
    return masks


class Ref:
    def __init__(self, model, mean, std, scale, offset):
        self.model = model
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)
        self.scale, self.offset = scale, offset

    def logits(self, x, keep=None):
        return self.model((x * self.scale + self.offset - self.mean) / self.std, keep=keep)

    def probs(self, x, batch=64):
        with torch.no_grad():
            return torch.cat([F.softmax(self.logits(x[i:i + batch]), 1) for i in range(0, len(x), batch)])

    def grad(self, x, c):
        x = x.clone().requires_grad_(True)
        out = self.logits(x)
        (g,) = torch.autograd.grad(out[:, c].sum(), x)
        return out.detach(), g


def integrated_gradients(ref, x, c, steps):
    x0 = torch.zeros_like(x)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    xs = x0 + alphas.view(-1, 1, 1, 1) * (x - x0)
    _, g = ref.grad(xs, c)
    attr = (x - x0) * g.mean(0, keepdim=True)
    with torch.no_grad():
        fx, fx0 = ref.logits(x)[0, c], ref.logits(x0)[0, c]
    completeness = float(attr.sum() - (fx - fx0))
    return attr.sum(1)[0], completeness


def gradcam(ref, x, c, layer):
    keep = {}
    out = ref.logits(x.clone().requires_grad_(True), keep=keep)
    if layer is None:
        names = [o for node in ref.model.model.graph.node for o in node.output]
        spatial = [n for n in names if n in keep and torch.is_tensor(keep[n]) and keep[n].dim() == 4
                   and keep[n].shape[2] >= 2]
        layer = spatial[-1]
    A = keep[layer]
    (g,) = torch.autograd.grad(out[0, c], A)
    cam = F.relu((g.mean((2, 3), keepdim=True) * A).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return cam[0, 0].detach(), layer


def occlusion(ref, x, c, patch, stride):
    _, C, H, W = x.shape
    ny, nx = -(-(H - patch) // stride) + 1, -(-(W - patch) // stride) + 1
    boxes, imgs = [], []
    for ky in range(ny):
        for kx in range(nx):
            y0, x0 = ky * stride, kx * stride
            y1, x1 = min(y0 + patch, H), min(x0 + patch, W)
            occ = x.clone()
            occ[:, :, y0:y1, x0:x1] = 0
            boxes.append((y0, y1, x0, x1))
            imgs.append(occ)
    p0 = ref.probs(x)[0, c]
    p = ref.probs(torch.cat(imgs))[:, c]
    total, count = torch.zeros(H, W), torch.zeros(H, W)
    for (y0, y1, x0, x1), pk in zip(boxes, p):
        total[y0:y1, x0:x1] += p0 - pk
        count[y0:y1, x0:x1] += 1
    return total / count


def rise(ref, x, c, n, cell, p, seed):
    masks = rise_masks(n, cell, p, x.shape[2], x.shape[3], seed)
    probs = ref.probs(x * masks)[:, c]
    return (probs.view(-1, 1, 1) * masks[:, 0]).sum(0) / (n * p)


def load_image(path, channels, h, w):
    img = Image.open(path).convert("RGB" if channels == 3 else "L")
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    a = np.asarray(img, np.float32) / 255.0
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def floats(s):
    return [float(v) for v in s.split(",")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--mean", type=floats, default=[0.485, 0.456, 0.406])
    ap.add_argument("--std", type=floats, default=[0.229, 0.224, 0.225])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--offset", type=float, default=0.0)
    ap.add_argument("--ig-steps", type=int, default=32)
    ap.add_argument("--occ-patch", type=int, default=4)
    ap.add_argument("--occ-stride", type=int, default=2)
    ap.add_argument("--rise-masks", type=int, default=512)
    ap.add_argument("--rise-cell", type=int, default=7)
    ap.add_argument("--rise-p", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gradcam-layer")
    ap.add_argument("--methods", default="gradient,gradxinput,ig,gradcam,occlusion,rise")
    ap.add_argument("--float64", action="store_true")
    args = ap.parse_args()
    wanted = set(args.methods.split(","))
    torch.set_num_threads(2)
    os.makedirs(args.outdir, exist_ok=True)
    model = onnx_torch.OnnxTorch(args.model)
    dims = [d.dim_value for d in model.model.graph.input[0].type.tensor_type.shape.dim]
    channels, h, w = dims[1], dims[2], dims[3]
    mean, std = args.mean[:channels], args.std[:channels]
    if len(mean) == 1 and channels == 3:
        mean, std = mean * 3, std * 3
    ref = Ref(model, mean, std, args.scale, args.offset)
    x = load_image(args.image, channels, h, w)
    if args.float64:
        model.consts = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
                        for k, v in model.consts.items()}
        ref.mean, ref.std, x = ref.mean.double(), ref.std.double(), x.double()
    with torch.no_grad():
        logits = ref.logits(x)
    c = int(logits.argmax(1))

    _, g = ref.grad(x, c)
    maps = {"gradient": g[0].abs().amax(0), "gradxinput": (x * g)[0].sum(0)}
    completeness, layer = float("nan"), "none"
    if "ig" in wanted:
        maps["ig"], completeness = integrated_gradients(ref, x, c, args.ig_steps)
    if "gradcam" in wanted:
        maps["gradcam"], layer = gradcam(ref, x, c, args.gradcam_layer)
    if "occlusion" in wanted:
        maps["occlusion"] = occlusion(ref, x, c, args.occ_patch, args.occ_stride)
    if "rise" in wanted:
        maps["rise"] = rise(ref, x, c, args.rise_masks, args.rise_cell, args.rise_p, args.seed)

    x.numpy().astype(np.float32).tofile(os.path.join(args.outdir, "x.bin"))
    for name, m in maps.items():
        m.detach().numpy().astype(np.float32).tofile(os.path.join(args.outdir, name + ".bin"))
    meta = {
        "model": os.path.abspath(args.model), "target": c, "prob": float(F.softmax(logits, 1)[0, c]),
        "channels": channels, "height": h, "width": w,
        "mean": ",".join(f"{v:.9g}" for v in mean), "std": ",".join(f"{v:.9g}" for v in std),
        "scale": args.scale, "offset": args.offset, "ig_steps": args.ig_steps,
        "ig_completeness": f"{completeness:.9g}", "occ_patch": args.occ_patch, "occ_stride": args.occ_stride,
        "rise_masks": args.rise_masks, "rise_cell": args.rise_cell, "rise_p": args.rise_p, "seed": args.seed,
        "gradcam_layer": layer,
    }
    with open(os.path.join(args.outdir, "meta.txt"), "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in meta.items())
    print(f"{os.path.basename(args.model)}: class {c} (p {meta['prob']:.4f}), Grad-CAM layer {layer}, "
          f"IG completeness error {completeness:.3g}")


if __name__ == "__main__":
    main()
