#!/bin/sh
# The command line explains with the library's defaults: the options
# `neuromask explain` records in its JSON, with no option given, equal
# nm_saliency_defaults (printed by print_saliency_defaults) for NeuroMask and
# for the methods with parameters. Usage: test_cli_defaults.sh PRINT_DEFAULTS
NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
SRC=${NM_SOURCE_DIR:?}
PRINT=${1:?the print_saliency_defaults executable}
T=$(mktemp -d "${TMPDIR:-/tmp}/nm_defaults.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
img=$SRC/data/fashion/0_Ankle_boot.png
"$PRINT" 28 28 > "$T/lib.json" || exit 1
fail=0
for m in neuromask integrated-gradients smoothgrad occlusion rise meaningful-perturbation; do
  "$NM_BIN" explain --model "$SRC/models/fashion_cnn.onnx" --method "$m" --threads 1 --quiet --out "$T/$m" "$img" \
    || { echo "FAIL: explain --method $m"; fail=1; continue; }
  /usr/bin/python3 - "$T/lib.json" "$T/$m/0_Ankle_boot.json" "$m" <<'PY' || fail=1
import json, sys
lib = json.load(open(sys.argv[1]))
lib = lib["neuromask"] if sys.argv[3] == "neuromask" else lib["methods"]
cli = json.load(open(sys.argv[2]))["options"]
shared = [k for k in cli if k in lib]
bad = [(k, cli[k], lib[k]) for k in shared if cli[k] != lib[k]]
assert len(shared) >= 3, shared
if bad:
    print(f"FAIL: {sys.argv[3]}: the CLI's default differs from nm_saliency_defaults (key, cli, library): {bad}")
    sys.exit(1)
print(f"ok: {sys.argv[3]}: {len(shared)} options as nm_saliency_defaults")
PY
done
exit $fail
