#!/bin/sh
# Engine speed against PyTorch on the same CPU, measured in the same run:
# forward and forward+backward-to-input per call, batch 1, medians.
# Usage: bench/run.sh [BUILD_DIR]   (NEUROMASK_SHARED for the CIFAR ResNet-20)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cache=$build/bench_cache
rounds=${ROUNDS:-3}
mkdir -p "$cache"
cmake -S "$root" -B "$build" >/dev/null && cmake --build "$build" -j "$(nproc)" --target nm_bench_engine >/dev/null
# The fair PyTorch settings (see ../shared/notes/performance.md): AVX-512
# OpenBLAS kernels, one BLAS thread, two intra-op threads.
torch_env="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1"

[ -f "$cache/resnet50.onnx" ] || /usr/bin/python3 -c "
import torch, torchvision
torch.manual_seed(0)
net = torchvision.models.resnet50().eval()
torch.onnx.export(net, torch.zeros(1, 3, 224, 224), '$cache/resnet50.onnx', input_names=['input'],
                  output_names=['logits'], opset_version=13)"

value() { sed -n "s/^$1 //p"; }
run_pair() {  # name, neuromask model, torch args
  name=$1 model=$2; shift 2
  nf="" ns="" tf="" ts=""
  for r in $(seq "$rounds"); do
    out=$("$build/nm_bench_engine" "$model" 1 20)
    nf="$nf $(echo "$out" | value forward_ms)" ns="$ns $(echo "$out" | value step_ms)"
    out=$($torch_env /usr/bin/python3 "$root/bench/torch_bench.py" "$@" --reps 20 2>/dev/null)
    tf="$tf $(echo "$out" | value forward_ms)" ts="$ts $(echo "$out" | value step_ms)"
  done
  med() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  awk -v n="$name" -v nf="$(med $nf)" -v ns="$(med $ns)" -v tf="$(med $tf)" -v ts="$(med $ts)" 'BEGIN {
    printf "| %s | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n", n, nf, tf, tf / nf, ns, ts, ts / ns }'
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "| model | neuromask fwd ms | PyTorch fwd ms | ratio | neuromask fwd+bwd ms | PyTorch fwd+bwd ms | ratio |"
echo "|---|---|---|---|---|---|---|"
if [ -n "$NEUROMASK_SHARED" ]; then
  run_pair "cifar10_resnet20 (32x32)" "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" --onnx "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx"
fi
run_pair "resnet50 (224x224)" "$cache/resnet50.onnx" --torchvision resnet50
