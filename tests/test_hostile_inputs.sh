#!/bin/sh
# Hostile models and images (tools/make_hostile_inputs.py), run through
# `neuromask explain` (and `classify` where it says so). An input that must be
# refused gives the exit code wanted, exactly one line on stderr - the line
# given here, naming the file and the problem -, nothing on stdout, no crash
# and no file written. A valid but unusual input is explained: exit 0, nothing
# on stderr, all five outputs written with a mask of the image's own size.
# Registered with label asan (tests/hostile.cmake): run under ASan + UBSan too.
# NM_HOSTILE_TABLE=FILE also writes the cases as the README's Markdown table.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/cli_test_setup.sh"
nm_cli_test_setup "onnx, PIL, numpy" nm_hostile
"$PY" "$HERE/../tools/make_hostile_inputs.py" . || { echo "FAIL: could not generate the inputs"; exit 1; }
touch "$T/stamp"

pass=0
fail=0
TABLE=${NM_HOSTILE_TABLE:-}
if [ -n "$TABLE" ]; then
  printf '| case | input | what neuromask does |\n|---|---|---|\n' > "$TABLE"
fi
EX="explain --preprocess cifar --steps 2 --quiet --out out"

# Files written since the inputs were generated (anywhere under $T/w).
new_files() { find . -type f -newer "$T/stamp" | sort | tr '\n' ' '; }

result() {  # DESC INPUT WHY WHAT
  if [ -z "$3" ]; then
    pass=$((pass + 1))
    echo "ok:   $1: $4"
  else
    fail=$((fail + 1))
    echo "FAIL: $1:$3"
    sed 's/^/      stderr: /' "$T/stderr"
  fi
  if [ -n "$TABLE" ]; then
    printf '| %s | %s | %s |\n' "$1" "$2" "$(printf '%s' "$4" | sed 's/|/\\|/g')" >> "$TABLE"
  fi
  rm -rf out core*
}

# run ARGS...: neuromask ARGS in $T/w; sets rc.
run() {
  "$NM_BIN" "$@" > "$T/stdout" 2> "$T/stderr"
  rc=$?
}

# Common checks of a refusal: exit code, one line on stderr, no output, no files.
refusal_why() {  # WANT_EXIT
  why=""
  [ "$rc" -eq "$1" ] || why="$why exit $rc (want $1);"
  [ "$rc" -lt 128 ] || why="$why killed by a signal;"
  [ "$(wc -l < "$T/stderr")" -eq 1 ] || why="$why $(wc -l < "$T/stderr") stderr lines;"
  [ -s "$T/stdout" ] && why="$why output on stdout;"
  files=$(new_files)
  [ -z "$files" ] || why="$why files written: $files;"
}

# refuse DESC INPUT WANT_EXIT WANT_STDERR ARGS...
refuse() {
  desc=$1 input=$2 want=$3 line=$4
  shift 4
  run "$@"
  refusal_why "$want"
  [ "$(cat "$T/stderr")" = "$line" ] || why="$why stderr is not '$line';"
  result "$desc" "$input" "$why" "exit $rc, \`$(head -n 1 "$T/stderr")\`"
}

# Outputs of an explained image: all five, the mask PNG at the image's size,
# finite probabilities in the JSON.
cat > "$T/check_outputs.py" <<'EOF'
import json, math, struct, sys
from PIL import Image
import numpy as np
img, base = sys.argv[1], sys.argv[2]
for s in ("mask.png", "mask.npy", "overlay.png", "panel.png", "json"):
    with open(f"out/{base}.{s}", "rb") as f:
        assert f.read(1), s
with open(img, "rb") as f:
    head = f.read(24)
# PNG: the IHDR's size (PIL refuses some of these files: bad CRCs, bombs).
size = struct.unpack(">II", head[16:24]) if head[:4] == b"\x89PNG" else Image.open(img).size
assert Image.open(f"out/{base}.mask.png").size == size, "mask size"
j = json.load(open(f"out/{base}.json"))
assert math.isfinite(j["prob_before"]) and 0 <= j["prob_before"] <= 1, "prob_before"
m = np.load(f"out/{base}.mask.npy")
assert np.isfinite(m).all(), "mask not finite"
print(f"{size[0]}x{size[1]}")
EOF

# accept DESC INPUT IMAGE ARGS...: explain IMAGE (the last argument) with ARGS.
accept() {
  desc=$1 input=$2 img=$3
  shift 3
  run "$@" "$img"
  why=""
  [ "$rc" -eq 0 ] || why="$why exit $rc;"
  [ -s "$T/stderr" ] && why="$why stderr not empty;"
  base=$(basename "$img"); base=${base%.*}
  size=$("$PY" "$T/check_outputs.py" "$img" "$base" 2>&1) || why="$why outputs: $size;"
  result "$desc" "$input" "$why" "exit 0, explained: 5 outputs, mask ${size}"
}

# same_as_8bit DESC INPUT IMAGE: classify IMAGE and ref8.png (the same pixels,
# 8-bit, not interlaced): the same classes and probabilities.
same_as_8bit() {
  desc=$1 input=$2 img=$3
  run classify --preprocess cifar --model tiny.onnx --top 10 "$img"
  a=$(sed 's/^[^:]*://' "$T/stdout")
  why=""
  [ "$rc" -eq 0 ] && [ ! -s "$T/stderr" ] || why="$why exit $rc;"
  run classify --preprocess cifar --model tiny.onnx --top 10 ref8.png
  b=$(sed 's/^[^:]*://' "$T/stdout")
  [ -n "$a" ] && [ "$a" = "$b" ] || why="$why classify differs from the 8-bit image ('$a' vs '$b');"
  result "$desc" "$input" "$why" "exit 0, classify prints what it prints for the same pixels in 8 bits"
}

# each DESC INPUT DIR: every model in DIR is refused (exit 1, one line naming
# the file) or, when still valid, explained; nothing crashes.
each() {
  desc=$1 input=$2 dir=$3
  why="" refused=0 ran=0
  for m in "$dir"/*.onnx; do
    run $EX --model "$m" ok.png
    if [ "$rc" -eq 0 ]; then
      ran=$((ran + 1))
      [ -s "$T/stderr" ] && why="$why $m: stderr on success;"
      [ -s "out/ok.json" ] || why="$why $m: no outputs;"
    else
      refused=$((refused + 1))
      w=$(refusal_why 1; echo "$why")
      [ -z "$w" ] || why="$why $m:$w"
      grep -q "^neuromask: $m: " "$T/stderr" || why="$why $m: stderr does not name it: $(cat "$T/stderr");"
    fi
    rm -rf out core*
  done
  result "$desc" "$input" "$why" "$refused refused (exit 1, one line naming the file), $ran explained"
}

M="$EX --model"
I="$EX --model tiny.onnx"

# ---------------------------------------------------------------- models
refuse "model cut by one byte" "a valid model without its last byte" 1 \
  "neuromask: cut1.onnx: not an ONNX model (protobuf parse failed)" $M cut1.onnx ok.png
each "model prefixes" "prefixes of a valid model: 0 bytes, then every 1/24 of its size" prefixes
each "bit-flipped models" "64 copies of a valid model, one random bit flipped in each" flips
refuse "opset 1" "ai.onnx opset 1" 1 \
  "neuromask: opset1.onnx: ai.onnx opset 1 not supported (7..17)" $M opset1.onnx ok.png
refuse "opset 99" "ai.onnx opset 99" 1 \
  "neuromask: opset99.onnx: ai.onnx opset 99 not supported (7..17)" $M opset99.onnx ok.png
refuse "huge dims" "weight of dims [2^40,2^40,3,3]" 1 \
  "neuromask: huge_dims.onnx: tensor 'W': element count overflows" $M huge_dims.onnx ok.png
refuse "dims without the data" "weight of dims [100000,100000,3,3] with 108 floats of data" 1 \
  "neuromask: dims_without_data.onnx: tensor 'W': raw_data has 432 bytes, dims need 90000000000 x 4" \
  $M dims_without_data.onnx ok.png
refuse "negative weight dim" "weight of dims [-4,3,3,3]" 1 \
  "neuromask: negative_dim.onnx: tensor 'W' has negative dimension -4" $M negative_dim.onnx ok.png
refuse "negative input dim" "input of shape [1,3,-8,8]" 1 \
  "neuromask: negative_input_dim.onnx: graph input 'input' has negative dimension -8" $M negative_input_dim.onnx ok.png
refuse "zero input dim" "input of shape [1,3,0,8]" 1 \
  "neuromask: zero_input_dim.onnx: input 'input' has an empty dimension [1,3,0,8]" $M zero_input_dim.onnx ok.png
refuse "raw_data one byte short" "weight [4,3,3,3] with 431 bytes of raw_data" 1 \
  "neuromask: raw_size_mismatch.onnx: tensor 'W': raw_data has 431 bytes, dims need 108 x 4" \
  $M raw_size_mismatch.onnx ok.png
refuse "float_data one value short" "weight [4,3,3,3] with 107 float_data values" 1 \
  "neuromask: float_count_mismatch.onnx: tensor 'W' has 107 values, dims need 108" $M float_count_mismatch.onnx ok.png
refuse "rank 9" "an initializer of rank 9" 1 \
  "neuromask: rank9.onnx: tensor 'W' has rank 9 (at most 8 supported)" $M rank9.onnx ok.png
refuse "string weights" "a string initializer" 1 \
  "neuromask: string_tensor.onnx: tensor 'W' has data type string (8), not supported" $M string_tensor.onnx ok.png
refuse "zero-size weights" "Conv weight [0,3,3,3], Gemm weight [10,0]" 1 \
  "neuromask: zero_size.onnx: tensor 'r' of shape [1,0,8,8] has no elements" $M zero_size.onnx ok.png
refuse "cyclic graph" "Add reads the output of the Relu that reads it" 1 \
  "neuromask: cycle.onnx: graph has a cycle (node 'add')" $M cycle.onnx ok.png
refuse "duplicate tensor name" "two nodes write tensor 'r'" 1 \
  "neuromask: duplicate_output.onnx: tensor 'r' is produced by node 'relu' and by node 'sigmoid'" \
  $M duplicate_output.onnx ok.png
refuse "duplicate initializer" "two initializers named 'W'" 1 \
  "neuromask: duplicate_initializer.onnx: initializer 'W' defined twice" $M duplicate_initializer.onnx ok.png
refuse "node writes a weight" "a Relu whose output is initializer 'G'" 1 \
  "neuromask: writes_initializer.onnx: node 'relu' writes initializer 'G'" $M writes_initializer.onnx ok.png
refuse "undefined tensor read" "Add reads 'ghost', which nothing defines" 1 \
  "neuromask: undefined_input.onnx: node 'add' reads undefined tensor 'ghost'" $M undefined_input.onnx ok.png
refuse "undefined graph output" "the graph output names no tensor" 1 \
  "neuromask: undefined_output.onnx: graph output 'nothing' is not produced by any node" $M undefined_output.onnx ok.png
refuse "no nodes" "a graph without nodes (output = input)" 1 \
  "neuromask: no_nodes.onnx: ONNX graph has no nodes" $M no_nodes.onnx ok.png
refuse "NaN weight" "a NaN in the Conv weight" 1 \
  "neuromask: nan_weight.onnx: initializer 'W' has NaN at element 46" $M nan_weight.onnx ok.png
refuse "Inf weight" "an Inf in the Gemm weight" 1 \
  "neuromask: inf_weight.onnx: initializer 'G' has Inf at element 14" $M inf_weight.onnx ok.png
refuse "NaN constant" "a NaN in a Constant node's value" 1 \
  "neuromask: nan_constant.onnx: Constant node 'const': tensor 'kv' has NaN at element 1" $M nan_constant.onnx ok.png
refuse "Conv kernel 1e9" "Conv kernel_shape [1e9,1e9] on a 3x3 weight" 1 \
  "neuromask: conv_kernel_1e9.onnx: Conv node 'conv': kernel_shape disagrees with W [4,3,3,3]" $M conv_kernel_1e9.onnx ok.png
refuse "MaxPool kernel 1e9" "MaxPool kernel_shape [1e9,1e9] on 8x8" 1 \
  "neuromask: maxpool_kernel_1e9.onnx: MaxPool node 'pool': kernel larger than padded input" $M maxpool_kernel_1e9.onnx ok.png
refuse "window extent overflows" "MaxPool kernel_shape 2^32 and dilation 2^32" 1 \
  "neuromask: maxpool_dilation_overflow.onnx: MaxPool node 'pool': kernel_shape value 4294967296 out of range" $M maxpool_dilation_overflow.onnx ok.png
refuse "stride 0" "Conv strides [0,0]" 1 \
  "neuromask: stride0.onnx: Conv node 'conv': strides value 0 out of range" $M stride0.onnx ok.png
refuse "negative pads" "Conv pads [-1,-1,-1,-1]" 1 \
  "neuromask: pads_negative.onnx: Conv node 'conv': pads value -1 out of range" $M pads_negative.onnx ok.png
refuse "pads 1e9" "Conv pads of 1e9 on every side" 1 \
  "neuromask: pads_1e9.onnx: tensor 'c' of shape [1,4,2000000006,2000000006] would need more than 2^63 elements (limit 1073741824)" $M pads_1e9.onnx ok.png
refuse "group 2 of 3 channels" "Conv group 2 on a 3-channel input" 1 \
  "neuromask: group_2_of_3.onnx: Conv node 'conv': X [1,3,8,8] and W [4,1,3,3] (group 2) disagree" $M group_2_of_3.onnx ok.png
refuse "group 3 of 4 outputs" "Conv group 3 with 4 output channels" 1 \
  "neuromask: group_3_of_4.onnx: Conv node 'conv': X [1,3,8,8] and W [4,1,3,3] (group 3) disagree" $M group_3_of_4.onnx ok.png
refuse "group 2^62" "Conv group 2^62 (group x channels overflows)" 1 \
  "neuromask: group_huge.onnx: Conv node 'conv': X [1,3,8,8] and W [4,3,3,3] (group 4611686018427387904) disagree" $M group_huge.onnx ok.png
refuse "Pad overflow" "Pad adding 2^62 on both sides of an axis" 1 \
  "neuromask: pad_overflow.onnx: Pad node 'pad': pads 4611686018427387904 and 4611686018427387904 of axis 2 are above the limit of 1073741824" $M pad_overflow.onnx ok.png
refuse "Pad 1e9" "Pad adding 1e9 columns" 1 \
  "neuromask: pad_1e9.onnx: Pad node 'pad': output [1,3,8,1000000008] would be above the limit of 1073741824 elements" $M pad_1e9.onnx ok.png
refuse "Resize scale 1e30" "Resize with scales [1,1,1e30,1e30]" 1 \
  "neuromask: resize_1e30.onnx: Resize node 'resize': scale 1e+30 makes axis 2 8e+30 long (limit 1073741824)" $M resize_1e30.onnx ok.png
refuse "Split sizes 2^62" "Split of 4 channels into 2^62 and 2^62 + 4 (the sum overflows)" 1 \
  "neuromask: split_2e62.onnx: Split node 'split': split size 4611686018427387904 is larger than the axis (4)" \
  $M split_2e62.onnx ok.png
refuse "MaxPool pads past the kernel" "MaxPool kernel 3 with pads 3 (windows wholly in padding)" 1 \
  "neuromask: maxpool_pads_past_kernel.onnx: MaxPool node 'pool': pads 3 and 3 are not smaller than the kernel (3)" \
  $M maxpool_pads_past_kernel.onnx ok.png
refuse "negative BatchNorm variance" "Conv + BatchNormalization with variance -1" 1 \
  "neuromask: bn_negative_variance.onnx: BatchNormalization node 'bn': variance -1 + epsilon 1e-05 of channel 0 is not positive" \
  $M bn_negative_variance.onnx ok.png
refuse "Upsample scale Inf" "Upsample (opset 7) with scales [1,1,inf,1]" 1 \
  "neuromask: upsample_inf.onnx: Upsample node 'upsample': scale inf makes axis 2 inf long (limit 1073741824)" \
  $M upsample_inf.onnx ok.png
refuse "impossible Reshape" "Reshape [1,4,8,8] to [1,4,7,9]" 1 \
  "neuromask: reshape_impossible.onnx: Reshape node 'reshape': cannot reshape [1,4,8,8] into [1,4,7,9]" $M reshape_impossible.onnx ok.png
refuse "Reshape with two -1" "Reshape to [1,4,-1,-1]" 1 \
  "neuromask: reshape_two_minus1.onnx: Reshape node 'reshape': more than one -1 in the shape" $M reshape_two_minus1.onnx ok.png
refuse "bad Transpose perm" "Transpose perm [0,1,1,3]" 1 \
  "neuromask: transpose_bad_perm.onnx: Transpose node 'transpose': perm is not a permutation" $M transpose_bad_perm.onnx ok.png
refuse "Softmax axis 99" "Softmax axis 99 on [1,10]" 1 \
  "neuromask: softmax_axis_99.onnx: Softmax node 'softmax': axis 99 out of range for rank 2" $M softmax_axis_99.onnx ok.png
refuse "Gather index 1000" "Gather index 1000 of 10 classes" 1 \
  "neuromask: gather_out_of_range.onnx: Gather node 'gather': index 1000 out of range for a dimension of 10" $M gather_out_of_range.onnx ok.png
refuse "two inputs" "a model reading two graph inputs" 1 \
  "neuromask: two_inputs.onnx: model has 2 inputs ('input', 'extra'); neuromask needs exactly one image input" \
  $M two_inputs.onnx ok.png
refuse "4-D output (explain)" "output [1,4,8,8], not [N, classes]" 1 \
  "neuromask: output_4d.onnx: output 'c' is not [N, classes]" $M output_4d.onnx ok.png
refuse "4-D output (classify)" "the same, to classify" 1 \
  "neuromask: output_4d.onnx: output 'c' is not [N, classes]" \
  classify --preprocess cifar --model output_4d.onnx ok.png
refuse "integer output" "output is the int64 Shape of a tensor" 1 \
  "neuromask: output_int.onnx: output 's' is not float" $M output_int.onnx ok.png
refuse "integer input" "input of type int64" 1 \
  "neuromask: input_int.onnx: input 'input' is non-float [1,3,8,8]; neuromask needs a float [N,C,H,W] image input" \
  $M input_int.onnx ok.png
refuse "4-channel input" "input [1,4,8,8]" 1 \
  "neuromask: input_4_channels.onnx: input 'input' is not an image batch [N,1|3,H,W]" $M input_4_channels.onnx ok.png
accept "10000 nodes deep" "Conv, a chain of 9996 Relu, the pooling head: 10000 nodes" ok.png $M chain_10000.onnx
refuse "20001 nodes" "a graph of 20001 nodes" 1 \
  "neuromask: nodes_20001.onnx: graph has 20001 nodes (limit 20000)" $M nodes_20001.onnx ok.png
refuse "0-byte model" "an empty file" 1 "neuromask: empty.onnx: empty file" $M empty.onnx ok.png
refuse "directory as model" "a directory named model_dir.onnx" 1 \
  "neuromask: model_dir.onnx: is a directory" $M model_dir.onnx ok.png
refuse "image as model" "a PNG given as the model" 1 \
  "neuromask: ok.png: not an ONNX model (protobuf parse failed)" $M ok.png ok.png

# ---------------------------------------------------------------- images
refuse "65535x65535 PNG" "PNG header of 65535x65535 (w*h*c overflows 32 bits)" 1 \
  "neuromask: png_65535.png: image of 65535x65535 pixels is above the limit (side 65535, 268435456 pixels)" \
  $I png_65535.png
refuse "65536x1 PNG" "PNG header of 65536x1" 1 \
  "neuromask: png_65536x1.png: image of 65536x1 pixels is above the limit (side 65535, 268435456 pixels)" \
  $I png_65536x1.png
refuse "40000x40000 PNG" "PNG header of 40000x40000 (w*h*c*4 overflows 32 bits)" 1 \
  "neuromask: png_40000x40000.png: image of 40000x40000 pixels is above the limit (side 65535, 268435456 pixels)" \
  $I png_40000x40000.png
refuse "65500x65500 JPEG" "a JPEG whose SOF says 65500x65500" 1 \
  "neuromask: jpeg_65500.jpg: image of 65500x65500 pixels is above the limit (side 65535, 268435456 pixels)" \
  $I jpeg_65500.jpg
refuse "bad IHDR CRC" "PNG whose IHDR CRC is wrong" 1 \
  "neuromask: crc_ihdr.png: bad PNG (IHDR: CRC error)" $I crc_ihdr.png
refuse "bad IDAT CRC" "PNG whose IDAT CRC is 0" 1 \
  "neuromask: crc_idat.png: bad PNG (IDAT: CRC error)" $I crc_idat.png
accept "bad tEXt CRC" "PNG with a tEXt chunk whose CRC is 0 (ancillary: skipped)" crc_text.png $I
accept "zTXt bomb" "PNG with a 64 KB zTXt inflating to 64 MB" ztxt_bomb.png $I
accept "iCCP bomb" "PNG with a 64 KB iCCP inflating to 64 MB" iccp_bomb.png $I
accept "9 MB tEXt" "PNG with a 9 MB tEXt chunk" text_9mb.png $I
refuse "chunk of 2 GB" "PNG declaring a 2^31-1 byte tEXt chunk in 149 bytes" 1 \
  "neuromask: chunk_2gb.png: truncated PNG" $I chunk_2gb.png
refuse "short IDAT" "PNG whose IDAT holds half the rows" 1 \
  "neuromask: short_idat.png: bad PNG (Not enough image data)" $I short_idat.png
refuse "palette without PLTE" "palette PNG without a PLTE chunk" 1 \
  "neuromask: no_plte.png: bad PNG (IDAT: Missing PLTE before IDAT)" $I no_plte.png
refuse "bit depth 3" "PNG IHDR with bit depth 3" 1 \
  "neuromask: bad_depth.png: bad PNG (Invalid IHDR data)" $I bad_depth.png
accept "16-bit interlaced RGB" "16-bit RGB PNG, Adam7, 11x13" rgb16_interlaced.png $I
same_as_8bit "16-bit interlaced RGB, values" "the same image to classify" rgb16_interlaced.png
accept "16-bit interlaced grey+alpha" "16-bit grey + alpha PNG, Adam7" ga16_interlaced.png $I
accept "interlaced palette with tRNS" "8-bit palette PNG with transparency, Adam7" palette_trns_interlaced.png $I
accept "1x1 PNG" "a 1x1 RGB PNG" one_pixel.png $I
accept "1x1 JPEG" "a 1x1 greyscale JPEG" one_pixel_gray.jpg $I
accept "progressive JPEG" "a progressive JPEG" progressive.jpg $I
refuse "progressive JPEG truncated" "the progressive JPEG cut at 60%" 1 \
  "neuromask: progressive_truncated.jpg: truncated JPEG" $I progressive_truncated.jpg
refuse "JPEG truncated in the scan" "a baseline JPEG cut at 70%, inside the scan" 1 \
  "neuromask: scan_truncated.jpg: truncated JPEG" $I scan_truncated.jpg
refuse "12-bit JPEG" "a JPEG with 12-bit samples (SOF1)" 1 \
  "neuromask: jpeg12.jpg: bad JPEG (Unsupported JPEG data precision 12)" $I jpeg12.jpg
refuse "CMYK JPEG" "a CMYK JPEG" 1 "neuromask: cmyk.jpg: CMYK JPEG images are not supported" $I cmyk.jpg
refuse "progressive CMYK JPEG" "a progressive CMYK JPEG" 1 \
  "neuromask: cmyk_progressive.jpg: CMYK JPEG images are not supported" $I cmyk_progressive.jpg
refuse "JPEG of height 0" "a JPEG whose SOF says height 0" 1 \
  "neuromask: jpeg_zero_height.jpg: bad JPEG (Empty JPEG image (DNL not supported))" $I jpeg_zero_height.jpg
refuse "0-byte image" "an empty .png file" 1 "neuromask: empty.png: empty file" $I empty.png
refuse "model as image" "an ONNX model named .png" 1 \
  "neuromask: model_as_image.png: not a PNG or JPEG image" $I model_as_image.png

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
