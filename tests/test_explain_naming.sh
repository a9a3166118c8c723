#!/bin/sh
# `neuromask explain` names its outputs by what they hold: NAME.mask.* for the
# mask methods (neuromask, extremal-perturbation), NAME.map.* for the others;
# signed maps (gradxinput) get a colour map file centred at 0, the JSON says
# the kind and the colour range, --resume finds the files by the same names,
# and map panels have three tiles where mask panels have four.
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_naming
PY=/usr/bin/python3
model=$SRC/models/fashion_cnn.onnx
img=$SRC/data/fashion/0_Ankle_boot.png
ex() {  # method, outdir, extra args...
  m=$1 out=$2; shift 2
  "$NM_BIN" explain --model "$model" --method "$m" --steps 5 --pert-steps 5 --out "$out" "$@" "$img" 2>> "$T/log"
}
for m in neuromask extremal-perturbation gradcam gradxinput; do
  check "$m runs" ex $m "$T/$m"
  case $m in neuromask|extremal-perturbation) w=mask o=map ;; *) w=map o=mask ;; esac
  for s in $w.png $w.npy overlay.png panel.png json; do check "$m: 0_Ankle_boot.$s written" test -s "$T/$m/0_Ankle_boot.$s"; done
  for s in $o.png $o.npy; do check "$m: no 0_Ankle_boot.$s" test ! -e "$T/$m/0_Ankle_boot.$s"; done
  "$NM_BIN" explain --model "$model" --method $m --steps 5 --pert-steps 5 --out "$T/$m" --resume "$img" 2> "$T/err"
  check "$m: --resume finds the outputs by their names" grep -q "1 image(s) already complete" "$T/err"
done
cat > "$T/check.py" <<'EOF'
import json, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
def panel_width(m):
    return Image.open(f"{d}/{m}/0_Ankle_boot.panel.png").size[0]
def record(m):
    return json.load(open(f"{d}/{m}/0_Ankle_boot.json"))
# gradxinput is signed: its picture is RGB, white where the map is 0, and the
# colour range is symmetric about 0
g = record("gradxinput")
assert g["map_kind"] == "signed" and g["colour_range"][0] == -g["colour_range"][1] > -1e30, g
m = np.load(f"{d}/gradxinput/0_Ankle_boot.map.npy")
png = np.asarray(Image.open(f"{d}/gradxinput/0_Ankle_boot.map.png"))
assert png.ndim == 3 and png.shape[2] == 3, png.shape
zeros = np.argwhere(m == 0)
assert len(zeros), "the Fashion image has a black background, so x * grad is 0 there"
y, x = zeros[0]
assert (png[y, x] == 255).all(), png[y, x]   # the model-size map equals the image size here (28 x 28)
c = record("gradcam")
assert c["map_kind"] == "nonnegative" and c["colour_range"][0] == 0, c
assert np.asarray(Image.open(f"{d}/gradcam/0_Ankle_boot.map.png")).ndim == 2
assert record("extremal-perturbation")["map_kind"] == "mask"
# masks: image | mask | overlay | masked; maps: image | map | overlay (28 px tiles enlarged 5x)
extra = panel_width("neuromask") - panel_width("gradcam")   # one 140 px tile and its gap, +- the bar's labels
assert 100 < extra < 200, (panel_width("neuromask"), panel_width("gradcam"))
EOF
check "map kinds, signed colours, panel tiles" "$PY" "$T/check.py" "$T"
"$NM_BIN" explain --help > "$T/help"
check "--help documents the naming" grep -q "NAME.map.png" "$T/help"
nm_check_done
