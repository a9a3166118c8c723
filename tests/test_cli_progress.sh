#!/bin/sh
# Progress lines without a terminal: explain and eval write whole lines
# with elapsed time and ETA to stderr when it is a file (as under a
# notebook's !neuromask, subprocess or a batch job), at most one per
# NEUROMASK_PROGRESS_SECONDS (0.2 here, 5 by default); --quiet writes none.
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_progress
export NEUROMASK_PROGRESS_SECONDS=0.2
model=$SRC/models/fashion_cnn.onnx
img=$SRC/data/fashion/0_Ankle_boot.png
cr=$(printf '\r')
"$NM_BIN" explain --model "$model" --steps 3000 --out "$T/e" "$img" 2> "$T/err"
check "explain, stderr to a file (exit $?)" [ $? = 0 ]
n=$(grep -Ec '^\[1/1\] step [0-9]+/3000 loss [0-9.]+  elapsed [0-9]+s  ETA [0-9]+s$' "$T/err")
check "... progress lines with ETA ($n)" [ "$n" -ge 2 ]
check "... whole lines, no carriage return" sh -c "! grep -q '$cr' '$T/err'"
check "... the image's result line" grep -q "0_Ankle_boot.png: class 9" "$T/err"
"$NM_BIN" explain --model "$model" --steps 3000 --quiet --out "$T/q" "$img" 2> "$T/err"
check "explain --quiet: nothing on stderr" test ! -s "$T/err"
"$NM_BIN" eval --model "$model" --methods gradient,neuromask --steps 3000 --auc-steps 8 --out "$T/v" "$img" 2> "$T/err"
check "eval, stderr to a file (exit $?)" [ $? = 0 ]
n=$(grep -Ec '^\[1/1\] 0_Ankle_boot.png neuromask: step [0-9]+/3000 loss [0-9.]+  elapsed [0-9]+s  ETA [0-9]+s$' "$T/err")
check "... NeuroMask's progress lines with ETA ($n)" [ "$n" -ge 2 ]
check "... a result line per method with ETA" [ "$(grep -Ec '^\[1/1\] 0_Ankle_boot.png (gradient|neuromask): class 9 .*, ETA [0-9]+s$' "$T/err")" = 2 ]
"$NM_BIN" eval --model "$model" --methods gradient,neuromask --steps 3000 --auc-steps 8 --quiet --out "$T/vq" "$img" 2> "$T/err"
check "eval --quiet: nothing on stderr" test ! -s "$T/err"
nm_check_done
