"""Subscriptions over real 127.0.0.1 sockets between coordinators (asyncio and trio).

A busy-lamp field (RFC 4235 dialog package) follows a call that rings, connects and ends;
a message-waiting subscription (RFC 3842) sees a deposit and unsubscribes cleanly.
"""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import (
    MESSAGE_SUMMARY_TYPE,
    BusyLamp,
    CallDecision,
    CallHandler,
    CallSession,
    Decision,
    EventProvider,
    IncomingCall,
    MessageCounts,
    MessageSummary,
    SessionControl,
    build_message_summary,
)
from rvoip_session_core.testing import loopback_builder, uri_of

pytestmark = pytest.mark.anyio


class Deferring(CallHandler):
    """Lets each incoming call ring until the test answers it."""

    def __init__(self) -> None:
        self.calls: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.calls.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        del call, reason


async def lamp_reaches(lamp: BusyLamp, expected: str) -> list[str]:
    seen: list[str] = []
    with anyio.fail_after(10):
        async for state in lamp:
            seen.append(state)
            if state == expected:
                return seen
    raise AssertionError(f"the lamp ended at {seen} before {expected}")


async def test_busy_lamp_over_udp(anyio_backend: str) -> None:
    handler = Deferring()
    async with (
        await loopback_builder("bob", handler).with_dialog_event_package().build() as bob,
        await loopback_builder("alice").build() as alice,
        await loopback_builder("carol").build() as carol,
    ):
        lamp = await SessionControl.watch_busy_lamp(alice, uri_of(bob, "bob"))
        assert await lamp_reaches(lamp, "idle") == ["idle"]
        call = await carol.create_outgoing_call(carol.local_uri, uri_of(bob, "bob"))
        assert (await lamp_reaches(lamp, "ringing"))[-1] == "ringing"
        with anyio.fail_after(5):
            while not handler.calls:
                await anyio.sleep(0.01)
        await bob.accept_incoming_call(handler.calls[0])
        await carol.wait_for_answer(call.id)
        await lamp_reaches(lamp, "busy")
        await carol.terminate_session(call.id)
        await lamp_reaches(lamp, "idle")
        await lamp.close()
        assert lamp.subscription.end_reason == "unsubscribed"
        with anyio.fail_after(5):
            while bob.subscription_counts()["served_subscriptions"]:
                await anyio.sleep(0.01)
        assert alice.subscription_counts()["subscriptions"] == 0


class Mailbox(EventProvider):
    content_type = MESSAGE_SUMMARY_TYPE

    def __init__(self) -> None:
        super().__init__()
        self.new = 0

    def document(self, resource: str, version: int) -> bytes | None:
        counts = (("voice-message", MessageCounts(self.new, 0)),)
        return build_message_summary(MessageSummary(self.new > 0, None, counts))


async def test_message_waiting_over_udp(anyio_backend: str) -> None:
    mailbox = Mailbox()
    async with (
        await loopback_builder("vm").with_event_package("message-summary", mailbox).build() as vm,
        await loopback_builder("alice").build() as alice,
    ):
        waiting = await alice.watch_message_waiting(uri_of(vm, "alice"))
        with anyio.fail_after(10):
            assert not (await anext(waiting)).waiting
            mailbox.new = 1
            mailbox.changed("alice")
            summary = await anext(waiting)
        assert summary.waiting
        assert summary.voice == MessageCounts(1, 0)
        await waiting.close()
        assert waiting.subscription.end_reason == "unsubscribed"


async def test_subscribe_is_challenged_by_the_authenticator(anyio_backend: str) -> None:
    """With ``with_authenticator``, a SUBSCRIBE is challenged like an INVITE (RFC 6665
    §4.2.1.2 leaves authorization to the notifier): the subscriber's credentials get the
    busy lamp; a subscriber without them ends with 401 and nothing is served."""
    async with (
        await loopback_builder("bob")
        .with_dialog_event_package()
        .with_authenticator("bob.test", {"alice": "secret"})
        .build() as bob,
        await loopback_builder("alice").with_credentials("alice", "secret").build() as alice,
        await loopback_builder("eve").build() as eve,
    ):
        lamp = await SessionControl.watch_busy_lamp(alice, uri_of(bob, "bob"))
        assert await lamp_reaches(lamp, "idle") == ["idle"]
        await lamp.close()
        denied = await SessionControl.subscribe(eve, uri_of(bob, "bob"), "dialog")
        with anyio.fail_after(10):
            await denied.wait_state("terminated")
        assert denied.end_status == 401
