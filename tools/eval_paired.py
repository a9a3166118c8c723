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

--protocol all: one wide table, a column per protocol measured (the five
fills and ROAD) and their per-image mean, each cell "mean (REF minus method
+- s.e., images where REF is better)"; with --trust a second table of what
else the files measured per method: stability (mean, share >= 0.8), sanity
(share < 0.3), keep rate, probability kept >= 1/2, seconds.

--grid: the files are grid_pointing.csv of `eval --grid-pointing` runs with
the same composites (same images, --seed and --composites); per method the
mean top-25 % share with the paired difference REF minus method over the
tiles, and the pointing hit rate.

--label NAME=PATH renames the methods of one file: "NAME" (e.g. two runs of
neuromask with different settings). Prints Markdown.
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


PROTOCOLS = ("rise", "black", "blur", "grey", "mean", "road")


def paired(score, ref, m, images):
    n = len(images)
    v = [score[(m, i)] for i in images]
    d = [score[(ref, i)] - score[(m, i)] for i in images]
    md = sum(d) / n
    se = math.sqrt(sum((x - md) ** 2 for x in d) / (n - 1) / n)
    return sum(v) / n, md, se, sum(x > 0 for x in d)


def wide_table(paths, labels, ref):
    scores = {}
    for p in PROTOCOLS:
        score = {}
        for path in paths:
            score.update(load(path, labels.get(path), p))
        if score:
            scores[p] = score
    protocols = list(scores)
    methods = sorted({m for sc in scores.values() for m, _ in sc})
    if ref not in methods:
        sys.exit("eval_paired.py: no rows of method '%s'" % ref)
    keys = set.intersection(*(set(sc) for sc in scores.values()))
    images = sorted({i for _, i in keys})
    images = [i for i in images if all((m, i) in keys for m in methods)]
    if len(images) < 2:
        sys.exit("eval_paired.py: fewer than 2 images scored by every method under every protocol")
    scores["mean over protocols"] = {(m, i): sum(scores[p][(m, i)] for p in protocols) / len(protocols)
                                     for m in methods for i in images}
    columns = protocols + ["mean over protocols"]
    n = len(images)
    print("%d images scored by all %d methods under %s; ins - del per fill, LeRF - MoRF for road; "
          "in brackets %s minus method +- s.e. and the images where %s is better\n"
          % (n, len(methods), ", ".join(protocols), ref, ref))
    print("| method | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    order = sorted(methods, key=lambda m: (m != ref, -paired(scores[columns[-1]], ref, m, images)[0]))
    for m in order:
        cells = []
        for c in columns:
            mean, md, se, better = paired(scores[c], ref, m, images)
            cells.append("**%.3f**" % mean if m == ref else "%.3f (%+.3f +- %.3f, %d)" % (mean, md, se, better))
        print("| %s | %s |" % (m, " | ".join(cells)))


def trust_table(paths, labels):
    rows = {}
    for path in paths:
        for r in csv.DictReader(open(path)):
            rows.setdefault(labels.get(path) or r["method"], []).append(r)

    def values(rs, col):
        return [float(r[col]) for r in rs if r.get(col, "") != ""]

    def share(v, test):
        return "%d / %d" % (sum(test(x) for x in v), len(v)) if v else "-"

    print("\n| method | rows | stability mean | stability >= 0.8 | sanity < 0.3 | keep rate | "
          "probability kept >= 1/2 | seconds per image |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m, rs in sorted(rows.items()):
        st, rho = values(rs, "stability"), values(rs, "spearman_random")
        kept, kp, sec = values(rs, "kept"), values(rs, "kept_prob"), values(rs, "seconds")
        print("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            m, len(rs), "%.3f" % (sum(st) / len(st)) if st else "-", share(st, lambda x: x >= 0.8),
            share(rho, lambda x: x < 0.3), share(kept, lambda x: x == 1), share(kp, lambda x: x >= 0.5),
            "%.2f" % (sum(sec) / len(sec)) if sec else "-"))


def grid_table(paths, labels, ref):
    share, hit = {}, {}
    for path in paths:
        for r in csv.DictReader(open(path)):
            key = (labels.get(path) or r["method"], (int(r["composite"]), int(r["tile"])))
            share[key], hit[key] = float(r["top25_share"]), int(r["hit"])
    methods = sorted({m for m, _ in share})
    if ref not in methods:
        sys.exit("eval_paired.py: no rows of method '%s'" % ref)
    tiles = sorted({t for _, t in share})
    tiles = [t for t in tiles if all((m, t) in share for m in methods)]
    if len(tiles) < 2:
        sys.exit("eval_paired.py: fewer than 2 tiles scored by every method")
    n = len(tiles)
    print("%d tiles (%d composites) scored by all %d methods\n" % (n, len({c for c, _ in tiles}), len(methods)))
    print("| method | top-25 %% share | %s minus method (+- s.e.) | %s better on | hit rate |" % (ref, ref))
    print("|---|---:|---:|---:|---:|")
    for m in sorted(methods, key=lambda m: (m != ref, m)):
        mean, md, se, better = paired(share, ref, m, tiles)
        hits = sum(hit[(m, t)] for t in tiles)
        if m == ref:
            print("| %s | %.3f | - | - | %.3f (%d / %d) |" % (m, mean, hits / n, hits, n))
        else:
            print("| %s | %.3f | %+.3f +- %.3f | %d / %d | %.3f (%d / %d) |" % (m, mean, md, se, better, n, hits / n, hits, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="neuromask")
    ap.add_argument("--protocol", default="rise", choices=PROTOCOLS + ("all",))
    ap.add_argument("--grid", action="store_true", help="the files are grid_pointing.csv")
    ap.add_argument("--trust", action="store_true", help="with --protocol all: the table of the other measures")
    ap.add_argument("--label", action="append", default=[], help="NAME=PATH")
    ap.add_argument("results", nargs="+")
    args = ap.parse_args()
    labels = {p: n for n, p in (kv.split("=", 1) for kv in args.label)}
    if args.grid:
        grid_table(args.results, labels, args.ref)
        return
    if args.protocol == "all":
        wide_table(args.results, labels, args.ref)
        if args.trust:
            trust_table(args.results, labels)
        return
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
        mean, md, se, better = paired(score, args.ref, m, images)
        table.append((mean, m, md, se, better))
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
