"""SUBSCRIBE/NOTIFY (RFC 6665) against SIPp: our notifier (message-summary) and our subscriber.

- ``uac_subscribe.xml``: SIPp subscribes to a coordinator serving ``message-summary``
  (RFC 3842) for the user ``alice``; it checks the 200, the immediate NOTIFY with the
  summary, the NOTIFY after its refresh, and the terminated NOTIFY after its unsubscribe.
- ``uas_notifier.xml``: SIPp is a voicemail server; ``watch_message_waiting`` subscribes,
  reads two summaries and sees the subscription end with ``noresource``.
- ``uac_subscribe_dialog.xml``: SIPp is a busy-lamp field on a coordinator serving the
  dialog package (RFC 4235) while a second coordinator calls it: every NOTIFY is a full
  dialog-info document, the call's dialog goes confirmed then terminated.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from interop_sipp import HOST, Sipp, free_udp_port

from rvoip_session_core import (
    MESSAGE_SUMMARY_TYPE,
    AutoAnswerHandler,
    EventProvider,
    MessageCounts,
    MessageSummary,
    SessionManagerBuilder,
    Subscriber,
    build_message_summary,
    parse_dialog_info,
)
from rvoip_sip_core import Request, parse_message

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


class Mailbox(EventProvider):
    """Alice has 1 new and 2 old voice messages."""

    content_type = MESSAGE_SUMMARY_TYPE

    def __init__(self) -> None:
        super().__init__()
        self.added: list[Subscriber] = []
        self.removed: list[str] = []

    def document(self, resource: str, version: int) -> bytes | None:
        if resource != "alice":
            return None
        counts = (("voice-message", MessageCounts(1, 2)),)
        return build_message_summary(MessageSummary(True, "sip:alice@vm", counts))

    def subscriber_added(self, subscriber: Subscriber) -> None:
        self.added.append(subscriber)

    def subscriber_removed(self, subscriber: Subscriber, reason: str) -> None:
        self.removed.append(reason)


async def test_sipp_subscribes_to_our_message_summary_notifier(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    mailbox = Mailbox()
    async with await builder().with_event_package("message-summary", mailbox).build() as vm:
        result = await sipp.run(
            "uac_subscribe.xml",
            local_port=free_udp_port(),
            remote=vm.local_sip_address,
            calls=1,
            timeout=15,
            extra=["-s", "alice"],
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        assert [s.resource for s in mailbox.added] == ["alice"]
        with anyio.fail_after(5):
            while not mailbox.removed:
                await anyio.sleep(0.05)
        assert mailbox.removed == ["unsubscribed"]
        assert vm.subscription_counts() == {"subscriptions": 0, "served_subscriptions": 0}


async def test_our_subscriber_against_a_sipp_voicemail(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    port = free_udp_port()
    async with (
        sipp.serve("uas_notifier.xml", local_port=port, calls=1, timeout=15) as server,
        await builder(user="alice").build() as alice,
    ):
        waiting = await alice.watch_message_waiting(f"sip:alice@{HOST}:{port}", expires=300)
        summaries: list[MessageSummary] = []
        with anyio.fail_after(15):
            async for summary in waiting:
                summaries.append(summary)
        assert [s.voice for s in summaries] == [
            MessageCounts(2, 8, 0, 2),
            MessageCounts(3, 8, 1, 2),
        ]
        assert all(s.waiting for s in summaries)
        assert summaries[0].account == "sip:alice@vmail.example.com"
        sub = waiting.subscription
        assert (sub.state, sub.end_reason) == ("terminated", "noresource")
        assert sub.expires is not None
        assert sub.expires <= 60  # the notifier's shorter grant (RFC 6665 §4.2.1.1)
        result = await server.finish(10)
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        assert alice.subscription_counts()["subscriptions"] == 0


async def test_sipp_busy_lamp_follows_a_call_to_our_dialog_package(
    sipp: Sipp, builder: Callable[..., SessionManagerBuilder]
) -> None:
    bob_builder = builder(AutoAnswerHandler(), "bob").with_dialog_event_package()
    async with (
        await bob_builder.build() as bob,
        await builder(user="carol").build() as carol,
    ):
        sent: list[Request] = []

        def tap(direction: str, data: bytes, target: tuple[str, int]) -> None:
            message = parse_message(data)
            if isinstance(message, Request) and message.method == "NOTIFY":
                sent.append(message)

        bob.message_tap = tap
        process, name = await sipp.start(
            "uac_subscribe_dialog.xml",
            local_port=free_udp_port(),
            remote=bob.local_sip_address,
            calls=1,
            timeout=20,
            extra=["-s", "bob"],
        )
        with anyio.fail_after(10):
            while not bob.subscription_counts()["served_subscriptions"] or not sent:
                await anyio.sleep(0.05)
        # SIPp takes a message only at a <recv>: let it answer the first NOTIFY and loop
        # back before the call's NOTIFY comes (CI once sent both within 0.3 ms).
        await anyio.sleep(0.5)
        host, port = bob.local_sip_address
        call = await carol.create_outgoing_call(carol.local_uri, f"sip:bob@{host}:{port}")
        await carol.wait_for_answer(call.id)
        await anyio.sleep(0.2)
        await carol.terminate_session(call.id)
        result = await sipp.finish(process, name, 20)
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        documents = [parse_dialog_info(m.body) for m in sent if m.body]
        versions = [d.version for d in documents]
        assert versions == sorted(set(versions))  # RFC 4235 §4.1: one new version per NOTIFY
        states = [e.state for d in documents for e in d.dialogs]
        assert "confirmed" in states
        assert states[-1] == "terminated"
        assert documents[0].dialogs == ()  # idle when SIPp subscribed
        with anyio.fail_after(5):
            while bob.subscription_counts()["served_subscriptions"]:
                await anyio.sleep(0.05)
