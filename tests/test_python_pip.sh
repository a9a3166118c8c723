#!/bin/sh
# `pip install` of python/ as docs/python.md says (Debian's pip and
# setuptools, no network), into a fresh virtual environment that sees
# Debian's numpy; then the installed package, found through the dynamic
# linker's search (LD_LIBRARY_PATH), classifies the bundled Fashion-MNIST image.
# Usage: test_python_pip.sh LIBNEUROMASK.so   env: NM_SOURCE_DIR
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# pip builds in the folder it is given: a copy keeps the source tree clean.
cp -r "$NM_SOURCE_DIR/python" "$tmp/src"
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/pip" install -q --no-index --no-build-isolation "$tmp/src" \
  || { echo "test_python_pip: pip install failed" >&2; exit 1; }
cd "$tmp"   # not the source tree, so the installed copy is imported
env -u NEUROMASK_LIBRARY -u PYTHONPATH LD_LIBRARY_PATH="$(dirname "$1")" "$tmp/venv/bin/python" - \
  "$NM_SOURCE_DIR" "$tmp/venv" <<'PY'
import os, sys
import neuromask
source, venv = sys.argv[1], sys.argv[2]
assert neuromask.__file__.startswith(venv), neuromask.__file__
model = neuromask.Model(os.path.join(source, "models/fashion_cnn.onnx"), preprocess="fashion")
c = model.classify(os.path.join(source, "data/fashion/0_Ankle_boot.png"))
assert c.labels[0] == "Ankle boot", c
print("test_python_pip: installed package at", os.path.dirname(neuromask.__file__), "->", c.labels[0], c.probabilities[0])
PY
