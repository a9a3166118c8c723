#!/usr/bin/python3
"""PyTorch port of the official NeuroMask algorithm (nesl/neuromask,
neuromask.py), used as the faithfulness reference for neuromask's C code;
--preset default is this project's own setting (a smooth mask), written
here from its description in src/explain/neuromask.c.

    neuromask_ref.py --model M.onnx | --torchvision NAME  --image IMG
                     --preset cifar|imagenet|default --steps N --seed S --outdir DIR

Writes to DIR: x.bin (the preprocessed pixel-space input [1,C,H,W] in [0,1],
float32), w0.bin (initial mask weights: [H,W], or the grid's cells for
default), loss.bin (total loss per step, before each update), mask.bin (the
returned mask: the final sigmoid(w/T), interpolated for default), model.onnx (for
--torchvision) and meta.txt ("key value" lines the C test reads).
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PRESETS = {  # l_pred, l_sparse, l_smooth, T, kernel
    "cifar": (0.4, 0.35, 0.15, 1.0, 3),
    "imagenet": (0.4, 0.35, 0.03, 0.3, 5),
}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def laplacian(k):
    K = -torch.ones(1, 1, k, k)
    K[0, 0, k // 2, k // 2] = k * k - 1
    return K


class RMSPropTF1:
    """tf.train.RMSPropOptimizer defaults: decay 0.9, momentum 0, eps 1e-10, ms = 1."""

    def __init__(self, w, lr):
        self.w, self.lr = w, lr
        self.ms = torch.ones_like(w)

    def step(self):
        g = self.w.grad
        self.ms.mul_(0.9).add_(0.1 * g * g)
        with torch.no_grad():
            self.w -= self.lr * g / torch.sqrt(self.ms + 1e-10)
        self.w.grad = None


def neuromask(model, x, mean, std, preset, steps, w0, target=None):
    l_pred, l_sparse, l_smooth, T, k = PRESETS[preset]
    L = 10.0
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = model((x - mean) / std)
    c = int(logits.argmax(1)) if target is None else target
    w = w0.clone().requires_grad_(True)
    opt = RMSPropTF1(w, 0.03)
    K = laplacian(k)
    losses = []
    for _ in range(steps):
        m = torch.sigmoid(w / T)
        z = (x * m - mean) / std
        out = model(z)
        pred = F.cross_entropy(out, torch.tensor([c]))
        sparse = (w + L).abs().mean()
        smooth = F.conv2d(w[None, None], K).pow(2).mean()
        loss = l_pred * pred + l_sparse * sparse + l_smooth * smooth
        loss.backward()
        losses.append(float(loss))
        opt.step()
    return c, np.array(losses, np.float32), torch.sigmoid(w / T).detach()


# ------------------------------------------------------------ the default
# The "default" preset, written here from its description in
# src/explain/neuromask.c and neuromask_options.c: a mask of grid x grid cells
# (side / 16 within 8..14) interpolated by a Gaussian of GRID_SIGMA cells; it
# must keep the class on a blur (sigma 10) and lose it when its pixels show
# that blur; sparsity on m; normalized gradient steps from w = 0 whose length
# falls linearly; the returned mask is the mean of the steps' masks, raised
# to the largest power 2^(-j/2) whose x m keeps the class with at least half
# its probability.
DEFAULT = dict(l_pred=1.0, l_delete=1.0, l_sparse=3.0, T=1.0, lr=0.5, blur_sigma=10.0)
GRID_SIGMA = 0.75
CALIBRATE_POWERS = 12


def gaussian_blur(x, sigma):
    """Per-channel Gaussian of radius ceil(3 sigma), edges clamped."""
    r = int(np.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode="replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def interp_weights(n, out, sigma):
    """Gaussian interpolation from n cells to `out` samples, rows summing to 1."""
    s = (torch.arange(out, dtype=torch.float64) + 0.5) * n / out - 0.5
    w = torch.exp(-(s[:, None] - torch.arange(n, dtype=torch.float64)[None]) ** 2 / (2 * sigma * sigma))
    return (w / w.sum(1, keepdim=True)).float()


def delete_loss(z, c):
    """-log(1 - p_c): log of all the softmax mass over the mass off class c."""
    others = torch.cat([z[:, :c], z[:, c + 1:]], 1)
    return (torch.logsumexp(z, 1) - torch.logsumexp(others, 1)).sum()


def default_grid(h, w):
    side = min(h, w)
    return min(min(max(side // 16, 8), 14), side)


def calibrate(model, norm, x, m, c):
    """m ** g for the largest g = 2^(-j/2) whose x m^g keeps c as top-1 with
    at least half of its probability on x (the smallest g when none does)."""
    with torch.no_grad():
        p0 = float(F.softmax(model(norm(x)), 1)[0, c])
        for j in range(CALIBRATE_POWERS):
            g = 2.0 ** (-0.5 * j)
            p = F.softmax(model(norm(x * m ** g)), 1)[0]
            if int(p.argmax()) == c and float(p[c]) >= 0.5 * p0:
                break
    return m ** g


def smooth_mask(model, x, mean, std, steps, w0):
    o = DEFAULT
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    norm = lambda v: (v - mean) / std
    h, wd = x.shape[2], x.shape[3]
    with torch.no_grad():
        c = int(model(norm(x)).argmax(1))
    fill = gaussian_blur(x, o["blur_sigma"])
    Wy, Wx = interp_weights(w0.shape[0], h, GRID_SIGMA), interp_weights(w0.shape[1], wd, GRID_SIGMA)
    w = w0.clone().requires_grad_(True)
    losses, total = [], torch.zeros(h, wd)
    for t in range(steps):
        mc = torch.sigmoid(w / o["T"])
        m = Wy @ mc @ Wx.T
        z = model(norm(torch.cat([x * m + fill * (1 - m), x * (1 - m) + fill * m])))   # keep, delete
        loss = (o["l_pred"] * F.cross_entropy(z[0:1], torch.tensor([c]), reduction="sum")
                + o["l_delete"] * delete_loss(z[1:2], c) + o["l_sparse"] * mc.mean())
        loss.backward()
        losses.append(float(loss))
        with torch.no_grad():
            total += m
            g = w.grad
            w -= o["lr"] * (steps - t) / steps * g / (g.pow(2).mean().sqrt() + 1e-12)
        w.grad = None
    with torch.no_grad():
        mask = (total + Wy @ torch.sigmoid(w / o["T"]) @ Wx.T) / (steps + 1)
    return c, np.array(losses, np.float32), calibrate(model, norm, x, mask, c)


def load_model(args):
    if args.model:
        import onnx_torch
        return onnx_torch.OnnxTorch(args.model), args.model
    import torchvision
    torch.manual_seed(args.seed)
    net = getattr(torchvision.models, args.torchvision)().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    path = os.path.join(args.outdir, "model.onnx")
    torch.onnx.export(net, torch.zeros(1, 3, 224, 224), path, input_names=["input"],
                      output_names=["logits"], opset_version=13)
    return net, path


def load_image(path, size):
    img = Image.open(path).convert("RGB")
    if img.size != (size, size):
        import torchvision.transforms as T
        img = T.CenterCrop(size)(T.Resize(int(size * 256 / 224))(img))
    return torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--torchvision")
    ap.add_argument("--image", required=True)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--preset", default="cifar", choices=list(PRESETS) + ["default"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.outdir, exist_ok=True)
    model, model_path = load_model(args)
    x = load_image(args.image, args.size)
    if args.preset == "default":
        grid = default_grid(x.shape[2], x.shape[3])
        w0 = torch.zeros(grid, grid)
        c, losses, mask = smooth_mask(model, x, IMAGENET_MEAN, IMAGENET_STD, args.steps, w0)
    else:
        g = torch.Generator().manual_seed(args.seed)
        w0 = (torch.rand(args.size, args.size, generator=g) * 2 - 1) * 10.0
        c, losses, mask = neuromask(model, x, IMAGENET_MEAN, IMAGENET_STD, args.preset, args.steps, w0)
    for name, arr in (("x", x), ("w0", w0), ("loss", losses), ("mask", mask)):
        np.asarray(arr, np.float32).tofile(os.path.join(args.outdir, name + ".bin"))
    with open(os.path.join(args.outdir, "meta.txt"), "w") as f:
        f.write(f"model {os.path.abspath(model_path)}\npreset {args.preset}\nsteps {args.steps}\n"
                f"size {args.size}\ntarget {c}\ncells {w0.numel()}\n")
    print(f"target {c}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, mask mean {float(mask.mean()):.4f}, "
          f"area {float((mask > 0.5).float().mean()):.4f}")


if __name__ == "__main__":
    main()
