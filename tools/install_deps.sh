#!/bin/sh
# Install neuromask's Debian dependencies (idempotent; needs root).
# Usage: tools/install_deps.sh [--test | --bench]   (--test adds what the tests
# need; --bench that and what bench/ort.sh needs: node and npm for ONNX Runtime)
set -e
pkgs="cmake make gcc pkg-config libdnnl-dev libprotobuf-c-dev protobuf-c-compiler libpng-dev libjpeg-dev libssl-dev"
if [ "$1" = "--test" ] || [ "$1" = "--bench" ]; then
  pkgs="$pkgs libonnx-testdata python3 python3-numpy python3-torch python3-torchvision python3-onnx"
  # the Python package's tests (python/tests) and its pip install test
  pkgs="$pkgs python3-pytest python3-pil python3-pip python3-venv"
  # tests/test_report_browser.py: the eval report in a real headless browser
  pkgs="$pkgs chromium"
  # fuzz/run.sh: clang with libFuzzer and its OpenMP runtime
  pkgs="$pkgs clang libclang-rt-dev libomp-dev"
  # tests/test_slurm.sh: a single-node Slurm cluster
  pkgs="$pkgs munge slurmctld slurmd slurm-client"
fi
# node and npm from Debian unless some node with npm is there already
if [ "$1" = "--bench" ] && ! command -v npm >/dev/null; then pkgs="$pkgs nodejs npm"; fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "install_deps.sh: need root to install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
