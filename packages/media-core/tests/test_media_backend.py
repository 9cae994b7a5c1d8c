"""Kernel backend selection through RVOIP_MEDIA_KERNEL (each case in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Makes the compiled kernel unimportable, as on a machine without a compiler.
HIDE_KERNEL = "import sys; sys.modules['rvoip_media_core._kernel_cffi'] = None; "


def _run(code: str, kernel: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RVOIP_MEDIA_KERNEL"}
    if kernel is not None:
        env["RVOIP_MEDIA_KERNEL"] = kernel
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_numpy_forced() -> None:
    result = _run("import rvoip_media_core as m; print(m.BACKEND)", "numpy")
    assert result.stdout.strip() == "numpy"


def test_explicit_cffi_without_kernel_fails_loudly() -> None:
    result = _run(HIDE_KERNEL + "import rvoip_media_core", "cffi")
    assert result.returncode != 0
    assert "RVOIP_MEDIA_KERNEL=cffi" in result.stderr


def test_unset_without_kernel_falls_back_with_warning() -> None:
    result = _run(HIDE_KERNEL + "import rvoip_media_core as m; print(m.BACKEND)", None)
    assert result.stdout.strip() == "numpy"
    assert "C kernel not available" in result.stderr


def test_unknown_value_is_refused() -> None:
    result = _run("import rvoip_media_core", "fortran")
    assert result.returncode != 0
    assert "expected 'cffi' or 'numpy'" in result.stderr


def test_cffi_when_built(c_kernel: object) -> None:
    if os.environ.get("RVOIP_MEDIA_KERNEL") == "numpy":
        pytest.skip("numpy backend forced for this run")
    result = _run("import rvoip_media_core as m; print(m.BACKEND)", None)
    assert result.stdout.strip() == "cffi"
