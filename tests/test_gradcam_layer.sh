#!/bin/sh
# Choosing Grad-CAM's layer: `info --tensors` lists the tensors with shapes
# and marks the spatial ones and the default; each marked one works as
# --gradcam-layer; a wrong name is refused before any output with the
# candidates; the JSON records the layer used, also when defaulted.
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_gradcam_layer
model=$SRC/models/fashion_cnn.onnx
img=$SRC/data/fashion/0_Ankle_boot.png
"$NM_BIN" info --tensors "$model" > "$T/info"
check "info --tensors (exit $?)" [ $? = 0 ]
check "... 8 tensors listed" grep -q '^tensors     8 ' "$T/info"
check "... with shapes" grep -q '^    logits \[1,10\]$' "$T/info"
check "... 5 marked spatial" [ "$(grep -c '^  \* ' "$T/info")" = 5 ]
default=$(sed -n "s/^  \* \(.*\) \[.*(Grad-CAM's default)$/\1/p" "$T/info")
check "... one default ($default)" [ -n "$default" ]
grep '^  \* ' "$T/info" | sed 's/^  \* \([^ ]*\) .*/\1/' > "$T/layers"
i=0
while read -r layer; do
  i=$((i + 1))
  "$NM_BIN" explain --model "$model" --method gradcam --gradcam-layer "$layer" --quiet --out "$T/l$i" "$img" 2> "$T/err"
  check "--gradcam-layer $layer works ($(head -c 200 "$T/err"))" grep -q "\"gradcam_layer\": \"$layer\"" "$T/l$i/0_Ankle_boot.json"
done < "$T/layers"
"$NM_BIN" explain --model "$model" --method gradcam --quiet --out "$T/d" "$img"
check "default: the JSON records the layer used" grep -q "\"gradcam_layer\": \"$default\"" "$T/d/0_Ankle_boot.json"
for cmd in explain eval; do
  if [ $cmd = explain ]; then m="--method gradcam"; else m="--methods gradient,gradcam"; fi
  # shellcheck disable=SC2086
  "$NM_BIN" $cmd --model "$model" $m --gradcam-layer nope --out "$T/w$cmd" "$img" 2> "$T/err"
  check "$cmd: a wrong layer fails (exit $?)" [ $? = 1 ]
  check "$cmd: ... one line listing the candidates, the default first" sh -c "[ \$(wc -l < '$T/err') = 1 ] && grep -q \"layer 'nope' is not a spatial tensor of the model; its 5 spatial tensors, last first: '$default', \" '$T/err'"
  check "$cmd: ... before any output" test ! -e "$T/w$cmd"
done
nm_check_done
