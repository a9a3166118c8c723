"""Shared fixtures. The package and the library under test come from the
environment that tests/python.cmake sets: PYTHONPATH (this source tree's
python/), NEUROMASK_LIBRARY (the build's libneuromask.so) and NM_BIN (its
neuromask CLI)."""
import os
import subprocess

import pytest

SOURCE = os.environ.get("NM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
FASHION_MODEL = os.path.join(SOURCE, "models", "fashion_cnn.onnx")
FASHION_DIR = os.path.join(SOURCE, "data", "fashion")
FASHION_IMAGES = sorted(os.path.join(FASHION_DIR, f) for f in os.listdir(FASHION_DIR) if f.endswith(".png"))


@pytest.fixture(scope="session")
def nm_bin():
    path = os.environ.get("NM_BIN")
    if not path:
        pytest.fail("NM_BIN (the neuromask CLI) is not set; run through ctest")
    return path


@pytest.fixture(scope="session")
def fashion():
    import neuromask
    return neuromask.Model(FASHION_MODEL, preprocess="fashion")


def run_cli(nm_bin, *args):
    r = subprocess.run([nm_bin, *args], capture_output=True, text=True)
    assert r.returncode == 0, f"neuromask {' '.join(args)}: {r.stderr}"
    return r.stdout
