#!/usr/bin/python3
"""PyTorch port of the official NeuroMask algorithm (nesl/neuromask,
neuromask.py), used as the faithfulness reference for neuromask's C code;
--preset default is this project's own setting, the area sweep, written here
from its description in src/explain/neuromask.c and neuromask_areas.c.

    neuromask_ref.py --model M.onnx | --torchvision NAME  --image IMG
                     --preset cifar|imagenet|default --steps N --seed S --outdir DIR

Writes to DIR: x.bin (the preprocessed pixel-space input [1,C,H,W] in [0,1],
float32), w0.bin (initial mask weights: [H,W], or the grid's cells for
default), loss.bin (total loss per step, before each update), mask.bin (the
returned mask: final sigmoid(w/T), or default's ranked map), model.onnx (for
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


# ---------------------------------------------------------------- area sweep
# The "default" preset: l_pred, l_delete, l_pred_alt, l_smooth, T, areas per
# step, steps; the grid is min(H, W) / 2 cells per side, at most 28.
DEFAULT = dict(l_pred=0.4, l_delete=0.4, l_pred_alt=0.4, l_smooth=0.3, T=0.1, areas=2, blur_sigma=5.0)
MIN_SPREAD = 0.1
CHECKS = 32


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


def upsample(cells, h, w):
    return F.interpolate(cells[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]


def area_of(S, t, s):
    u = (0.5 + 0.6180339887498949 * t) % 1.0
    return (s + u) / S


def thresholds(w, S, t):
    """The spread of w (population std, at least MIN_SPREAD) and, per area,
    the midpoint between the k-th largest w and the next."""
    v = w.detach().flatten()
    n = v.numel()
    spread = max(float(v.std(unbiased=False)), MIN_SPREAD)
    srt = torch.sort(v, descending=True).values
    taus = []
    for s in range(S):
        k = min(max(int(np.floor(area_of(S, t, s) * n + 0.5)), 1), n - 1)
        taus.append(float(0.5 * (srt[k - 1] + srt[k])))
    return spread, taus


def delete_loss(z, c):
    """-log(1 - p_c): log of all the softmax mass over the mass off class c."""
    others = torch.cat([z[:, :c], z[:, c + 1:]], 1)
    return (torch.logsumexp(z, 1) - torch.logsumexp(others, 1)).sum()


def map_value(rank, k, n):
    return torch.where(rank < k, 1.0 - 0.5 * rank / k, 0.5 * (n - 1 - rank) / max(n - k, 1))


def ranked_map(model, x, blur, norm, c, w, h, wd):
    """The returned map: ranks of w, crossing 0.5 at the smallest checked area
    whose hard mask keeps c on the blur and whose map keeps c on black."""
    n = w.numel()
    order = sorted(range(n), key=lambda i: (-float(w.flatten()[i]), i))
    rank = torch.empty(n)
    rank[torch.tensor(order)] = torch.arange(n, dtype=torch.float32)
    rank = rank.view_as(w)
    keep = n
    for j in range(1, CHECKS + 1):
        k = (j * n + CHECKS - 1) // CHECKS
        hard = upsample((rank < k).float(), h, wd)
        soft = upsample(map_value(rank, k, n), h, wd)
        with torch.no_grad():
            z = model(torch.cat([norm(x * hard + blur * (1 - hard)), norm(x * soft)]))
        if int(z[0].argmax()) == c and int(z[1].argmax()) == c:
            keep = k
            break
    return upsample(map_value(rank, keep, n), h, wd)


def area_sweep(model, x, mean, std, steps, w0):
    o = DEFAULT
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    norm = lambda v: (v - mean) / std
    h, wd = x.shape[2], x.shape[3]
    with torch.no_grad():
        c = int(model(norm(x)).argmax(1))
    blur = gaussian_blur(x, o["blur_sigma"])
    w = w0.clone().requires_grad_(True)
    opt = RMSPropTF1(w, 0.03)
    K = laplacian(3)
    S = o["areas"]
    losses = []
    for t in range(steps):
        spread, taus = thresholds(w, S, t)
        imgs = []
        for tau in taus:
            m = upsample(torch.sigmoid((w - tau) / (o["T"] * spread)), h, wd)
            imgs += [x * m + blur * (1 - m), x * (1 - m), x * m]   # preserve on blur, delete, preserve on black
        z = model(norm(torch.cat(imgs)))
        loss = 0
        for s in range(S):
            zs = z[3 * s:3 * s + 3]
            loss = loss + (o["l_pred"] * F.cross_entropy(zs[0:1], torch.tensor([c]), reduction="sum")
                           + o["l_delete"] * delete_loss(zs[1:2], c)
                           + o["l_pred_alt"] * F.cross_entropy(zs[2:3], torch.tensor([c]), reduction="sum")) / S
        padded = F.pad(w[None, None], (1, 1, 1, 1), mode="replicate")
        loss = loss + o["l_smooth"] / spread ** 2 * F.conv2d(padded, K).pow(2).mean()
        loss.backward()
        losses.append(float(loss))
        opt.step()
    return c, np.array(losses, np.float32), ranked_map(model, x, blur, norm, c, w.detach(), h, wd)


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
        grid = min(max(args.size // 2, 1), 28)
        w0 = torch.zeros(grid, grid)
        c, losses, mask = area_sweep(model, x, IMAGENET_MEAN, IMAGENET_STD, args.steps, w0)
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
