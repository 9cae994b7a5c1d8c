"""Replaces (RFC 3891) on the receiving side and attended transfer, between coordinators."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import anyio
import attrs
import pytest

from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallReplaced,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    SessionControl,
    SessionCoordinator,
    TransferProgress,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    VirtualCalls,
    count_tone_frames,
    loopback_builder,
    next_event,
    released,
    uri_of,
    virtual_time_backend,
    wait_until,
)
from rvoip_sip_core import Headers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time (trio + MockClock)."""
    return virtual_time_backend()


class Counting(AutoAnswerHandler):
    """Answers every call and counts how often it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.asked += 1
        return CallDecision.Accept()


async def active(coordinator: SessionCoordinator, count: int) -> list[CallSession]:
    found: list[CallSession] = []

    async def check() -> bool:
        found[:] = [
            s for s in await coordinator.list_active_sessions() if s.state is CallState.Active
        ]
        return len(found) == count and len(coordinator.registry) == count

    assert await wait_until(check), found
    return found


def replaces_of(coordinator: SessionCoordinator, session_id: str) -> str:
    """The Replaces value that names a call of ``coordinator`` at its peer (RFC 3891 §3)."""
    did = coordinator.registry.get(session_id).dialog_id
    assert did is not None
    # The receiver's local tag is our remote tag.
    return f"{did.call_id};to-tag={did.remote_tag};from-tag={did.local_tag}"


async def test_invite_with_replaces_ends_the_replaced_call(net: VirtualCalls) -> None:
    """Issue 13 regression: an INVITE with Replaces was answered as a new call.

    The handler was asked as for any call and the replaced call stayed up: a ghost call
    after every attended transfer a desk phone made. Now Carol answers Bob's replacing
    INVITE without asking her handler, ends Alice's call with BYE, reports CallReplaced,
    and Bob hears the tone Carol was playing to Alice.
    """
    carol_handler = Counting()
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol", carol_handler)) as carol,
    ):
        for coordinator, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            trace.attach(coordinator, name)
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(a_call.id, 5)
        (c_old,) = await active(carol, 1)
        old_did = alice.registry.get(a_call.id).dialog_id
        assert old_did is not None
        old_call_id = old_did.call_id
        await carol.set_audio_source(c_old.id, tone_source(900))
        carol_events = carol.events()
        b_call = await bob.create_outgoing_call(
            "sip:bob@127.0.0.1",
            uri_of(carol, "carol"),
            headers={"Replaces": replaces_of(alice, a_call.id)},
        )
        await bob.wait_for_answer(b_call.id, 5)
        replaced = await next_event(carol_events, CallReplaced)
        assert isinstance(replaced, CallReplaced)
        assert replaced.old_session_id == c_old.id
        assert await wait_until(lambda: not len(alice.registry))
        (c_new,) = await active(carol, 1)
        assert c_new.id == replaced.new_session_id
        assert carol_handler.asked == 1  # Alice's call only
        # The new call inherits the audio source of the call it replaced.
        hits, total = await count_tone_frames(bob, b_call.id, 900, 0.5)
        assert hits > total // 3
    # RFC 3891 §3: Carol ended the replaced dialog with a BYE.
    carol_byes = [
        m.message.call_id for m in trace.messages if m.source == "carol" and m.kind == "BYE"
    ]
    assert carol_byes[:1] == [old_call_id]  # the second one: Carol stops, ending Bob's call
    # It works end to end, so it is advertised (RFC 3891 §2: Supported: replaces).
    answer = [m.message for m in trace.messages if m.source == "carol" and m.kind == "200/INVITE"]
    assert "replaces" in (answer[-1].headers.get("Supported") or "")


async def test_replaces_naming_no_call_is_refused_481(net: VirtualCalls) -> None:
    """RFC 3891 §3: a Replaces that matches no dialog gets 481; nothing else changes."""
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(a_call.id, 5)
        b_call = await bob.create_outgoing_call(
            "sip:bob@127.0.0.1",
            uri_of(carol, "carol"),
            headers={"Replaces": "nosuchcall@x;to-tag=1;from-tag=2"},
        )
        with pytest.raises(Exception) as info:
            await bob.wait_for_answer(b_call.id, 5)
        assert getattr(info.value, "status", None) == 481
        await active(alice, 1)
        await active(carol, 1)


async def test_replaces_of_a_ringing_call_we_placed_cancels_it(net: VirtualCalls) -> None:
    """RFC 3891 §3: our early dialog as UAC may be replaced: it is CANCELled."""

    class Ringing(AutoAnswerHandler):
        async def on_incoming_call(self, call: IncomingCall) -> Decision:
            return CallDecision.Defer()

    async with (
        net.coordinator(net.builder("alice", Ringing())) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        c_call = await carol.create_outgoing_call("sip:carol@127.0.0.1", uri_of(alice, "alice"))

        async def ringing() -> bool:
            return (await carol.get_session(c_call.id)).state is CallState.Ringing

        assert await wait_until(ringing)
        did = carol.registry.get(c_call.id).dialog_id
        assert did is not None
        replaces = f"{did.call_id};to-tag={did.local_tag};from-tag={did.remote_tag}"
        b_call = await bob.create_outgoing_call(
            "sip:bob@127.0.0.1", uri_of(carol, "carol"), headers={"Replaces": replaces}
        )
        await bob.wait_for_answer(b_call.id, 5)
        assert await wait_until(lambda: not len(alice.registry))
        ended = carol.registry.get_or_ended(c_call.id)
        assert ended.state is CallState.Cancelled
        await active(carol, 1)


async def test_replacing_call_takes_the_old_calls_bridge_seat(net: VirtualCalls) -> None:
    """The new call inherits the replaced call's role: its seat in a bridge."""
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
        net.coordinator(net.builder("dave")) as dave,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        d_call = await dave.create_outgoing_call("sip:dave@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(a_call.id, 5)
        await dave.wait_for_answer(d_call.id, 5)
        legs = {leg.from_: leg for leg in await active(carol, 2)}
        bridge = await carol.bridge_sessions(
            legs["sip:alice@127.0.0.1"].id, legs["sip:dave@127.0.0.1"].id
        )
        await dave.set_audio_source(d_call.id, tone_source(1300))
        b_call = await bob.create_outgoing_call(
            "sip:bob@127.0.0.1",
            uri_of(carol, "carol"),
            headers={"Replaces": replaces_of(alice, a_call.id)},
        )
        await bob.wait_for_answer(b_call.id, 5)
        assert await wait_until(lambda: not len(alice.registry))
        info = await carol.get_bridge_info(bridge)
        members = set(info.participants)
        assert legs["sip:dave@127.0.0.1"].id in members
        assert legs["sip:alice@127.0.0.1"].id not in members
        assert len(members) == 2
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(bob, b_call.id, 1300, 0.5)
        assert hits > total // 3


async def test_attended_transfer_connects_transferee_and_target(net: VirtualCalls) -> None:
    """A talks to B and consults C; transfer_attended leaves B and C talking, A with none."""
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob")) as bob,
        net.coordinator(net.builder("carol")) as carol,
    ):
        for coordinator, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            trace.attach(coordinator, name)
        ab = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(ab.id, 5)
        ac = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(ac.id, 5)
        carol_uri = uri_of(carol, "carol")
        ab_did = alice.registry.get(ab.id).dialog_id
        assert ab_did is not None
        ab_call_id = ab_did.call_id
        consult_did = alice.registry.get(ac.id).dialog_id
        assert consult_did is not None
        alice_events = alice.events()
        carol_events = carol.events()
        await SessionControl.transfer_attended(alice, ab.id, ac.id)
        assert await alice.wait_for_transfer(ab.id, 10) == 200
        statuses = []
        while True:
            progress = await next_event(alice_events, TransferProgress)
            assert isinstance(progress, TransferProgress)
            statuses.append(progress.status)
            if progress.final:
                break
        assert statuses[0] == 100
        assert statuses[-1] == 200
        replaced = await next_event(carol_events, CallReplaced)
        assert isinstance(replaced, CallReplaced)
        assert await wait_until(lambda: not len(alice.registry))
        (b_new,) = await active(bob, 1)
        (c_new,) = await active(carol, 1)
        assert c_new.id == replaced.new_session_id
        assert b_new.to == carol_uri
        await carol.set_audio_source(c_new.id, tone_source(1100))
        await bob.set_audio_source(b_new.id, tone_source(600))
        hits, total = await count_tone_frames(bob, b_new.id, 1100, 0.5)
        assert hits > total // 3
        hits, total = await count_tone_frames(carol, c_new.id, 600, 0.5)
        assert hits > total // 3
    refer = trace.requests("REFER")[0]
    refer_to = refer.headers.get("Refer-To") or ""
    assert refer_to.startswith(f"<{carol_uri}?Replaces=")
    escaped = refer_to[refer_to.index("Replaces=") + len("Replaces=") : -1]
    assert ";" not in escaped
    assert "=" not in escaped
    assert unquote(escaped) == (
        f"{consult_did.call_id};to-tag={consult_did.remote_tag};from-tag={consult_did.local_tag}"
    )
    invites = [i for i in trace.requests("INVITE") if "Replaces" in i.headers]
    assert [i.headers.get("Replaces") for i in invites] == [unquote(escaped)]
    assert "?" not in str(invites[0].uri)
    # Both of Alice's legs ended with a BYE: hers to Bob, Carol's to her.
    byes = [(m.source, m.message.call_id) for m in trace.messages if m.kind == "BYE"]
    assert ("carol", consult_did.call_id) in byes
    assert ("alice", ab_call_id) in byes
    assert [source for source, _ in byes].count("alice") == 1


async def test_update_media_by_update_both_ways(net: VirtualCalls) -> None:
    """RFC 3311: update_media(method="update") sends the offer in an UPDATE (both sides
    allow it), the peer answers in the 200 and both re-point media (here: to PCMA)."""
    trace = SipTrace()
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(net.builder("bob").with_preferred_codecs(["PCMA", "PCMU"])) as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        (bob_call,) = await active(bob, 1)
        assert (await alice.get_media_info(call.id)).codec == "PCMU"
        pcma_only = (await alice.generate_sdp_offer(call.id)).replace(
            "RTP/AVP 0 8 101", "RTP/AVP 8 101"
        )
        # The caller updates (the callee's 200 listed UPDATE in Allow).
        await SessionControl.update_media(alice, call.id, pcma_only, method="update")
        assert (await alice.get_media_info(call.id)).codec == "PCMA"
        assert (await bob.get_media_info(bob_call.id)).codec == "PCMA"
        await bob.set_audio_source(bob_call.id, tone_source(900))
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(alice, call.id, 900, 0.5)
        assert hits > total // 3
        # The callee updates back (the caller's INVITE listed UPDATE in Allow).
        await bob.update_media(bob_call.id, method="update")
        await alice.set_audio_source(call.id, tone_source(700))
        await anyio.sleep(0.1)
        hits, total = await count_tone_frames(bob, bob_call.id, 700, 0.5)
        assert hits > total // 3
    # One UPDATE each way (a UDP retransmission shares its branch).
    updates = {u.top_via.branch: u for u in trace.requests("UPDATE")}.values()
    assert [u.body.startswith(b"v=0") for u in updates] == [True, True]
    ok = [
        m.message
        for m in trace.messages
        if m.kind == "200/UPDATE" and m.message.body.startswith(b"v=0")
    ]
    assert len({r.top_via.branch for r in ok}) == 2
    assert len(trace.requests("INVITE")) == 1  # no re-INVITE


async def test_update_falls_back_to_reinvite_when_the_peer_does_not_allow_it(
    net: VirtualCalls,
) -> None:
    """A peer whose Allow lacks UPDATE gets the offer by re-INVITE instead."""
    trace = SipTrace()
    no_update = net.builder("bob")
    async with (
        net.coordinator(net.builder("alice")) as alice,
        net.coordinator(no_update) as bob,
    ):
        trace.attach(alice, "alice")
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        record = alice.registry.get(call.id)
        assert record.answer is not None
        # As if Bob's 200 had listed no UPDATE in Allow.
        record.answer = attrs.evolve(
            record.answer,
            headers=Headers([("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")]),
        )
        await alice.update_media(call.id, method="update")
        with pytest.raises(Exception, match="method must be"):
            await alice.update_media(call.id, method="bogus")
    assert trace.requests("UPDATE") == []
    assert len(trace.requests("INVITE")) == 2


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_attended_transfer_over_loopback_udp() -> None:
    """The attended transfer between three coordinators on 127.0.0.1 over real UDP sockets:
    B and C end up in a call with RTP both ways, A with none and nothing left behind."""
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
        await loopback_builder("carol").build() as carol,
    ):
        ab = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(ab.id, 5)
        ac = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(ac.id, 5)
        await alice.hold_session(ac.id)  # the usual consultation: C waits on hold
        carol_events = carol.events()
        await alice.transfer_attended(ab.id, ac.id)
        assert await alice.wait_for_transfer(ab.id, 10) == 200
        replaced = await next_event(carol_events, CallReplaced)
        assert isinstance(replaced, CallReplaced)
        assert await wait_until(lambda: released(alice))
        (b_new,) = await active(bob, 1)
        (c_new,) = await active(carol, 1)
        await carol.set_audio_source(c_new.id, tone_source(1100))
        await bob.set_audio_source(b_new.id, tone_source(600))
        hits, total = await count_tone_frames(bob, b_new.id, 1100, 0.6)
        assert hits > total // 3
        hits, total = await count_tone_frames(carol, c_new.id, 600, 0.6)
        assert hits > total // 3
        await bob.terminate_session(b_new.id)
        assert await wait_until(lambda: released(bob) and released(carol))


async def test_replacing_invite_is_authenticated_when_an_authenticator_is_set(
    net: VirtualCalls,
) -> None:
    """RFC 3891 §6: Replaces lets a caller end someone's call, so the request is challenged
    like any INVITE: without credentials it fails 401 and the call it names stays up."""
    passwords = {"bob": "secret", "alice": "pw"}
    carol_builder = net.builder("carol").with_authenticator("carol.test", passwords)
    async with (
        net.coordinator(net.builder("alice").with_credentials("alice", "pw")) as alice,
        net.coordinator(net.builder("mallory")) as mallory,
        net.coordinator(net.builder("bob").with_credentials("bob", "secret")) as bob,
        net.coordinator(carol_builder) as carol,
    ):
        a_call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(carol, "carol"))
        await alice.wait_for_answer(a_call.id, 5)
        replaces = replaces_of(alice, a_call.id)
        m_call = await mallory.create_outgoing_call(
            "sip:mallory@127.0.0.1", uri_of(carol, "carol"), headers={"Replaces": replaces}
        )
        with pytest.raises(Exception) as info:
            await mallory.wait_for_answer(m_call.id, 5)
        assert getattr(info.value, "status", None) == 401
        await active(alice, 1)
        b_call = await bob.create_outgoing_call(
            "sip:bob@127.0.0.1", uri_of(carol, "carol"), headers={"Replaces": replaces}
        )
        await bob.wait_for_answer(b_call.id, 5)
        assert await wait_until(lambda: not len(alice.registry))
        (c_call,) = await active(carol, 1)
        assert (await carol.get_session(c_call.id)).from_ == "sip:bob@127.0.0.1"
