"""cffi definition of the media kernel; used only at build time."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
MODULE_NAME = "rvoip_media_core._kernel_cffi"
_HEADER = (HERE / "kernel.h").read_text()


def _struct_cdef(header: str) -> str:
    """kernel.h's ``rv_jb_t`` with its slot ring made opaque (one definition of the fields).

    The jitter buffer struct is exposed field by field (counters are read from Python);
    the slot ring stays opaque ("...;" lets the C compiler fill in the layout).
    """
    end = header.index("} rv_jb_t;")
    body = header[header.rindex("typedef struct {", 0, end) + len("typedef struct {") : end]
    fields = [line for line in body.splitlines() if line.strip() and "slots[" not in line]
    return "typedef struct {\n" + "\n".join(fields) + "\n    ...;\n} rv_jb_t;\n"


STRUCT_CDEF = _struct_cdef(_HEADER)
CDEF = STRUCT_CDEF + _HEADER.split("/* cdef-begin */")[1].split("/* cdef-end */")[0]
SOURCES = ["g711.c", "jitter.c"]


def make_ffibuilder() -> FFI:
    """Return the FFI builder for the kernel (API mode, out of line)."""
    ffibuilder = FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(
        MODULE_NAME,
        '#include "kernel.h"',
        sources=[str(HERE / name) for name in SOURCES],
        include_dirs=[str(HERE)],
        extra_compile_args=["-std=c99", "-O3"],
    )
    return ffibuilder
