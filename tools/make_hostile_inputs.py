#!/usr/bin/python3
"""Write the hostile models and images of tests/test_hostile_inputs.sh.

Usage: tools/make_hostile_inputs.py OUTDIR

Models are built with python3-onnx (helper and TensorProto, which let us write
what the checker would refuse: cycles, duplicate names, bad sizes); images
with PIL and, where PIL cannot write them (16-bit RGB, Adam7 interlacing,
damaged chunks), with the small PNG writer below. Everything is deterministic.
"""
import io
import os
import random
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(OUT, exist_ok=True)
os.chdir(OUT)
rng = np.random.default_rng(0)


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ models

def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def model_bytes(nodes, inputs, outputs, inits=(), opset=13, ir=7):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m.SerializeToString()


def model(name, nodes, inputs, outputs, inits=(), opset=13):
    write(name, model_bytes(nodes, inputs, outputs, inits, opset))


def arr(a, name):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


W_np = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
G_np = rng.standard_normal((10, 4)).astype(np.float32)
W, G = arr(W_np, "W"), arr(G_np, "G")
IN = [vi("input", [1, 3, 8, 8])]
OUT10 = [vi("logits", [1, 10])]


def head(x="r"):
    """GlobalAveragePool, Flatten, Gemm: [1,4,H,W] -> logits [1,10]."""
    return [helper.make_node("GlobalAveragePool", [x], ["p"], name="gap"),
            helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
            helper.make_node("Gemm", ["f", "G"], ["logits"], transB=1, name="gemm")]


def conv(**attrs):
    attrs.setdefault("pads", [1, 1, 1, 1])
    return helper.make_node("Conv", ["input", "W"], ["c"], name="conv", **attrs)


def tiny_nodes(**conv_attrs):
    return [conv(**conv_attrs), helper.make_node("Relu", ["c"], ["r"], name="relu")] + head()


def tiny_with(name, inits=None, nodes=None, inputs=None, outputs=None, opset=13):
    model(name, nodes or tiny_nodes(), inputs or IN, outputs or OUT10,
          [W, G] if inits is None else inits, opset)


tiny_with("tiny.onnx")
tiny = open("tiny.onnx", "rb").read()

# Truncations and bit flips of a valid model.
write("cut1.onnx", tiny[:-1])
os.makedirs("prefixes")
for k in range(0, len(tiny), max(1, len(tiny) // 24)):
    write(f"prefixes/prefix{k:04d}.onnx", tiny[:k])
os.makedirs("flips")
r = random.Random(7)
for k in range(64):
    b = bytearray(tiny)
    pos = r.randrange(len(b))
    b[pos] ^= 1 << r.randrange(8)
    write(f"flips/flip{k:02d}.onnx", bytes(b))

# Opsets.
tiny_with("opset1.onnx", opset=1)
tiny_with("opset99.onnx", opset=99)

# Dimensions of initializers and inputs.
def raw_tensor(name, dims, raw, dtype=TensorProto.FLOAT):
    t = TensorProto(name=name, data_type=dtype, dims=dims)
    t.raw_data = raw
    return t

tiny_with("huge_dims.onnx", [raw_tensor("W", [1 << 40, 1 << 40, 3, 3], W_np.tobytes()), G])
tiny_with("dims_without_data.onnx", [raw_tensor("W", [100000, 100000, 3, 3], W_np.tobytes()), G])
tiny_with("negative_dim.onnx", [raw_tensor("W", [-4, 3, 3, 3], W_np.tobytes()), G])
tiny_with("negative_input_dim.onnx", inputs=[vi("input", [1, 3, -8, 8])])
tiny_with("zero_input_dim.onnx", inputs=[vi("input", [1, 3, 0, 8])])
tiny_with("raw_size_mismatch.onnx", [raw_tensor("W", [4, 3, 3, 3], W_np.tobytes()[:-1]), G])
short = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3])
short.float_data.extend(W_np.ravel()[:-1].tolist())
tiny_with("float_count_mismatch.onnx", [short, G])
tiny_with("rank9.onnx", [raw_tensor("W", [1] * 9, b"\0\0\0\0"), G],
          nodes=[helper.make_node("Relu", ["W"], ["w2"], name="relu_w")] + tiny_nodes())
tiny_with("string_tensor.onnx", [TensorProto(name="W", data_type=TensorProto.STRING, dims=[1],
                                             string_data=[b"x"]), G])
# Zero-size weights: 0 output channels, a [10,0] Gemm weight.
tiny_with("zero_size.onnx", [arr(np.zeros((0, 3, 3, 3)), "W"), arr(np.zeros((10, 0)), "G")])

# Graph structure.
tiny_with("cycle.onnx", nodes=[conv(), helper.make_node("Add", ["c", "r"], ["a"], name="add"),
                               helper.make_node("Relu", ["a"], ["r"], name="relu")] + head())
tiny_with("duplicate_output.onnx", nodes=[conv(), helper.make_node("Relu", ["c"], ["r"], name="relu"),
                                          helper.make_node("Sigmoid", ["c"], ["r"], name="sigmoid")] + head())
tiny_with("duplicate_initializer.onnx", [W, G, arr(W_np, "W")])
tiny_with("writes_initializer.onnx", nodes=[conv(), helper.make_node("Relu", ["c"], ["G"], name="relu")] + head("c"))
tiny_with("undefined_input.onnx", nodes=[conv(), helper.make_node("Add", ["c", "ghost"], ["r"], name="add")] + head())
tiny_with("undefined_output.onnx", outputs=[vi("nothing", [1, 10])])
model("no_nodes.onnx", [], IN, [vi("input", [1, 3, 8, 8])])

# NaN and Inf weights.
w_nan = W_np.copy(); w_nan[1, 2, 0, 1] = np.nan
tiny_with("nan_weight.onnx", [arr(w_nan, "W"), G])
g_inf = G_np.copy(); g_inf[3, 2] = np.inf
tiny_with("inf_weight.onnx", [W, arr(g_inf, "G")])
# (Constant values: a [1,4,1,1] scale read by Mul.)
tiny_with("nan_constant.onnx", [W, G], nodes=[
    helper.make_node("Constant", [], ["k"], name="const",
                     value=arr(np.array([1.0, np.nan, 1.0, 1.0]).reshape(1, 4, 1, 1), "kv")),
    conv(), helper.make_node("Relu", ["c"], ["r0"], name="relu"),
    helper.make_node("Mul", ["r0", "k"], ["r"], name="mul")] + head())

# Attributes.
tiny_with("conv_kernel_1e9.onnx", nodes=tiny_nodes(kernel_shape=[10**9, 10**9]))
def pool_first(name, **attrs):
    model(name, [helper.make_node("MaxPool", ["input"], ["m"], name="pool", **attrs),
                 helper.make_node("Conv", ["m", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"], name="relu")] + head(), IN, OUT10, [W, G])


pool_first("maxpool_kernel_1e9.onnx", kernel_shape=[10**9, 10**9])
pool_first("maxpool_dilation_overflow.onnx", kernel_shape=[1 << 32, 3], dilations=[1 << 32, 1])
tiny_with("stride0.onnx", nodes=tiny_nodes(strides=[0, 0]))
tiny_with("pads_negative.onnx", nodes=tiny_nodes(pads=[-1, -1, -1, -1]))
tiny_with("pads_1e9.onnx", nodes=tiny_nodes(pads=[10**9] * 4))
tiny_with("group_2_of_3.onnx", [arr(rng.standard_normal((4, 1, 3, 3)), "W"), G], nodes=tiny_nodes(group=2))
tiny_with("group_3_of_4.onnx", [arr(rng.standard_normal((4, 1, 3, 3)), "W"), G], nodes=tiny_nodes(group=3))
tiny_with("group_huge.onnx", nodes=tiny_nodes(group=1 << 62))
i64 = lambda v, name: numpy_helper.from_array(np.asarray(v, np.int64), name)
model("pad_overflow.onnx",
      [helper.make_node("Pad", ["input", "pp"], ["x"], name="pad"),
       helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
       helper.make_node("Relu", ["c"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, i64([0, 0, 1 << 62, 0, 0, 0, 1 << 62, 0], "pp")])
model("pad_1e9.onnx",
      [helper.make_node("Pad", ["input", "pp"], ["x"], name="pad"),
       helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
       helper.make_node("Relu", ["c"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, i64([0, 0, 0, 10**9, 0, 0, 0, 0], "pp")])
model("resize_1e30.onnx",
      [helper.make_node("Resize", ["input", "", "sc"], ["x"], name="resize", mode="nearest"),
       helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
       helper.make_node("Relu", ["c"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, arr([1, 1, 1e30, 1e30], "sc")])
model("split_2e62.onnx",
      [conv(), helper.make_node("Split", ["c", "sp"], ["c1", "c2"], name="split", axis=1),
       helper.make_node("Add", ["c1", "c2"], ["r"], name="add")] + head(),
      IN, OUT10, [W, G, i64([1 << 62, (1 << 62) + 4], "sp")])
pool_first("maxpool_pads_past_kernel.onnx", kernel_shape=[3, 3], pads=[3, 3, 3, 3])
ones = np.ones(4, np.float32)
model("bn_negative_variance.onnx",
      [conv(), helper.make_node("BatchNormalization", ["c", "s", "b", "mu", "var"], ["c2"], name="bn"),
       helper.make_node("Relu", ["c2"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, arr(ones, "s"), arr(ones, "b"), arr(ones, "mu"), arr(-ones, "var")])
model("upsample_inf.onnx",
      [helper.make_node("Upsample", ["input"], ["x"], name="upsample", scales=[1.0, 1.0, float("inf"), 1.0]),
       helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
       helper.make_node("Relu", ["c"], ["r"], name="relu")] + head(), IN, OUT10, [W, G], opset=7)
model("reshape_impossible.onnx",
      [conv(), helper.make_node("Reshape", ["c", "shape"], ["c2"], name="reshape"),
       helper.make_node("Relu", ["c2"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, i64([1, 4, 7, 9], "shape")])
model("reshape_two_minus1.onnx",
      [conv(), helper.make_node("Reshape", ["c", "shape"], ["c2"], name="reshape"),
       helper.make_node("Relu", ["c2"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G, i64([1, 4, -1, -1], "shape")])
model("transpose_bad_perm.onnx",
      [conv(), helper.make_node("Transpose", ["c"], ["c2"], name="transpose", perm=[0, 1, 1, 3]),
       helper.make_node("Relu", ["c2"], ["r"], name="relu")] + head(),
      IN, OUT10, [W, G])
model("softmax_axis_99.onnx", tiny_nodes()[:-1] + [
      helper.make_node("Gemm", ["f", "G"], ["z"], transB=1, name="gemm"),
      helper.make_node("Softmax", ["z"], ["logits"], name="softmax", axis=99)], IN, OUT10, [W, G])
model("gather_out_of_range.onnx", tiny_nodes()[:-1] + [
      helper.make_node("Gemm", ["f", "G"], ["z"], transB=1, name="gemm"),
      helper.make_node("Gather", ["z", "idx"], ["logits"], name="gather", axis=1)],
      IN, OUT10, [W, G, i64([0, 1, 2, 3, 4, 5, 6, 7, 8, 1000], "idx")])

# Inputs and outputs.
tiny_with("two_inputs.onnx", inputs=IN + [vi("extra", [1, 3, 8, 8])],
          nodes=[conv(), helper.make_node("Add", ["c", "extra_c"], ["r0"], name="add"),
                 helper.make_node("Conv", ["extra", "W"], ["extra_c"], name="conv2", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["r0"], ["r"], name="relu")] + head())
tiny_with("output_4d.onnx", nodes=[conv()], outputs=[vi("c", [1, 4, 8, 8])])
tiny_with("output_int.onnx", nodes=[conv(), helper.make_node("Shape", ["c"], ["s"], name="shape")],
          outputs=[vi("s", [4], TensorProto.INT64)])
tiny_with("input_int.onnx", inputs=[vi("input", [1, 3, 8, 8], TensorProto.INT64)])
tiny_with("input_4_channels.onnx", [arr(rng.standard_normal((4, 4, 3, 3)), "W"), G],
          inputs=[vi("input", [1, 4, 8, 8])])

# Depth: a chain of 10000 Relu nodes loads and runs; past the node limit the
# model is refused before anything is built.
def chain(name, n):
    nodes = [conv(), helper.make_node("Relu", ["c"], ["t0"], name="relu0")]
    for k in range(1, n):
        nodes.append(helper.make_node("Relu", [f"t{k - 1}"], [f"t{k}"], name=f"relu{k}"))
    nodes[-1].output[0] = "r"
    tiny_with(name, nodes=nodes + head())

chain("chain_10000.onnx", 10000 - 4)
# Past the limit: one Relu node serialised once and repeated.
relu = helper.make_node("Relu", ["input"], ["z"]).SerializeToString()
g = helper.make_graph([], "g", IN, [vi("z", [1, 3, 8, 8])])
gb = g.SerializeToString() + (b"\x0a" + bytes([len(relu)]) + relu) * 20001
m = onnx.ModelProto(ir_version=7)
m.opset_import.add(domain="", version=13)
mb = m.SerializeToString()
# ModelProto.graph is field 7, length-delimited.
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
write("nodes_20001.onnx", mb + b"\x3a" + varint(len(gb)) + gb)

write("empty.onnx", b"")
os.mkdir("model_dir.onnx")

# ------------------------------------------------------------------ images

def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(px, color_type, depth=8, interlace=False, extra=(), plte=None, idat_cut=None):
    """px: (h, w, c) array of samples (uint8 or uint16 for depth 16)."""
    h, w = px.shape[:2]
    dt = ">u2" if depth == 16 else "u1"

    def rows(sub):
        return b"".join(b"\0" + sub[y].astype(dt).tobytes() for y in range(sub.shape[0]))

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = px[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += rows(sub)
    else:
        raw = rows(px)
    idat = zlib.compress(raw, 9)
    if idat_cut:
        idat = idat_cut(raw)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte is not None:
        out += chunk(b"PLTE", plte)
    for e in extra:
        out += e
    return out + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_header_only(w, h):
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))


px8 = (rng.random((13, 11, 3)) * 255).astype(np.uint8)
write("ok.png", png(px8, 2))
write("ref8.png", png(px8, 2))                                   # reference for the 16-bit ones
write("rgb16_interlaced.png", png(px8.astype(np.uint16) * 257, 2, 16, True))
ga = np.concatenate([px8[:, :, :1].astype(np.uint16) * 257,
                     (rng.random((13, 11, 1)) * 65535).astype(np.uint16)], axis=2)
write("ga16_interlaced.png", png(ga, 4, 16, True))
idx = (rng.random((13, 11, 1)) * 4).astype(np.uint8)
write("palette_trns_interlaced.png", png(idx, 3, 8, True, plte=bytes(range(12)),
                                         extra=[chunk(b"tRNS", b"\x00\x80")]))
write("one_pixel.png", png(np.array([[[200, 10, 30]]], np.uint8), 2))
write("png_65535.png", png_header_only(65535, 65535))
write("png_65536x1.png", png_header_only(65536, 1))
write("png_40000x40000.png", png_header_only(40000, 40000))
good = png(px8, 2)
b = bytearray(good)
b[29] ^= 0xFF                                                     # IHDR CRC
write("crc_ihdr.png", bytes(b))
write("crc_idat.png", png(px8, 2)[:-12 - 4] + b"\0\0\0\0" + chunk(b"IEND", b""))
text = chunk(b"tEXt", b"Comment\0hello", crc=0)
write("crc_text.png", png(px8, 2, extra=[text]))
bomb = zlib.compress(b"\0" * (64 << 20), 9)
write("ztxt_bomb.png", png(px8, 2, extra=[chunk(b"zTXt", b"Comment\0\0" + bomb)]))
write("iccp_bomb.png", png(px8, 2, extra=[chunk(b"iCCP", b"icc\0\0" + bomb)]))
write("text_9mb.png", png(px8, 2, extra=[chunk(b"tEXt", b"Comment\0" + b"A" * (9 << 20))]))
hdr_only = png(px8, 2)[:33]
write("chunk_2gb.png", hdr_only + struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"Comment\0" + b"x" * 100)
write("short_idat.png", png(px8, 2, idat_cut=lambda raw: zlib.compress(raw[: len(raw) // 2], 9)))
write("no_plte.png", png(idx, 3, 8))
write("bad_depth.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 3, 2, 0, 0, 0)) +
      chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def jpeg(im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def sof_offset(j):
    for k in range(2, len(j) - 1):
        if j[k] == 0xFF and j[k + 1] in (0xC0, 0xC1, 0xC2):
            return k
    raise ValueError("no SOF")


big = Image.fromarray((rng.random((48, 40, 3)) * 255).astype(np.uint8))
base = jpeg(big, quality=90)
write("ok.jpg", base)
prog = jpeg(big, quality=90, progressive=True)
write("progressive.jpg", prog)
write("progressive_truncated.jpg", prog[: len(prog) * 6 // 10])
write("scan_truncated.jpg", base[: len(base) * 7 // 10])
b = bytearray(base)
k = sof_offset(b)
b[k + 1], b[k + 4] = 0xC1, 12                                     # SOF1, 12-bit samples
write("jpeg12.jpg", bytes(b))
b = bytearray(base)
b[k + 5:k + 9] = struct.pack(">HH", 65500, 65500)                 # height, width
write("jpeg_65500.jpg", bytes(b))
b = bytearray(base)
b[k + 5:k + 7] = struct.pack(">H", 0)
write("jpeg_zero_height.jpg", bytes(b))
write("cmyk.jpg", jpeg(Image.fromarray((rng.random((16, 16, 4)) * 255).astype(np.uint8), "CMYK")))
write("cmyk_progressive.jpg", jpeg(Image.fromarray((rng.random((16, 16, 4)) * 255).astype(np.uint8), "CMYK"),
                                   progressive=True))
write("one_pixel_gray.jpg", jpeg(Image.fromarray(np.array([[77]], np.uint8), "L")))
write("empty.png", b"")
write("model_as_image.png", tiny)
