"""cffi definition of the media kernel; used only at build time."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
MODULE_NAME = "rvoip_media_core._kernel_cffi"
# The jitter buffer struct is exposed field by field (counters are read from Python);
# the slot ring stays opaque ("...;" lets the C compiler fill in the layout).
STRUCT_CDEF = """
typedef struct {
    int32_t capacity, max_payload, samples_per_frame, clock_rate;
    int32_t min_frames, max_frames, target;
    int32_t started, playing, have_transit, buffered, advanced;
    int64_t next_ext, max_ext;
    uint32_t last_transit;
    int64_t jitter16;
    uint64_t received, played, late, duplicate, dropped_overflow, dropped_adapt, concealed;
    ...;
} rv_jb_t;
"""
CDEF = (
    STRUCT_CDEF
    + ((HERE / "kernel.h").read_text().split("/* cdef-begin */")[1].split("/* cdef-end */")[0])
)
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
