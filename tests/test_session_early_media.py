"""Early media both ways (issue 13): 183 with SDP, 100rel/PRACK, media before the 200.

Over real loopback sockets on both anyio backends: the callee defers, sends early media
(a tone) with ``send_early_media`` and answers or rejects later; the caller plays the 183's
SDP, shows ``CallState.EarlyMedia`` and PRACKs the reliable 183 once.
"""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import (
    AutoAnswerHandler,
    CallDecision,
    CallFailed,
    CallState,
    Decision,
    IncomingCall,
    InvalidState,
    SessionCoordinator,
    tone_source,
)
from rvoip_session_core.testing import (
    SipTrace,
    count_tone_frames,
    loopback_builder,
    released,
    uri_of,
    wait_until,
)

pytestmark = pytest.mark.anyio

TONE = 800.0


class Deferring(AutoAnswerHandler):
    """Defers every call; the test decides (early media, then accept or reject)."""

    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return CallDecision.Defer()


async def early_call(
    alice: SessionCoordinator, bob: SessionCoordinator, handler: Deferring
) -> tuple[str, str]:
    """Alice calls bob; bob sends early media with a tone. Returns (alice's, bob's) ids."""
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
    assert await wait_until(lambda: bool(handler.incoming))
    theirs = handler.incoming[0].id
    assert await wait_until(lambda: bob.registry.get(theirs).state is CallState.Ringing, timeout=5)
    await bob.send_early_media(theirs)
    await bob.set_audio_source(theirs, tone_source(TONE))
    return call.id, theirs


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_callee_plays_early_media_then_answers() -> None:
    """Bug (issue 13): the caller PRACKed a reliable 183 but never applied its SDP (the
    announcement was silent) and the callee could not send a 183 at all. Now the tone
    the callee plays before answering reaches the caller while its call is EarlyMedia,
    and the 200 carries the same SDP as the 183."""
    handler = Deferring()
    trace = SipTrace()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", handler).build() as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        a, b = await early_call(alice, bob, handler)
        assert await wait_until(
            lambda: alice.registry.get(a).state is CallState.EarlyMedia, timeout=5
        )
        assert (await bob.get_session(b)).state is CallState.EarlyMedia
        hits, total = await count_tone_frames(alice, a, TONE, 0.6)
        assert (await alice.get_session(a)).state is CallState.EarlyMedia  # no 200 yet
        assert total > 10
        assert hits > total // 2, f"tone heard in {hits} of {total} early frames"
        stats = await alice.get_media_statistics(a)
        assert stats is not None
        assert stats.packets_received > 10
        await bob.accept_incoming_call(b)
        await alice.wait_for_answer(a, 5)
        assert (await alice.get_session(a)).state is CallState.Active
        (early,) = list(trace.responses(183))
        ok = next(r for r in trace.responses(200) if r.cseq.method == "INVITE")
        assert early.body
        assert ok.body == early.body  # RFC 3264: the offer/answer was done in the 183
        # RFC 3262: the INVITE said Supported: 100rel, the 183 went reliably, one PRACK.
        invite = trace.requests("INVITE")[0]
        assert "100rel" in (invite.headers.get("Supported") or "")
        assert early.headers.get("Require") == "100rel"
        rseq = early.headers.get("RSeq")
        (prack,) = trace.requests("PRACK")
        assert prack.headers.get("RAck") == f"{rseq} {invite.cseq.seq} INVITE"
        hits, total = await count_tone_frames(alice, a, TONE, 0.4)
        assert hits > total // 2
        await alice.terminate_session(a)
        assert await wait_until(lambda: released(alice) and released(bob))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_callee_sends_early_media_then_rejects_486() -> None:
    """An announcement then a refusal: the caller gets the 183 reliably (and PRACKs it),
    then the 486 ends its call; both sides release their media."""
    handler = Deferring()
    trace = SipTrace()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob", handler).build() as bob,
    ):
        trace.attach(alice, "alice")
        trace.attach(bob, "bob")
        a, b = await early_call(alice, bob, handler)
        assert await wait_until(
            lambda: alice.registry.get(a).state is CallState.EarlyMedia, timeout=5
        )
        assert await wait_until(lambda: len(trace.requests("PRACK")) == 1, timeout=5)
        await bob.reject_incoming_call(b, "Busy Here", 486)
        with pytest.raises(CallFailed) as info:
            await alice.wait_for_answer(a, 5)
        assert info.value.status == 486
        assert trace.responses(183)[0].headers.get("Require") == "100rel"
        assert len(trace.requests("PRACK")) == 1
        assert await wait_until(lambda: released(alice) and released(bob))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_send_early_media_needs_a_waiting_call_with_an_offer() -> None:
    """``send_early_media`` on a call that is not waiting for an answer is refused."""
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        with pytest.raises(InvalidState):
            await alice.send_early_media(call.id)
        (theirs,) = await bob.list_active_sessions()
        with pytest.raises(InvalidState):
            await bob.send_early_media(theirs.id)
        await alice.terminate_session(call.id)
        with anyio.fail_after(5):
            while not (released(alice) and released(bob)):
                await anyio.sleep(0.05)
