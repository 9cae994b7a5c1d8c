"""Attended transfer (RFC 3515 REFER + RFC 3891 Replaces) between three loopback peers.

Alice talks to Bob, puts him aside and consults Carol, then transfers Bob to Carol:
Bob's INVITE to Carol replaces Carol's call with Alice (Carol answers it at once and
reports ``CallReplaced``), Alice's two calls end, and Bob and Carol talk. Run:
``python examples/attended_transfer.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallDirection,
    CallReplaced,
    CallSession,
    CallState,
    SessionControl,
    SessionManagerBuilder,
    TransferProgress,
)


class Announcing(AutoAnswerHandler):
    """Answers every call and says when one ends."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        peer = call.from_ if call.direction is CallDirection.Incoming else call.to
        print(f"{self.name}: call with {peer} ended ({reason})")


def builder(user: str) -> SessionManagerBuilder:
    return (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_handler(Announcing(user))
    )


def uri(user: str, address: tuple[str, int]) -> str:
    return f"sip:{user}@{address[0]}:{address[1]}"


async def main() -> None:
    async with (
        await builder("alice").build() as alice,
        await builder("bob").build() as bob,
        await builder("carol").build() as carol,
    ):
        to_bob = await alice.create_outgoing_call(
            "sip:alice@127.0.0.1", uri("bob", bob.local_sip_address)
        )
        await alice.wait_for_answer(to_bob.id, 5)
        await alice.hold_session(to_bob.id)  # Bob waits while Alice consults Carol
        to_carol = await alice.create_outgoing_call(
            "sip:alice@127.0.0.1", uri("carol", carol.local_sip_address)
        )
        await alice.wait_for_answer(to_carol.id, 5)
        alice_events, carol_events = alice.events(), carol.events()
        await SessionControl.transfer_attended(alice, to_bob.id, to_carol.id)
        status = await alice.wait_for_transfer(to_bob.id, 10)
        print(f"alice: transfer finished with {status}")
        while (event := alice_events.receive_nowait()) is not None:
            if isinstance(event, TransferProgress):
                print(f"alice: NOTIFY {event.status} {event.reason} (final: {event.final})")
        with anyio.fail_after(5):
            async for event in carol_events:
                if isinstance(event, CallReplaced):
                    print(f"carol: {event.old_session_id} replaced by {event.new_session_id}")
                    break
        await anyio.sleep(0.3)  # let the BYEs and the hooks run
        bob_calls = [s for s in await bob.list_active_sessions() if s.state is CallState.Active]
        carol_calls = [s for s in await carol.list_active_sessions() if s.state is CallState.Active]
        print(f"alice: {len(await alice.list_active_sessions())} calls left")
        print(f"bob: talking to {bob_calls[0].to}; carol: talking to {carol_calls[0].from_}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
