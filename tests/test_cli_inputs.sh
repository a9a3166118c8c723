#!/bin/sh
# How the commands take their images and name their outputs, on the bundled
# model: two inputs with the same name are refused before anything is
# written; --recursive walks an ImageFolder tree in sorted order and explain
# mirrors it under --out; without it such a tree gets a hint; eval's pictures
# are unique per input; flags mean one thing everywhere (--class-names,
# --labels, --steps, --auc-steps, --methods all).
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_inputs
model=$SRC/models/fashion_cnn.onnx
F=$SRC/data/fashion
# An ImageFolder tree: two classes, the same file names in both.
mkdir -p "$T/tree/boot" "$T/tree/bag" "$T/a" "$T/b"
cp "$F/0_Ankle_boot.png" "$T/tree/boot/x.png"; cp "$F/9_Sneaker.png" "$T/tree/boot/y.png"
cp "$F/18_Bag.png" "$T/tree/bag/x.png"
cp "$F/0_Ankle_boot.png" "$T/a/x.png"; cp "$F/18_Bag.png" "$T/b/x.png"; cp "$F/9_Sneaker.png" "$T/a/x.jpg.png"

# Same output name: refused with one line naming both, nothing written.
"$NM_BIN" explain --model "$model" --steps 5 --quiet --out "$T/dup" "$T/a/x.png" "$T/b/x.png" 2> "$T/err"
check "a/x.png b/x.png: exit 1 (got $?)" [ $? = 1 ]
check "... one line naming both inputs" sh -c "[ \$(wc -l < '$T/err') = 1 ] && grep -q 'a/x.png and .*b/x.png would both write' '$T/err'"
check "... nothing written" test ! -e "$T/dup"
cp "$F/0_Ankle_boot.png" "$T/a/z.png"; cp "$F/0_Ankle_boot.png" "$T/a/z.jpg" 2>/dev/null
printf 'not an image' > "$T/a/z.jpg"
"$NM_BIN" explain --model "$model" --steps 5 --quiet --out "$T/dup" "$T/a/z.png" "$T/a/z.jpg" 2> "$T/err"
check "z.png z.jpg (same stem): refused (got $?)" [ $? = 1 ]
check "... nothing written" test ! -e "$T/dup"

# Without --recursive a tree is refused with a hint; with it, mirrored.
"$NM_BIN" explain --model "$model" --steps 5 --quiet --out "$T/t0" "$T/tree" 2> "$T/err"
check "tree without --recursive: exit 1 (got $?)" [ $? = 1 ]
check "... the hint names --recursive" grep -q "in its subfolders (use --recursive)" "$T/err"
check "explain --recursive" "$NM_BIN" explain --model "$model" --steps 5 --quiet --recursive --out "$T/t1" "$T/tree"
for f in bag/x boot/x boot/y; do
  for s in mask.png mask.npy overlay.png panel.png json; do
    check "mirrored: $f.$s" test -s "$T/t1/$f.$s"
  done
done
check "bag/x.json names its image" grep -q '"image": ".*tree/bag/x.png"' "$T/t1/bag/x.json"
check "boot/x.json names its image" grep -q '"image": ".*tree/boot/x.png"' "$T/t1/boot/x.json"
check "no stray outputs at the top" test -z "$(ls "$T/t1" | grep -v '^bag$' | grep -v '^boot$')"
# classify --recursive: sorted by path, the same order every time.
"$NM_BIN" classify --model "$model" --recursive --top 1 "$T/tree" > "$T/c1" 2> "$T/err"
check "classify --recursive ($(head -c 200 "$T/err"))" [ $? = 0 ]
check "... in path order" test "$(cut -d: -f1 "$T/c1" | sed "s|$T/tree/||" | tr '\n' ' ')" = "bag/x.png boot/x.png boot/y.png "
check "... the class of each (Bag, Ankle boot, Sneaker)" sh -c "grep -q 'bag/x.png: Bag' '$T/c1' && grep -q 'boot/x.png: Ankle boot' '$T/c1' && grep -q 'boot/y.png: Sneaker' '$T/c1'"
# eval: the pictures of two inputs with one name are two files.
"$NM_BIN" eval --model "$model" --methods gradient --auc-steps 8 --quiet --out "$T/e" "$T/a/x.png" "$T/b/x.png" 2> "$T/err"
check "eval a/x.png b/x.png ($(head -c 200 "$T/err"))" [ $? = 0 ]
check "... two image pictures and two overlays" test "$(ls "$T/e/img" | wc -l)" = 4
check "... two rows" test "$(tail -n +2 "$T/e/results.csv" | wc -l)" = 2

# One meaning per flag.
"$NM_BIN" explain --model "$model" --labels names.txt --out "$T/l" "$F/0_Ankle_boot.png" 2> "$T/err"
check "explain --labels: usage error (got $?)" [ $? = 2 ]
check "... pointing to --class-names" grep -q -- "--class-names FILE" "$T/err"
printf 'a\nb\nc\nd\ne\nf\ng\nh\ni\nshoe\n' > "$T/names.txt"
"$NM_BIN" classify --model "$model" --class-names "$T/names.txt" --top 1 "$F/0_Ankle_boot.png" > "$T/c2"
check "classify --class-names" grep -q "shoe (p=" "$T/c2"
"$NM_BIN" explain --model "$model" --steps 7 --quiet --class-names "$T/names.txt" --out "$T/s" "$F/0_Ankle_boot.png"
check "explain --class-names and --steps" sh -c "grep -q '\"label\": \"shoe\"' '$T/s/0_Ankle_boot.json' && grep -q '\"steps\": 7,' '$T/s/0_Ankle_boot.json'"
"$NM_BIN" eval --model "$model" --methods all --steps 7 --auc-steps 8 --rise-masks 32 --pert-steps 5 --ig-steps 4 \
  --sg-samples 4 --quiet --class-names "$T/names.txt" --labels "$F/labels.csv" --out "$T/all" "$F/0_Ankle_boot.png" 2> "$T/err"
check "eval --methods all ($(head -c 200 "$T/err"))" [ $? = 0 ]
check "... a row per method (10)" test "$(tail -n +2 "$T/all/results.csv" | wc -l)" = 10
check "... --auc-steps: curves of 9 points" sh -c "awk -F, 'NR > 1 && NF != 12 {exit 1}' '$T/all/curves.csv'"
check "... --labels is the ground truth (class 9 is correct)" sh -c "awk -F, 'NR > 1 && \$5 != 1 {exit 1}' '$T/all/results.csv'"
nm_check_done
