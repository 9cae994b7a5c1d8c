"""Fixtures for the cross-layer tests in tests/ (both anyio backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rvoip_session_core.testing import VirtualCalls


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each anyio test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture
async def net() -> AsyncIterator[VirtualCalls]:
    """The in-memory SIP and media networks a module's coordinators share (virtual time:
    the module picks ``virtual_time_backend()`` as its ``anyio_backend``)."""
    async with VirtualCalls() as calls:
        yield calls
