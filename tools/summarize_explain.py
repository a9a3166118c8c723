#!/usr/bin/python3
"""Summarise a folder of `neuromask explain` JSON records as one Markdown row:
images, fraction whose masked image keeps the class, mean mask value, mean
mask area, steps to convergence (median over images that converged, and how
many did), seconds per image.

    summarize_explain.py DIR [LABEL]
"""
import glob
import json
import statistics
import sys


def main():
    files = sorted(glob.glob(sys.argv[1] + "/*.json"))
    label = sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
    recs = [json.load(open(f)) for f in files]
    if not recs:
        sys.exit(f"{sys.argv[1]}: no JSON records")
    kept = sum(r["kept"] for r in recs) / len(recs)
    conv = [r["converged_at"] for r in recs if r["converged_at"] > 0]
    conv_txt = f"{statistics.median(conv):.0f} ({len(conv)}/{len(recs)} converged)" if conv else f"- (0/{len(recs)})"
    print(f"| {label} | {len(recs)} | {kept:.1%} | {statistics.mean(r['mask_mean'] for r in recs):.3f} | "
          f"{statistics.mean(r['mask_area'] for r in recs):.3f} | {conv_txt} | "
          f"{statistics.mean(r['steps'] for r in recs):.0f} | {statistics.mean(r['seconds'] for r in recs):.2f} |")


if __name__ == "__main__":
    main()
