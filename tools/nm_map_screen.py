#!/usr/bin/python3
"""Screen post-processings of saved saliency maps offline: deletion and
insertion AUC (tools/eval_ref.py's protocol: 64 steps, black deletion, blur
start kernel 11 sigma 5) of each variant, paired against the first.

    nm_map_screen.py --model M.onnx --recipe cifar --maps DIR \\
        --variant 'm' --variant 'fix_border(m)' --variant 'blur(m, 1)' ...

DIR holds `neuromask explain` outputs (NAME.mask.npy or NAME.map.npy, NAME.json with
"image" and "target_class"). A variant is a Python expression over the map m
(float64 [H,W]) and the helpers below. Prints one line per variant: means
and the paired difference in insertion - deletion against the first variant
(mean +- standard error).
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_ref  # noqa: E402
import onnx_torch  # noqa: E402


def blur(m, sigma):
    """Separable Gaussian of radius 3 sigma, edges replicated."""
    r = max(1, int(3 * sigma + 0.5))
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * t * t / (sigma * sigma))
    k /= k.sum()
    a = np.pad(m, r, mode="edge")
    a = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, a)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, a)


def fix_border(m, k=1):
    """Replace the k-pixel border by its inner neighbours (the 'valid'
    Laplacian leaves the border unconstrained)."""
    return np.pad(m[k:-k, k:-k], k, mode="edge")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--maps", required=True)
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = onnx_torch.OnnxTorch(a.model)
    norm = eval_ref.Normalize(a.recipe, 3)
    files = sorted(glob.glob(os.path.join(a.maps, "*.mask.npy")) + glob.glob(os.path.join(a.maps, "*.map.npy")))
    if a.limit:
        files = files[:a.limit]
    if not files:
        sys.exit("nm_map_screen.py: %s: no *.mask.npy or *.map.npy maps" % a.maps)
    res = {v: [] for v in a.variant}
    for f in files:
        meta = json.load(open(f.rsplit(".", 2)[0] + ".json"))
        m = np.load(f).astype(np.float64)
        x = torch.from_numpy(eval_ref.load_image(meta["image"], 3, *m.shape))
        for v in a.variant:
            sal = eval(v, {"np": np, "blur": blur, "fix_border": fix_border, "m": m})
            d, i = (eval_ref.auc(eval_ref.causal_metric(model, norm, x, sal, meta["target_class"], mode, 64,
                                                        "black", 11, 5.0, batch=65)) for mode in ("del", "ins"))
            res[v].append((d, i))
    base = np.array([i - d for d, i in res[a.variant[0]]])
    for v in a.variant:
        r = np.array(res[v])
        diff = r[:, 1] - r[:, 0]
        pd = diff - base
        se = pd.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else 0.0
        print("%-32s n %d del %.3f ins %.3f ins-del %.3f  vs first %+.3f +- %.3f"
              % (v[:32], len(r), r[:, 0].mean(), r[:, 1].mean(), diff.mean(), pd.mean(), se))


if __name__ == "__main__":
    main()
