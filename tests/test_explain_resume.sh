#!/bin/sh
# An interrupted `neuromask explain` over a folder leaves only complete files,
# and --resume finishes the set with the same outputs as an uninterrupted run
# (PNG and .npy byte for byte, JSON apart from its timing lines).
NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
SRC=${NM_SOURCE_DIR:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/nm_resume.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
check() {  # description, command...
  d=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $d"; fi
}
model=$SRC/models/fashion_cnn.onnx
images=$SRC/data/fashion
explain() {  # outdir, extra args...
  out=$1; shift
  "$NM_BIN" explain --model "$model" --steps 500 --threads 1 --quiet --out "$out" "$@" "$images"
}
# Every image has all five outputs or none, and no temporary file is left.
whole_sets() {
  [ -z "$(ls -A "$1" | grep '^\.')" ] || return 1
  for f in "$1"/*.json; do
    [ -e "$f" ] || continue
    stem=${f%.json}
    for s in mask.png mask.npy overlay.png panel.png; do [ -s "$stem.$s" ] || return 1; done
  done
  for f in "$1"/*.mask.npy; do [ -e "$f" ] && { [ -s "${f%.mask.npy}.json" ] || return 1; }; done
  return 0
}
same_outputs() {  # dir a, dir b
  for f in "$1"/*; do
    g="$2/$(basename "$f")"
    case $f in
      *.json) grep -v '"seconds' "$f" > "$T/ja"; grep -v '"seconds' "$g" > "$T/jb"; cmp -s "$T/ja" "$T/jb" || return 1 ;;
      *) cmp -s "$f" "$g" || return 1 ;;
    esac
  done
  [ "$(ls "$1" | wc -l)" = "$(ls "$2" | wc -l)" ]
}
# Stop a run (signal $2) once its first image is written.
interrupt() {  # outdir, signal, expected exit code, extra args...
  out=$1 sig=$2 want=$3; shift 3
  # exec: the signal must reach neuromask itself, not a subshell
  (exec "$NM_BIN" explain --model "$model" --steps 500 --threads 1 --quiet --out "$out" "$@" "$images") 2> "$T/err" &
  pid=$!
  n=0
  while [ -z "$(ls "$out" 2>/dev/null | grep '\.json$')" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
  kill "-$sig" "$pid"
  wait "$pid"
  code=$?
  check "SIGNAL $sig: exit $want (got $code)" [ "$code" = "$want" ]
  check "SIGNAL $sig: one error line naming --resume" sh -c "[ \$(wc -l < '$T/err') = 1 ] && grep -q -- '--resume' '$T/err'"
  check "SIGNAL $sig: some but not all images written" sh -c "n=\$(ls '$out' | grep -c '\\.json\$'); [ \$n -ge 1 ] && [ \$n -lt 10 ]"
  check "SIGNAL $sig: only whole output sets" whole_sets "$out"
}

check "uninterrupted run" explain "$T/full"
check "uninterrupted run: 10 images" [ "$(ls "$T/full" | grep -c '\.json$')" = 10 ]

interrupt "$T/int" INT 130
cp -r "$T/int" "$T/copy"
"$NM_BIN" explain --model "$model" --steps 500 --threads 1 --quiet --out "$T/copy" "$images" 2> "$T/err"
code=$?
check "rerun without --resume or --force fails (got $code)" [ "$code" = 1 ]
check "... naming an existing file" grep -q 'exists (use --force' "$T/err"
check "--resume completes" explain "$T/int" --resume
check "--resume: same outputs as uninterrupted" same_outputs "$T/full" "$T/int"

interrupt "$T/term" TERM 143 --batch 3
check "--resume after SIGTERM, batch 3" explain "$T/term" --batch 3 --resume
check "--batch 3 run uninterrupted" explain "$T/full3" --batch 3
check "--resume, batch 3: same outputs" same_outputs "$T/full3" "$T/term"

# An image with a file missing is redone; complete ones are left as they are.
rm -f "$T/int/2_Trouser.panel.png"
touch -d '2000-01-01' "$T/int/0_Ankle_boot.json"
check "--resume redoes a partial set" explain "$T/int" --resume
check "partial set rewritten" test -s "$T/int/2_Trouser.panel.png"
check "complete set untouched" [ "$(date -r "$T/int/0_Ankle_boot.json" +%Y)" = 2000 ]
check "--resume after repair: same outputs" same_outputs "$T/full" "$T/int"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
