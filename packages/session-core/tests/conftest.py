"""Fixtures for the session-core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvoip_transaction_core.testing import self_signed_certificate


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every anyio test on both backends."""
    return str(request.param)


@pytest.fixture(scope="session")
def session_tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, key) PEM files, self-signed for 127.0.0.1, made with the openssl CLI."""
    files = self_signed_certificate(tmp_path_factory.mktemp("session-tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    cert, key = files
    return cert, key
