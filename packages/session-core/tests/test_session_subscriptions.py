"""Subscriptions from the session API in virtual time: BLF (RFC 4235), MWI (RFC 3842), generic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from rvoip_session_core import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    CallDecision,
    CallHandler,
    CallSession,
    ConfigurationError,
    Decision,
    EventProvider,
    IncomingCall,
    InvalidState,
    MessageCounts,
    MessageSummary,
    SessionControl,
    SessionCoordinator,
    Subscriber,
    build_message_summary,
    parse_dialog_info,
)
from rvoip_session_core.testing import VirtualCalls, released, virtual_time_backend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Virtual time: expiries and refreshes cost nothing."""
    return virtual_time_backend()


@pytest.fixture
async def net() -> AsyncIterator[VirtualCalls]:
    async with VirtualCalls() as calls:
        yield calls


class Mailbox(EventProvider):
    """A voicemail notifier: message-summary per user, changed by ``deposit``."""

    content_type = MESSAGE_SUMMARY_TYPE

    def __init__(self) -> None:
        super().__init__()
        self.boxes: dict[str, tuple[int, int]] = {"alice": (0, 3)}
        self.added: list[Subscriber] = []
        self.removed: list[tuple[Subscriber, str]] = []

    def document(self, resource: str, version: int) -> bytes | None:
        counts = self.boxes.get(resource)
        if counts is None:
            return None
        new, old = counts
        summary = MessageSummary(
            new > 0, f"sip:{resource}@vm", (("voice-message", MessageCounts(new, old)),)
        )
        return build_message_summary(summary)

    def deposit(self, user: str) -> None:
        new, old = self.boxes[user]
        self.boxes[user] = (new + 1, old)
        self.changed(user)

    def subscriber_added(self, subscriber: Subscriber) -> None:
        self.added.append(subscriber)

    def subscriber_removed(self, subscriber: Subscriber, reason: str) -> None:
        self.removed.append((subscriber, reason))


class Deferring(CallHandler):
    """Lets an incoming call ring until the test answers it."""

    def __init__(self) -> None:
        self.calls: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.calls.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        del call, reason


async def test_message_waiting_notifies_on_deposit_and_unsubscribes(net: VirtualCalls) -> None:
    mailbox = Mailbox()
    vm = await net.add(
        "vm", builder=net.builder("vm").with_event_package("message-summary", mailbox)
    )
    alice = await net.add("alice")
    waiting = await SessionControl.watch_message_waiting(alice, net.uri(vm, "alice"))
    with anyio.fail_after(10):
        first = await anext(waiting)
    assert not first.waiting
    voice = first.voice
    assert voice is not None
    assert (voice.new, voice.old) == (0, 3)
    assert [s.resource for s in mailbox.added] == ["alice"]
    mailbox.deposit("alice")
    with anyio.fail_after(10):
        second = await anext(waiting)
    assert second.waiting
    assert second.voice == MessageCounts(1, 3)
    assert waiting.subscription.state == "active"
    await waiting.close()
    assert waiting.subscription.end_reason == "unsubscribed"
    assert [r for _, r in mailbox.removed] == ["unsubscribed"]
    assert alice.subscription_counts() == {"subscriptions": 0, "served_subscriptions": 0}
    assert vm.subscription_counts() == {"subscriptions": 0, "served_subscriptions": 0}


async def test_unknown_mailbox_is_404_and_unknown_package_489(net: VirtualCalls) -> None:
    vm = await net.add(
        "vm", builder=net.builder("vm").with_event_package("message-summary", Mailbox())
    )
    alice = await net.add("alice")
    sub = await alice.subscribe(net.uri(vm, "nobody"), "message-summary")
    assert await sub.wait_state("active", timeout=10) == "terminated"
    assert (sub.end_reason, sub.end_status) == ("rejected", 404)
    other = await alice.subscribe(net.uri(vm, "alice"), "presence")
    await other.wait_state("active", timeout=10)
    assert other.end_status == 489
    with pytest.raises(InvalidState):
        await alice.subscribe(net.uri(vm, "alice"), "bad event;;")


async def test_subscription_refreshes_in_virtual_time(net: VirtualCalls) -> None:
    vm = await net.add(
        "vm", builder=net.builder("vm").with_event_package("message-summary", Mailbox())
    )
    alice = await net.add("alice")
    sub = await alice.subscribe(net.uri(vm, "alice"), "message-summary", expires=120)
    assert await sub.wait_state("active", timeout=10) == "active"
    await anyio.sleep(600)  # five expiries: the refreshes keep it alive
    assert sub.state == "active"
    assert vm.subscription_counts()["served_subscriptions"] == 1
    refreshed = [
        m for m in net.sip.messages(method="SUBSCRIBE") if m.headers.get("Expires") == "120"
    ]
    assert len({m.cseq.seq for m in refreshed}) >= 5


async def wait_lamp(lamp: Any, expected: str) -> None:
    with anyio.fail_after(30):
        async for state in lamp:
            if state == expected:
                return
    raise AssertionError(f"lamp ended before {expected}")


async def test_busy_lamp_follows_a_call_that_rings_connects_and_ends(net: VirtualCalls) -> None:
    """Two coordinators: Alice's BLF for Bob shows ringing, busy, idle as Carol calls Bob."""
    handler = Deferring()
    bob = await net.add("bob", builder=net.builder("bob", handler).with_dialog_event_package())
    alice = await net.add("alice")
    carol = await net.add("carol")
    lamp = await SessionControl.watch_busy_lamp(alice, net.uri(bob, "bob"))
    await wait_lamp(lamp, "idle")
    call = await carol.create_outgoing_call(carol.local_uri, net.uri(bob, "bob"))
    await wait_lamp(lamp, "ringing")
    with anyio.fail_after(10):
        while not handler.calls:
            await anyio.sleep(0.05)
    await bob.accept_incoming_call(handler.calls[0])
    await carol.wait_for_answer(call.id)
    await wait_lamp(lamp, "busy")
    last = lamp.subscription.last
    assert last is not None
    assert last.content_type == DIALOG_INFO_TYPE
    info = parse_dialog_info(last.body)
    (entry,) = info.dialogs
    assert (entry.state, entry.direction) == ("confirmed", "recipient")
    assert entry.remote_identity is not None
    assert "carol" in entry.remote_identity
    assert info.version >= 2
    await carol.terminate_session(call.id)
    await wait_lamp(lamp, "idle")
    await lamp.close()
    assert bob.subscription_counts()["served_subscriptions"] == 0


async def test_stop_ends_served_and_own_subscriptions(net: VirtualCalls) -> None:
    bob = await net.add("bob", builder=net.builder("bob").with_dialog_event_package())
    alice: SessionCoordinator = await net.add("alice")
    sub = await alice.subscribe(net.uri(bob, "bob"), "dialog")
    assert await sub.wait_state("active", timeout=10) == "active"
    await bob.stop()
    assert bob.subscription_counts() == {"subscriptions": 0, "served_subscriptions": 0}
    # Bob is gone (on the virtual network his final NOTIFY may not leave before his
    # endpoint closes): at the latest Alice's refresh fails and ends her subscription.
    with anyio.fail_after(4000):
        while sub.state != "terminated":
            await anyio.sleep(1)
    assert sub.end_reason in ("rejected", "deactivated", "timeout", "dialog-ended")


async def test_dialog_package_versions_grow_with_every_notify(net: VirtualCalls) -> None:
    """RFC 4235 §4.1: each NOTIFY of a subscription, refreshes included, has a new version
    (the layer's own refresh NOTIFY would repeat the last document: the session layer
    sends a fresh one instead)."""
    bob = await net.add("bob", builder=net.builder("bob").with_dialog_event_package())
    alice = await net.add("alice")
    sub = await alice.subscribe(net.uri(bob, "bob"), "dialog", expires=120)
    assert await sub.wait_state("active", timeout=10) == "active"
    await anyio.sleep(400)  # six refreshes
    versions = [
        parse_dialog_info(m.body).version
        for m in net.sip.messages(method="NOTIFY")
        if m.headers.get("Event") == "dialog"
    ]
    assert len(versions) >= 6
    assert versions == list(range(len(versions)))
    await sub.unsubscribe()


async def test_subscription_limits(net: VirtualCalls) -> None:
    """with_subscription_limits reaches the dialog layer: 503 past the count, 423 below
    the minimum (the subscriber asks again with Min-Expires), durations cut to the max."""
    builder = (
        net.builder("vm")
        .with_event_package("message-summary", Mailbox())
        .with_subscription_limits(max_subscriptions=1, min_expires=300, max_expires=600)
    )
    vm = await net.add("vm", builder=builder)
    alice = await net.add("alice")
    first = await alice.subscribe(net.uri(vm, "alice"), "message-summary", expires=120)
    assert await first.wait_state("active", timeout=10) == "active"
    assert first.expires == 300  # asked again with the notifier's Min-Expires
    second = await alice.subscribe(net.uri(vm, "alice"), "message-summary", expires=3600)
    assert await second.wait_state("active", timeout=10) == "terminated"
    assert second.end_status == 503
    await first.unsubscribe()
    third = await alice.subscribe(net.uri(vm, "alice"), "message-summary", expires=3600)
    assert await third.wait_state("active", timeout=10) == "active"
    assert third.expires == 600
    with pytest.raises(ConfigurationError):
        net.builder("x").with_subscription_limits(min_expires=10, max_expires=5)


async def test_an_ended_call_is_reported_terminated_once(net: VirtualCalls) -> None:
    """A call goes Terminating then Terminated: one ``terminated`` document, not two."""
    bob = await net.add("bob", builder=net.builder("bob").with_dialog_event_package())
    alice = await net.add("alice")
    carol = await net.add("carol")
    sub = await alice.subscribe(net.uri(bob, "bob"), "dialog")
    assert await sub.wait_state("active", timeout=10) == "active"
    call = await carol.create_outgoing_call(carol.local_uri, net.uri(bob, "bob"))
    await carol.wait_for_answer(call.id)
    await carol.terminate_session(call.id)
    await anyio.sleep(5)
    documents = [
        parse_dialog_info(m.body)
        for m in net.sip.messages(method="NOTIFY")
        if m.headers.get("Event") == "dialog"
    ]
    terminated = [d for d in documents if any(e.state == "terminated" for e in d.dialogs)]
    assert len(terminated) == 1
    assert terminated[0] is documents[-1]
    await sub.unsubscribe()


async def test_a_slow_reader_keeps_only_the_newest_notifications(net: VirtualCalls) -> None:
    """The per-subscription buffer is bounded: a reader that is behind loses the oldest."""
    mailbox = Mailbox()
    vm = await net.add(
        "vm", builder=net.builder("vm").with_event_package("message-summary", mailbox)
    )
    alice = await net.add("alice")
    sub = await alice.subscribe(net.uri(vm, "alice"), "message-summary", buffer=3)
    assert await sub.wait_state("active", timeout=10) == "active"
    for _ in range(6):
        mailbox.deposit("alice")
        await anyio.sleep(1)
    assert sub.dropped == 4  # 7 NOTIFYs, 3 kept
    kept = [await sub.next(timeout=1) for _ in range(3)]
    assert [n.body.count(b"Voice-Message: 6/3") for n in kept] == [0, 0, 1]
    await sub.unsubscribe()


async def test_a_failing_dialog_package_does_not_break_calls(net: VirtualCalls) -> None:
    """The call layer's state watcher is guarded: calls go on when the package fails.

    Unguarded, an exception from the dialog package's watcher escaped ``finish()`` half
    way (after the state change, before media and registry clean-up): the ended call
    leaked its record, stream and RTP port.
    """
    bob = await net.add("bob", builder=net.builder("bob").with_dialog_event_package())
    carol = await net.add("carol")

    def broken(sid: object, state: object) -> None:
        raise RuntimeError("package bug")

    bob.call_layer.state_watcher = broken
    call = await carol.create_outgoing_call(carol.local_uri, net.uri(bob, "bob"))
    await carol.wait_for_answer(call.id)
    await carol.terminate_session(call.id)
    # Bob's side ended cleanly too: nothing left (finish() ran past the state change).
    with anyio.fail_after(10):
        while not released(bob):
            await anyio.sleep(0.1)
