"""Kernel backend selection: the cffi C kernel or the numpy/pure-Python oracle.

``RVOIP_MEDIA_KERNEL=cffi`` requires the compiled kernel (ImportError when it is
missing, so CI fails instead of silently falling back); ``numpy`` forces the
fallback; unset picks cffi when importable and numpy otherwise, with a warning.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

KERNEL_ENV = "RVOIP_MEDIA_KERNEL"


def _load() -> tuple[str, Any, Any]:
    choice = os.environ.get(KERNEL_ENV, "").strip().lower()
    if choice not in ("", "cffi", "numpy"):
        raise ImportError(f"{KERNEL_ENV}={choice!r}: expected 'cffi' or 'numpy'")
    if choice == "numpy":
        return "numpy", None, None
    try:
        from rvoip_media_core._kernel_cffi import ffi, lib
    except ImportError as exc:
        if choice == "cffi":
            raise ImportError(
                f"{KERNEL_ENV}=cffi but the C kernel rvoip_media_core._kernel_cffi is not "
                f"built ({exc}); reinstall rvoip-media-core with a C compiler"
            ) from exc
        warnings.warn(
            "rvoip_media_core: C kernel not available, using the slower numpy backend",
            RuntimeWarning,
            stacklevel=2,
        )
        return "numpy", None, None
    lib.rv_g711_init()
    return "cffi", ffi, lib


BACKEND, ffi, lib = _load()
"""``"cffi"`` or ``"numpy"``: the kernel in use by this process."""


def kernel() -> tuple[Any, Any]:
    """The C kernel's ``(ffi, lib)`` even when numpy is the default backend (tests, benches).

    Raises:
        ImportError: the kernel is not built.
    """
    if lib is not None:
        return ffi, lib
    from rvoip_media_core._kernel_cffi import ffi as c_ffi
    from rvoip_media_core._kernel_cffi import lib as c_lib

    c_lib.rv_g711_init()
    return c_ffi, c_lib
