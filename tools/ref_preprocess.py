#!/usr/bin/python3
"""Reference preprocessing with PIL + torchvision, for tests/test_image.c.

Usage: ref_preprocess.py JOBS
JOBS is a text file, one job per line: "RECIPE H W C IN OUT".
Each job writes OUT as raw little-endian float32:
  recipe raw:  the decoded image as PIL sees it, HWC in [0,1] (C = 1 for
               grey images, else 3; H W C of the line are ignored);
  otherwise:   the model input [C,H,W] after the recipe's transforms.
Recipes (as in src/image/preprocess.c):
  cifar        ToTensor, Normalize(ImageNet mean/std) (resized to HxW if needed)
  torchvision  Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet)
  darknet      Resize(256), CenterCrop(224), ToTensor
  inception    central crop 87.5 % (TensorFlow's central_crop), resize to HxW
               (bilinear), then (255 x - 128) / 128
  fashion      grey, resize to HxW, ToTensor, Normalize(0.2860, 0.3530)
"""
import sys

import numpy as np
from PIL import Image
import torch
from torchvision import transforms as T

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def fit(img, h, w):
    """Final resize to the model's size when the recipe left another size."""
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return img


def central_crop(img, fraction):
    w, h = img.size
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return img.crop((left, top, w - left, h - top))


def open_image(path, grey):
    img = Image.open(path)
    img.load()
    if grey:
        return img.convert("L")
    return img.convert("RGB")


def preprocess(recipe, h, w, c, path):
    grey = c == 1
    img = open_image(path, grey)
    if recipe == "raw":
        img = Image.open(path)
        img = img.convert("L" if img.mode in ("L", "LA", "I;16", "I;16B", "I") else "RGB")
        return np.asarray(img, dtype=np.float32) / 255.0
    if recipe in ("torchvision", "darknet"):
        img = T.CenterCrop(224)(T.Resize(256)(img))
        x = T.ToTensor()(fit(img, h, w))
        if recipe == "torchvision":
            x = T.Normalize(MEAN[:c], STD[:c])(x)
    elif recipe == "cifar":
        x = T.Normalize(MEAN[:c], STD[:c])(T.ToTensor()(fit(img, h, w)))
    elif recipe == "inception":
        x = T.ToTensor()(fit(central_crop(img, 0.875), h, w))
        x = x * (255.0 / 128.0) - 1.0
    elif recipe == "fashion":
        x = T.Normalize((0.2860,), (0.3530,))(T.ToTensor()(fit(img, h, w)))
    else:
        raise SystemExit("unknown recipe " + recipe)
    return x.numpy()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            recipe, h, w, c, src, dst = line.split()
            x = preprocess(recipe, int(h), int(w), int(c), src)
            np.ascontiguousarray(x, dtype="<f4").tofile(dst)


if __name__ == "__main__":
    main()
