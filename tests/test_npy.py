"""Read back the .npy files of npy_writer with numpy.load."""
import os
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

CASES = {"vector": (5,), "cube": (2, 3, 4), "scalar": (), "empty": (0, 4),
         "masks": (3, 1, 32, 32), "eight": (1, 2, 1, 2, 1, 2, 1, 3)}


def main():
    writer, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    subprocess.run([writer, out], check=True)
    passed = failed = 0
    for name, shape in CASES.items():
        path = os.path.join(out, name + ".npy")
        raw = open(path, "rb").read()
        hlen = int.from_bytes(raw[8:10], "little")
        a = np.load(path, allow_pickle=False)
        i = np.arange(int(np.prod(shape)), dtype=np.float64)
        want = (i * 0.25 - 3.0 + np.sin(i)).astype(np.float32).reshape(shape)
        ok = (raw[:8] == b"\x93NUMPY\x01\x00" and (10 + hlen) % 64 == 0
              and raw[10 + hlen - 1:10 + hlen] == b"\n" and a.dtype == np.float32
              and a.shape == shape and np.array_equal(a, want))
        print(("ok:   " if ok else "FAIL: ") + f"{name} {shape} -> {a.dtype} {a.shape}")
        passed, failed = passed + ok, failed + (not ok)
    left = [f for f in os.listdir(out) if f.startswith(".")]
    if left:
        print("FAIL: temporary files left:", left)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
