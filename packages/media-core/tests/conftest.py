"""Fixtures of the rvoip-media-core tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run async tests on both anyio backends."""
    return str(request.param)


@pytest.fixture(scope="session")
def c_kernel() -> Any:
    """The compiled kernel's ``lib`` (skips when it is not built)."""
    try:
        from rvoip_media_core._kernel_cffi import ffi, lib
    except ImportError:  # pragma: no cover - depends on the build
        pytest.skip("C kernel not built")
    lib.rv_g711_init()
    return ffi, lib
