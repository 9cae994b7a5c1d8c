"""Every program in examples/ runs against its loopback peer and prints what it should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "quick_start": ["Call initiated:", "Call connected!", "Clean shutdown"],
    "pattern1_immediate": ["alice: connected", "mallory: rejected with 403 Unauthorized"],
    "pattern2_deferred": ["accepted sip:alice@127.0.0.1", "eve: 603 Not authorized"],
    "bridge_monitoring": ["joined bridge", "left bridge", "ended", "700 Hz tone in"],
    "call_center_queue": ["served in order: ['sip:ann@", "still queued: 0"],
    "pbx_routing": [
        "support: 302 Moved Temporarily to sip:queue@support.local",
        "+18005551234: 302 Moved Temporarily to sip:tollfree@gateway.com",
        "nobody: 404 No Route",
    ],
    "composite_chain": ["403 Blocked", "302 Moved Temporarily", "queued (1 waiting)"],
    "softphone": [
        "phone: Initiating -> Active",
        "far end: DTMF 4",
        "far end: DTMF #",
        "phone: Active -> OnHold",
        "phone: OnHold -> Active",
        "far end: call ended (remote hangup)",
    ],
    "quality_monitoring": ["report 2: MOS", "(good)", "customer side:", "RTT"],
    "busy_lamp_field": [
        "alice sees bob: idle",
        "alice sees bob: ringing",
        "alice sees bob: busy",
        "lamp subscription ended: unsubscribed",
    ],
    "message_waiting": [
        "voicemail: alice watched by sip:alice@127.0.0.1",
        "alice: waiting=False new=0 old=2",
        "alice: waiting=True new=1 old=2",
        "subscription ended: unsubscribed",
    ],
}


def run_example(name: str, backend: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    out = run_example(name, "asyncio")
    for needle in EXPECTED[name]:
        assert needle in out


@pytest.mark.parametrize("name", ["quick_start", "bridge_monitoring"])
def test_example_runs_on_trio(name: str) -> None:
    out = run_example(name, "trio")
    assert EXPECTED[name][-1] in out


def test_every_example_is_tested() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.py")} == set(EXPECTED)
