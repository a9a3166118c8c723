#!/bin/sh
# Bad inputs to the neuromask CLI, table-driven. Each row must give a non-zero
# exit code (1 for bad input, 2 for usage), exactly one line on stderr naming
# the file (or the option), no crash, no core dump and no file left behind.
# The fixtures are generated here (python3-onnx, PIL) in a temporary folder.
# NM_BAD_INPUT_TABLE=FILE also writes the rows as a Markdown table (the source
# of the README's bad-input table).
. "$(cd "$(dirname "$0")" && pwd)/cli_test_setup.sh"
# Fixtures and runs in $T/w; the test's own bookkeeping files in $T.
nm_cli_test_setup "onnx, PIL" nm_bad_input

"$PY" - <<'EOF' || { echo "FAIL: could not generate the fixtures"; exit 1; }
import io, os, random
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

def model(nodes, inputs, outputs, inits=(), name="m.onnx", opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    open(name, "wb").write(m.SerializeToString())

def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

rng = np.random.default_rng(0)
W = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W")
G = numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "G")
tiny = [helper.make_node("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "G"], ["logits"], transB=1)]
model(tiny, [vi("input", [1, 3, 8, 8])], [vi("logits", [1, 10])], [W, G], "tiny.onnx")
b = open("tiny.onnx", "rb").read()
open("truncated.onnx", "wb").write(b[: len(b) // 2])
open("empty.onnx", "wb").write(b"")
open("random.onnx", "wb").write(bytes(random.Random(1).randrange(256) for _ in range(4096)))
open("tensor.pb", "wb").write(numpy_helper.from_array(np.ones((2, 3), np.float32), "t").SerializeToString())
model([helper.make_node("Det", ["input"], ["logits"])], [vi("input", [1, 3, 8, 8])],
      [vi("logits", [1, 3])], name="unsupported_op.onnx")
ext = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3])
ext.data_location = TensorProto.EXTERNAL
ext.external_data.add(key="location", value="weights.bin")
model(tiny, [vi("input", [1, 3, 8, 8])], [vi("logits", [1, 10])], [ext, G], "external_data.onnx")
model(tiny, [vi("input", [1, 3, 8, 8])], [vi("logits", [1, 10])], [G], "missing_init.onnx")
model([helper.make_node("Relu", ["input"], ["logits"])], [vi("input", [1, 10])],
      [vi("logits", [1, 10])], name="input_2d.onnx")
model([helper.make_node("Relu", ["input"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
       helper.make_node("Flatten", ["p"], ["logits"])],
      [vi("input", [1, 3, 100000, 100000])], [vi("logits", [1, 3])], name="absurd_dims.onnx")

px = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
Image.fromarray(px).save("ok.png")
big = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
buf = io.BytesIO(); Image.fromarray(big).save(buf, "PNG"); p = buf.getvalue()
open("truncated.png", "wb").write(p[: len(p) // 2])
buf = io.BytesIO(); Image.fromarray(big).save(buf, "JPEG", quality=90); j = buf.getvalue()
open("truncated.jpg", "wb").write(j[: len(j) // 2])
open("text.png", "wb").write(b"this is not an image\n")
Image.fromarray(np.zeros((8, 8, 4), np.uint8), "CMYK").save("cmyk.jpg")
broken = bytearray(j)
broken[len(j) // 3: len(j) // 3 + 64] = bytes(64)   # zeros inside the entropy-coded data
open("corrupt.jpg", "wb").write(bytes(broken[:200]) + b"\xff\xd9")
# PNG signature + IHDR declaring 0x0 (hand-made: encoders refuse to write it)
ihdr = b"\x00\x00\x00\x0dIHDR" + b"\x00" * 8 + b"\x08\x02\x00\x00\x00" + b"\x00" * 4
open("zero.png", "wb").write(b"\x89PNG\r\n\x1a\n" + ihdr)
ihdr = b"\x00\x00\x00\x0dIHDR" + (100000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00" + b"\x00" * 4
open("huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + ihdr)
open("labels3.txt", "w").write("a\nb\nc\n")
os.mkdir("empty_dir")
EOF

pass=0
fail=0
TABLE=${NM_BAD_INPUT_TABLE:-}
if [ -n "$TABLE" ]; then
  printf '| input | command | stderr | exit |\n|---|---|---|---|\n' > "$TABLE"
fi
ls -A > "$T/before"

# row DESCRIPTION WANT_EXIT WANT_TEXT ARGS...: run neuromask ARGS in $T.
row() {
  desc=$1 want=$2 text=$3
  shift 3
  "$NM_BIN" "$@" > "$T/stdout" 2> "$T/stderr"
  rc=$?
  lines=$(wc -l < "$T/stderr")
  ls -A > "$T/after"
  why=""
  [ "$rc" -eq "$want" ] || why="$why exit $rc (want $want);"
  [ "$lines" -eq 1 ] || why="$why $lines stderr lines;"
  [ "$rc" -lt 128 ] || why="$why killed by a signal;"
  grep -q -F -- "$text" "$T/stderr" || why="$why stderr does not name '$text';"
  grep -q '^neuromask' "$T/stderr" || why="$why stderr not prefixed 'neuromask';"
  [ -s "$T/stdout" ] && why="$why output on stdout;"
  ls core* > /dev/null 2>&1 && why="$why core dump;"
  cmp -s "$T/before" "$T/after" || why="$why files left: $(diff "$T/before" "$T/after" | grep '^>' | tr '\n' ' ');"
  if [ -z "$why" ]; then
    pass=$((pass + 1))
    echo "ok:   $desc: $(cat "$T/stderr")"
  else
    fail=$((fail + 1))
    echo "FAIL: $desc:$why"
    sed 's/^/      stderr: /' "$T/stderr"
  fi
  if [ -n "$TABLE" ]; then
    msg=$(head -n 1 "$T/stderr" | sed 's/|/\\|/g')
    printf '| %s | `neuromask %s` | `%s` | %s |\n' "$desc" "$*" "$msg" "$rc" >> "$TABLE"
  fi
  rm -f core*
}

C="classify --preprocess cifar"
row "missing model file"          1 nothere.onnx         $C --model nothere.onnx ok.png
row "empty model file"            1 empty.onnx           $C --model empty.onnx ok.png
row "truncated ONNX"              1 truncated.onnx       $C --model truncated.onnx ok.png
row "random bytes as model"       1 random.onnx          $C --model random.onnx ok.png
row "TensorProto, not a model"    1 tensor.pb            $C --model tensor.pb ok.png
row "unsupported operator (Det)"  1 unsupported_op.onnx  $C --model unsupported_op.onnx ok.png
row "external-data initializer"   1 external_data.onnx   $C --model external_data.onnx ok.png
row "missing initializer"         1 missing_init.onnx    $C --model missing_init.onnx ok.png
row "input not 4-D"               1 input_2d.onnx        $C --model input_2d.onnx ok.png
row "absurd input dimensions"     1 absurd_dims.onnx     $C --model absurd_dims.onnx ok.png
row "directory as model"          1 empty_dir            $C --model empty_dir ok.png
row "info on a truncated ONNX"    1 truncated.onnx       info truncated.onnx
row "image that is not an image"  1 text.png             $C --model tiny.onnx text.png
row "truncated PNG"               1 truncated.png        $C --model tiny.onnx truncated.png
row "truncated JPEG"              1 truncated.jpg        $C --model tiny.onnx truncated.jpg
row "0x0 PNG"                     1 zero.png             $C --model tiny.onnx zero.png
row "CMYK JPEG"                   1 cmyk.jpg             $C --model tiny.onnx cmyk.jpg
row "JPEG cut short, EOI added"   1 corrupt.jpg          $C --model tiny.onnx corrupt.jpg
row "PNG declaring 100000x100000" 1 huge.png             $C --model tiny.onnx huge.png
row "missing image"               1 nothere.png          $C --model tiny.onnx nothere.png
row "directory without images"    1 empty_dir            $C --model tiny.onnx empty_dir
row "labels count mismatch"       1 labels3.txt          $C --model tiny.onnx --class-names labels3.txt ok.png
row "missing labels file"         1 nothere.txt          $C --model tiny.onnx --class-names nothere.txt ok.png
row "--labels (eval's CSV) in classify" 2 "--class-names" $C --model tiny.onnx --labels names.txt ok.png
row "unknown flag"                2 "'--foo'"            $C --model tiny.onnx --foo ok.png
row "flag without its value"      2 "'--top'"            $C --model tiny.onnx ok.png --top
row "bad flag value"              2 "'--top'"            $C --model tiny.onnx --top 0 ok.png
row "unknown recipe"              2 "'imagenet'"         classify --preprocess imagenet --model tiny.onnx ok.png
row "no preprocessing"            2 "--preprocess"       classify --model tiny.onnx ok.png
row "no model"                    2 "--model"            classify ok.png
row "unknown command"             2 "'frobnicate'"       frobnicate

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
