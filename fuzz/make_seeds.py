#!/usr/bin/python3
"""Write the committed fuzz seeds under fuzz/seeds/<target>/ (deterministic).

onnx: small models of ONNX backend node tests (libonnx-testdata) plus three
tiny CNNs built here (conv/relu/pool/gemm, a residual block with BatchNorm,
a depthwise block with Clip and Resize), each with neuromask metadata.
png:  colour types, bit depths, palette with tRNS, interlacing (PIL).
jpeg: baseline, greyscale, progressive, 4:4:4 and 4:2:0, restart markers,
      optimised Huffman tables, CMYK (PIL).
args: command lines, NUL-separated; the first byte picks the command
      (byte % 5: 'A' classify, 'B' info, 'C' explain, 'D' eval, 'E' --help).
Usage: fuzz/make_seeds.py   (rewrites fuzz/seeds)
"""
import io
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
TESTDATA = "/usr/share/libonnx-testdata/data"
CASES = os.path.join(HERE, "..", "tests", "onnx_backend_cases.txt")


def out_dir(name):
    d = os.path.join(SEEDS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


# ------------------------------------------------------------------ onnx

def pick_node_cases():
    """Up to 3 cases per (first operator, 4-D input or not), in file order."""
    cases = [l.split()[0] for l in open(CASES) if l.startswith("node/")]
    seen, picked = {}, []
    for c in cases:
        path = os.path.join(TESTDATA, c, "model.onnx")
        if not os.path.exists(path):
            continue
        m = onnx.load(path)
        ops = sorted(set(n.op_type for n in m.graph.node))
        four = bool(m.graph.input) and len(m.graph.input[0].type.tensor_type.shape.dim) == 4
        key = (ops[0] if ops else "", four)
        if seen.get(key, 0) < (3 if four else 1):
            seen[key] = seen.get(key, 0) + 1
            picked.append((c, path))
    return picked


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def tiny_model(nodes, inits, in_shape, out_shape, meta):
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_seeds")
    for k, v in meta.items():
        helper.set_model_props(m, {**{p.key: p.value for p in m.metadata_props}, k: v})
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m.SerializeToString()


def tiny_models():
    r = np.random.RandomState(0)
    w = lambda *s: r.standard_normal(s).astype(np.float32) * 0.3
    cnn = tiny_model(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("Flatten", ["p1"], ["f"]),
         helper.make_node("Gemm", ["f", "w2", "b2"], ["g"], transB=1),
         helper.make_node("Softmax", ["g"], ["y"], axis=1)],
        [const("w1", w(4, 3, 3, 3)), const("b1", w(4)), const("w2", w(5, 64)), const("b2", w(5))],
        [1, 3, 8, 8], [1, 5],
        {"neuromask.preprocess": "cifar", "neuromask.labels": "a|b|c|d|e"})
    res = tiny_model(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c1", "s", "bb", "mu", "var"], ["n1"]),
         helper.make_node("LeakyRelu", ["n1"], ["r1"], alpha=0.1),
         helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
         helper.make_node("Add", ["c2", "r1"], ["a"]),
         helper.make_node("Relu", ["a"], ["r2"]),
         helper.make_node("GlobalAveragePool", ["r2"], ["gp"]),
         helper.make_node("Reshape", ["gp", "shape"], ["f"]),
         helper.make_node("MatMul", ["f", "w3"], ["y"])],
        [const("w1", w(4, 1, 3, 3)), const("s", [1, 2, 0.5, 1]), const("bb", w(4)), const("mu", w(4)),
         const("var", [1, 0.5, 2, 1]), const("w2", w(4, 4, 3, 3)), const("b2", w(4)),
         numpy_helper.from_array(np.array([1, 4], dtype=np.int64), "shape"), const("w3", w(4, 3))],
        [1, 1, 6, 6], [1, 3],
        {"neuromask.preprocess": "resize=8,crop=6,mean=0.5,std=0.25"})
    dw = tiny_model(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
         helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["c2"], group=6, pads=[1, 1, 1, 1]),
         helper.make_node("Sigmoid", ["c2"], ["s2"]),
         helper.make_node("Mul", ["s2", "r1"], ["m2"]),
         helper.make_node("Resize", ["m2", "", "scales"], ["u"], mode="nearest"),
         helper.make_node("AveragePool", ["u"], ["ap"], kernel_shape=[3, 3], strides=[2, 2]),
         helper.make_node("ReduceMean", ["ap"], ["rm"], axes=[2, 3], keepdims=0),
         helper.make_node("Gemm", ["rm", "w3"], ["g"]),
         helper.make_node("LogSoftmax", ["g"], ["y"], axis=1)],
        [const("w1", w(6, 3, 3, 3)), const("b1", w(6)), const("lo", 0.0), const("hi", 6.0),
         const("w2", w(6, 1, 3, 3)), const("scales", [1, 1, 2, 2]), const("w3", w(6, 4))],
        [1, 3, 10, 10], [1, 4],
        {"neuromask.preprocess": "inception"})
    return {"tiny_cnn.onnx": cnn, "tiny_residual.onnx": res, "tiny_depthwise.onnx": dw}


def write_onnx():
    d = out_dir("onnx")
    for c, path in pick_node_cases():
        shutil.copyfile(path, os.path.join(d, c.replace("/", "_") + ".onnx"))
    for name, b in tiny_models().items():
        open(os.path.join(d, name), "wb").write(b)


# ---------------------------------------------------------------- images

def pattern(w, h, mode):
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 37) % 256], -1)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB")
    return img.convert(mode) if mode != "RGB" else img


def save(img, d, name, **kw):
    b = io.BytesIO()
    img.save(b, **kw)
    open(os.path.join(d, name), "wb").write(b.getvalue())


def write_png():
    d = out_dir("png")
    save(pattern(7, 5, "RGB"), d, "rgb8.png", format="PNG")
    save(pattern(41, 290, "RGB"), d, "tall_rgb8.png", format="PNG", optimize=True)
    save(pattern(6, 9, "L"), d, "grey8.png", format="PNG")
    save(pattern(9, 4, "1"), d, "grey1.png", format="PNG")
    save(pattern(8, 8, "P"), d, "palette.png", format="PNG")
    p = pattern(8, 8, "P")
    save(p, d, "palette_trns.png", format="PNG", transparency=3)
    save(pattern(5, 7, "RGBA"), d, "rgba8.png", format="PNG")
    save(pattern(5, 5, "LA"), d, "grey_alpha.png", format="PNG")
    g16 = Image.fromarray((np.arange(48, dtype=np.uint16).reshape(6, 8) * 1300), "I;16")
    save(g16, d, "grey16.png", format="PNG")
    # interlaced (Adam7) and 16-bit RGB, which PIL does not write: by hand
    open(os.path.join(d, "rgb16_interlaced.png"), "wb").write(png_by_hand(9, 7, 16, 2, 1))
    open(os.path.join(d, "grey4_interlaced.png"), "wb").write(png_by_hand(11, 6, 4, 0, 1))


def png_by_hand(w, h, depth, color, interlace):
    import struct
    import zlib
    chans = {0: 1, 2: 3}[color]

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)

    def rows(pw, ph, x0, y0):
        out = b""
        for y in range(ph):
            vals = [((x0 + x) * 7 + (y0 + y) * 13 + c * 29) % (1 << depth) for x in range(pw) for c in range(chans)]
            if depth == 16:
                row = b"".join(struct.pack(">H", v * 257 % 65536) for v in vals)
            elif depth == 8:
                row = bytes(vals)
            else:
                acc, n, row = 0, 0, bytearray()
                for v in vals:
                    acc, n = acc << depth | v, n + depth
                    if n == 8:
                        row.append(acc)
                        acc, n = 0, 0
                if n:
                    row.append(acc << (8 - n))
                row = bytes(row)
            out += b"\x00" + row
        return out

    raw = b""
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            pw = (w - x0 + dx - 1) // dx if w > x0 else 0
            ph = (h - y0 + dy - 1) // dy if h > y0 else 0
            if pw and ph:
                raw += rows(pw, ph, x0, y0)
    else:
        raw = rows(w, h, 0, 0)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_jpeg():
    d = out_dir("jpeg")
    rgb = pattern(24, 17, "RGB")
    save(rgb, d, "baseline_420.jpg", format="JPEG", quality=75)
    save(rgb, d, "baseline_444.jpg", format="JPEG", quality=90, subsampling=0)
    save(rgb, d, "progressive.jpg", format="JPEG", quality=60, progressive=True)
    save(rgb, d, "optimized.jpg", format="JPEG", quality=50, optimize=True)
    save(rgb, d, "restart.jpg", format="JPEG", quality=70, restart_marker_blocks=1)
    save(pattern(16, 16, "L"), d, "grey.jpg", format="JPEG", quality=80)
    save(pattern(9, 13, "L"), d, "grey_progressive.jpg", format="JPEG", progressive=True)
    save(pattern(8, 8, "CMYK"), d, "cmyk.jpg", format="JPEG")
    save(pattern(1, 1, "RGB"), d, "one_pixel.jpg", format="JPEG")
    save(pattern(300, 37, "RGB"), d, "wide_progressive.jpg", format="JPEG", quality=30, progressive=True)


# ------------------------------------------------------------------ args

ARGS = {
    "classify": ["A", "--model", "m.onnx", "--preprocess", "cifar", "--top", "3", "--json", "img.png"],
    "classify_flags": ["A", "--model=m.onnx", "--resize", "256", "--crop", "224", "--central-crop", "0.875",
                       "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--scale", "1",
                       "--offset", "0", "--size", "224", "--batch", "4", "--labels", "l.txt", "a.jpg", "b.png"],
    "classify_spec": ["A", "--model", "m.onnx", "--preprocess",
                      "resize=256,crop=224,scale=1,mean=0.485:0.456:0.406,std=0.229:0.224:0.225", "d"],
    "info": ["B", "m.onnx", "--batch", "4"],
    "info_help": ["B", "--help"],
    "explain": ["C", "--model", "m.onnx", "--out", "o", "--preset", "imagenet", "--steps", "10", "--lr", "0.1",
                "--nm", "l_sparse=0.5,grid=8,alt_fill=1,optimizer=normalized,baseline=blur",
                "--seed", "7", "--force", "--quiet", "i.png"],
    "explain_method": ["C", "--model", "m.onnx", "--out", "o", "--method", "integrated-gradients",
                       "--ig-steps", "8", "--ig-baseline", "mean", "--class", "2", "--gradcam-layer", "t",
                       "--precision", "bf16", "--resume", "--", "-i.png"],
    "eval": ["D", "--model", "m.onnx", "--methods", "gradcam,rise,neuromask", "--images", "imgs", "--out", "o",
             "--limit", "4", "--spread", "--sanity", "--deletion-fill", "mean",
             "--rise-masks", "100", "--rise-cell", "4", "--rise-p", "0.3", "--nm-steps", "5"],
    "eval_occ": ["D", "--model", "m.onnx", "--methods", "occlusion", "--occ-patch", "4", "--occ-stride", "2",
                 "--occ-fill", "blur", "--out", "o", "--nm", "preset=imagenet,steps=3", "x.jpg"],
    "help": ["E"],
    "nm_spec": ["steps=100,lr=0.05,l_pred=1,l_sparse=0.1,l_smooth=0.2,T=0.5,L=3,kernel=5,tol=1e-3,window=20,"
                "early_stop=1,blur_sigma=2,init=zero,sparsity=mask,l_delete=0.5,alt_fill=1,alt_baseline=noise"],
}


def write_args():
    d = out_dir("args")
    for name, toks in ARGS.items():
        open(os.path.join(d, name), "wb").write(b"\0".join(t.encode() for t in toks))


if __name__ == "__main__":
    write_onnx()
    write_png()
    write_jpeg()
    write_args()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(SEEDS) for f in fs)
    print("fuzz/seeds: %d files, %d bytes" % (sum(len(fs) for _, _, fs in os.walk(SEEDS)), total))
    sys.exit(0)
