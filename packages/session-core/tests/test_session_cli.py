"""Tests of the ``rvoip`` command line."""

from __future__ import annotations

import subprocess
import sys

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
