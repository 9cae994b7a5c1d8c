"""Fixtures for rvoip_transaction_core tests: the anyio backends to run on."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run async tests on both anyio backends (asyncio and trio)."""
    return str(request.param)
