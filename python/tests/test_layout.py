"""The ctypes structs of neuromask/_lib.py have the C compiler's layout of
include/neuromask.h: every field at its offset, every struct at its size (a
field added to the header and not here changes the size)."""
import ctypes
import os
import subprocess

from conftest import SOURCE
from neuromask import _lib


def test_struct_layout_matches_header(tmp_path):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "neuromask.h"', "int main(void) {"]
    expected = []
    for cname, py in _lib.STRUCTS.items():
        t = f"struct {cname}"
        lines.append(f'printf("{cname} %zu\\n", sizeof({t}));')
        expected.append(f"{cname} {ctypes.sizeof(py)}")
        for fname, _ in py._fields_:
            lines.append(f'printf("{cname}.{fname} %zu\\n", offsetof({t}, {fname}));')
            expected.append(f"{cname}.{fname} {getattr(py, fname).offset}")
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=c11", "-I", os.path.join(SOURCE, "include"), str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
    assert got == expected
