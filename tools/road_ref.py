#!/usr/bin/python3
"""Reference ROAD (Rong et al., ICML 2022, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods"), noisy linear imputation
without noise, on PyTorch, with the model run by tools/onnx_torch.py. The
checks for src/eval/road.c (tests/test_eval.c, mode road) compare against it.

    road_ref.py --model M.onnx --recipe cifar|fashion|... --image IMG --outdir DIR
                [--map NAME=FILE ...] [--make-maps] [--target -1]

The protocol, from the paper's reference code (github.com/tleemann/
road_evaluation, road/imputations.py and road/imputed_dataset.py):
  * the imputation runs in pixel space [0, 1], before normalisation;
  * each removed pixel is the weighted mean of its in-image neighbours
    (weight 1/6 for the 4 direct, 1/12 for the 4 diagonal ones), removed
    neighbours being unknowns of the same linear system; the reference code
    solves it with scipy's spsolve, this script assembles it densely and
    solves it with torch.linalg.solve in float64 (a different solver from
    the C code's conjugate gradients);
  * MoRF at fraction f removes the int(H*W*f) pixels ranked first, LeRF the
    int(H*W*f) ranked last (the reference code's LeRF at th_p keeps the
    th_p first, i.e. removes 1 - th_p); fractions 0.1 0.2 0.3 0.4 0.5 0.7 0.9;
  * ties: ranked by pixel index (the reference code adds N(0, 1e-4) to the
    map instead);
  * measured: the softmax probability of the target and whether it stays
    the top-1 class. The noise (N(0, 0.01) on imputed pixels) is 0 here: the
    C unit tests check the noise statistics.
Writes DIR/road_ref.txt, one line per map:
    road NAME MAPFILE TARGET morf P*7 lerf P*7 morf_top1 T*7 lerf_top1 T*7
and DIR/NAME.morf50.bin: the imputed pixel-space image, MoRF at 0.5.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_ref import Normalize, load_image, make_maps, model_parser, open_model, read_map  # noqa: E402

FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)
NEIGHBOURS = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12)
              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def impute(x, removed):
    """x: [C,H,W] float32 tensor (pixel space); removed: bool [H,W] numpy."""
    c, h, w = x.shape
    ys, xs = np.nonzero(removed)
    n = len(ys)
    if n == 0:
        return x.clone()
    index = -np.ones((h, w), dtype=np.int64)
    index[ys, xs] = np.arange(n)
    a = torch.zeros((n, n), dtype=torch.float64)
    b = torch.zeros((n, c), dtype=torch.float64)
    xd = x.double()
    for i, (y, xx) in enumerate(zip(ys, xs)):
        for dy, dx, wt in NEIGHBOURS:
            ny, nx = y + dy, xx + dx
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            a[i, i] += wt
            if removed[ny, nx]:
                a[i, index[ny, nx]] -= wt
            else:
                b[i] += wt * xd[:, ny, nx]
    u = torch.linalg.solve(a, b)  # [n, C]
    out = x.clone()
    out[:, torch.from_numpy(ys), torch.from_numpy(xs)] = u.t().float()
    return out


def road(model, norm, x, saliency, target):
    c, h, w = x.shape
    hw = h * w
    flat = saliency.reshape(-1).astype(np.float32)
    order = np.lexsort((np.arange(hw), -flat))  # descending, ties by index
    images, morf50 = [], None
    for lerf in (False, True):
        for f in FRACTIONS:
            count = int(hw * f)
            removed = np.zeros(hw, dtype=bool)
            removed[order[hw - count:] if lerf else order[:count]] = True
            img = impute(x, removed.reshape(h, w))
            if not lerf and f == 0.5:
                morf50 = img
            images.append(img)
    with torch.no_grad():
        logits = model(norm(torch.stack(images)))
    prob = torch.softmax(logits.double(), dim=1)[:, target].numpy()
    top1 = (logits.argmax(1) == target).int().numpy()
    k = len(FRACTIONS)
    return prob[:k], prob[k:], top1[:k], top1[k:], morf50


def main():
    ap = model_parser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--make-maps", action="store_true")
    ap.add_argument("--map", action="append", default=[], help="NAME=FILE (raw float32 H x W, or .npy)")
    ap.add_argument("--target", type=int, default=-1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, c, h, w = open_model(args.model)
    os.makedirs(args.outdir, exist_ok=True)
    x = load_image(args.image, c, h, w)
    x.tofile(os.path.join(args.outdir, "x.bin"))
    norm = Normalize(args.recipe, c)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        target = args.target if args.target >= 0 else int(model(norm(xt[None])).argmax(1))
    maps = dict(kv.split("=", 1) for kv in args.map)
    if args.make_maps:
        maps.update(make_maps(x, args.outdir))
    with open(os.path.join(args.outdir, "road_ref.txt"), "w") as out:
        for name, path in maps.items():
            sal = read_map(path, h, w)
            morf, lerf, mt, lt, morf50 = road(model, norm, xt, sal, target)
            morf50.numpy().astype(np.float32).tofile(os.path.join(args.outdir, "%s.morf50.bin" % name))
            out.write("road %s %s %d morf %s lerf %s morf_top1 %s lerf_top1 %s\n" % (
                name, path, target, " ".join("%.9f" % v for v in morf), " ".join("%.9f" % v for v in lerf),
                " ".join(str(v) for v in mt), " ".join(str(v) for v in lt)))
            print("%-12s target %d: MoRF mean %.4f LeRF mean %.4f (LeRF - MoRF %.4f)" % (
                name, target, morf.mean(), lerf.mean(), lerf.mean() - morf.mean()))


if __name__ == "__main__":
    main()
