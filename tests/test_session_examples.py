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
        "bob registered: expires in",
        "support: 302 Moved Temporarily to sip:queue@support.local",
        "+18005551234: 302 Moved Temporarily to sip:tollfree@gateway.com",
        "nobody: 480 Temporarily Unavailable",
        "alice -> bob: Active",
        "bob's phone rang for sip:alice@127.0.0.1",
        "bob: RTP flows on the leg the PBX bridged to alice",
        "bob: call ended",
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
    "attended_transfer": [
        "carol: call with sip:alice@127.0.0.1 ended (replaced)",
        "alice: NOTIFY 200 OK (final: True)",
        "ended (transferred)",
        "alice: 0 calls left",
        "bob: talking to sip:carol@",
    ],
    "instant_messages": [
        "bob: 'lunch?' (pager mode, ticket 7)",
        "alice: MESSAGE refused with 415",
        "as <sip:+15550100@127.0.0.1>",
        "bob: 'can you hear me?' (in the call",
        "alice: done",
    ],
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
    "early_media": [
        "alice: heard the announcement while EarlyMedia",
        "alice: answered, state Active",
        "alice: second call refused with 486 after the announcement",
        "alice: done",
    ],
    "encrypted_media": [
        "alice -> bob: RTP/SAVP, PCMU, SRTP suite AES_CM_128_HMAC_SHA1_80",
        "bob hears alice's 1 kHz tone in",
        ", 0 SRTP failures",
        "alice -> carol: refused with 488",
        "alice: done",
    ],
    "ivr_menu": [
        "ivr: sip:alice@127.0.0.1 pressed 1 -> agent",
        "agent: talking to sip:alice@127.0.0.1",
        "ivr: sip:bob@127.0.0.1 pressed 2 -> goodbye",
        "bob: call ended (remote hangup)",
        "ivr: no key from sip:carol@127.0.0.1, menu again",
        "ivr: no key from sip:carol@127.0.0.1 twice, hanging up",
        "carol: call ended (remote hangup)",
        "ivr: carol's call recorded, 2 channels",
        "ivr: done",
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


@pytest.mark.parametrize(
    "name",
    [
        "quick_start",
        "bridge_monitoring",
        "instant_messages",
        "attended_transfer",
        "early_media",
        "encrypted_media",
        "ivr_menu",
    ],
)
def test_example_runs_on_trio(name: str) -> None:
    out = run_example(name, "trio")
    assert EXPECTED[name][-1] in out


def test_every_example_is_tested() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.py")} == set(EXPECTED)
