"""Fixtures of the SIPp interop suite: the ``sipp`` runner and a coordinator ``builder``.

This directory goes on ``sys.path`` so the tests import its helper modules:
``interop_sipp`` (runs SIPp, reads its statistics), ``interop_pcap`` (writes the
captures SIPp replays) and ``interop_calls`` (recording handler, media monitor).

Every test here is marked ``interop`` (deselect with ``-m "not interop"``); the ones
that drive SIPp skip, saying why, when ``sipp`` is not on PATH. SIPp and the
coordinators talk over 127.0.0.1 on ports chosen free at run time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interop_sipp import Sipp, find_sipp, sipp_version

from rvoip_session_core import (
    AutoAnswerHandler,
    CallHandler,
    SessionManagerBuilder,
)


@pytest.fixture
def anyio_backend() -> str:
    """Interop runs on asyncio; tests that want trio too parametrize ``anyio_backend``."""
    return "asyncio"


@pytest.fixture(scope="session")
def sipp_exe() -> str:
    """Path of ``sipp``; skips the test when SIPp is not installed."""
    exe = find_sipp()
    if exe is None:
        pytest.skip("sipp not found on PATH (Debian: apt-get install sip-tester)")
    return exe


@pytest.fixture(scope="session")
def sipp_version_line(sipp_exe: str) -> str:
    """SIPp's version line (reported in docs/interop.md)."""
    return sipp_version(sipp_exe)


@pytest.fixture
def sipp(sipp_exe: str, sipp_version_line: str, tmp_path: Path) -> Sipp:
    """A SIPp runner writing its statistics and logs into the test's tmp dir."""
    return Sipp(sipp_exe, tmp_path, sipp_version_line)


def interop_builder(
    handler: CallHandler | None = None, user: str = "rvoip"
) -> SessionManagerBuilder:
    """A coordinator on 127.0.0.1 (free SIP port, ephemeral RTP ports), default SIP timers."""
    return (
        SessionManagerBuilder()
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_sip_port(0)
        .with_handler(handler if handler is not None else AutoAnswerHandler())
        .with_quality_interval(0)
    )


@pytest.fixture
def builder() -> Callable[..., SessionManagerBuilder]:
    """``builder(handler, user=...)``: the builder of a coordinator for SIPp to talk to."""
    return interop_builder
