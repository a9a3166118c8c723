#!/bin/sh
# neuromask eval --grid-pointing end to end: composites of 4 distinct
# classes, each tile correctly classified on its own, the composite's
# probabilities and every score rescored from the saved maps by the PyTorch
# check tools/grid_ref.py, on the bundled Fashion-MNIST CNN and (with
# NEUROMASK_SHARED) the CIFAR-10 ResNet-20; the same seed gives the same
# composites; usage errors.
set -u
. "$(dirname "$0")/cli_check.sh"
nm_check_setup test_eval_grid
BIN=$NM_BIN
OUT=$T
PY=${NM_PYTHON:-/usr/bin/python3}

play() {   # play NAME MODEL RECIPE LABELS COMPOSITES SEED IMAGES...
    name=$1 model=$2 recipe=$3 labels=$4 n=$5 seed=$6
    shift 6
    "$BIN" eval --model "$model" --preprocess "$recipe" --methods gradcam,gradient --grid-pointing --composites "$n" --seed "$seed" \
        --labels "$labels" --save-maps --quiet --out "$OUT/$name" "$@" 2>"$OUT/err"
    check "$name: eval --grid-pointing exits 0 ($(head -c 300 "$OUT/err"))" test $? -eq 0
    check "$name: $n composites ($(tail -n +2 "$OUT/$name/composites.csv" | wc -l) tiles)" \
        test "$(tail -n +2 "$OUT/$name/composites.csv" | wc -l)" -eq $((4 * n))
    check "$name: 2 methods x 4 tiles per composite scored" \
        test "$(tail -n +2 "$OUT/$name/grid_pointing.csv" | wc -l)" -eq $((8 * n))
    "$PY" "$SRC/tools/grid_ref.py" --model "$model" --recipe "$recipe" --labels "$labels" "$OUT/$name" >"$OUT/ref" 2>&1
    check "$name: tools/grid_ref.py agrees ($(grep -v '^ok' "$OUT/ref" | head -c 600))" test $? -eq 0
    check "$name: summary.md has the grid table" sh -c "grep -A6 '^## Grid pointing game' '$OUT/$name/summary.md' | grep -q '^| gradcam | $((4 * n)) | '"
}

FASHION=$SRC/models/fashion_cnn.onnx
FL=$SRC/data/fashion/labels.csv
play fashion "$FASHION" fashion "$FL" 2 0 "$SRC/data/fashion"
play fashion_again "$FASHION" fashion "$FL" 2 0 "$SRC/data/fashion"
check "the same seed gives the same composites" cmp -s "$OUT/fashion/composites.csv" "$OUT/fashion_again/composites.csv"

if [ -n "${NEUROMASK_SHARED:-}" ]; then
    C=$NEUROMASK_SHARED/images/cifar10_test_jpg
    imgs=""
    for cls in airplane automobile bird cat deer dog; do imgs="$imgs $C/${cls}_0000.jpg $C/${cls}_0001.jpg"; done
    # shellcheck disable=SC2086
    play cifar "$NEUROMASK_SHARED/models/cifar10_resnet20.onnx" cifar "$C/labels.csv" 2 5 $imgs
else
    echo "skip: CIFAR-10 part (NEUROMASK_SHARED unset)"
fi

"$BIN" eval --model "$FASHION" --methods gradcam --grid-pointing --out "$OUT/x" "$SRC/data/fashion" 2>"$OUT/err"
check "--grid-pointing without --labels is a usage error (rc $?)" grep -q "needs --labels" "$OUT/err"
"$BIN" eval --model "$FASHION" --methods gradcam --grid-pointing --road --labels "$FL" --out "$OUT/x" "$SRC/data/fashion" 2>"$OUT/err"
check "--grid-pointing with --road is a usage error (rc $?)" test $? -eq 2
"$BIN" eval --model "$FASHION" --methods gradcam --grid-pointing --labels "$FL" --out "$OUT/y" \
    "$SRC/data/fashion/0_Ankle_boot.png" "$SRC/data/fashion/13_Dress.png" 2>"$OUT/err"
check "too few classes: fails (rc $?)" test $? -eq 1
check "... saying why ($(cat "$OUT/err"))" grep -q "no composite of 4 classes" "$OUT/err"
check "... leaving no composites.csv" test ! -e "$OUT/y/composites.csv"

nm_check_done
