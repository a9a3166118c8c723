#!/bin/sh
# `neuromask explain` end to end on the bundled Fashion-MNIST model: every
# output is written and readable, the same seed writes the same bytes (the
# JSON's "seconds" line aside), another seed does not, existing outputs are
# kept unless --force, and a batch explains like single images.
NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
SRC=${NM_SOURCE_DIR:?}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/nm_explain.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
pass=0 fail=0
check() {  # description, command...
  d=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $d"; fi
}
model=$SRC/models/fashion_cnn.onnx
img1=$SRC/data/fashion/0_Ankle_boot.png
img2=$SRC/data/fashion/1_Pullover.png
run() {  # outdir, extra args...
  out=$1; shift
  "$NM_BIN" explain --model "$model" --preset cifar --steps 60 --quiet --out "$out" "$@" "$img1" "$img2"
}

check "explain runs" run "$T/a" --seed 7
for f in 0_Ankle_boot 1_Pullover; do
  for s in mask.png mask.npy overlay.png panel.png json; do
    check "$f.$s written" test -s "$T/a/$f.$s"
  done
done
check "no temporary files left" test -z "$(ls -A "$T/a" | grep '^\.')"
cat > "$T/check_json.py" <<'EOF'
import json, sys, numpy as np
d = sys.argv[1]
j = json.load(open(f"{d}/0_Ankle_boot.json"))
for k in ("model", "image", "target_class", "label", "prob_before", "prob_after", "kept", "mask_mean",
          "mask_area", "steps", "loss_terms", "seconds", "options"):
    assert k in j, k
assert j["steps"] == 60 and 0 <= j["mask_mean"] <= 1 and 0 <= j["prob_after"] <= 1
m = np.load(f"{d}/0_Ankle_boot.mask.npy")
assert m.shape == (28, 28) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
assert abs(float(m.mean()) - j["mask_mean"]) < 1e-4
EOF
check "JSON and .npy readable, values sane" "$PY" "$T/check_json.py" "$T/a"

check "same seed again" run "$T/b" --seed 7
same=1
for f in 0_Ankle_boot 1_Pullover; do
  for s in mask.png mask.npy overlay.png panel.png; do
    cmp -s "$T/a/$f.$s" "$T/b/$f.$s" || same=0
  done
  grep -v '"seconds' "$T/a/$f.json" > "$T/ja" && grep -v '"seconds' "$T/b/$f.json" > "$T/jb"
  cmp -s "$T/ja" "$T/jb" || same=0
done
check "same seed writes identical files" test $same = 1
check "another seed" run "$T/c" --seed 8
check "another seed gives another mask" sh -c "! cmp -s '$T/a/0_Ankle_boot.mask.npy' '$T/c/0_Ankle_boot.mask.npy'"
# The project's default preset (used for this 28-pixel model when none is
# named) starts from w = 0: no seed dependence at all.
check "default preset, seed 7" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/e7" --seed 7 "$img1"
check "default preset, seed 8" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/e8" --seed 8 "$img1"
check "default preset: the same mask for any seed" cmp -s "$T/e7/0_Ankle_boot.mask.npy" "$T/e8/0_Ankle_boot.mask.npy"
check "default preset named in the JSON" grep -q '"preset": "default"' "$T/e7/0_Ankle_boot.json"
# Its map is the learned mask itself, in [0, 1], smooth (a Gaussian
# interpolation of 8 x 8 cells at 28 pixels); its mask area is the JSON's.
cat > "$T/check_smooth.py" <<'EOF'
import json, sys, numpy as np
d = sys.argv[1]
j = json.load(open(f"{d}/0_Ankle_boot.json"))
m = np.load(f"{d}/0_Ankle_boot.mask.npy")
assert 0 <= m.min() and m.max() <= 1 and m.max() - m.min() > 0.1, (m.min(), m.max())
assert abs(float((m > 0.5).mean()) - j["mask_area"]) < 1e-6, j["mask_area"]
# neighbouring pixels differ by far less than the range: no cell edges
assert np.abs(np.diff(m, axis=1)).max() < 0.25 * (m.max() - m.min()), np.abs(np.diff(m, axis=1)).max()
o = j["options"]
assert o["grid"] == 8 and o["optimizer"] == "normalized" and o["init"] == "zero", o
assert o["average"] == 1 and o["calibrate"] == 1 and o["baseline"] == "blur" and o["blur_sigma"] == 10, o
# calibrate: the returned mask keeps the class on x * m
assert j["kept"] is True, j["kept"]
EOF
check "default preset: a smooth map in [0, 1], 8 x 8 cells" "$PY" "$T/check_smooth.py" "$T/e7"
check "default preset, batch of 2" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/e2" --batch 2 "$img1" "$img2"
check "default preset: a batch explains like one image" "$PY" -c "
import numpy as np, sys
a, b = (np.load(sys.argv[i] + '/0_Ankle_boot.mask.npy').ravel() for i in (1, 2))
sys.exit(0 if np.corrcoef(a, b)[0, 1] > 0.99 else 1)" "$T/e7" "$T/e2"
# A second fill changes the mask; an unknown one is refused before any output is written.
check "alt_fill=1,alt_baseline=mean runs" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/k11" --nm alt_fill=1,alt_baseline=mean "$img1"
check "alt_baseline recorded in the JSON" grep -q '"alt_fill": 1, "alt_baseline": "mean"' "$T/k11/0_Ankle_boot.json"
check "a second fill changes the mask" sh -c "! cmp -s '$T/e7/0_Ankle_boot.mask.npy' '$T/k11/0_Ankle_boot.mask.npy'"
"$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/k4" --nm alt_baseline=grey "$img1" 2> "$T/err"
check "unknown alt_baseline refused (exit $?)" test $? -ne 0
check "unknown alt_baseline: the reason" grep -q "alt_baseline: bad value 'grey'" "$T/err"
check "unknown alt_baseline: no output file" test -z "$(ls -A "$T/k4" 2>/dev/null)"

before=$(cksum < "$T/a/0_Ankle_boot.mask.npy")
run "$T/a" --seed 9 2> "$T/err"
rc=$?
check "existing outputs refused without --force (exit $rc)" test $rc -ne 0
check "refusal names the file" grep -q "0_Ankle_boot" "$T/err"
check "existing outputs untouched" test "$before" = "$(cksum < "$T/a/0_Ankle_boot.mask.npy")"
check "--force overwrites" run "$T/a" --seed 9 --force
check "batch of 2 runs" run "$T/d" --seed 7 --batch 2
cat > "$T/check_batch.py" <<'EOF'
import sys, numpy as np
for f in ("0_Ankle_boot", "1_Pullover"):
    a = np.load(f"{sys.argv[1]}/{f}.mask.npy"); b = np.load(f"{sys.argv[2]}/{f}.mask.npy")
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99, f
EOF
check "batched masks match single-image masks" "$PY" "$T/check_batch.py" "$T/b" "$T/d"
"$NM_BIN" explain --model "$model" --out "$T/e" --steps 5 --bogus "$img1" 2> "$T/err"
check "unknown flag: usage error" test $? = 2
check "unknown flag: one line" test "$(wc -l < "$T/err")" = 1
check "unknown flag: no output folder" test ! -e "$T/e"
echo "$pass passed, $fail failed"
test $fail = 0
