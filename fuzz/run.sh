#!/bin/bash
# Build the libFuzzer targets with clang (build-fuzz/, -DNM_FUZZ=ON) and run
# each for SECONDS. Corpora live in build-fuzz/corpus/<target>/, seeded from
# fuzz/seeds/<target>/, the project's own fixtures and fuzz/regressions/.
# Every crash, leak, timeout or out-of-memory input is copied to
# fuzz/regressions/<target>/ (named by libFuzzer: KIND-<sha1>), where
# tests/fuzz.cmake replays it.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60, all of
#        onnx png jpeg args)
# Environment: FUZZ_JOBS=2 runs two targets at once (at most 2);
#        FUZZ_RUNS=N also stops a target after N executions;
#        FUZZ_RESTARTS=N restarts a target after a crash up to N times (5) within
#        its time, to find more than one bug per run; BUILD=dir (build-fuzz);
#        CMAKE_FLAGS="-DNM_NATIVE=OFF ..." adds configure flags.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-onnx png jpeg args}
BUILD=${BUILD:-build-fuzz}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac   # absolute: fuzz_args changes directory
JOBS=${FUZZ_JOBS:-1}
[ "$JOBS" -gt 2 ] && JOBS=2
RUNS=${FUZZ_RUNS:--1}
RESTARTS=${FUZZ_RESTARTS:-5}

export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}

command -v clang >/dev/null || { echo "run.sh: clang is missing (tools/install_deps.sh --test)" >&2; exit 1; }
CC=clang cmake -S . -B "$BUILD" -DNM_FUZZ=ON -DCMAKE_BUILD_TYPE=Release ${CMAKE_FLAGS:-} >/dev/null || exit 1
for t in $TARGETS; do
  cmake --build "$BUILD" -j 2 --target "nm_fuzz_$t" >/dev/null || { echo "run.sh: build of nm_fuzz_$t failed" >&2; exit 1; }
done

# seed TARGET: fill the corpus folder (existing corpus files are kept).
seed() {
  local t=$1 c=$BUILD/corpus/$1
  mkdir -p "$c"
  cp -n fuzz/seeds/"$t"/* "$c"/ 2>/dev/null
  find fuzz/regressions/"$t" -type f ! -name '.*' -exec cp -n {} "$c"/ \; 2>/dev/null
  case $t in
    onnx) cp -n models/*.onnx "$c"/ ;;
    png) cp -n data/fashion/*.png "$c"/; find tests -name '*.png' -size -64k -exec cp -n {} "$c"/ \; ;;
    jpeg) find tests -name '*.jp*g' -size -64k -exec cp -n {} "$c"/ \; ;;
  esac
}

# fuzz TARGET: run it for SECS (restarting after a crash), save artifacts, print a summary.
fuzz() {
  local t=$1 c=$BUILD/corpus/$1 a=$BUILD/artifacts/$1/ log=$BUILD/logs/$1-$(date +%Y%m%d-%H%M%S).log
  local maxlen=65536 extra=() start end left runs=0 execs=0 n rc runs_left
  case $t in
    onnx) maxlen=300000 ;;
    args) maxlen=4096; extra=(-close_fd_mask=3 -dict="$ROOT/fuzz/args.dict") ;;
  esac
  mkdir -p "$a" "$BUILD/logs" "fuzz/regressions/$t"
  : >"$log"
  touch "$BUILD/artifacts/$t.start"
  start=$(date +%s)
  end=$((start + SECS))
  while :; do
    left=$((end - $(date +%s)))
    [ "$left" -le 0 ] && break
    runs_left=-1
    if [ "$RUNS" != -1 ]; then
      runs_left=$((RUNS - execs))
      [ "$runs_left" -le 0 ] && break
    fi
    "$BUILD/fuzz/nm_fuzz_$t" "$c" -max_total_time="$left" -runs="$runs_left" -rss_limit_mb=2048 \
      -max_len="$maxlen" -timeout=60 -print_final_stats=1 -artifact_prefix="$a" "${extra[@]}" \
      >"$log.run" 2>&1
    rc=$?
    cat "$log.run" >>"$log"
    n=$(grep -a -o 'stat::number_of_executed_units: [0-9]*' "$log.run" | tail -1 | awk '{print $2}')
    execs=$((execs + ${n:-0}))
    rm -f "$log.run"
    runs=$((runs + 1))
    # 0: time or runs used up; otherwise a crash (its input is in $a): go on
    # with the time left, up to RESTARTS times.
    [ "$rc" -eq 0 ] || [ "$runs" -gt "$RESTARTS" ] && break
  done
  local secs=$(( $(date +%s) - start ))
  local crashes=0 f
  for f in $(find "$a" -maxdepth 1 -type f -newer "$BUILD/artifacts/$t.start" \
             \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort); do
    cp -n "$f" "fuzz/regressions/$t/"
    crashes=$((crashes + 1))
  done
  # libFuzzer's corpus at the end (units/size), and the corpus folder (all runs so far)
  local corp files
  corp=$(grep -a -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  files=$(find "$c" -type f | wc -l)
  printf '%-5s %6ss  %10s execs  %7s exec/s  corpus %s (folder: %s files)  crashes %s (artifacts: %s, log: %s)\n' \
    "$t" "$secs" "$execs" "$((execs / (secs > 0 ? secs : 1)))" "${corp:-?}" "$files" "$crashes" "$a" "$log"
}

for t in $TARGETS; do seed "$t"; done
running=0
for t in $TARGETS; do
  fuzz "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait
