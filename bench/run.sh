#!/bin/sh
# Engine speed against PyTorch on the same CPU, measured in the same run
# (the two alternate, ROUNDS times; medians):
#  1. the NeuroMask step (forward on the masked image, cross-entropy, backward
#     to the input, mask update), batch 1, for the CIFAR ResNet-20 (with
#     NEUROMASK_SHARED), the Carlini-Wagner CIFAR CNN and torchvision resnet18,
#     resnet50, mobilenet_v2 and inception_v3 (random weights), with the
#     achieved GFLOP/s and its fraction of the machine's peak, measured here as
#     a large oneDNN sgemm;
#  2. 16 CIFAR images explained together against one at a time (throughput);
#  3. forward and forward+backward-to-input per call (engine only);
#  4. peak memory (max RSS) of resnet50 at batch 1 against weights + planned
#     activations and gradients;
#  5. one `neuromask explain` end to end (load, preprocessing, all steps,
#     outputs) on a CIFAR image with the default preset, as its JSON reports;
#  6. the NaN/Inf input check of nm_model_forward against the whole forward
#     of ResNet-20 at batch 1 (needs NEUROMASK_SHARED), at 1 and 2 threads.
# BF16=1 adds neuromask's --precision bf16 figures (ratio to its float32).
# Usage: bench/run.sh [BUILD_DIR]   env: ROUNDS (3), MODELS (a subset, by name),
#   PARTS (a subset of "step batch call memory e2e check", the parts above)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cache=$build/bench_cache
rounds=${ROUNDS:-3}
models=${MODELS:-"cifar10_resnet20 cw_cifar resnet18 resnet50 mobilenet_v2 inception_v3"}
parts=${PARTS:-"step batch call memory e2e check"}
part() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
mkdir -p "$cache"
cmake -S "$root" -B "$build" >/dev/null && cmake --build "$build" -j "$(nproc)" --target nm_bench_engine neuromask >/dev/null
bench=$build/nm_bench_engine
# The fair PyTorch settings (see ../shared/notes/performance.md): AVX-512
# OpenBLAS kernels, one BLAS thread, two intra-op threads.
torch_env="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1"
torch_bench="/usr/bin/python3 $root/bench/torch_bench.py"

# Model files (random weights, seed 0) and the PyTorch arguments of each.
torch_args() {
  case $1 in
    cifar10_resnet20) echo "--onnx $NEUROMASK_SHARED/models/cifar10_resnet20.onnx" ;;
    cw_cifar) echo "--cw-cifar" ;;
    inception_v3) echo "--torchvision inception_v3 --size 299" ;;
    *) echo "--torchvision $1" ;;
  esac
}
model_file() {
  case $1 in
    cifar10_resnet20) echo "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" ;;
    *) echo "$cache/$1.onnx" ;;
  esac
}
for name in $models; do
  f=$(model_file "$name")
  [ "$name" = cifar10_resnet20 ] || [ -f "$f" ] || $torch_bench $(torch_args "$name") --export "$f" 2>/dev/null
done

value() { sed -n "s/^$1 //p"; }
med() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
steps_of() { case $1 in cifar10_resnet20|cw_cifar) echo 200 ;; *) echo 20 ;; esac; }

peak=""
for r in $(seq "$rounds"); do peak="$peak $($bench --peak | value peak_gflops)"; done
peak=$(med $peak)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "Measured peak (oneDNN sgemm 2048^3, all threads): $peak GFLOP/s"
if part step; then
echo
echo "NeuroMask step, batch 1 (ms; GFLOP/s counts the backward to the input as one forward):"
echo "| model | neuromask ms | PyTorch ms | speed-up | GFLOP/s | of peak |$([ -n "$BF16" ] && echo ' bf16 ms | bf16 speed-up |')"
echo "|---|---|---|---|---|---|$([ -n "$BF16" ] && echo '---|---|')"
for name in $models; do
  [ "$name" = cifar10_resnet20 ] && [ -z "$NEUROMASK_SHARED" ] && continue
  f=$(model_file "$name") steps=$(steps_of "$name")
  ns="" ts="" gf="" bs=""
  for r in $(seq "$rounds"); do
    out=$($bench --neuromask "$f" 1 "$steps" 1)
    ns="$ns $(echo "$out" | value step_ms)" gf="$gf $(echo "$out" | value gflops)"
    ts="$ts $($torch_env $torch_bench $(torch_args "$name") --neuromask --reps "$steps" 2>/dev/null | value step_ms)"
    [ -n "$BF16" ] && bs="$bs $($bench --neuromask "$f" 1 "$steps" 1 --bf16 | value step_ms)"
  done
  awk -v n="$name" -v a="$(med $ns)" -v t="$(med $ts)" -v g="$(med $gf)" -v p="$peak" -v b="$(med $bs)" 'BEGIN {
    printf "| %s | %.2f | %.2f | %.2fx | %.0f | %.0f%% |", n, a, t, t / a, g, 100 * g / p
    if (b != "") printf " %.2f | %.2fx |", b, a / b
    printf "\n" }'
done
fi

if part batch && [ -n "$NEUROMASK_SHARED" ]; then
  f=$(model_file cifar10_resnet20) one="" many=""
  for r in $(seq "$rounds"); do
    one="$one $($bench --neuromask "$f" 1 200 1 | value images_per_s)"
    many="$many $($bench --neuromask "$f" 16 50 1 | value images_per_s)"
  done
  echo
  awk -v a="$(med $one)" -v b="$(med $many)" 'BEGIN {
    printf "CIFAR ResNet-20 NeuroMask throughput: one image at a time %.0f image-steps/s, 16 together %.0f (%.2fx)\n", a, b, b / a }'
fi

if part call; then
echo
echo "Engine per call, batch 1 (ms):"
echo "| model | neuromask fwd | PyTorch fwd | ratio | neuromask fwd+bwd | PyTorch fwd+bwd | ratio |"
echo "|---|---|---|---|---|---|---|"
for name in $models; do
  [ "$name" = cifar10_resnet20 ] && [ -z "$NEUROMASK_SHARED" ] && continue
  f=$(model_file "$name") nf="" ns="" tf="" ts=""
  for r in $(seq "$rounds"); do
    out=$($bench "$f" 1 20)
    nf="$nf $(echo "$out" | value forward_ms)" ns="$ns $(echo "$out" | value step_ms)"
    out=$($torch_env $torch_bench $(torch_args "$name") --reps 20 2>/dev/null)
    tf="$tf $(echo "$out" | value forward_ms)" ts="$ts $(echo "$out" | value step_ms)"
  done
  awk -v n="$name" -v nf="$(med $nf)" -v ns="$(med $ns)" -v tf="$(med $tf)" -v ts="$(med $ts)" 'BEGIN {
    printf "| %s | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n", n, nf, tf, tf / nf, ns, ts, ts / ns }'
done
fi

if part check && [ -n "$NEUROMASK_SHARED" ]; then
echo
echo "Input check (NaN/Inf) against the whole nm_model_forward, ResNet-20, batch 1:"
echo "| threads | check us | forward ms | check / forward |"
echo "|---|---|---|---|"
for t in 1 2; do
  c="" f="" p=""
  for r in $(seq "$rounds"); do
    out=$(OMP_NUM_THREADS=$t $bench --check-finite "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" 200)
    c="$c $(echo "$out" | value check_us)" f="$f $(echo "$out" | value forward_ms)" p="$p $(echo "$out" | value check_percent)"
  done
  echo "| $t | $(med $c) | $(med $f) | $(med $p) % |"
done
fi

if part memory; then
  f=$(model_file resnet50)
  [ -f "$f" ] || $torch_bench --torchvision resnet50 --export "$f" 2>/dev/null
  echo
  echo "resnet50, batch 1, after forward + backward (MiB):"
  $bench --memory "$f" | awk '{printf "  %s %s\n", $1, $2}'
fi

if part e2e && [ -n "$NEUROMASK_SHARED" ]; then
  out=$cache/e2e
  rm -rf "$out"
  "$build/neuromask" explain --model "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" --preprocess cifar --quiet --out "$out" \
    "$NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg"
  echo
  echo "neuromask explain, one CIFAR image, default preset, end to end (its JSON):"
  grep '"seconds' "$out/cat_0000.json" | sed 's/^ */  /'
fi
