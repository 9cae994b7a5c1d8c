"""Tests of ``--ladder``/``--sip-log`` (``_cli_log``) and the received-message tap under
them (``coordinator.set_message_tap(tap, received=True)``), over sockets and in the
virtual network.
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from rvoip_session_core import SessionCoordinator
from rvoip_session_core._cli_log import (
    LadderRecorder,
    SipLogWriter,
    WireTap,
    label_of,
)
from rvoip_session_core.testing import (
    VirtualCalls,
    loopback_builder,
    uri_of,
    virtual_time_backend,
    wait_until,
)

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 8\r\n\r\nv=0\r\na=x"
)


def test_label_of_messages() -> None:
    assert label_of(INVITE) == "INVITE (SDP)"
    assert label_of(b"garbage") is None
    ok = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>;tag=2\r\n"
        b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert label_of(ok) == "200 OK (INVITE)"


def test_sip_log_heads_each_message_with_time_direction_and_addresses() -> None:
    out = io.StringIO()
    log = SipLogWriter(out, "127.0.0.1:5060", wall=lambda: 0.25)
    log.record("out", INVITE, ("127.0.0.1", 5070))
    log.record("in", b"SIP/2.0 100 Trying\r\n\r\n", ("127.0.0.1", 5070))
    text = out.getvalue()
    assert text.startswith(
        "--- 1970-01-01T00:00:00.250000+00:00 sent 127.0.0.1:5060 -> 127.0.0.1:5070 "
        f"({len(INVITE)} bytes)\nINVITE sip:bob@127.0.0.1:5070 SIP/2.0\n"
    )
    assert "received 127.0.0.1:5070 -> 127.0.0.1:5060 (22 bytes)\nSIP/2.0 100 Trying\n" in text
    assert "\r" not in text
    assert log.count == 2


def test_ladder_keeps_at_most_its_limit() -> None:
    ticks = iter(range(100))
    ladder = LadderRecorder("us", limit=3, clock=lambda: float(next(ticks)))
    for _ in range(5):
        ladder.record("out", INVITE, ("127.0.0.1", 5070))
    ladder.record("in", b"not sip", ("127.0.0.1", 5070))
    assert len(ladder.entries) == 3
    assert ladder.dropped == 3
    drawn = ladder.render()
    assert "INVITE (SDP)" in drawn
    assert "(3 later messages not drawn: over 3)" in drawn
    assert LadderRecorder("us").render() == "(no SIP messages)"


@pytest.mark.anyio
async def test_no_flag_installs_no_tap() -> None:
    """Cheap when off: without --ladder/--sip-log the coordinator has no tap at all."""
    wire = WireTap(argparse.Namespace(ladder=False, sip_log=None))
    assert not wire.wanted
    async with await loopback_builder("alice").build() as alice:
        wire.attach(alice)
        assert alice.message_tap is None
    wire.close(print_=lambda text: pytest.fail(text))


Seen = list[tuple[str, bytes, tuple[str, int]]]


def _recorder(seen: Seen) -> Any:
    def tap(direction: str, data: bytes, peer: tuple[str, int]) -> None:
        seen.append((direction, data, peer))

    return tap


def _first_lines(seen: Seen, direction: str) -> list[str]:
    return [data.split(b"\r\n", 1)[0].decode() for d, data, _ in seen if d == direction]


async def _call_and_hang_up(alice: SessionCoordinator, bob: SessionCoordinator) -> None:
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
    await alice.wait_for_answer(call.id, 5)
    await alice.terminate_session(call.id)


@pytest.mark.anyio
async def test_received_tap_over_sockets_reports_both_directions_and_comes_off() -> None:
    seen: Seen = []
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        alice.set_message_tap(_recorder(seen), received=True)
        await _call_and_hang_up(alice, bob)
        assert await wait_until(lambda: "SIP/2.0 200 OK" in _first_lines(seen, "in")[-1:])
        sent, got = _first_lines(seen, "out"), _first_lines(seen, "in")
        assert sent[0].startswith("INVITE ")
        assert any(line.startswith("BYE ") for line in sent)
        assert "SIP/2.0 200 OK" in got
        bob_address = bob.local_sip_address
        assert {peer for _, _, peer in seen} == {bob_address}
        # Removed: nothing more is reported, and a plain tap reports nothing received.
        alice.set_message_tap(None)
        count = len(seen)
        await _call_and_hang_up(alice, bob)
        await anyio.sleep(0.1)
        assert len(seen) == count
        alice.message_tap = _recorder(seen)
        await _call_and_hang_up(alice, bob)
        await anyio.sleep(0.1)
        assert {d for d, _, _ in seen[count:]} == {"out"}


@pytest.mark.anyio
async def test_received_tap_set_before_start_and_replaced_wraps_once() -> None:
    first: Seen = []
    second: Seen = []
    alice = await loopback_builder("alice").build()
    alice.set_message_tap(_recorder(first), received=True)
    async with alice, await loopback_builder("bob").build() as bob:
        await _call_and_hang_up(alice, bob)
        assert await wait_until(lambda: _first_lines(first, "in").count("SIP/2.0 200 OK") == 2)
        await anyio.sleep(0.1)
        alice.set_message_tap(_recorder(second), received=True)  # replaces, not stacks
        count = len(first)
        await _call_and_hang_up(alice, bob)
        assert await wait_until(lambda: _first_lines(second, "in").count("SIP/2.0 200 OK") >= 2)
        await anyio.sleep(0.1)
        assert len(first) == count
        # The same call flow: as many messages received each time (a stacked wrapper
        # would have reported each twice).
        assert _first_lines(second, "in") == _first_lines(first, "in")


@pytest.mark.parametrize("anyio_backend", [virtual_time_backend()])
@pytest.mark.anyio
async def test_received_tap_in_the_virtual_network() -> None:
    seen: Seen = []
    async with (
        VirtualCalls() as net,
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
    ):
        alice.set_message_tap(_recorder(seen), received=True)
        await _call_and_hang_up(alice, bob)
        await anyio.sleep(1)
        bob_address = bob.local_sip_address
    assert _first_lines(seen, "out")[0].startswith("INVITE ")
    assert "SIP/2.0 200 OK" in _first_lines(seen, "in")
    assert {peer for _, _, peer in seen} == {bob_address}


def _answer_registers(sock: socket.socket, deadline: float, stop: threading.Event) -> None:
    """A registrar in a few lines: 200 OK to every REGISTER (Contact echoed, expires 60)."""
    sock.settimeout(0.2)
    while time.monotonic() < deadline and not stop.is_set():
        try:
            data, source = sock.recvfrom(65535)
        except TimeoutError:
            continue
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        lines = head.split("\r\n")
        keep = [
            line
            for line in lines[1:]
            if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")
        ]
        contact = next(line for line in lines if line.lower().startswith("contact:"))
        expires = "0" if "expires=0" in head.lower() or "Expires: 0" in head else "60"
        to = [f"{line};tag=reg1" if line.lower().startswith("to:") else line for line in keep]
        reply = [
            "SIP/2.0 200 OK",
            *to,
            f"{contact.split(';expires')[0]};expires={expires}",
            "Content-Length: 0",
        ]
        sock.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), source)


def test_register_logs_its_first_register(tmp_path: Path) -> None:
    """``rvoip register`` taps before the start: the first REGISTER is in the log too."""
    log = tmp_path / "register.log"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        stop = threading.Event()
        registrar = threading.Thread(
            target=_answer_registers, args=(sock, time.monotonic() + 30, stop), daemon=True
        )
        registrar.start()
        try:
            done = subprocess.run(
                [
                    *[sys.executable, "-m", "rvoip_session_core", "register"],
                    f"sip:127.0.0.1:{port}",
                    *["--user", "alice", "--password", "x", "--once", "--sip-log", str(log)],
                    "--ladder",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            stop.set()
            registrar.join(timeout=5)
    assert done.returncode == 0, done.stdout + done.stderr
    text = log.read_text()
    assert text.count(f"-> 127.0.0.1:{port} (") == 2  # REGISTER, then Expires 0
    assert text.count(f"received 127.0.0.1:{port} -> ") == 2
    assert text.index("REGISTER sip:") < text.index("SIP/2.0 200 OK")
    assert done.stdout.count("--------- REGISTER --------->|") == 2


def test_phone_registers_shows_it_and_unregisters_on_quit(tmp_path: Path) -> None:
    """``rvoip phone --register``: the registration is shown (and by ``reg``), and
    ``quit`` removes the binding (a REGISTER with Expires 0 in the SIP log)."""
    log = tmp_path / "phone.log"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        stop = threading.Event()
        registrar = threading.Thread(
            target=_answer_registers, args=(sock, time.monotonic() + 30, stop), daemon=True
        )
        registrar.start()
        proc = subprocess.Popen(
            [
                *[sys.executable, "-m", "rvoip_session_core", "phone", "--port", "0"],
                *["--register", f"sip:127.0.0.1:{port}", "--user", "alice"],
                *["--password", "x", "--sip-log", str(log)],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(40, proc.kill)  # bounds every read below
        watchdog.start()
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if line.startswith("registered sip:alice@127.0.0.1"):
                    break
            proc.stdin.write("reg\nquit\n")
            proc.stdin.close()
            seen.append(proc.stdout.read())
            proc.wait(timeout=20)
        finally:
            watchdog.cancel()
            stop.set()
            registrar.join(timeout=5)
    out = "".join(seen)
    assert proc.returncode == 0, out
    assert out.count("registered sip:alice@127.0.0.1 -> sip:alice@127.0.0.1:") >= 2, out
    assert f"at sip:127.0.0.1:{port} (expires 60s)" in out
    text = log.read_text()
    assert text.count("\nREGISTER sip:") == 2  # the binding, then its removal
    assert "Expires: 0" in text or "expires=0" in text
