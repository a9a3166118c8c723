#!/bin/sh
# One explanation end to end (`neuromask explain` on one image: load,
# preprocessing, the method, all outputs), per method and model, as wall
# seconds of the whole process. The methods alternate, ROUNDS times (3);
# medians, and each method's ratio to RISE (2000 masks) from this one run.
# Models of $NEUROMASK_SHARED: cifar10_resnet20 (32 px), mobilenet_v2 and
# darknet_tiny (224 px).
# Usage: bench/explain_time.sh [BUILD_DIR]   env: ROUNDS, METHODS, MODELS, THREADS
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-3}
methods=${METHODS:-"neuromask rise gradcam"}
models=${MODELS:-"cifar10_resnet20 mobilenet_v2 darknet_tiny"}
threads=${THREADS:+--threads $THREADS}
S=${NEUROMASK_SHARED:?set NEUROMASK_SHARED to the shared models and images}
cmake -S "$root" -B "$build" >/dev/null && cmake --build "$build" -j "$(nproc)" --target neuromask >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
args() {
  case $1 in
    cifar10_resnet20) echo "--model $S/models/cifar10_resnet20.onnx --preprocess cifar $S/images/cifar10_test_jpg/cat_0000.jpg" ;;
    mobilenet_v2) echo "--model $S/models/imagenet_mobilenet_v2_100_224.onnx --preprocess inception $S/images/imagenet_samples/n01440764_tench.JPEG" ;;
    darknet_tiny) echo "--model $S/models/imagenet_darknet_tiny.onnx --preprocess darknet $S/images/imagenet_samples/n01440764_tench.JPEG" ;;
  esac
}
now() { date +%s.%N; }
med() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "# bench/explain_time.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, threads: ${THREADS:-default}, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | method | seconds (median of $rounds) | / RISE |"
echo "|---|---|---:|---:|"
for model in $models; do
  for m in $methods; do eval "t_$(echo $m | tr - _)=''"; done
  for r in $(seq "$rounds"); do
    for m in $methods; do
      t0=$(now)
      "$build/neuromask" explain $(args "$model") --method "$m" $threads --out "$tmp/$m" --force --quiet >/dev/null
      t=$(echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}')
      v=t_$(echo $m | tr - _)
      eval "$v=\"\$$v $t\""
    done
  done
  rise=$(med $t_rise)
  for m in $methods; do
    v=t_$(echo $m | tr - _)
    eval "s=\$$v"
    echo "$model $m $(med $s) $rise" | awk '{printf "| %s | %s | %.2f | %.2f |\n", $1, $2, $3, $3 / $4}'
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
