"""Interop: SIPp sends OPTIONS with 20 % simulated loss to a responder built on this layer."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import anyio
import pytest

from rvoip_transaction_core import TransactionEndpoint
from rvoip_transaction_core.testing import Responder

SCENARIO = Path(__file__).parent / "sipp" / "options_uac.xml"
CALLS = 30

pytestmark = [pytest.mark.interop, pytest.mark.anyio]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sipp_options_with_20_percent_loss_has_no_failed_transaction(
    anyio_backend: str,
) -> None:
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.skip("sipp is not on PATH (Debian package sip-tester)")
    responder = Responder(200)
    async with TransactionEndpoint(udp=("127.0.0.1", 0), on_event=responder) as ep:
        responder.endpoint = ep
        local = ep.local("UDP")
        command = [
            sipp, f"{local.host}:{local.port}", "-sf", str(SCENARIO), "-t", "u1",
            "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
            "-cp", str(free_port(socket.SOCK_DGRAM)), "-mp", str(free_port(socket.SOCK_DGRAM)),
            "-m", str(CALLS), "-r", "50", "-l", str(CALLS), "-lost", "20",
            "-max_non_invite_retrans", "14", "-timeout", "90s", "-timeout_error",
            "-nostdin",
        ]  # fmt: skip
        with anyio.fail_after(120):
            result = await anyio.run_process(command, check=False)
        output = (result.stdout + result.stderr).decode(errors="replace")
        # SIPp exits 0 only when every call succeeded.
        assert result.returncode == 0, output[-3000:]
        assert responder.answered == CALLS
        # loss made SIPp retransmit: our Completed state answered from its buffer
        assert ep.stats["absorbed_request_retransmission"] >= 1
