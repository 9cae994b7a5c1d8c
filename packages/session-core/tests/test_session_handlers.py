"""Tests of CallHandler defaults and the ready-made handlers."""

from __future__ import annotations

import logging
import random
import string
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_media_core import MediaEngine
from rvoip_rtp_core import RtpSession
from rvoip_session_core import (
    AutoAnswerHandler,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    CompositeHandler,
    Decision,
    Defer,
    Forward,
    IncomingCall,
    QualityMetrics,
    QueueHandler,
    Reject,
    RoutingHandler,
    SessionId,
)
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._handlers import decides_now, overridden_hooks
from rvoip_session_core._media import CallMedia
from rvoip_session_core._media_manager import SocketMedia
from rvoip_session_core._types import Accept
from rvoip_session_core.testing import loopback_builder, released, uri_of, wait_until


def incoming(n: int = 1, to: str = "sip:bob@127.0.0.1:5070", frm: str = "sip:a@h") -> IncomingCall:
    return IncomingCall(SessionId(f"s{n}"), frm, to, None)


def ended(call: IncomingCall) -> CallSession:
    return CallSession(call.id, call.from_, call.to, CallState.Cancelled)


class Blacklist(CallHandler):
    def __init__(self, *blocked: str) -> None:
        self.blocked = set(blocked)
        self.ended: list[str] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return Reject("Blocked", 403) if call.from_ in self.blocked else Accept()

    async def screen_call(self, call: IncomingCall) -> Decision | None:
        return Reject("Blocked", 403) if call.from_ in self.blocked else None

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        self.ended.append(reason)


class Exploding(CallHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return Accept()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        raise RuntimeError("boom")

    async def on_incoming_transfer_request(
        self, session_id: SessionId, target: str, referred_by: str | None
    ) -> bool:
        return False


@pytest.mark.anyio
async def test_auto_answer_accepts_with_generated_sdp() -> None:
    handler = AutoAnswerHandler()
    assert await handler.on_incoming_call(incoming()) == Accept(None)
    assert await handler.screen_call(incoming()) == Accept(None)


@pytest.mark.anyio
async def test_default_hooks_are_harmless() -> None:
    handler = AutoAnswerHandler()
    sid = SessionId("s")
    await handler.on_call_established(ended(incoming()), None, None)
    await handler.on_call_state_changed(sid, CallState.Ringing, CallState.Active, None)
    await handler.on_dtmf(sid, "5")
    await handler.on_media_quality(sid, QualityMetrics(4.4, 93.0, 0.0, 0.0))
    assert await handler.on_incoming_transfer_request(sid, "sip:c@h", None) is True


@pytest.mark.anyio
async def test_queue_defers_in_fifo_order_and_refuses_when_full() -> None:
    queue = QueueHandler(2)
    assert await queue.on_incoming_call(incoming(1)) == Defer()
    assert await queue.on_incoming_call(incoming(2)) == Defer()
    assert await queue.on_incoming_call(incoming(3)) == Reject("Queue Full", 486)
    assert await queue.screen_call(incoming(4)) is None
    assert queue.queue_size() == 2
    first = queue.dequeue()
    assert first is not None
    assert first.id == "s1"
    second = queue.dequeue()
    assert second is not None
    assert second.id == "s2"
    assert queue.dequeue() is None


@pytest.mark.anyio
async def test_queue_forgets_calls_that_ended_while_waiting() -> None:
    queue = QueueHandler(5)
    calls = [incoming(i) for i in range(3)]
    for call in calls:
        await queue.on_incoming_call(call)
    await queue.on_call_ended(ended(calls[1]), "caller hung up")
    assert [queue.dequeue(), queue.dequeue()] == [calls[0], calls[2]]


@pytest.mark.anyio
async def test_queue_wait_for_call_wakes_on_arrival() -> None:
    queue = QueueHandler(5)
    got: list[IncomingCall] = []

    async def consumer() -> None:
        got.append(await queue.wait_for_call())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await anyio.wait_all_tasks_blocked()
            await queue.on_incoming_call(incoming(9))
    assert [c.id for c in got] == ["s9"]


def test_queue_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        QueueHandler(0)


@pytest.mark.anyio
async def test_routing_matches_wildcards_in_order_and_rejects_by_default() -> None:
    router = RoutingHandler()
    router.add_route("sip:support@*", "sip:queue@support.local")
    router.add_route("sip:sales@*", "sip:queue@sales.local")
    router.add_route("sip:+1800*", "sip:tollfree@gateway.com")
    assert await router.on_incoming_call(incoming(to="sip:support@127.0.0.1:5070")) == Forward(
        "sip:queue@support.local"
    )
    assert await router.on_incoming_call(incoming(to='"S" <sip:SALES@pbx;transport=udp>')) == (
        Forward("sip:queue@sales.local")
    )
    assert await router.on_incoming_call(incoming(to="sip:+18005551234@gw")) == Forward(
        "sip:tollfree@gateway.com"
    )
    assert await router.on_incoming_call(incoming(to="sip:bob@127.0.0.1")) == Reject(
        "No Route", 404
    )
    assert await router.screen_call(incoming(to="sip:bob@127.0.0.1")) is None
    assert router.routes[0] == ("sip:support@*", "sip:queue@support.local")


@pytest.mark.anyio
async def test_routing_falls_back_to_request_uri() -> None:
    router = RoutingHandler().add_route("sip:helpdesk@*", "sip:agent@h")
    call = IncomingCall(
        SessionId("s"), "sip:a@h", "sip:bob@h", None, request_uri="sip:helpdesk@127.0.0.1"
    )
    assert await router.on_incoming_call(call) == Forward("sip:agent@h")


def test_routing_pattern_without_star_is_exact() -> None:
    router = RoutingHandler().add_route("sip:bob@h", "sip:x@y")
    assert router.route_for("sip:bob@h") == "sip:x@y"
    assert router.route_for("sip:bob@hh") is None


@pytest.mark.anyio
async def test_composite_first_decisive_handler_wins() -> None:
    blacklist = Blacklist("sip:spam@h")
    router = RoutingHandler().add_route("sip:support@*", "sip:queue@support.local")
    queue = QueueHandler(1)
    chain = CompositeHandler().add_handler(blacklist).add_handler(router).add_handler(queue)
    assert chain.handlers == (blacklist, router, queue)
    assert await chain.on_incoming_call(incoming(frm="sip:spam@h")) == Reject("Blocked", 403)
    assert await chain.on_incoming_call(incoming(to="sip:support@x")) == Forward(
        "sip:queue@support.local"
    )
    assert await chain.on_incoming_call(incoming(1)) == Defer()
    assert queue.queue_size() == 1
    assert await chain.on_incoming_call(incoming(2)) == Reject("Decline", 603)


@pytest.mark.anyio
async def test_composite_with_plain_handler_is_decisive() -> None:
    chain = CompositeHandler().add_handler(AutoAnswerHandler()).add_handler(QueueHandler(1))
    assert await chain.on_incoming_call(incoming()) == Accept(None)


@pytest.mark.anyio
async def test_composite_fans_out_hooks_and_survives_a_failing_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blacklist = Blacklist()
    chain = CompositeHandler().add_handler(Exploding()).add_handler(blacklist)
    with caplog.at_level(logging.ERROR):
        await chain.on_call_ended(ended(incoming()), "bye")
    assert blacklist.ended == ["bye"]
    assert "hook failed" in caplog.text
    sid = SessionId("s")
    await chain.on_dtmf(sid, "1")
    await chain.on_call_state_changed(sid, CallState.Ringing, CallState.Active, None)
    await chain.on_call_established(ended(incoming()), None, None)
    await chain.on_media_quality(sid, QualityMetrics(None, None, 0.0, 0.0))
    assert await chain.on_incoming_transfer_request(sid, "sip:c@h", None) is False
    assert await CompositeHandler().on_incoming_transfer_request(sid, "sip:c@h", None) is True


URI_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ":@.+-_", max_size=30)


@given(URI_TEXT, URI_TEXT)
def test_routing_star_matches_any_suffix(prefix: str, rest: str) -> None:
    router = RoutingHandler().add_route(prefix + "*", "sip:target@h")
    assert router.route_for(prefix + rest) == "sip:target@h"
    assert RoutingHandler().add_route("*", "sip:t@h").route_for(prefix + rest) == "sip:t@h"


@given(st.text(alphabet="abc.:@*", max_size=20), st.text(alphabet="abc.:@", max_size=20))
def test_routing_never_raises_and_literal_patterns_match_themselves(pattern: str, uri: str) -> None:
    router = RoutingHandler().add_route(pattern, "sip:t@h")
    router.route_for(uri)
    literal = RoutingHandler().add_route(uri, "sip:t@h")
    assert literal.route_for(uri) == "sip:t@h"


# --- deciding at once and the hooks worth queuing ------------------------------------


class PlainAnswer(AutoAnswerHandler):
    """Overrides nothing: inherits the auto-answer's synchronous decision."""


class CustomAnswer(AutoAnswerHandler):
    """Overrides on_incoming_call only: its decide_now must not be trusted."""

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return Reject("Busy Here", 486)


class EndWatcher(AutoAnswerHandler):
    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Overrides the auto-answer's empty hook."""

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:
        """An optional hook."""


def test_decide_now_is_used_only_at_or_below_on_incoming_call() -> None:
    assert decides_now(AutoAnswerHandler())
    assert decides_now(PlainAnswer())
    assert decides_now(RoutingHandler())
    assert not decides_now(CustomAnswer())
    assert not decides_now(QueueHandler())
    assert not decides_now(CompositeHandler())
    assert not decides_now(Blacklist())
    assert AutoAnswerHandler().decide_now(incoming()) == Accept(None)
    assert Blacklist().decide_now(incoming()) is None


def test_routing_decides_now_as_it_would_asynchronously() -> None:
    router = RoutingHandler().add_route("sip:support@*", "sip:queue@10.0.0.9")
    assert router.decide_now(incoming(to="sip:support@example.com")) == Forward(
        "sip:queue@10.0.0.9"
    )
    assert router.decide_now(incoming(to="sip:sales@example.com")) == Reject("No Route", 404)


def test_only_implemented_hooks_are_worth_queuing() -> None:
    assert overridden_hooks(AutoAnswerHandler()) == frozenset()
    assert overridden_hooks(RoutingHandler()) == frozenset()
    assert overridden_hooks(EndWatcher()) == {"on_call_ended", "on_dtmf"}
    assert overridden_hooks(QueueHandler()) == {"on_call_ended"}
    composite = overridden_hooks(CompositeHandler())
    assert composite == {
        "on_call_ended",
        "on_call_established",
        "on_call_state_changed",
        "on_dtmf",
        "on_media_quality",
    }


@pytest.mark.anyio
async def test_a_call_refused_at_once_binds_no_rtp() -> None:
    router = RoutingHandler().add_route("sip:support@*", "sip:queue@127.0.0.1:5999")
    opened: list[str] = []

    class Spy(SocketMedia):
        def open_now(self, media: CallMedia, *args: Any) -> None:
            opened.append(media.session_id)
            super().open_now(media, *args)

        async def open_in_task(self, tg: Any, media: CallMedia, *args: Any) -> None:
            opened.append(media.session_id)  # the trio path opens media in a task
            await super().open_in_task(tg, media, *args)

    bob_coordinator = SessionCoordinator(
        loopback_builder("bob").config(), router, media_backend=Spy()
    )
    alice_builder = loopback_builder("alice").with_redirects(False)  # report the 302
    async with await alice_builder.build() as alice, bob_coordinator as bob:
        for user, status in (("nobody", 404), ("support", 302)):
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, user))
            with pytest.raises(CallFailed) as info:
                await alice.wait_for_answer(call.id, 5)
            assert info.value.status == status
        assert opened == []
        assert await wait_until(lambda: released(alice) and released(bob))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_socket_media_shares_one_rtp_config_and_names_each_session() -> None:
    """Every call's RTP session comes from one frozen config; the CNAME is the call's id.

    The config was built per call (~2 us of each answered call); the default backend now
    keeps one per host and port range and gives rtp-core each call's CNAME on its own.
    """
    backend = SocketMedia()
    engine = MediaEngine()
    medias = [CallMedia(SessionId(f"s-{n}"), engine, on_dtmf=lambda d, ms: None) for n in (1, 2)]
    rng = random.Random(3)
    try:
        for media in medias:
            backend.open_now(media, "127.0.0.1", None, rng)
        first, second = (media.rtp for media in medias)
        assert isinstance(first, RtpSession)
        assert isinstance(second, RtpSession)
        assert first.config is second.config
        assert (first.core.cname, second.core.cname) == ("s-1", "s-2")
        assert first.config.latch == "strict"
    finally:
        for media in medias:
            media.close()
