#!/usr/bin/python3
"""Seed dependence and mask statistics of a NeuroMask setting: `neuromask
explain` on the same images with two seeds, then per image the Spearman rank
correlation of the two masks; also the mean mask value, steps run and
seconds per image of the first run.

    nm_seed_agreement.py --bin B --model M --images DIR --limit N --out DIR
                         [--preset P] [--nm SPEC] [--seeds 0,1000]

Images: N spread evenly over the sorted folder (as `neuromask eval --spread`).
Prints one Markdown row: setting, images, mask mean, seed Spearman, steps, s/image.
"""
import argparse
import glob
import json
import os
import subprocess

import numpy as np


def ranks(v):
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):   # mean ranks for ties
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a.ravel()), ranks(b.ravel())
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser()
    for k in ("--bin", "--model", "--images", "--out"):
        ap.add_argument(k, required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--preset", default="cifar")
    ap.add_argument("--nm", default="")
    ap.add_argument("--seeds", default="0,1000")
    ap.add_argument("--batch", type=int, default=10)
    a = ap.parse_args()
    files = sorted(f for f in glob.glob(os.path.join(a.images, "*")) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    n = min(a.limit, len(files))
    pick = [files[i * len(files) // n] for i in range(n)]
    seeds = [int(s) for s in a.seeds.split(",")]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    dirs = []
    for s in seeds:
        d = os.path.join(a.out, f"seed{s}")
        dirs.append(d)
        if glob.glob(os.path.join(d, "*.json")):
            continue
        cmd = ["nice", "-n", "10", a.bin, "explain", "--model", a.model, "--preprocess", "cifar", "--out", d,
               "--preset", a.preset, "--seed", str(s), "--batch", str(a.batch), "--threads", "1", "--quiet",
               "--force"] + (["--nm", a.nm] if a.nm else []) + pick
        subprocess.run(cmd, check=True, env=env)
    rhos, means, steps, secs = [], [], [], []
    for f in sorted(glob.glob(os.path.join(dirs[0], "*.mask.npy"))):
        other = os.path.join(dirs[1], os.path.basename(f))
        rhos.append(spearman(np.load(f), np.load(other)))
        rec = json.load(open(f[: -len(".mask.npy")] + ".json"))
        means.append(rec["mask_mean"])
        steps.append(rec["steps"])
        secs.append(rec["seconds"])
    r = np.array(rhos)
    label = f"{a.preset} {a.nm}".strip()
    print(f"| {label} | {len(rhos)} | {np.mean(means):.3f} | {np.nanmean(r):.3f} | {np.mean(steps):.0f} | "
          f"{np.mean(secs):.2f} |")


if __name__ == "__main__":
    main()
