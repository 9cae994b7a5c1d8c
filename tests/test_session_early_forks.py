"""Early media in virtual time (issue 13): forked early dialogs, and a 183 without 100rel.

In virtual time: alice calls a forking proxy that rings bob and carol (coordinators that
defer and send early media, each its own tone). The caller plays the latest early
dialog's SDP; the phone that answers wins and its media is what the caller hears after
the 200; the other fork is cancelled by the proxy (RFC 3261 §16.7 step 10).
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from rvoip_dialog_core.testing import ForkingProxy
from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallState,
    Decision,
    IncomingCall,
    SessionCoordinator,
    tone_source,
)
from rvoip_session_core.testing import (
    VirtualCalls,
    count_tone_frames,
    released,
    virtual_time_backend,
)
from rvoip_sip_core import Response
from rvoip_transaction_core import Peer

pytestmark = pytest.mark.anyio

BOB_HZ, CAROL_HZ = 500.0, 1100.0


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """trio on a fresh autojumping MockClock: virtual time."""
    return virtual_time_backend()


class Deferring(AutoAnswerHandler):
    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []
        self.ended: list[str] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: Any, reason: str) -> None:
        self.ended.append(reason)


async def early(phone: SessionCoordinator, handler: Deferring, hz: float) -> str:
    """The phone's deferred call sends early media with its tone; returns its session id."""
    with anyio.fail_after(5):
        while not handler.incoming:
            await anyio.sleep(0.01)
    sid = handler.incoming[0].id
    with anyio.fail_after(5):
        while (await phone.get_session(sid)).state is not CallState.Ringing:
            await anyio.sleep(0.01)
    await phone.send_early_media(sid)
    await phone.set_audio_source(sid, tone_source(hz))
    return sid


async def sends_to(coordinator: SessionCoordinator, sid: str) -> int | None:
    address = (await coordinator.get_media_info(sid)).remote_rtp_address
    return None if address is None else address[1]


async def rtp_port(coordinator: SessionCoordinator, sid: str) -> int | None:
    return (await coordinator.get_media_info(sid)).local_rtp_port


async def heard(caller: SessionCoordinator, sid: str, hz: float) -> bool:
    hits, total = await count_tone_frames(caller, sid, hz, 0.6)
    return total > 10 and hits > total // 2


async def test_forked_early_media_plays_the_latest_and_the_answer_wins() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        bob_handler, carol_handler = Deferring(), Deferring()
        bob = await net.add("bob", bob_handler)
        carol = await net.add("carol", carol_handler)
        targets = [Peer("UDP", *c.local_sip_address) for c in (bob, carol)]
        net.sip.add_relay(5000, ForkingProxy(Peer("UDP", "127.0.0.1", 5000), targets))
        call = await alice.create_outgoing_call(alice.local_uri, "sip:team@127.0.0.1:5000")
        b = await early(bob, bob_handler, BOB_HZ)
        with anyio.fail_after(5):
            while (await alice.get_session(call.id)).state is not CallState.EarlyMedia:
                await anyio.sleep(0.01)
        assert await heard(alice, call.id, BOB_HZ)
        assert await sends_to(alice, call.id) == await rtp_port(bob, b)
        # A second early dialog (another fork): its SDP is the latest, so our RTP goes
        # there. (The virtual media network does not latch sources as rtp-core does, so
        # both forks' packets still arrive here; over sockets the strict latch keeps the
        # signalled one.)
        c = await early(carol, carol_handler, CAROL_HZ)
        await anyio.sleep(0.2)
        assert await sends_to(alice, call.id) == await rtp_port(carol, c)
        assert (await alice.get_session(call.id)).state is CallState.EarlyMedia
        # Bob answers: his 2xx wins, his SDP is applied again, carol's fork is cancelled.
        await bob.accept_incoming_call(b)
        await alice.wait_for_answer(call.id, 5)
        assert await sends_to(alice, call.id) == await rtp_port(bob, b)
        with anyio.fail_after(5):
            while not carol_handler.ended:
                await anyio.sleep(0.05)
        assert carol_handler.ended == ["caller cancelled"]
        assert released(carol)
        await anyio.sleep(0.2)
        assert await heard(alice, call.id, BOB_HZ)
        assert not await heard(alice, call.id, CAROL_HZ)
        await alice.terminate_session(call.id)
        with anyio.fail_after(5):
            while not (released(alice) and released(bob)):
                await anyio.sleep(0.05)


async def test_unreliable_183_from_a_caller_without_100rel_still_carries_early_media() -> None:
    """A caller whose INVITE does not support 100rel gets the 183 unreliably (no Require,
    no RSeq, no PRACK, RFC 3262 §3) and still plays its early media."""
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        agent = net.sip.agents[alice.local_sip_address]
        agent.dialog.config = attrs.evolve(agent.dialog.config, supported=("replaces", "timer"))
        handler = Deferring()
        bob = await net.add("bob", handler)
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        b = await early(bob, handler, BOB_HZ)
        with anyio.fail_after(5):
            while (await alice.get_session(call.id)).state is not CallState.EarlyMedia:
                await anyio.sleep(0.01)
        assert await heard(alice, call.id, BOB_HZ)
        (progress,) = [
            m
            for m in net.sip.messages(status=183)
            if isinstance(m, Response) and "Require" not in m.headers
        ]
        assert "RSeq" not in progress.headers
        assert net.sip.messages(method="PRACK") == []
        await bob.accept_incoming_call(b)
        await alice.wait_for_answer(call.id, 5)
        await alice.terminate_session(call.id)


class EarlyAnnouncer(AutoAnswerHandler):
    """Decides ``CallDecision.EarlyMedia()`` at once; the test answers or rejects later."""

    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return CallDecision.EarlyMedia()


async def test_the_early_media_decision_sends_183_then_waits_for_the_app() -> None:
    """``CallDecision.EarlyMedia()``: the 183 with SDP goes at once (no 180 first), the
    caller hears the callee's prompt while both calls are EarlyMedia, then the app answers."""
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        handler = EarlyAnnouncer()
        bob = await net.add("bob", handler)
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with anyio.fail_after(5):
            while (await alice.get_session(call.id)).state is not CallState.EarlyMedia:
                await anyio.sleep(0.01)
        b = handler.incoming[0].id
        assert (await bob.get_session(b)).state is CallState.EarlyMedia
        await bob.set_audio_source(b, tone_source(BOB_HZ))
        assert await heard(alice, call.id, BOB_HZ)
        assert net.sip.messages(status=180) == []
        await bob.accept_incoming_call(b)
        await alice.wait_for_answer(call.id, 5)
        assert (await alice.get_session(call.id)).state is CallState.Active
        await alice.terminate_session(call.id)
