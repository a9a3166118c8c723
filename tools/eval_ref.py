#!/usr/bin/python3
"""Reference deletion / insertion AUC (Petsiuk et al. 2018, RISE): the logic
of RISE's evaluation code (CausalMetric, gkern, auc) re-implemented on
PyTorch, with the model run by tools/onnx_torch.py. The checks for
src/eval/auc.c (tests/test_eval.c) compare against it.

    eval_ref.py --model M.onnx --recipe cifar|fashion|... --outdir DIR
                (--image IMG --make-maps | --x X.bin --map NAME=FILE ...)
                [--steps 64] [--target -1] [--fill black|zero]
                [--klen 11] [--nsig 5]

As RISE's code, images are normalised tensors: the insertion start image is
conv2d(norm(x), gkern, padding=klen//2) (zero padding of the normalised
tensor) and pixels are copied between normalised tensors. Differences from
RISE, shared with neuromask (the contract of nm_deletion_insertion):
  * `steps` is the number of steps; each changes ceil(H*W/steps) pixels, so
    the curves always have steps + 1 points (RISE: pixels per step given);
  * ties in the map are ranked by pixel index (RISE: np.argsort's order);
  * deletion sets pixels to black in pixel space, i.e. norm(0) (--fill
    black); --fill zero is RISE's torch.zeros_like on the normalised tensor.

The protocols of docs/metrics.md generalise the start and finish images: a
protocol is a deletion fill and an insertion fill, each one of
  black  norm(0): 0 in pixel space
  zero   0 in the normalised tensor (RISE's code)
  blur   RISE's blurred copy (conv2d of the normalised tensor, zero padding)
  grey   norm(0.5): 0.5 in pixel space
  mean   norm(the image's mean colour per channel, in pixel space)
RISE's protocol is black/blur. --make-maps adds the protocols F/F for every
fill F but zero on two maps. --protocols LIST|all scores every --map under
the protocols of `neuromask eval --protocols` (rise, black, blur, grey,
mean), as cases NAME_PROTOCOL. A map file ending in .npy is read with
numpy.load (eval --save-maps), any other as raw float32.

--make-maps writes x.bin (the pixel-space image [C,H,W] float32) and test
maps (random, brightness, ties: 4 levels, centre: a Gaussian) in DIR.
Writes DIR/ref.txt: one line per case
    case NAME MAPFILE DELFILL/INSFILL STEPS TARGET DELETION INSERTION
and the curves DIR/NAME.del.bin, DIR/NAME.ins.bin (float32, steps + 1).
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

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
RECIPES = {  # scale, offset, mean, std (as src/image/preprocess.c)
    "cifar": (1.0, 0.0) + IMAGENET,
    "torchvision": (1.0, 0.0) + IMAGENET,
    "darknet": (1.0, 0.0, (0, 0, 0), (1, 1, 1)),
    "inception": (255.0 / 128.0, -1.0, (0, 0, 0), (1, 1, 1)),
    "fashion": (1.0, 0.0, (0.2860,) * 3, (0.3530,) * 3),
}


def gkern(klen, nsig, channels):
    """RISE's gkern: scipy.ndimage.gaussian_filter of a centred delta on a
    klen x klen grid (mode 'reflect' = numpy 'symmetric', truncate 4),
    placed on the diagonal of a [C, C, klen, klen] conv weight."""
    radius = int(4.0 * nsig + 0.5)
    t = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * t * t / (nsig * nsig))
    w /= w.sum()
    delta = np.zeros(klen)
    delta[klen // 2] = 1
    k1 = np.correlate(np.pad(delta, radius, mode="symmetric"), w, mode="valid")
    k = np.outer(k1, k1)
    kern = np.zeros((channels, channels, klen, klen))
    for c in range(channels):
        kern[c, c] = k
    return torch.from_numpy(kern.astype(np.float32))


def auc(arr):
    """RISE's auc(): normalised trapezoid."""
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


class Normalize:
    def __init__(self, recipe, channels):
        scale, offset, mean, std = RECIPES[recipe]
        self.scale, self.offset = scale, offset
        self.mean = torch.tensor(mean[:channels], dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std[:channels], dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x):
        return (x * self.scale + self.offset - self.mean) / self.std


FILLS = ("black", "zero", "blur", "grey", "mean")
PROTOCOLS = ("rise", "black", "blur", "grey", "mean")
PROTOCOL_FILLS = {"rise": ("black", "blur"), "black": ("black", "black"), "blur": ("blur", "blur"),
                  "grey": ("grey", "grey"), "mean": ("mean", "mean")}


def fill_image(norm, x, fill, klen, nsig):
    """The normalised [1, C, H, W] image that `fill` makes of x (pixel space)."""
    img = norm(x[None])
    if fill == "zero":
        return torch.zeros_like(img)
    if fill == "blur":
        return F.conv2d(img, gkern(klen, nsig, x.shape[0]), padding=klen // 2)
    if fill == "black":
        return norm(torch.zeros_like(x)[None])
    if fill == "grey":
        return norm(torch.full_like(x, 0.5)[None])
    if fill == "mean":
        mean = x.double().mean(dim=(1, 2), keepdim=True).float()
        return norm(mean.expand_as(x).clone()[None])
    raise ValueError(fill)


def causal_metric(model, norm, x, saliency, target, mode, steps, fill, klen, nsig, batch=64):
    """Probability curve of class `target` (steps + 1 points), as RISE's
    CausalMetric.single_run on the normalised image: deletion from x to
    `fill`, insertion from `fill` to x."""
    c, h, w = x.shape
    hw = h * w
    img = norm(x[None])
    if mode == "del":
        start = img.clone()
        finish = fill_image(norm, x, fill, klen, nsig)
    else:
        start = fill_image(norm, x, fill, klen, nsig)
        finish = img.clone()
    per_step = (hw + steps - 1) // steps
    flat = saliency.reshape(-1).astype(np.float32)
    order = np.lexsort((np.arange(hw), -flat))  # descending, ties by index
    frames = []
    for i in range(steps + 1):
        frames.append(start.clone())
        if i < steps:
            coords = torch.from_numpy(order[per_step * i:per_step * (i + 1)].copy())
            start.view(1, c, hw)[0, :, coords] = finish.view(1, c, hw)[0, :, coords]
    scores = []
    with torch.no_grad():
        for b in range(0, len(frames), batch):
            prob = torch.softmax(model(torch.cat(frames[b:b + batch])), dim=1)
            scores.append(prob[:, target])
    return torch.cat(scores).numpy().astype(np.float64)


def load_image(path, channels, h, w):
    img = Image.open(path)
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32) / 255.0
    return a[None] if channels == 1 else a.transpose(2, 0, 1).copy()


def model_parser():
    """An argument parser with the --model and --recipe of every reference script."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    return ap


def open_model(path):
    """The model on PyTorch and its input's C, H, W."""
    model = onnx_torch.OnnxTorch(path)
    shape = [d.dim_value for d in model.model.graph.input[0].type.tensor_type.shape.dim]
    return model, shape[1], shape[2], shape[3]


def read_map(path, h, w):
    """An H x W map: .npy (eval --save-maps) or raw float32."""
    return (np.load(path) if path.endswith(".npy") else np.fromfile(path, dtype=np.float32)).reshape(h, w)


def make_maps(x, outdir, seed=0):
    c, h, w = x.shape
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    maps = {
        "random": rng.rand(h, w),
        "brightness": x.mean(0),
        "ties": np.floor(rng.rand(h, w) * 4),
        "centre": np.exp(-((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (2 * (h / 4) ** 2)),
    }
    files = {}
    for name, m in maps.items():
        files[name] = os.path.join(outdir, "map_%s.bin" % name)
        m.astype(np.float32).tofile(files[name])
    return files


def main():
    ap = model_parser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--image")
    ap.add_argument("--x")
    ap.add_argument("--make-maps", action="store_true")
    ap.add_argument("--map", action="append", default=[], help="NAME=FILE (raw float32 H x W)")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--target", type=int, default=-1)
    ap.add_argument("--fill", choices=("black", "zero"), default="black")
    ap.add_argument("--klen", type=int, default=11)
    ap.add_argument("--nsig", type=float, default=5.0)
    ap.add_argument("--protocols", help="LIST|all: score the --map files under these protocols")
    args = ap.parse_args()
    torch.set_num_threads(1)

    model, c, h, w = open_model(args.model)
    os.makedirs(args.outdir, exist_ok=True)
    if args.image:
        x = load_image(args.image, c, h, w)
        x.tofile(os.path.join(args.outdir, "x.bin"))
    else:
        x = np.fromfile(args.x, dtype=np.float32).reshape(c, h, w)
    norm = Normalize(args.recipe, c)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        target = args.target if args.target >= 0 else int(model(norm(xt[None])).argmax(1))

    maps = dict(kv.split("=", 1) for kv in args.map)
    cases = []
    if args.make_maps:
        files = make_maps(x, args.outdir)
        maps.update(files)
        # Extra cases: RISE's own fill, and a step count that does not divide H*W.
        cases.append(("random_zero", files["random"], ("zero", "blur"), args.steps))
        odd = 50 if (h * w) % 50 else 49
        cases.append(("random_odd", files["random"], (args.fill, "blur"), odd))
        for fill in ("black", "blur", "grey", "mean"):
            for name in ("random", "centre"):
                cases.append(("%s_%s" % (name, fill), files[name], (fill, fill), args.steps))
    if args.protocols:
        names = PROTOCOLS if args.protocols == "all" else args.protocols.split(",")
        cases = [("%s_%s" % (n, p), f, PROTOCOL_FILLS[p], args.steps) for n, f in maps.items() for p in names]
    else:
        cases = [(n, f, (args.fill, "blur"), args.steps) for n, f in maps.items()] + cases

    with open(os.path.join(args.outdir, "ref.txt"), "w") as out:
        for name, path, fill, steps in cases:
            sal = read_map(path, h, w)
            curves = {}
            for mode, mode_fill in zip(("del", "ins"), fill):
                curves[mode] = causal_metric(model, norm, xt, sal, target, mode, steps, mode_fill, args.klen,
                                             args.nsig)
                curves[mode].astype(np.float32).tofile(os.path.join(args.outdir, "%s.%s.bin" % (name, mode)))
            d, i = auc(curves["del"]), auc(curves["ins"])
            assert math.isfinite(d) and math.isfinite(i)
            fills = "/".join(fill)
            out.write("case %s %s %s %d %d %.9f %.9f\n" % (name, path, fills, steps, target, d, i))
            print("%-12s fill %-10s steps %3d target %d: deletion %.5f insertion %.5f" % (name, fills, steps, target,
                                                                                          d, i))


if __name__ == "__main__":
    main()
