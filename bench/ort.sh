#!/bin/sh
# neuromask's forward against ONNX Runtime's on the same CPU, in one run:
# all nine shared models (NEUROMASK_SHARED, default ../shared beside the
# repository) and the bundled models/fashion_cnn.onnx, at batch 1 and 16,
# 1 and 2 threads. Both engines read the same input (bench/ort_prepare.py
# writes it, with a copy of the model at the batch size for ONNX Runtime)
# and their logits are compared. The engines alternate per model and
# setting (which goes first alternates by round), ROUNDS rounds, each a
# median of REPS calls after warm-up; the table shows the medians of the
# rounds. neuromask's forward is timed both ways: nm_model_predict (keeps
# no activations, as ONNX Runtime: the comparison) and nm_model_forward
# (keeps them for a backward). Beside ONNX Runtime's forward it shows
# neuromask's forward + backward to the input (one gradient: ideally about
# two forwards).
#
# ONNX Runtime is the npm package onnxruntime-node (CPU binaries inside the
# package), installed on first use into cache/ort under the repository with
# ONNXRUNTIME_NODE_INSTALL=skip (its post-install step would fetch GPU
# plug-ins); it needs node and npm (Debian: nodejs, npm; tools/install_deps.sh
# --bench). ONNX Runtime runs with intra-op threads = the setting, 1 inter-op
# thread, all graph optimisations, sequential execution; neuromask with
# OMP_NUM_THREADS = the setting.
#
# Usage: bench/ort.sh [BUILD_DIR]
#   env: ROUNDS (3), REPS (10), BATCHES ("1 16"), THREADS ("1 2"),
#        MODELS (model files; default the ten above),
#        BUSY=1 (one CPU-bound loop runs beside the bench, started and
#        stopped here: the loaded machine)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shared=${NEUROMASK_SHARED:-$root/../shared}
ort=$root/cache/ort
work=$ort/models
rounds=${ROUNDS:-3} reps=${REPS:-10}
batches=${BATCHES:-"1 16"} threads=${THREADS:-"1 2"}
models=${MODELS:-"$(ls "$shared"/models/*.onnx) $root/models/fashion_cnn.onnx"}
py=/usr/bin/python3

if [ ! -f "$ort/node_modules/onnxruntime-node/package.json" ]; then
  command -v npm >/dev/null || { echo "bench/ort.sh: npm not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
  mkdir -p "$ort"
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$ort" --no-audit --no-fund onnxruntime-node >&2
fi
cmake -S "$root" -B "$build" >/dev/null && cmake --build "$build" -j "$(nproc)" --target nm_bench_engine >/dev/null
bench=$build/nm_bench_engine

mkdir -p "$work"
for f in $models; do
  [ -f "$f" ] || { echo "bench/ort.sh: $f: no such model" >&2; exit 1; }
  name=$(basename "$f" .onnx)
  for b in $batches; do
    [ -f "$work/${name}_b$b.f32" ] || $py "$root/bench/ort_prepare.py" "$f" "$b" "$work/${name}_b$b.onnx" "$work/${name}_b$b.f32"
  done
done

busy=""
stop_busy() { [ -z "$busy" ] || kill "$busy" 2>/dev/null || true; }
trap stop_busy EXIT
trap 'exit 1' INT TERM
if [ -n "$BUSY" ]; then
  sh -c 'while :; do :; done' &
  busy=$!
fi

value() { sed -n "s/^$1 //p"; }
results=$work/results.txt
: >"$results"
# neuromask writes its logits in round 1 (it goes first there); ONNX Runtime
# compares its own with them in every round.
nm_run() {   # model batch threads -> "predict step forward"
  base=$work/$(basename "$1" .onnx)_b$2
  out=$(OMP_NUM_THREADS=$3 "$bench" "$1" "$2" "$reps" --input "$base.f32" --logits "${base}_t$3.nm.f32")
  echo "$(echo "$out" | value predict_ms) $(echo "$out" | value step_ms) $(echo "$out" | value forward_ms)"
}
ort_run() {   # model batch threads -> "fwd rel_diff"
  base=$work/$(basename "$1" .onnx)_b$2
  out=$(node "$root/bench/ort_bench.js" "$ort" "$base.onnx" "$base.f32" "$3" "$reps" "${base}_t$3.nm.f32")
  echo "$(echo "$out" | value forward_ms) $(echo "$out" | value max_rel_diff)"
}
for r in $(seq "$rounds"); do
  for f in $models; do
    for b in $batches; do
      for t in $threads; do
        if [ $((r % 2)) = 1 ]; then
          n=$(nm_run "$f" "$b" "$t") o=$(ort_run "$f" "$b" "$t")
        else
          o=$(ort_run "$f" "$b" "$t") n=$(nm_run "$f" "$b" "$t")
        fi
        echo "$(basename "$f" .onnx) $b $t $n $o" >>"$results"
      done
    done
  done
done
stop_busy
busy=""

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)$([ -n "$BUSY" ] && echo ' (BUSY=1: one CPU-bound loop ran beside the bench)')"
echo "onnxruntime-node $(sed -n 's/^ *"version": "\(.*\)".*/\1/p' "$ort/node_modules/onnxruntime-node/package.json" | head -1); $rounds rounds of medians of $reps calls; medians of the rounds (ms)"
echo
echo "| model | batch | threads | neuromask predict | ORT fwd | ORT / neuromask | neuromask forward (kept) | neuromask fwd+bwd | fwd+bwd / ORT fwd | logits max rel diff |"
echo "|---|---|---|---|---|---|---|---|---|---|"
med() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
awk '{print $1, $2, $3}' "$results" | awk '!seen[$0]++' | while read -r name b t; do
  rows=$(awk -v n="$name" -v b="$b" -v t="$t" '$1 == n && $2 == b && $3 == t' "$results")
  np=$(echo "$rows" | awk '{print $4}' | med) ns=$(echo "$rows" | awk '{print $5}' | med)
  nf=$(echo "$rows" | awk '{print $6}' | med) of=$(echo "$rows" | awk '{print $7}' | med)
  d=$(echo "$rows" | awk '{print $8}' | sort -g | tail -1)
  awk -v n="$name" -v b="$b" -v t="$t" -v np="$np" -v nf="$nf" -v ns="$ns" -v of="$of" -v d="$d" 'BEGIN {
    printf "| %s | %d | %d | %.3f | %.3f | %.2fx | %.3f | %.3f | %.2f | %s |\n", n, b, t, np, of, of / np, nf, ns, ns / of, d }'
done | tee "$work/table.md"
awk -F'|' 'NR > 0 { r = $7; sub(/x/, "", r); if (r + 0 > 0) { s += log(r); n++; if (r + 0 >= 1) a++ } }
  END { if (n) printf "\nGeometric mean ORT / neuromask: %.2fx; neuromask at least as fast in %d of %d settings.\n", exp(s / n), a, n }' "$work/table.md"
echo
echo "ORT / neuromask > 1: neuromask's forward (nm_model_predict) is faster. forward (kept): nm_model_forward,"
echo "which keeps the activations for a backward. fwd+bwd / ORT fwd: neuromask's gradient (forward + backward"
echo "to the input) in ONNX Runtime forwards; about 2 would be the ideal."
