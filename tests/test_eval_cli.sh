#!/bin/sh
# neuromask eval end to end on two bundled Fashion-MNIST images with two
# cheap methods: results.csv columns and rows, a summary.md table row per
# method, an index.html whose images exist and that loads nothing from
# outside, no overwrite without --force, usage errors, --resume after an
# interruption; --protocols all and --save-maps rescored by tools/eval_ref.py.
set -u
BIN=${NM_BIN:-./neuromask}
SRC=${NM_SOURCE_DIR:-$(dirname "$0")/..}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fails=0
check() {   # check DESCRIPTION COMMAND...
    desc=$1
    shift
    if "$@"; then echo "ok: $desc"; else echo "FAIL: $desc"; fails=$((fails + 1)); fi
}

MODEL=$SRC/models/fashion_cnn.onnx
IMGS="$SRC/data/fashion/0_Ankle_boot.png $SRC/data/fashion/13_Dress.png"
D=$OUT/run
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient,gradcam --labels "$SRC/data/fashion/labels.csv" --sanity \
    --auc-steps 28 --out "$D" --quiet $IMGS 2>"$OUT/err"
rc=$?
check "eval exits 0 ($(head -c 300 "$OUT/err"))" test $rc -eq 0

header=$(head -n 1 "$D/results.csv" 2>/dev/null)
for col in image method target_class label correct prob deletion_rise insertion_rise ins_del_rise kept kept_prob mask_area \
    spearman_random seconds; do
    check "results.csv has column $col" sh -c "echo '$header' | tr ',' '\n' | grep -qx '$col'"
done
check "results.csv has 4 rows (2 images x 2 methods)" test "$(tail -n +2 "$D/results.csv" | wc -l)" -eq 4
# Every row: rise AUCs in [0, 1], the other protocols empty (not asked
# for), the label column filled, a Spearman value.
bad=$(awk -F, 'NR > 1 && !($7 >= 0 && $7 <= 1 && $8 >= 0 && $8 <= 1 && $4 != "" && $31 != "" && $10 == "" && $21 == "" && $22 == "") {print}' "$D/results.csv")
check "rows have rise AUCs in [0,1], no other protocol, labels and sanity values ($bad)" test -z "$bad"
for m in gradient gradcam; do
    check "results.csv has 2 rows of $m" test "$(awk -F, -v m=$m '$2 == m' "$D/results.csv" | wc -l)" -eq 2
    check "summary.md has a table row for $m" grep -q "^| $m | 2 | " "$D/summary.md"
done
check "summary.md has the table header" grep -q "^| method | images | deletion AUC" "$D/summary.md"

check "index.html exists" test -s "$D/index.html"
srcs=$(grep -o 'src="[^"]*"' "$D/index.html" | sed 's/^src="//; s/"$//')
check "index.html shows 2 images + 4 overlays" test "$(echo "$srcs" | grep -c .)" -eq 6
missing=""
for s in $srcs; do [ -f "$D/$s" ] || missing="$missing $s"; done
check "every image index.html references exists ($missing)" test -z "$missing"
check "index.html loads nothing from outside" sh -c "! grep -Eq '(src|href)=\"(https?:)?//' '$D/index.html'"
check "index.html has sortable headers" grep -q 'data-k="ins"' "$D/index.html"
check "curves.csv has a deletion and an insertion curve of 29 points per row" \
    test "$(awk -F, 'NR > 1 && NF == 32' "$D/curves.csv" | wc -l)" -eq 8
check "summary.md has paired differences to gradient" grep -q "^| gradcam | 2 | [-+]" "$D/summary.md"
if command -v node >/dev/null 2>&1; then
    /usr/bin/python3 -c 'import re, sys
for i, s in enumerate(re.findall(r"<script>(.*?)</script>", open(sys.argv[1]).read(), re.S)):
    open("%s/script%d.js" % (sys.argv[2], i), "w").write(s)' "$D/index.html" "$OUT"
    for js in "$OUT"/script*.js; do check "the inline script $(basename "$js") parses (node --check)" node --check "$js"; done
fi

"$BIN" eval --model "$MODEL" --methods gradient --out "$D" --quiet "$SRC/data/fashion/0_Ankle_boot.png" 2>"$OUT/err"
rc=$?
check "a second run without --force fails (rc $rc)" test $rc -eq 1
check "... saying the file exists" grep -q "exists (use --force" "$OUT/err"
"$BIN" eval --model "$MODEL" --methods gradient --out "$D" --quiet --force "$SRC/data/fashion/0_Ankle_boot.png" 2>"$OUT/err"
check "with --force it runs" test $? -eq 0
check "... and rewrites results.csv (1 row)" test "$(tail -n +2 "$D/results.csv" | wc -l)" -eq 1

# A labels CSV is read with RFC 4180 quoting: a quoted name holding commas
# and doubled quotes, before the label column, leaves the columns in place.
L=$OUT/quoted.csv
printf 'file,name,label\n0_Ankle_boot.png,"Ankle boot, a shoe",9\n13_Dress.png,"Dress ""long""",3\n' >"$L"
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient --labels "$L" --out "$OUT/q" --quiet $IMGS 2>"$OUT/err"
rc=$?
check "a labels CSV with quoted commas is read ($(head -c 300 "$OUT/err"))" test $rc -eq 0
check "... its labels land in the label column (9 and 3)" \
    test "$(tail -n +2 "$OUT/q/results.csv" | cut -d, -f4 | sort -n | tr '\n' ' ')" = "3 9 "
printf 'file,name,label\n0_Ankle_boot.png,"Ankle boot,9\n' >"$L"
"$BIN" eval --model "$MODEL" --methods gradient --labels "$L" --out "$OUT/q" --force --quiet \
    "$SRC/data/fashion/0_Ankle_boot.png" 2>"$OUT/err"
check "an unterminated quote in the labels CSV fails (rc $?)" test $? -eq 1
check "... naming the file and line" grep -q "quoted.csv: line 2: broken quoting" "$OUT/err"

# --resume: an interrupted run (rows of the last image and one method of the
# second missing) is finished; the result equals the uninterrupted run's,
# the kept rows are read back (their seconds unchanged), the rest computed.
IMGS3="$SRC/data/fashion/0_Ankle_boot.png $SRC/data/fashion/13_Dress.png $SRC/data/fashion/18_Bag.png"
R=$OUT/resume
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient,rise --rise-masks 64 --auc-steps 28 --out "$OUT/whole" --quiet $IMGS3 \
    2>"$OUT/err"
rc=$?
check "the uninterrupted run exits 0 ($(head -c 300 "$OUT/err"))" test $rc -eq 0
cp -r "$OUT/whole" "$R"
head -n 4 "$OUT/whole/results.csv" >"$R/results.csv"     # header, image 1 (2 rows), image 2 gradient
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient,rise --rise-masks 64 --auc-steps 28 --out "$R" --resume $IMGS3 \
    2>"$OUT/err"
rc=$?
check "--resume exits 0 ($(head -c 300 "$OUT/err"))" test $rc -eq 0
check "... says it kept 3 rows" test "$(grep -c 'kept from' "$OUT/err")" -eq 3
check "... and computed 3" test "$(grep -c 'deletion' "$OUT/err")" -eq 3
cut -d, -f1-31 "$OUT/whole/results.csv" >"$OUT/whole.cut"   # all but seconds
cut -d, -f1-31 "$R/results.csv" >"$OUT/resume.cut"
check "the resumed results.csv equals the uninterrupted one but for seconds" cmp -s "$OUT/whole.cut" "$OUT/resume.cut"
check "the kept rows are read back unchanged (seconds too)" \
    test "$(head -n 4 "$R/results.csv")" = "$(head -n 4 "$OUT/whole/results.csv")"
check "summary.md counts 3 images per method" grep -q "^| rise | 3 | " "$R/summary.md"
check "the resumed curves.csv equals the uninterrupted one" cmp -s "$OUT/whole/curves.csv" "$R/curves.csv"
# A results.csv of the version before --protocols (one deletion / insertion pair).
printf 'image,method,target_class,label,correct,prob,deletion_auc,insertion_auc,kept,mask_area,roughness,spearman_random,stability,seconds\nx.png,gradient,9,,,0.9,0.1,0.5,,0.2,0.1,,,0.01\n' >"$R/results.csv"
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient --out "$R" --resume --quiet $IMGS3 2>"$OUT/err"
check "--resume on an older results.csv fails (rc 1)" test $? -eq 1
check "... saying it is another version's ($(cat "$OUT/err"))" grep -q "resume/results.csv: written by another version of neuromask eval" "$OUT/err"
printf 'a,b\n1,2\n' >"$R/results.csv"
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient --out "$R" --resume --quiet $IMGS3 2>"$OUT/err"
check "--resume on a foreign results.csv fails (rc 1)" test $? -eq 1
check "... naming the file" grep -q "resume/results.csv: not the results.csv of neuromask eval" "$OUT/err"

# SIGINT stops the run with complete rows only; --resume finishes it.
I=$OUT/interrupted
(exec "$BIN" eval --model "$MODEL" --methods neuromask --steps 300 --auc-steps 28 --out "$I" --quiet \
    "$SRC/data/fashion") 2>"$OUT/err" &
pid=$!
n=0
while [ ! -s "$I/results.csv" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
kill -INT $pid
wait $pid
rc=$?
check "SIGINT: exit 130 (got $rc)" test $rc -eq 130
check "SIGINT: one error line naming --resume" sh -c "[ \$(wc -l <'$OUT/err') = 1 ] && grep -q -- '--resume' '$OUT/err'"
rows=$(tail -n +2 "$I/results.csv" | wc -l)
check "SIGINT: some but not all rows written ($rows)" test "$rows" -ge 1 -a "$rows" -lt 10
check "SIGINT: no temporary files left" sh -c "! ls -A '$I' | grep -q '\.tmp\.'"
cp "$I/results.csv" "$OUT/interrupted.csv"
"$BIN" eval --model "$MODEL" --methods neuromask --steps 300 --auc-steps 28 --out "$I" --resume --quiet \
    "$SRC/data/fashion" 2>"$OUT/err"
rc=$?
check "--resume after SIGINT exits 0 ($(head -c 300 "$OUT/err"))" test $rc -eq 0
check "... with all 10 rows" test "$(tail -n +2 "$I/results.csv" | wc -l)" -eq 10
check "... the interrupted run's rows first and unchanged" \
    test "$(head -n $((rows + 1)) "$I/results.csv")" = "$(cat "$OUT/interrupted.csv")"
# kept_prob: the masked image's probability over the image's, so 0 < kept_prob * prob <= 1.
bad=$(awk -F, 'NR > 1 && !($27 != "" && $28 > 0 && $28 * $6 <= 1.00001) {print}' "$I/results.csv")
check "neuromask rows have kept and 0 < kept_prob * prob <= 1 ($bad)" test -z "$bad"

# --protocols all --save-maps: every protocol's columns filled and
# consistent (rise deletion = black's, rise insertion = blur's, ins_del =
# insertion - deletion); each saved map, rescored by the PyTorch reference
# (tools/eval_ref.py), gives the CSV's AUCs within 1e-4 (float32 engines).
P=$OUT/protocols
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient,gradcam --protocols all --save-maps --out "$P" --quiet $IMGS 2>"$OUT/err"
check "--protocols all --save-maps exits 0 ($(head -c 300 "$OUT/err"))" test $? -eq 0
bad=$(awk -F, 'function d(a, b) { return a - b < 0 ? b - a : a - b }
  NR > 1 { for (c = 7; c <= 21; c++) if ($c == "") print "empty column " c;
           for (c = 7; c <= 19; c += 3) if (d($(c + 2), $(c + 1) - $c) > 2e-6) print "ins_del column " c + 2;
           if ($7 != $10 || $8 != $14) print "rise vs black / blur" }' "$P/results.csv")
check "every protocol measured and consistent ($bad)" test -z "$bad"
check "summary.md has the per-protocol table" grep -q "^| method | ins-del rise | ins-del black | ins-del blur | ins-del grey | ins-del mean |" "$P/summary.md"
check "index.html sorts by ins-del grey" grep -q 'data-k="diffgrey"' "$P/index.html"
check "4 maps saved" test "$(ls "$P/maps" | grep -c '\.npy$')" -eq 4
PY=${NM_PYTHON:-/usr/bin/python3}   # the tests' Python (tests/CMakeLists.txt), with torch
for m in gradient gradcam; do
    "$PY" "$SRC/tools/eval_ref.py" --model "$MODEL" --recipe fashion --image "$SRC/data/fashion/13_Dress.png" \
        --map "$m=$P/maps/0001_13_Dress.$m.npy" --protocols all --steps 64 --outdir "$OUT/ref_$m" >/dev/null 2>"$OUT/err"
    check "eval_ref.py rescored the saved $m map ($(head -c 300 "$OUT/err"))" test -s "$OUT/ref_$m/ref.txt"
    bad=$("$PY" - "$P/results.csv" "$OUT/ref_$m/ref.txt" "$m" <<'EOF'
import csv, sys
row = [r for r in csv.DictReader(open(sys.argv[1])) if r["method"] == sys.argv[3] and r["image"].endswith("13_Dress.png")][0]
for line in open(sys.argv[2]):
    _, name, _, _, _, target, d, i = line.split()
    p = name.rsplit("_", 1)[1]
    for key, ref in (("deletion_" + p, d), ("insertion_" + p, i)):
        if abs(float(row[key]) - float(ref)) > 1e-4 or int(target) != int(row["target_class"]):
            print(key, row[key], ref)
EOF
)
    check "the CSV's AUCs of $m equal the reference's on the saved map, every protocol ($bad)" test -z "$bad"
done
# --road: the ROAD columns filled (probabilities, top-1 shares in sevenths,
# road_lerf_morf their difference), the same for the same seed (the
# imputation noise is seeded), a ROAD table in summary.md. The values
# themselves are checked against tools/road_ref.py (eval_road_*).
for run in road1 road2; do
    # shellcheck disable=SC2086
    "$BIN" eval --model "$MODEL" --methods gradient,gradcam --road --out "$OUT/$run" --quiet $IMGS 2>"$OUT/err"
    check "--road exits 0 ($(head -c 300 "$OUT/err"))" test $? -eq 0
done
bad=$(awk -F, 'function d(a, b) { return a - b < 0 ? b - a : a - b }
  NR > 1 { if ($22 == "" || $22 < 0 || $22 > 1 || $23 < 0 || $23 > 1) print "probability";
           if (d($24, $23 - $22) > 2e-6) print "difference";
           for (c = 25; c <= 26; c++) if (d($c * 7, int($c * 7 + 0.5)) > 1e-4) print "top-1 share " $c }' "$OUT/road1/results.csv")
check "ROAD columns filled and consistent ($bad)" test -z "$bad"
check "ROAD: the same seed gives the same values" \
    test "$(cut -d, -f22-26 "$OUT/road1/results.csv")" = "$(cut -d, -f22-26 "$OUT/road2/results.csv")"
check "summary.md has the ROAD table" sh -c "grep -A8 '^## ROAD' '$OUT/road1/summary.md' | grep -q '^| gradcam | 2 | '"
check "index.html sorts by ROAD" grep -q 'data-k="road"' "$OUT/road1/index.html"
# shellcheck disable=SC2086
"$BIN" eval --model "$MODEL" --methods gradient --protocols rise,bogus --out "$OUT/x" $IMGS 2>"$OUT/err"
check "an unknown protocol is a usage error (rc 2)" test $? -eq 2
check "... naming it" grep -q "unknown protocol 'bogus'" "$OUT/err"

"$BIN" eval --model "$MODEL" --methods nosuch --out "$OUT/x" "$SRC/data/fashion/0_Ankle_boot.png" 2>"$OUT/err"
check "an unknown method is a usage error (rc 2)" test $? -eq 2
"$BIN" eval --model "$MODEL" --out "$OUT/x" "$SRC/data/fashion/0_Ankle_boot.png" 2>"$OUT/err"
check "--methods is required (rc 2)" test $? -eq 2
check "no temporary files left" sh -c "! ls -A '$D' | grep -q '\.tmp\.'"

echo "$fails failed"
[ $fails -eq 0 ]
