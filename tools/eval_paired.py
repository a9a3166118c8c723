#!/usr/bin/python3
"""Paired comparison of methods in `neuromask eval` results: for every method,
its mean insertion - deletion AUC over the images that every given method
scored, and the per-image difference `REF minus method` with its standard
error and the number of images on which REF is better. Several results.csv
files (runs of different methods on the same images) are merged.

    eval_paired.py [--ref neuromask] [--protocol rise] [--label NAME=PATH ...] RESULTS.csv ...

--protocol P: the deletion / insertion protocol of `eval --protocols`
(rise, black, blur, grey, mean; default rise), scored by insertion -
deletion, or road (`eval --road`), scored by LeRF - MoRF; files written
before --protocols existed hold RISE's protocol only.

--label NAME=PATH renames the methods of one file: "NAME" (e.g. two runs of
neuromask with different settings). Prints a Markdown table.
"""
import argparse
import csv
import math
import sys


def load(path, label, protocol):
    rows = {}
    for r in csv.DictReader(open(path)):
        method = label or r["method"]
        if "deletion_auc" in r:   # before --protocols: RISE's protocol
            if protocol != "rise":
                sys.exit("eval_paired.py: %s has RISE's protocol only" % path)
            rows[(method, r["image"])] = float(r["insertion_auc"]) - float(r["deletion_auc"])
        else:
            column = "road_lerf_morf" if protocol == "road" else "ins_del_" + protocol
            if r[column] != "":
                rows[(method, r["image"])] = float(r[column])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="neuromask")
    ap.add_argument("--protocol", default="rise", choices=("rise", "black", "blur", "grey", "mean", "road"))
    ap.add_argument("--label", action="append", default=[], help="NAME=PATH")
    ap.add_argument("results", nargs="+")
    args = ap.parse_args()
    labels = {p: n for n, p in (kv.split("=", 1) for kv in args.label)}
    score = {}
    for path in args.results:
        score.update(load(path, labels.get(path), args.protocol))
    methods = sorted({m for m, _ in score})
    if args.ref not in methods:
        sys.exit("eval_paired.py: no rows of method '%s'" % args.ref)
    images = sorted({i for _, i in score})
    images = [i for i in images if all((m, i) in score for m in methods)]
    if len(images) < 2:
        sys.exit("eval_paired.py: fewer than 2 images scored by every method")
    n = len(images)
    table = []
    for m in methods:
        v = [score[(m, i)] for i in images]
        d = [score[(args.ref, i)] - score[(m, i)] for i in images]
        md = sum(d) / n
        se = math.sqrt(sum((x - md) ** 2 for x in d) / (n - 1) / n)
        table.append((sum(v) / n, m, md, se, sum(x > 0 for x in d)))
    table.sort(reverse=True)
    print("%d images scored by all %d methods, protocol %s\n" % (n, len(methods), args.protocol))
    score_name = "LeRF - MoRF" if args.protocol == "road" else "ins - del"
    print("| method | %s | %s minus method (+- s.e.) | %s better on |" % (score_name, args.ref, args.ref))
    print("|---|---:|---:|---:|")
    for mean, m, md, se, better in table:
        if m == args.ref:
            print("| %s | %.3f | - | - |" % (m, mean))
        else:
            print("| %s | %.3f | %+.3f +- %.3f | %d / %d |" % (m, mean, md, se, better, n))


if __name__ == "__main__":
    main()
