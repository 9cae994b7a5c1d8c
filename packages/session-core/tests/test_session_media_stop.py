"""No RTP leaves a call once it ends: BYE sent or received (even when the event queue lags)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import anyio
import anyio.abc
import pytest

from rvoip_dialog_core import ByeReceived, DialogTerminated
from rvoip_session_core import CallDecision, CallSession, Decision, IncomingCall
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._handlers import AutoAnswerHandler
from rvoip_session_core.testing import loopback_builder, uri_of, wait_until

pytestmark = pytest.mark.anyio


class AnswerWithPeerPort(AutoAnswerHandler):
    """Answers with an SDP whose audio goes to a raw UDP socket of the test.

    recvonly: the callee sends nothing, so the caller's symmetric RTP never latches
    onto another address and every packet it sends reaches the raw socket.
    """

    def __init__(self, rtp_port: int) -> None:
        self.rtp_port = rtp_port

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        sdp = (
            "v=0\r\no=- 1 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
        )
        return CallDecision.Accept(sdp)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Nothing to clean up."""


def lag_call_end_events(coordinator: SessionCoordinator, seconds: float) -> None:
    """Handle BYE/termination events ``seconds`` late, as a loaded event loop would."""
    layer = coordinator.call_layer
    original: Callable[[object], None] = layer.handle

    async def later(event: object) -> None:
        await anyio.sleep(seconds)
        original(event)

    def lagging(event: object) -> None:
        if isinstance(event, ByeReceived | DialogTerminated):
            coordinator.task_group.start_soon(later, event)
        else:
            original(event)

    layer.handle = lagging  # type: ignore[method-assign]


async def _collect(sock: anyio.abc.UDPSocket, sequence: list[int], seconds: float) -> None:
    with anyio.move_on_after(seconds):
        while True:
            data, _ = await sock.receive()
            if len(data) >= 12 and data[1] & 0x7F == 0:  # PCMU audio, not RTCP
                sequence.append(struct.unpack_from("!H", data, 2)[0])


@pytest.mark.parametrize("who_hangs_up", ["caller", "callee"])
async def test_no_rtp_after_bye(who_hangs_up: str) -> None:
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as peer_rtp:
        handler = AnswerWithPeerPort(peer_rtp.extra(anyio.abc.SocketAttribute.local_port))
        async with (
            await loopback_builder("alice").build() as alice,
            await loopback_builder("bob", handler).build() as bob,
        ):
            lag_call_end_events(alice, 0.4)
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
            await alice.wait_for_answer(call.id, 5)
            before: list[int] = []
            await _collect(peer_rtp, before, 0.1)
            assert before  # alice's audio reaches the peer's RTP port
            gate = alice.registry.get(call.id).media.gate
            assert gate is not None
            sent_at_bye = gate.sent  # packets alice sent before the BYE
            if who_hangs_up == "caller":
                await alice.terminate_session(call.id)
            else:
                (bob_call,) = await bob.list_active_sessions()
                await bob.terminate_session(bob_call.id)
            after: list[int] = []
            await _collect(peer_rtp, after, 0.5)
            assert await wait_until(lambda: not len(alice.registry))
    # Packets in flight are allowed, and one more tick for the BYE to arrive; nothing later.
    assert len(before) + len(after) <= sent_at_bye + 1
    assert len(set(before + after)) == len(before) + len(after)  # each packet counted once
