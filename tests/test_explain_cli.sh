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
# Its map (the area sweep) orders the pixels from 1 to 0 and crosses 0.5 at an area
# whose mask keeps the class; at 28 pixels the grid is 14 x 14.
cat > "$T/check_area.py" <<'EOF'
import json, sys, numpy as np
d = sys.argv[1]
j = json.load(open(f"{d}/0_Ankle_boot.json"))
m = np.load(f"{d}/0_Ankle_boot.mask.npy")
assert j["kept"] is True, "the returned map keeps the class"
assert 0 <= m.min() < 0.1 and 0.9 < m.max() <= 1, (m.min(), m.max())
assert abs(float((m > 0.5).mean()) - j["mask_area"]) < 1e-6, j["mask_area"]
assert j["options"]["areas"] == 2 and j["options"]["grid"] == 14 and j["options"]["smooth_edges"] == 1
EOF
check "default preset: map from 0 to 1, class kept, 14 x 14 cells" "$PY" "$T/check_area.py" "$T/e7"
check "default preset, batch of 2" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/e2" --batch 2 "$img1" "$img2"
check "default preset: a batch explains like one image" "$PY" -c "
import numpy as np, sys
a, b = (np.load(sys.argv[i] + '/0_Ankle_boot.mask.npy').ravel() for i in (1, 2))
sys.exit(0 if np.corrcoef(a, b)[0, 1] > 0.99 else 1)" "$T/e7" "$T/e2"
# The blur game on the insertion metric's start image (blur_kernel): recorded, and it
# changes the mask; an even kernel is refused before any output is written.
check "blur_kernel=11 runs" "$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/k11" --nm blur_kernel=11 "$img1"
check "blur_kernel recorded in the JSON" grep -q '"blur_kernel": 11' "$T/k11/0_Ankle_boot.json"
check "blur_kernel changes the mask" sh -c "! cmp -s '$T/e7/0_Ankle_boot.mask.npy' '$T/k11/0_Ankle_boot.mask.npy'"
"$NM_BIN" explain --model "$model" --steps 60 --quiet --out "$T/k4" --nm blur_kernel=4 "$img1" 2> "$T/err"
check "even blur_kernel refused (exit $?)" test $? -ne 0
check "even blur_kernel: the reason" grep -q "blur kernel 0 or odd" "$T/err"
check "even blur_kernel: no output file" test -z "$(ls -A "$T/k4" 2>/dev/null)"

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
