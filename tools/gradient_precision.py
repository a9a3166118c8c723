#!/usr/bin/python3
"""How far float32 arithmetic moves a model's gradient maps. For each image:
neuromask against PyTorch float32, neuromask against PyTorch float64, and
PyTorch float32 against PyTorch float64, all in the reference checks'
measure (max |a - b| / max |b|), for the gradient and gradxinput maps.

    gradient_precision.py --model M.onnx --images DIR --n 20
                          [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225]
                          [--build build] [--work /tmp/nm_gradient_precision]

Runs tools/saliency_ref.py twice per image (float32, --float64) and the
saliency test binary ($BUILD/tests/saliency_resnet20 in its comparison-only
mode) against each. Piecewise-linear networks (Clip, LeakyRelu, MaxPool)
have kinks: a unit whose input lies within float32 rounding of its kink
takes either side, and its share of the gradient moves with it.
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
MAPS = ("gradient", "gradxinput")


def reference(args, image, outdir, float64):
    cmd = [sys.executable, os.path.join(TOOLS, "saliency_ref.py"), "--model", args.model, "--image", image,
           "--outdir", outdir, "--mean", args.mean, "--std", args.std, "--methods", ",".join(MAPS)]
    subprocess.run(cmd + (["--float64"] if float64 else []), check=True, stdout=subprocess.DEVNULL)


def neuromask_errors(args, refdir):
    """The C maps' errors against refdir, as the test binary prints them."""
    out = subprocess.run([os.path.join(args.build, "tests", "saliency_resnet20"), refdir, "0", "shared",
                          ",".join(MAPS)], capture_output=True, text=True).stdout
    found = dict(re.findall(r"^\s+(\S+)\s+max relative error vs PyTorch (\S+)", out, re.M))
    if any(m not in found for m in MAPS):
        sys.exit("gradient_precision.py: no comparison in the test binary's output:\n" + out)
    return [float(found[m]) for m in MAPS]


def torch_errors(d32, d64):
    errs = []
    for m in MAPS:
        a = np.fromfile(os.path.join(d32, m + ".bin"), np.float32).astype(np.float64)
        b = np.fromfile(os.path.join(d64, m + ".bin"), np.float32).astype(np.float64)
        errs.append(np.abs(a - b).max() / np.abs(b).max())
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--mean", default="0.485,0.456,0.406")
    ap.add_argument("--std", default="0.229,0.224,0.225")
    ap.add_argument("--build", default="build")
    ap.add_argument("--work", default="/tmp/nm_gradient_precision")
    args = ap.parse_args()
    os.environ.setdefault("NEUROMASK_SHARED", os.path.join(TOOLS, "..", "..", "shared"))
    cols = ["C-t32", "C-t64", "t32-t64"]
    print("image " + " ".join(f"{m}:{c}" for m in MAPS for c in cols))
    rows = []
    for name in sorted(os.listdir(args.images))[:args.n]:
        d32, d64 = os.path.join(args.work, "f32"), os.path.join(args.work, "f64")
        reference(args, os.path.join(args.images, name), d32, False)
        reference(args, os.path.join(args.images, name), d64, True)
        c32, c64, t = neuromask_errors(args, d32), neuromask_errors(args, d64), torch_errors(d32, d64)
        rows.append([v for i in range(len(MAPS)) for v in (c32[i], c64[i], t[i])])
        print(name + " " + " ".join(f"{v:.2e}" for v in rows[-1]), flush=True)
    a = np.array(rows)
    for j, label in enumerate(f"{m} {c}" for m in MAPS for c in cols):
        print(f"{label:20s} within 1e-3 on {(a[:, j] <= 1e-3).sum()}/{len(a)} images, "
              f"median {np.median(a[:, j]):.2e}, max {a[:, j].max():.2e}")


if __name__ == "__main__":
    main()
