#!/usr/bin/python3
"""Train the small Fashion-MNIST CNN bundled with neuromask and export it to ONNX.

Usage: tools/train_fashion_mnist.py [--data DIR] [--out models/fashion_cnn.onnx]
                                    [--images data/fashion] [--epochs N]

Reads Debian's dataset-fashion-mnist (gzipped IDX). The network takes the
NORMALISED image ((x - 0.2860) / 0.3530 with x in [0,1], grey 28x28): neuromask
applies that as its "fashion" preprocessing recipe, so the normalisation stays
outside the graph. BatchNorm is exported as BatchNormalization nodes (neuromask
folds it at load). Also writes one test image per class as an 8-bit grey PNG.
"""
import argparse
import gzip
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN, STD = 0.2860, 0.3530
SEED = 20240601


def read_idx(path):
    """Gzipped IDX file -> numpy array (uint8 images or labels)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels.astype(np.int64)


def normalise(images_u8):
    x = torch.from_numpy(images_u8.astype(np.float32) / 255.0)
    return ((x - MEAN) / STD).unsqueeze(1)


def conv_bn_relu(cin, cout, stride):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FashionCNN(nn.Module):
    """28x28 -> 14x14 -> 7x7 feature maps, global average pool, linear classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, 16, 1),
            *conv_bn_relu(16, 32, 2),
            *conv_bn_relu(32, 32, 1),
            *conv_bn_relu(32, 64, 2),
            *conv_bn_relu(64, 64, 1))
        self.classifier = nn.Linear(64, 10)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(model, x, y, epochs, batch):
    gen = torch.Generator().manual_seed(SEED)
    steps = epochs * ((len(x) + batch - 1) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            xb = x[idx]
            # Horizontal flips keep every Fashion-MNIST class what it is.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.time() - t0:.0f} s)",
              flush=True)


def export(model, path, accuracy):
    import onnx
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    tmp = path + ".tmp"
    # PRESERVE (with the model in eval mode) keeps BatchNormalization nodes in
    # inference form; EVAL would fuse them into the convolutions.
    torch.onnx.export(model, dummy, tmp, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False)
    m = onnx.load(tmp)
    meta = {
        "neuromask.preprocess": "fashion",
        "neuromask.labels": "|".join(CLASSES),
        "neuromask.dataset": "Fashion-MNIST (Debian dataset-fashion-mnist), 60000 train / 10000 test",
        "neuromask.test_accuracy": f"{accuracy:.4f}",
    }
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "neuromask tools/train_fashion_mnist.py"
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    os.replace(tmp, path)


def write_samples(images, labels, out_dir):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    rows = ["file,label,class"]
    for c, name in enumerate(CLASSES):
        index = int(np.nonzero(labels == c)[0][0])
        file = f"{index}_{re.sub(r'[^A-Za-z0-9]+', '_', name)}.png"
        Image.fromarray(images[index], mode="L").save(os.path.join(out_dir, file))
        rows.append(f"{file},{c},{name}")
    with open(os.path.join(out_dir, "labels.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(root, "models", "fashion_cnn.onnx"))
    ap.add_argument("--images", default=os.path.join(root, "data", "fashion"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    train_u8, train_y = load_split(args.data, "train")
    test_u8, test_y = load_split(args.data, "t10k")
    x_train, y_train = normalise(train_u8), torch.from_numpy(train_y)
    x_test, y_test = normalise(test_u8), torch.from_numpy(test_y)

    model = FashionCNN()
    t0 = time.time()
    train(model, x_train, y_train, args.epochs, args.batch)
    accuracy = evaluate(model, x_test, y_test)
    print(f"test accuracy {accuracy * 100:.2f} % ({time.time() - t0:.0f} s training)")
    if accuracy < 0.90:
        print("accuracy below 90 %: not exporting", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    export(model, args.out, accuracy)
    write_samples(test_u8, test_y, args.images)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) and {args.images}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
