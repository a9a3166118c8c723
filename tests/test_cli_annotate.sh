#!/bin/sh
# neuromask annotate: the recipe and class names travel in the model's
# metadata_props. On a copy of the bundled model stripped of its metadata:
# the written model passes onnx.checker, carries the two entries once each,
# and equals the original in every other field (re-serialised by onnx);
# classify without --preprocess / --class-names prints what it prints with
# them on the original; annotating again replaces the entries; a --preprocess
# that differs from the model's recipe gets a warning; bad input is refused.
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_annotate
PY=/usr/bin/python3
if ! "$PY" -c "import onnx" 2>/dev/null; then echo "python3-onnx missing: skipped"; exit 77; fi
model=$SRC/models/fashion_cnn.onnx
imgs="$SRC/data/fashion/0_Ankle_boot.png $SRC/data/fashion/13_Dress.png $SRC/data/fashion/18_Bag.png"
"$PY" - "$model" "$T/bare.onnx" <<'PY'
import onnx, sys
m = onnx.load(sys.argv[1])
del m.metadata_props[:]
m.doc_string = "kept: a field the project's minimal schema does not read"
onnx.save(m, sys.argv[2])
PY
printf 'T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n' > "$T/names.txt"
"$NM_BIN" annotate "$T/bare.onnx" --preprocess fashion --class-names "$T/names.txt" -o "$T/a.onnx" > "$T/out" 2> "$T/err"
check "annotate exits 0 ($(head -c 200 "$T/err"))" [ $? = 0 ]
cat > "$T/check.py" <<'PY'
import onnx, sys
bare, new, preprocess = onnx.load(sys.argv[1]), onnx.load(sys.argv[2]), sys.argv[3]
onnx.checker.check_model(new)
meta = [(p.key, p.value) for p in new.metadata_props]
assert [k for k, _ in meta].count("neuromask.preprocess") == 1, meta
assert [k for k, _ in meta].count("neuromask.class_names") == 1, meta
assert dict(meta)["neuromask.preprocess"] == preprocess, meta
assert dict(meta)["neuromask.class_names"].split("\n")[9] == "Ankle boot", meta
del new.metadata_props[:]
assert new.SerializeToString() == bare.SerializeToString(), "other fields changed"
PY
check "onnx.checker passes; the entries once each; all else as it was" "$PY" "$T/check.py" "$T/bare.onnx" "$T/a.onnx" fashion
# shellcheck disable=SC2086
"$NM_BIN" classify --model "$T/a.onnx" $imgs > "$T/c_annotated" 2> "$T/err"
check "classify on the annotated model needs no --preprocess ($(head -c 200 "$T/err"))" [ $? = 0 ]
# shellcheck disable=SC2086
"$NM_BIN" classify --model "$T/bare.onnx" --preprocess fashion --class-names "$T/names.txt" $imgs > "$T/c_flags"
check "... and prints what the flags print on the bare model" cmp -s "$T/c_annotated" "$T/c_flags"
check "... (class names included)" grep -q "Ankle boot (p=" "$T/c_annotated"
"$NM_BIN" classify --model "$T/bare.onnx" $imgs > /dev/null 2> "$T/err"
check "the bare model without --preprocess is refused" grep -q "no preprocessing given" "$T/err"
"$NM_BIN" annotate "$T/a.onnx" --preprocess "fashion,scale=1" -o "$T/b.onnx" > /dev/null
check "annotating again replaces the entry" "$PY" "$T/check.py" "$T/bare.onnx" "$T/b.onnx" "fashion,scale=1"
# shellcheck disable=SC2086
"$NM_BIN" classify --model "$T/a.onnx" --preprocess cifar $imgs > /dev/null 2> "$T/err"
check "a --preprocess other than the model's recipe: a warning" grep -q "warning: the preprocessing given differs from .*a.onnx's own recipe 'fashion'" "$T/err"
# shellcheck disable=SC2086
"$NM_BIN" classify --model "$T/a.onnx" --preprocess fashion $imgs > /dev/null 2> "$T/err"
check "the same recipe: no warning" test ! -s "$T/err"
"$NM_BIN" annotate "$T/bare.onnx" --preprocess fashion -o "$T/a.onnx" 2> "$T/err"
check "an existing output is refused without --force (exit $?)" grep -q "a.onnx: exists (use --force" "$T/err"
printf 'a\nb\n' > "$T/two.txt"
"$NM_BIN" annotate "$T/bare.onnx" --class-names "$T/two.txt" -o "$T/c.onnx" 2> "$T/err"
check "a wrong class count is refused" sh -c "grep -q '2 labels but the model has 10 classes' '$T/err' && test ! -e '$T/c.onnx'"
"$NM_BIN" annotate "$T/bare.onnx" --preprocess nosuch -o "$T/c.onnx" 2> "$T/err"
check "an unknown recipe is a usage error (exit $?)" sh -c "test ! -e '$T/c.onnx'"
head -c 300 "$T/bare.onnx" > "$T/cut.onnx"
"$NM_BIN" annotate "$T/cut.onnx" --preprocess fashion -o "$T/c.onnx" 2> "$T/err"
check "a truncated model is refused, nothing written" sh -c "[ \$(wc -l < '$T/err') = 1 ] && test ! -e '$T/c.onnx'"
nm_check_done
