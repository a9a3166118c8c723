#!/usr/bin/python3
"""Independent check of `neuromask eval --grid-pointing` (docs/metrics.md)
on PyTorch, from the run's files alone:

    grid_ref.py --model M.onnx --recipe cifar|fashion|... --labels LABELS.csv DIR

DIR holds composites.csv, grid_pointing.csv, grid/NNNN.npy and (eval
--save-maps) maps/grid_NNNN_tT.METHOD.npy. Checks, failing with one line
each:
  * every composite has 4 tiles of 4 distinct classes, each image used
    once, each label the --labels file's;
  * each tile's image is classified as its label on its own: the image as
    tools/eval_ref.py loads it (PIL, bilinear to the input size) through the
    model on PyTorch (tools/onnx_torch.py);
  * the saved composite (grid/NNNN.npy) through the PyTorch model gives
    the CSV's probability of each tile's target within 1e-4 (float32
    engines), i.e. the maps were made on that image (the tiles' resizing
    is neuromask's preprocessing and is not re-implemented here);
  * the scores, recomputed from the saved map: top-25 % share (top H*W//4
    pixels, descending, ties by index; within 1e-6, the CSV's 6 digits) and hit (the first maximum in the
    tile) equal, positive share (positive mass in the tile / in the map)
    within 1e-5 (sums in double in both; the CSV has 6 digits).
Prints the per-method means and "ok" when every check passed; exit 1 else.
"""
import csv
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_ref import Normalize, load_image, model_parser, open_model  # noqa: E402


def tile_mask(h, w, t):
    th, tw = h // 2, w // 2
    m = np.zeros((h, w), dtype=bool)
    y0, x0 = (t // 2) * th, (t % 2) * tw
    m[y0:y0 + th, x0:x0 + tw] = True
    return m.reshape(-1)


def scores(sal, t):
    h, w = sal.shape
    flat = sal.reshape(-1).astype(np.float64)
    inside = tile_mask(h, w, t)
    order = np.lexsort((np.arange(h * w), -flat))
    top = order[:h * w // 4]
    pos = np.maximum(flat, 0)
    share = inside[top].mean()
    positive = pos[inside].sum() / pos.sum() if pos.sum() > 0 else float("nan")
    return share, int(inside[order[0]]), positive


def main():
    ap = model_parser()
    ap.add_argument("--labels", required=True)
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, c, h, w = open_model(args.model)
    norm = Normalize(args.recipe, c)
    labels = {r["file"]: int(r["label"]) for r in csv.DictReader(open(args.labels))}
    fails = []

    comps = {}
    for r in csv.DictReader(open(os.path.join(args.dir, "composites.csv"))):
        comps.setdefault(int(r["composite"]), {})[int(r["tile"])] = (r["image"], int(r["label"]))
    used = set()
    for k, tiles in sorted(comps.items()):
        if sorted(tiles) != [0, 1, 2, 3] or len({lab for _, lab in tiles.values()}) != 4:
            fails.append("composite %d: not 4 tiles of 4 distinct classes" % k)
        for t, (image, lab) in tiles.items():
            if image in used:
                fails.append("%s used twice" % image)
            used.add(image)
            if labels.get(os.path.basename(image)) != lab:
                fails.append("composite %d tile %d: label %d is not the labels file's" % (k, t, lab))
            x = torch.from_numpy(load_image(image, c, h, w))
            with torch.no_grad():
                pred = int(model(norm(x[None])).argmax(1))
            if pred != lab:
                fails.append("%s: classified %d on its own, label %d" % (image, pred, lab))

    probs = {}
    for k in comps:
        x = torch.from_numpy(np.load(os.path.join(args.dir, "grid", "%04d.npy" % k)).astype(np.float32))
        with torch.no_grad():
            probs[k] = torch.softmax(model(norm(x[None])).double(), dim=1)[0].numpy()
    means = {}
    for r in csv.DictReader(open(os.path.join(args.dir, "grid_pointing.csv"))):
        k, t, m, target = int(r["composite"]), int(r["tile"]), r["method"], int(r["target_class"])
        where = "composite %d tile %d %s" % (k, t, m)
        if target != comps[k][t][1]:
            fails.append("%s: target %d is not the tile's label" % (where, target))
        if abs(probs[k][target] - float(r["prob"])) > 1e-4:
            fails.append("%s: probability %s, PyTorch %.6f" % (where, r["prob"], probs[k][target]))
        sal = np.load(os.path.join(args.dir, "maps", "grid_%04d_t%d.%s.npy" % (k, t, m)))
        share, hit, positive = scores(sal, t)
        if abs(share - float(r["top25_share"])) > 1e-6 or hit != int(r["hit"]):   # printed with 6 digits
            fails.append("%s: top-25 share %s hit %s, reference %.6f %d" % (where, r["top25_share"], r["hit"],
                                                                           share, hit))
        c_pos = float(r["positive_share"]) if r["positive_share"] else float("nan")
        if not (np.isnan(positive) and np.isnan(c_pos)) and not abs(positive - c_pos) <= 1e-5:
            fails.append("%s: positive share %s, reference %.6f" % (where, r["positive_share"], positive))
        s = means.setdefault(m, [0, 0.0, 0])
        s[0] += 1
        s[1] += share
        s[2] += hit
    for m, (n, share, hits) in means.items():
        print("%-12s %d tiles: top-25 %% share %.4f, hit rate %.4f" % (m, n, share / n, hits / n))
    for f in fails:
        print("FAIL:", f)
    if not comps or not means:
        print("FAIL: no composites or no scores")
        return 1
    print("ok" if not fails else "%d failed" % len(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
