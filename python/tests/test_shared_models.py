"""On the real ImageNet and CIFAR models of NEUROMASK_SHARED (skipped when it
is unset): the same maps as the CLI, and maps at the images' own sizes."""
import json
import os

import numpy as np
import pytest

import neuromask
from conftest import run_cli

SHARED = os.environ.get("NEUROMASK_SHARED")
pytestmark = pytest.mark.skipif(not SHARED, reason="NEUROMASK_SHARED is not set")


def shared(*parts):
    path = os.path.join(SHARED, *parts)
    assert os.path.exists(path), f"{path}: missing from NEUROMASK_SHARED"
    return path


@pytest.mark.parametrize("model,recipe,image,method", [
    ("imagenet_mobilenet_v2_100_224.onnx", "inception", "imagenet_samples/n01530575_brambling.JPEG", "gradcam"),
    ("cifar10_resnet20.onnx", "cifar", "cifar10_test_jpg/cat_0000.jpg", "neuromask"),
])
def test_shared_model_matches_cli(nm_bin, tmp_path, model, recipe, image, method):
    model, image = shared("models", model), shared("images", image)
    labels = shared("images", "imagenet_synset_words.txt") if "imagenet" in model else None
    out = tmp_path / "cli"
    run_cli(nm_bin, "explain", "--model", model, "--preprocess", recipe, "--method", method, "--out", str(out),
            "--quiet", *(["--class-names", labels] if labels else []), image)
    stem = os.path.splitext(os.path.basename(image))[0]
    npy = list(out.glob(f"{stem}.*.npy"))   # NAME.mask.npy or NAME.map.npy, by the map's kind
    assert len(npy) == 1, npy
    ref = np.load(npy[0])
    meta = json.loads((out / f"{stem}.json").read_text())
    m = neuromask.Model(model, preprocess=recipe, labels=labels)
    ex = m.explain(image, method=method)
    np.testing.assert_array_equal(ex.map, ref)
    assert ex.target == meta["target_class"]
    from PIL import Image
    w0, h0 = Image.open(image).size
    assert ex.image_map.shape == (h0, w0)
    assert ex.label == meta["label"]
