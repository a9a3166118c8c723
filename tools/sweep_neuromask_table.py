#!/usr/bin/python3
"""Markdown table of the runs of tools/sweep_neuromask.sh (one row per run
folder with results.csv, NeuroMask rows only): images, deletion, insertion,
insertion - deletion, keep rate, mask area (> 0.5), roughness (results.csv of
eval since it has the column), sanity Spearman (when the run had --sanity),
stability (--stability), seconds per image.

    sweep_neuromask_table.py OUTROOT [RUN ...]
"""
import csv
import math
import os
import sys


def mean(v):
    v = [x for x in v if not math.isnan(x)]
    return sum(v) / len(v) if v else float("nan")


def row(run_dir):
    rows = [r for r in csv.DictReader(open(os.path.join(run_dir, "results.csv"))) if r["method"] == "neuromask"]
    if not rows:
        return None
    f = lambda k: [float(r[k]) if r.get(k, "") != "" else float("nan") for r in rows]
    setting = os.path.basename(run_dir)
    spec = ""
    if os.path.exists(os.path.join(run_dir, "setting.txt")):
        parts = open(os.path.join(run_dir, "setting.txt")).read().strip().split("\t")
        spec = " ".join(p for p in parts[1:] if p != "-")
    old = "deletion_auc" in rows[0]   # results.csv before `eval --protocols`
    dele = mean(f("deletion_auc" if old else "deletion_rise"))
    ins = mean(f("insertion_auc" if old else "insertion_rise"))
    kept = mean(f("kept"))
    sanity = mean(f("spearman_random"))
    fmt = lambda x, p="%.3f": "-" if math.isnan(x) else p % x
    return (f"| {setting} | {spec} | {len(rows)} | {dele:.3f} | {ins:.3f} | {ins - dele:.3f} | "
            f"{fmt(100 * kept, '%.0f %%')} | {mean(f('mask_area')):.3f} | {fmt(mean(f('roughness')))} | {fmt(sanity)} | {fmt(mean(f('stability')))} | {mean(f('seconds')):.2f} |")


def main():
    root = sys.argv[1]
    runs = sys.argv[2:] or sorted(d for d in os.listdir(root)
                                  if os.path.exists(os.path.join(root, d, "results.csv")) and not d.endswith(".tmp"))
    print("| run | setting | images | deletion | insertion | ins - del | keep rate | mask area | roughness | sanity Spearman | stability | s / image |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        line = row(os.path.join(root, r))
        if line:
            print(line)


if __name__ == "__main__":
    main()
