#!/bin/sh
# Threads on shared cores: `neuromask explain` with the default thread policy
# (follow the load), with --threads 1 and with --threads 2 (fixed at all the
# cores, what the default did before it followed the load), in four
# situations that the bench makes itself and ends by pid:
#   idle   nothing else started (say what else ran: the load is printed);
#   busy   beside a single-threaded CPU-bound loop;
#   omp    beside an OpenMP program at its default threads (bench/omp_spin.c);
#   pair   two copies of the same command started together: the time until
#          both finish.
# The three settings alternate, ROUNDS times (5), the first of them turning
# with the round; medians of wall seconds and their ratios to --threads 1, all
# from this one run.
# Workloads: cifar (ResNet-20, NeuroMask default preset, 300 steps) and
# mobilenet (mobilenet_v2 at 224 px, SmoothGrad), on images of $NEUROMASK_SHARED.
# Usage: bench/threads.sh [BUILD_DIR]   env: ROUNDS, WORKLOADS, SITUATIONS,
#   SETTINGS (a subset of "default one two": --threads 2 beside other work
#   collapses, up to a minute a run, and only the idle rows need it)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
rounds=${ROUNDS:-5}
workloads=${WORKLOADS:-"cifar mobilenet"}
situations=${SITUATIONS:-"idle busy omp pair"}
settings=${SETTINGS:-"default one two"}
S=${NEUROMASK_SHARED:?set NEUROMASK_SHARED to the shared models and images}
cmake -S "$root" -B "$build" >/dev/null && cmake --build "$build" -j "$(nproc)" --target neuromask nm_bench_omp_spin >/dev/null
nm=$build/neuromask
tmp=$(mktemp -d)
competitor=""
stop_competitor() {
  if [ -n "$competitor" ]; then kill "$competitor" 2>/dev/null; wait "$competitor" 2>/dev/null || true; fi
  competitor=""
}
trap 'stop_competitor; rm -rf "$tmp"' EXIT INT TERM

workload() {
  case $1 in
    cifar) echo "--model $S/models/cifar10_resnet20.onnx --preprocess cifar --steps 300 $S/images/cifar10_test_jpg/cat_0000.jpg" ;;
    mobilenet) echo "--model $S/models/imagenet_mobilenet_v2_100_224.onnx --preprocess inception --method smoothgrad $S/images/imagenet_samples/n01440764_tench.JPEG" ;;
  esac
}
now() { date +%s.%N; }
# run WORKLOAD THREADS_FLAG OUT: one explain; prints its wall seconds
run() {
  t0=$(now)
  $nm explain $(workload "$1") $2 --out "$3" --force --quiet >/dev/null
  echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'
}
# pair WORKLOAD THREADS_FLAG: two at once; seconds until both finish
pair() {
  t0=$(now)
  $nm explain $(workload "$1") $2 --out "$tmp/a" --force --quiet >/dev/null &
  a=$!
  $nm explain $(workload "$1") $2 --out "$tmp/b" --force --quiet >/dev/null &
  b=$!
  wait $a && wait $b
  echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'
}
# median, or "-" for a setting not run
med() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : "-"}'; }

echo "# bench/threads.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| workload | situation | default s | --threads 1 s | --threads 2 s | default / threads 1 | threads 2 / threads 1 |"
echo "|---|---|---|---|---|---|---|"
for w in $workloads; do
  for sit in $situations; do
    case $sit in
      busy) sh -c 'while :; do :; done' & competitor=$! ;;
      omp) "$build/nm_bench_omp_spin" & competitor=$! ;;
    esac
    d="" one="" two=""
    for r in $(seq "$rounds"); do
      # Which setting goes first turns with the round: none gains from the
      # page cache, a competitor that has just started, or the machine's drift.
      order=$(echo $settings | awk -v r="$r" '{for (i = 0; i < NF; i++) printf "%s ", $((r - 1 + i) % NF + 1)}')
      for setting in $order; do
        case $setting in default) flag="" ;; one) flag="--threads 1" ;; two) flag="--threads 2" ;; esac
        if [ "$sit" = pair ]; then t=$(pair "$w" "$flag"); else t=$(run "$w" "$flag" "$tmp/o"); fi
        case $setting in default) d="$d $t" ;; one) one="$one $t" ;; two) two="$two $t" ;; esac
      done
    done
    stop_competitor
    echo "$w $sit $(med $d) $(med $one) $(med $two)" | awk '
      function s(v) { return v == "-" ? v : sprintf("%.2f", v) }
      function q(a, b) { return a == "-" || b == "-" ? "-" : sprintf("%.2f", a / b) }
      { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, s($3), s($4), s($5), q($3, $4), q($5, $4) }'
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
