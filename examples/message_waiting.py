"""Message-waiting indication (RFC 3842) from a small voicemail notifier on loopback.

The voicemail coordinator serves ``message-summary`` with an ``EventProvider`` (one
mailbox per user); Alice subscribes with ``SessionControl.watch_message_waiting`` and
prints each summary: none waiting, then one new voice message after a deposit. Run:
``python examples/message_waiting.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    MESSAGE_SUMMARY_TYPE,
    EventProvider,
    MessageCounts,
    MessageSummary,
    SessionControl,
    SessionManagerBuilder,
    Subscriber,
    build_message_summary,
)


class Voicemail(EventProvider):
    """Mailboxes by user: (new, old) voice messages; ``deposit`` notifies subscribers."""

    content_type = MESSAGE_SUMMARY_TYPE

    def __init__(self) -> None:
        super().__init__()
        self.boxes = {"alice": (0, 2)}

    def document(self, resource: str, version: int) -> bytes | None:
        if resource not in self.boxes:
            return None  # the subscriber gets 404
        new, old = self.boxes[resource]
        counts = (("voice-message", MessageCounts(new, old)),)
        return build_message_summary(MessageSummary(new > 0, f"sip:{resource}@vm", counts))

    def subscriber_added(self, subscriber: Subscriber) -> None:
        print(f"voicemail: {subscriber.resource} watched by {subscriber.from_}")

    def deposit(self, user: str) -> None:
        new, old = self.boxes[user]
        self.boxes[user] = (new + 1, old)
        self.changed(user)  # a NOTIFY to every subscriber of this mailbox


def peer(user: str) -> SessionManagerBuilder:
    return SessionManagerBuilder().with_sip_port(0).with_local_address(f"sip:{user}@127.0.0.1")


async def main() -> None:
    voicemail = Voicemail()
    async with (
        await peer("vm").with_event_package("message-summary", voicemail).build() as vm,
        await peer("alice").build() as alice,
    ):
        host, port = vm.local_sip_address
        waiting = await SessionControl.watch_message_waiting(alice, f"sip:alice@{host}:{port}")
        with anyio.fail_after(10):
            async for summary in waiting:
                voice = summary.voice
                assert voice is not None
                print(f"alice: waiting={summary.waiting} new={voice.new} old={voice.old}")
                if voice.new == 0:
                    voicemail.deposit("alice")
                else:
                    break
        await waiting.close()
        print(f"subscription ended: {waiting.subscription.end_reason}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
