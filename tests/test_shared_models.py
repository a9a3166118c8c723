#!/usr/bin/python3
"""`neuromask classify` on a shared pretrained model against an independent
PyTorch reference (tools/ref_classify.py): top-1 agreement and accuracy.

Usage: test_shared_models.py MODEL   (a file stem under $NEUROMASK_SHARED/models)
Environment: NEUROMASK_SHARED (unset: skip, exit 77), NM_BIN (the neuromask binary),
NM_SOURCE_DIR (the project root; default: this file's parent's parent).

Top-1 must agree on >= 99 % of the images (100 % for CIFAR, whose 32x32 images
need no resampling). ImageNet models run on every 4th image of imagenet_val_227
(325 images) to keep the time sane; darknet and mobilenet_v2 also run on
imagenet_samples (original sizes: exercises resize and crop).
"""
import csv
import json
import os
import subprocess
import sys
import time

# model stem -> (preprocessing recipe, [(image folder, every n-th image)])
IMAGENET_VAL = ("imagenet_val_227", 4)
SAMPLES = ("imagenet_samples", 1)
MODELS = {
    "cifar10_resnet20": ("cifar", [("cifar10_test_jpg", 1)]),
    "cifar10_resnet32": ("cifar", [("cifar10_test_jpg", 1)]),
    "cifar10_resnet44": ("cifar", [("cifar10_test_jpg", 1)]),
    "cifar10_resnet56": ("cifar", [("cifar10_test_jpg", 1)]),
    "imagenet_darknet_tiny": ("darknet", [IMAGENET_VAL, SAMPLES]),
    "imagenet_mobilenet_v1_025_128": ("inception", [IMAGENET_VAL]),
    "imagenet_mobilenet_v1_050_160": ("inception", [IMAGENET_VAL]),
    "imagenet_mobilenet_v1_075_192": ("inception", [IMAGENET_VAL]),
    "imagenet_mobilenet_v2_100_224": ("inception", [IMAGENET_VAL, SAMPLES]),
}
SKIP = 77


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def read_labels(folder, every):
    """[(path, label)] of every n-th row of folder/labels.csv, in file order."""
    csv_path = os.path.join(folder, "labels.csv")
    if not os.path.exists(csv_path):
        fail(f"{csv_path} is missing")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))[::every]
    items = [(os.path.join(folder, r["file"]), int(r["label"])) for r in rows]
    missing = [p for p, _ in items if not os.path.exists(p)]
    if missing:
        fail(f"{len(missing)} images listed in {csv_path} are missing, e.g. {missing[0]}")
    return items


def run_cli(nm_bin, model, recipe, paths):
    """path -> (top-1 class, its probability) from `neuromask classify --json`."""
    cmd = [nm_bin, "classify", "--model", model, "--preprocess", recipe, "--json", "--top", "1"]
    t0 = time.time()
    proc = subprocess.run(cmd + paths, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.time() - t0
    if proc.returncode != 0:
        fail(f"neuromask classify exited {proc.returncode}: {proc.stderr.strip()[:2000]}")
    out = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            obj = json.loads(line)
            out[obj["image"]] = (obj["top"][0]["class"], obj["top"][0]["prob"])
    return out, seconds


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in MODELS:
        print(f"usage: {sys.argv[0]} MODEL  (one of: {' '.join(MODELS)})", file=sys.stderr)
        return 2
    name = sys.argv[1]
    shared = os.environ.get("NEUROMASK_SHARED")
    if not shared:
        print("NEUROMASK_SHARED is not set: skipped")
        return SKIP
    nm_bin = os.environ.get("NM_BIN")
    if not nm_bin or not os.access(nm_bin, os.X_OK):
        fail(f"NM_BIN ({nm_bin}) is not an executable neuromask binary")
    src = os.environ.get("NM_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(src, "tools"))
    import numpy as np
    import torch
    import ref_classify

    torch.set_num_threads(1)  # ctest may run several tests at once on 2 cores
    recipe, sets = MODELS[name]
    model = os.path.join(shared, "models", name + ".onnx")
    if not os.path.exists(model):
        fail(f"{model} is missing")

    ok = True
    for folder, every in sets:
        items = read_labels(os.path.join(shared, "images", folder), every)
        paths = [p for p, _ in items]
        labels = np.array([lab for _, lab in items])
        cli, cli_s = run_cli(nm_bin, model, recipe, paths)
        missing = [p for p in paths if p not in cli]
        if missing:
            fail(f"neuromask classify printed no result for {len(missing)} images, e.g. {missing[0]}")
        t0 = time.time()
        logits = ref_classify.classify(model, recipe, paths)
        ref_s = time.time() - t0
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        ref_top = probs.argmax(1)
        nm_top = np.array([cli[p][0] for p in paths])
        nm_prob = np.array([cli[p][1] for p in paths])
        agree = float((ref_top == nm_top).mean())
        same = ref_top == nm_top
        prob_err = float(np.abs(nm_prob[same] - probs[same, ref_top[same]]).max()) if same.any() else 0.0
        need = 1.0 if recipe == "cifar" else 0.99
        print(f"{name} on {folder} ({len(paths)} images, {recipe}): top-1 agreement "
              f"{agree * 100:.2f} % (need {need * 100:.0f} %), max |p_top1 diff| {prob_err:.2e}; "
              f"accuracy neuromask {(nm_top == labels).mean() * 100:.1f} %, "
              f"reference {(ref_top == labels).mean() * 100:.1f} % "
              f"(neuromask {cli_s:.1f} s, reference {ref_s:.1f} s)")
        for i in np.nonzero(~same)[0][:10]:
            print(f"  differs: {paths[i]}: neuromask {nm_top[i]} (p={nm_prob[i]:.4f}), "
                  f"reference {ref_top[i]} (p={probs[i, ref_top[i]]:.4f})")
        if agree < need:
            print(f"FAIL: {name} on {folder}: top-1 agreement {agree * 100:.2f} % < {need * 100:.0f} %")
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
