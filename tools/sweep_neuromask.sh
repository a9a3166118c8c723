#!/bin/sh
# Measure NeuroMask settings with `neuromask eval`, one run at a time, niced.
#   tools/sweep_neuromask.sh OUTROOT SETTINGS_FILE [extra eval flags...]
# SETTINGS_FILE: one setting per line, "NAME PRESET SPEC" (SPEC: nm_neuromask_parse's
# key=value,... or '-' for none); '#' lines are skipped. Each setting's run goes to
# OUTROOT/NAME (kept if it already has results.csv: delete it to rerun); the table
# of all of them is printed by tools/sweep_neuromask_table.py OUTROOT.
# Environment: NM_BIN (neuromask binary), NM_MODEL, NM_IMAGES, NM_LIMIT (20).
set -eu
root=$1 settings=$2
shift 2
bin=${NM_BIN:-build/neuromask}
model=${NM_MODEL:-../shared/models/cifar10_resnet20.onnx}
images=${NM_IMAGES:-../shared/images/cifar10_test_jpg}
limit=${NM_LIMIT-20}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$root"
grep -v '^[[:space:]]*#' "$settings" | while read -r name preset spec; do
    [ -n "$name" ] || continue
    [ -f "$root/$name/results.csv" ] && continue
    nmflag=""
    [ "$spec" = "-" ] || nmflag="--nm=$spec"
    echo "== $name: preset $preset ${spec}" >&2
    nice -n 10 "$bin" eval --model "$model" --preprocess cifar --methods neuromask --images "$images" \
        --labels "$images/labels.csv" ${limit:+--limit "$limit" --spread} --threads 1 --quiet --force \
        --preset "$preset" ${nmflag:+"$nmflag"} --out "$root/$name.tmp" "$@"
    rm -rf "$root/$name"
    mv "$root/$name.tmp" "$root/$name"
    printf '%s\t%s\t%s\n' "$name" "$preset" "$spec" > "$root/$name/setting.txt"
done
