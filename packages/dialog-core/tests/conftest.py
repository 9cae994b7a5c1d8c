"""Fixtures of the dialog-core tests: the anyio backends, a self-signed TLS certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from rvoip_transaction_core.testing import self_signed_certificate


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each anyio test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def dialog_tls_contexts(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts for a self-signed 127.0.0.1 certificate (openssl CLI)."""
    files = self_signed_certificate(tmp_path_factory.mktemp("dialog-tls"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    cert, key = files
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(Path(cert), Path(key))
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
