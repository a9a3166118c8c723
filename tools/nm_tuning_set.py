#!/usr/bin/python3
"""The tuning images of the default NeuroMask preset (docs/neuromask_default.md):
N images spread over those that `neuromask eval --limit HELD --spread` does NOT
pick, so the held-out tables use images that played no part in choosing.

    nm_tuning_set.py IMAGE_DIR HELD N OUT_DIR

Makes OUT_DIR with symbolic links to the chosen images and to IMAGE_DIR's
labels.csv (nothing is copied).
"""
import os
import sys

EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp")


def main():
    src, held, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    imgs = sorted(f for f in os.listdir(src) if f.lower().endswith(EXTS))
    picked = {i * len(imgs) // held for i in range(held)}   # eval's --limit HELD --spread
    rest = [f for i, f in enumerate(imgs) if i not in picked]
    chosen = [rest[i * len(rest) // n] for i in range(n)]
    os.makedirs(out, exist_ok=True)
    for f in chosen + ["labels.csv"]:
        link = os.path.join(out, f)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(src, f)), link)
    print("\n".join(chosen))


if __name__ == "__main__":
    main()
