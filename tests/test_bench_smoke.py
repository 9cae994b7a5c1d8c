"""Smoke test of the benchmark scripts: they run in --quick mode and print their headlines.

No timing assertions: speed figures are printed by tools/bench/, never asserted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]


def _run(script: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_cps_quick_prints_rates_ceiling_and_ratio() -> None:
    out = _run("cps.py")
    assert "command: " in out
    assert "rvoip answer --auto (asyncio): " in out
    assert "calls/s with 0 failures" in out
    assert "INVITE->200 p50" in out
    assert "stateless ceiling: " in out
    assert "ratio rvoip / stateless: " in out


def test_concurrent_quick_prints_late_cpu_and_memory() -> None:
    out = _run("concurrent.py")
    assert "command: " in out
    assert "calls held: " in out
    assert "late packets (caller media clock" in out
    assert "CPU per call: caller " in out
    assert "memory per call: caller RSS " in out


def test_overload_quick_prints_the_table_and_the_targets() -> None:
    out = _run("overload.py")
    assert "command: " in out
    assert "saturation 50 calls/s" in out
    assert "goodput/s" in out
    assert "worst goodput " in out
    assert "slowest return to normal " in out


def test_soak_quick_prints_memory_growth_and_failed_calls() -> None:
    out = _run("soak.py")
    assert "command: " in out
    assert "RSS after " in out
    assert "calls: " in out
    assert " failed of " in out


@pytest.mark.skipif(
    shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists(),
    reason="kamailio is not installed",
)
def test_dispatcher_quick_prints_a_headline_per_worker_count() -> None:
    out = _run("dispatcher.py")
    assert "command: " in out
    for count in (1, 2, 3):
        assert f"{count} worker(s): 100 calls/s with 0 failures" in out
    assert "CPU per call: Kamailio " in out
