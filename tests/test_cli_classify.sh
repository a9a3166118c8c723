#!/bin/sh
# neuromask classify / info end to end on the shared CIFAR-10 ResNet-20 and
# its 500 JPEG test images: accuracy, output formats, batching, labels and
# preprocessing from the model's metadata. Needs NEUROMASK_SHARED.
NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
PY=/usr/bin/python3
if [ -z "$NEUROMASK_SHARED" ]; then
  echo "NEUROMASK_SHARED is not set: skipped"
  exit 77
fi
MODEL=$NEUROMASK_SHARED/models/cifar10_resnet20.onnx
IMAGES=$NEUROMASK_SHARED/images/cifar10_test_jpg
for f in "$MODEL" "$IMAGES/labels.csv"; do
  [ -e "$f" ] || { echo "FAIL: NEUROMASK_SHARED is set but $f is missing"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/nm_classify.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM

pass=0
fail=0
check() {   # check DESCRIPTION COMMAND...: the command must succeed
  desc=$1
  shift
  if "$@"; then pass=$((pass + 1)); echo "ok:   $desc"; else fail=$((fail + 1)); echo "FAIL: $desc"; fi
}

# 1. accuracy over the 500 images, JSON lines
"$NM_BIN" classify --model "$MODEL" --preprocess cifar --top 1 --json "$IMAGES" > "$T/all.json" 2> "$T/err"
check "classify a directory exits 0" test $? -eq 0 -a ! -s "$T/err"
accuracy() {
  "$PY" - "$1" "$IMAGES/labels.csv" "$2" <<'EOF'
import csv, json, os, sys
labels = {r["file"]: int(r["label"]) for r in csv.DictReader(open(sys.argv[2]))}
rows = [json.loads(line) for line in open(sys.argv[1])]
right = sum(r["top"][0]["class"] == labels[os.path.basename(r["image"])] for r in rows)
print("%d images, top-1 accuracy %.1f %%" % (len(rows), 100.0 * right / max(len(rows), 1)))
sys.exit(0 if len(rows) == 500 and right / 500 >= float(sys.argv[3]) else 1)
EOF
}
# 79.8 % on these 500 (the README's 81.0 % is over all 10,000 test images)
check "top-1 accuracy of ResNet-20 >= 78 %" accuracy "$T/all.json" 0.78

# 2. the same images in batches of 7 and one at a time agree with batches of 16
ls "$IMAGES"/*.jpg | head -n 20 > "$T/list"
"$NM_BIN" classify --model "$MODEL" --preprocess cifar --top 1 --json $(cat "$T/list") > "$T/b16" &&
  "$NM_BIN" classify --model "$MODEL" --preprocess cifar --top 1 --json --batch 7 $(cat "$T/list") > "$T/b7" &&
  "$NM_BIN" classify --model "$MODEL" --preprocess cifar --top 1 --json --batch 1 $(head -n 3 "$T/list") > "$T/b1"
check "classify at batch 16, 7 and 1" test $? -eq 0
same_top() {
  "$PY" - "$T/b16" "$T/b7" "$T/b1" <<'EOF'
import json, sys
a, b, c = ([json.loads(l)["top"][0] for l in open(p)] for p in sys.argv[1:])
ok = len(a) == len(b) == 20 and len(c) == 3
ok = ok and all(x["class"] == y["class"] and abs(x["prob"] - y["prob"]) < 1e-4 for x, y in zip(a, b))
ok = ok and all(x["class"] == y["class"] and abs(x["prob"] - y["prob"]) < 1e-4 for x, y in zip(a, c))
sys.exit(0 if ok else 1)
EOF
}
check "batch size does not change the results" same_top

# 3. text output with a labels file
printf 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n' > "$T/labels.txt"
"$NM_BIN" classify --model "$MODEL" --preprocess cifar --class-names "$T/labels.txt" --top 2 \
  "$IMAGES/airplane_0001.jpg" > "$T/text"
check "text output 'PATH: label (p=...), label (p=...)'" \
  grep -q -E "^$IMAGES/airplane_0001.jpg: airplane \(p=0\.[0-9]{3}\), [a-z]+ \(p=[01]\.[0-9]{3}\)$" "$T/text"

# 4. preprocessing and labels from the model's metadata; flags override them
"$PY" - "$MODEL" "$T/meta.onnx" "$T/meta_bad.onnx" <<'EOF'
import sys
import onnx
m = onnx.load(sys.argv[1])
for k, v in (("neuromask.preprocess", "scale=1,mean=0.485:0.456:0.406,std=0.229:0.224:0.225"),
             ("neuromask.labels", "airplane|automobile|bird|cat|deer|dog|frog|horse|ship|truck")):
    p = m.metadata_props.add(); p.key, p.value = k, v
onnx.save(m, sys.argv[2])
m.metadata_props[0].value = "resize=banana"
onnx.save(m, sys.argv[3])
EOF
"$NM_BIN" classify --model "$T/meta.onnx" --top 1 "$IMAGES/airplane_0001.jpg" > "$T/meta.txt"
check "metadata preprocessing and labels" grep -q ": airplane (p=" "$T/meta.txt"
"$NM_BIN" classify --model "$T/meta.onnx" --preprocess cifar --top 1 --json "$IMAGES/airplane_0001.jpg" > "$T/meta.json"
"$NM_BIN" classify --model "$MODEL" --preprocess cifar --top 1 --json "$IMAGES/airplane_0001.jpg" > "$T/plain.json"
check "--preprocess over metadata gives the same probabilities" \
  test "$(sed 's/"label": "airplane"/"label": null/' "$T/meta.json")" = "$(cat "$T/plain.json")"
"$NM_BIN" classify --model "$T/meta.onnx" --top 1 --mean 0,0,0 --std 1 --json "$IMAGES/airplane_0001.jpg" > "$T/flags.json"
check "explicit --mean/--std override the metadata" test "$(cat "$T/flags.json")" != "$(cat "$T/meta.json")"
"$NM_BIN" classify --model "$T/meta_bad.onnx" "$IMAGES/airplane_0001.jpg" > /dev/null 2> "$T/bad_meta"
check "bad metadata spec reported" grep -q "meta_bad.onnx: metadata neuromask.preprocess" "$T/bad_meta"

# 5. info, help, version
"$NM_BIN" info "$MODEL" > "$T/info"
check "info: input, output, ops, parameters" \
  sh -c "grep -q '^input  *input \[1,3,32,32\]' '$T/info' && grep -q '^output  *logits \[1,10\]' '$T/info' &&
         grep -q 'Conv 21' '$T/info' && grep -q '^parameters' '$T/info' && grep -q '^FLOPs' '$T/info'"
"$NM_BIN" info --batch 4 "$MODEL" > "$T/info4"
check "info --batch 4" grep -q 'input \[4,3,32,32\]' "$T/info4"
check "neuromask --help" sh -c "'$NM_BIN' --help | grep -q classify"
check "classify --help" sh -c "'$NM_BIN' classify --help | grep -q -- --preprocess"
check "info -h" sh -c "'$NM_BIN' info -h | grep -q -- --batch"
check "--version" sh -c "'$NM_BIN' --version | grep -q '^neuromask [0-9]'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
