"""The Python package against the CLI on the bundled Fashion-MNIST model:
the same classes, the same maps (as `neuromask explain` writes to .npy), the
same evaluation points; every image form; errors; Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuromask
from conftest import FASHION_IMAGES, FASHION_MODEL, run_cli

IMAGE = FASHION_IMAGES[0]


def cli_map(nm_bin, tmp_path, image, *args):
    out = tmp_path / "cli"
    run_cli(nm_bin, "explain", "--model", FASHION_MODEL, "--preprocess", "fashion", "--out", str(out), "--quiet",
            *args, image)
    stem = os.path.splitext(os.path.basename(image))[0]
    npy = list(out.glob(f"{stem}.*.npy"))   # NAME.mask.npy or NAME.map.npy, by the map's kind
    assert len(npy) == 1, npy
    return np.load(npy[0]), json.loads((out / f"{stem}.json").read_text())


def test_classify_matches_cli(nm_bin, fashion):
    lines = run_cli(nm_bin, "classify", "--model", FASHION_MODEL, "--preprocess", "fashion", "--json", "--top", "3",
                    *FASHION_IMAGES).strip().split("\n")
    got = fashion.classify(FASHION_IMAGES, top=3)
    assert len(got) == len(lines) == len(FASHION_IMAGES)
    for line, c in zip(lines, got):
        ref = json.loads(line)
        assert [t["class"] for t in ref["top"]] == list(c.classes)
        np.testing.assert_allclose([t["prob"] for t in ref["top"]], c.probabilities, rtol=1e-4)
        assert [t["label"] for t in ref["top"]] == c.labels   # the model's neuromask.labels metadata
    assert abs(float(got[0].all_probabilities.sum()) - 1) < 1e-5
    assert fashion.classify(IMAGE).top == got[0].top


@pytest.mark.parametrize("method,args,options", [
    ("neuromask", [], {}),
    ("neuromask", ["--steps", "20", "--seed", "3"], {"steps": 20, "seed": 3}),
    ("integrated-gradients", ["--ig-steps", "8"], {"ig_steps": 8}),
    ("gradcam", [], {}),
    ("occlusion", ["--occ-patch", "6", "--occ-stride", "3"], {"occ_patch": 6, "occ_stride": 3}),
])
def test_explain_matches_cli(nm_bin, fashion, tmp_path, method, args, options):
    ref, meta = cli_map(nm_bin, tmp_path, IMAGE, "--method", method, *args)
    ex = fashion.explain(IMAGE, method=method, **options)
    assert ex.map.shape == ref.shape == (fashion.height, fashion.width)
    np.testing.assert_array_equal(ex.map, ref)
    assert ex.target == meta["target_class"] and ex.label == meta["label"]
    assert ex.prob == pytest.approx(meta["prob_before"], abs=1e-6)
    assert ex.method == method and ex.seconds > 0
    assert ex.kind == {"neuromask": "mask", "integrated-gradients": "signed", "occlusion": "signed"}.get(method,
                                                                                                     "nonnegative")
    assert ex.probabilities.shape == (fashion.num_classes,)
    assert int(np.argmax(ex.probabilities)) == ex.target
    assert abs(float(ex.probabilities[ex.target]) - ex.prob) < 1e-5
    if method == "neuromask":
        assert ex.extra["steps"] == options.get("steps", 40)   # the default preset's
    if method == "integrated-gradients":
        assert "completeness_error" in ex.extra
    if method == "gradcam":
        assert ex.extra["gradcam_layer"] == meta["options"]["gradcam_layer"] == fashion.spatial_tensors[-1]


def test_explain_target(fashion):
    ex = fashion.explain(IMAGE, method="gradient", target=3)
    assert ex.target == 3 and ex.label == fashion.labels[3]
    with pytest.raises(ValueError, match="10 classes"):
        fashion.explain(IMAGE, method="gradient", target=10)


def test_image_forms_agree(fashion):
    """A path, a PIL image, a uint8 H x W x C array and a float C x H x W
    array of the same picture give the same map."""
    from PIL import Image
    pil = Image.open(IMAGE)
    hwc = np.asarray(pil)[:, :, None]
    chw = np.transpose(hwc, (2, 0, 1)).astype(np.float32) / 255
    maps = [fashion.explain(im, method="gradient").map for im in (IMAGE, pil, hwc, chw)]
    for m in maps[1:]:
        np.testing.assert_array_equal(m, maps[0])
    # an RGB picture of the same grey values: the library converts it to the model's channel
    rgb = np.repeat(hwc, 3, axis=2)
    assert fashion.explain(rgb, method="gradient").target == fashion.explain(IMAGE, method="gradient").target


def test_image_map_at_the_images_size(fashion):
    """An image larger than the model's input: the map comes back at the
    model's size and, unmapped, at the image's own size."""
    rng = np.random.default_rng(0)
    image = (rng.random((56, 84)) * 255).astype(np.uint8)
    ex = fashion.explain(image, method="gradient")
    assert ex.map.shape == (28, 28) and ex.image_map.shape == (56, 84)
    np.testing.assert_array_equal(ex.image_map, fashion.unmap(ex.map, (56, 84)))
    # a constant map is constant where the geometry kept the image
    ones = fashion.unmap(np.ones((28, 28), np.float32), (56, 84))
    assert ones.max() == pytest.approx(1) and ones.min() >= 0


def test_evaluate(nm_bin, fashion, tmp_path):
    ex = fashion.explain(IMAGE, method="gradient")
    ev = fashion.evaluate(IMAGE, ex, steps=16)
    assert ev.target == ex.target
    assert ev.deletion_curve.shape == ev.insertion_curve.shape == (17,)
    # deletion starts, and insertion ends, at the full image's probability
    assert ev.deletion_curve[0] == pytest.approx(ex.prob, abs=1e-5)
    assert ev.insertion_curve[-1] == pytest.approx(ex.prob, abs=1e-5)
    assert 0 <= ev.deletion <= 1 and 0 <= ev.insertion <= 1
    assert ev.roughness == pytest.approx(neuromask.roughness(ex.map))
    # the deletion curve, recomputed here: black out the top-ranked pixels
    # (descending map, ties by index) and classify what is left
    from PIL import Image
    x = np.asarray(Image.open(IMAGE), np.float32)[None] / 255
    order = np.argsort(-ex.map.ravel(), kind="stable")
    per_step = -(-x.size // 16)
    for k in (1, 4, 9):
        y = x.copy().reshape(-1)
        y[order[:k * per_step]] = 0
        p = fashion.classify(y.reshape(x.shape)).all_probabilities[ex.target]
        assert ev.deletion_curve[k] == pytest.approx(p, abs=1e-5)
    # insertion from an all-grey image starts at the model's answer on grey
    grey = fashion.evaluate(IMAGE, ex, steps=16, insertion_fill="grey")
    p_grey = fashion.classify(np.full((1, 28, 28), 0.5, np.float32)).all_probabilities[ex.target]
    assert grey.insertion_curve[0] == pytest.approx(p_grey, abs=1e-5)
    np.testing.assert_array_equal(grey.deletion_curve, ev.deletion_curve)
    assert neuromask.spearman(ex.map, ex.map) == pytest.approx(1)
    assert neuromask.spearman(ex.map, -ex.map) == pytest.approx(-1)


def test_randomize_changes_the_model(fashion):
    before = fashion.classify(IMAGE).all_probabilities
    fashion.randomize(fashion.layer_count, seed=1)
    try:
        after = fashion.classify(IMAGE).all_probabilities
    finally:
        fashion.randomize(0)
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(fashion.classify(IMAGE).all_probabilities, before)


def test_library_errors_carry_the_message(tmp_path):
    with pytest.raises(neuromask.NeuromaskError) as e:
        neuromask.Model(tmp_path / "missing.onnx", preprocess="fashion")
    assert e.value.status == "io" and "missing.onnx" in str(e.value)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is no protobuf" * 3)
    with pytest.raises(neuromask.NeuromaskError) as e:
        neuromask.Model(bad, preprocess="fashion")
    assert e.value.status == "parse" and "bad.onnx" in str(e.value)
    with pytest.raises(neuromask.NeuromaskError, match="nosuchrecipe"):
        neuromask.Model(FASHION_MODEL, preprocess="nosuchrecipe")


def test_call_errors(fashion, tmp_path):
    with pytest.raises(neuromask.NeuromaskError) as e:
        fashion.explain(tmp_path / "none.png")
    assert e.value.status == "io" and "none.png" in str(e.value)
    notimage = tmp_path / "x.png"
    notimage.write_bytes(b"not a png")
    with pytest.raises(neuromask.NeuromaskError, match="x.png"):
        fashion.explain(notimage)
    with pytest.raises(neuromask.NeuromaskError, match="no_such_layer"):
        fashion.explain(IMAGE, method="gradcam", gradcam_layer="no_such_layer")
    with pytest.raises(neuromask.NeuromaskError, match="bogus"):
        fashion.explain(IMAGE, bogus=1)            # NeuroMask: nm_neuromask_parse names the key
    with pytest.raises(TypeError, match="bogus"):
        fashion.explain(IMAGE, method="gradient", bogus=1)
    with pytest.raises(ValueError, match="unknown method"):
        fashion.explain(IMAGE, method="lime")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fashion.explain(np.full((1, 28, 28), 2.0, np.float32))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        fashion.explain(np.zeros((28, 28, 4), np.uint8))
    with pytest.raises(TypeError, match="bogus"):
        fashion.evaluate(IMAGE, np.zeros((28, 28), np.float32), bogus=1)
    with pytest.raises(ValueError, match="insertion_fill"):
        fashion.evaluate(IMAGE, np.zeros((28, 28), np.float32), insertion_fill="pink")
    with pytest.raises(ValueError, match="map of shape"):
        fashion.evaluate(IMAGE, np.zeros((5, 5), np.float32))


CANCEL_CHILD = textwrap.dedent("""
    import sys, time
    import neuromask
    model = neuromask.Model(sys.argv[1], preprocess="fashion")
    print("ready", flush=True)
    t = time.monotonic()
    try:
        model.explain(sys.argv[2], steps=10000000)   # hours, unless cancelled
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("cancelled", flush=True)
    # the library stopped and the model is usable again
    print("next", model.explain(sys.argv[2], method="gradient").target, flush=True)
""")


def test_ctrl_c_cancels_an_explanation():
    child = subprocess.Popen([sys.executable, "-c", CANCEL_CHILD, FASHION_MODEL, IMAGE], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        import time
        time.sleep(1.0)   # inside the explanation
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.split("\n")[:2] == ["cancelled", "next 9"], (out, err)


def test_annotated_model_carries_recipe_and_class_names(nm_bin, tmp_path):
    """`neuromask annotate` writes neuromask.class_names; Model reads it (and the recipe) as the CLI does."""
    names = tmp_path / "names.txt"
    names.write_text("".join(f"name {i}\n" for i in range(10)))
    out = tmp_path / "annotated.onnx"
    run_cli(nm_bin, "annotate", FASHION_MODEL, "--preprocess", "fashion,scale=1", "--class-names", str(names),
            "-o", str(out))
    m = neuromask.Model(out)
    assert m.preprocess == "fashion,scale=1"
    assert m.labels == [f"name {i}" for i in range(10)]
    ref = json.loads(run_cli(nm_bin, "classify", "--model", str(out), "--json", "--top", "1", IMAGE))
    assert m.classify([IMAGE], top=1)[0].labels == [ref["top"][0]["label"]]
