"""cffi definition of the media kernel; used only at build time."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
MODULE_NAME = "rvoip_media_core._kernel_cffi"
CDEF = (HERE / "kernel.h").read_text().split("/* cdef-begin */")[1].split("/* cdef-end */")[0]


def make_ffibuilder() -> FFI:
    """Return the FFI builder for the kernel (API mode, out of line)."""
    ffibuilder = FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(
        MODULE_NAME,
        '#include "kernel.h"',
        sources=[str(HERE / "g711.c")],
        include_dirs=[str(HERE)],
        extra_compile_args=["-std=c99", "-O3"],
    )
    return ffibuilder
