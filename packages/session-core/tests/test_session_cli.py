"""Tests of the ``rvoip`` command line."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rvoip_session_core.cli import main


def test_demo_verifies_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert "steps passed: all verified" in out
    for needle in ("REFER", "NOTIFY", "INVITE (SDP sendonly)", "BYE", "carol, call with alice"):
        assert needle in out


def test_demo_runs_on_trio_without_ladder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "trio", "--no-ladder"]) == 0
    out = capsys.readouterr().out
    assert "SIP ladder" not in out
    assert "all verified" in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rvoip_session_core", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout


@pytest.fixture
def answering_peer() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0", "--tone", "440"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("answering at sip:")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_options_and_call_against_an_answering_peer(
    answering_peer: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["options", answering_peer]) == 0
    assert "200 OK" in capsys.readouterr().out
    record = tmp_path / "heard.wav"
    args = ["call", answering_peer, "--duration", "0.6", "--dtmf", "12", "--record", str(record)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "connected to" in out
    assert "sent DTMF 12" in out
    assert "MOS" in out
    assert record.stat().st_size > 44


def test_errors_have_one_line_and_script_friendly_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["call", "not a uri"]) == 2
    assert capsys.readouterr().err.startswith("rvoip: bad URI")
    assert main(["options", "sip:nobody@127.0.0.1:9", "--timeout", "0.3"]) == 4
    assert "no answer" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert main(["answer", "--port", str(port)]) == 3
    err = capsys.readouterr().err
    assert "Address already in use" in err
    assert err.count("\n") == 1
