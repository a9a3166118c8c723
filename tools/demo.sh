#!/bin/sh
# The main job on the bundled default: explain a bundled Fashion-MNIST image
# with the bundled model (tools/train_fashion_mnist.py trained it).
set -e
build=${1:-build}
out=out/demo
image=data/fashion/0_Ankle_boot.png
"$build/neuromask" explain --model models/fashion_cnn.onnx --force --out "$out" "$image"
echo "demo: outputs in $out/ (mask .png/.npy, overlay, panel, json)"
