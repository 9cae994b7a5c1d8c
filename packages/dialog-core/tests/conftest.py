"""Fixtures of the dialog-core tests: the anyio backends, a self-signed TLS certificate."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each anyio test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def dialog_tls_contexts(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts for a self-signed 127.0.0.1 certificate (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found: cannot generate a test certificate")
    folder = tmp_path_factory.mktemp("dialog-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(Path(cert), Path(key))
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
