"""Instant messages (RFC 3428 MESSAGE) and custom headers, against a loopback peer.

Bob's handler takes text messages and refuses anything else with 415; Alice sends him
two in pager mode (one with an ``X-Ticket`` header), then calls him with a
``P-Asserted-Identity`` and chats inside the call. Run:
``python examples/instant_messages.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    CallDecision,
    CallHandler,
    CallSession,
    Decision,
    IncomingCall,
    InstantMessage,
    RequestFailed,
    SessionControl,
    SessionManagerBuilder,
)


class Bob(CallHandler):
    """Answers calls; reads text messages, refuses other content types."""

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        print(f"bob: call from {call.from_} as {call.header('P-Asserted-Identity')}")
        return CallDecision.Accept(None)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"bob: call ended ({reason})")

    async def on_message(self, message: InstantMessage) -> int | None:
        if not message.content_type.startswith("text/plain"):
            print(f"bob: refusing a {message.content_type} message")
            return 415  # Unsupported Media Type
        where = "in the call" if message.session_id else "pager mode"
        ticket = dict(message.headers).get("X-Ticket", "-")
        print(f"bob: {message.text!r} ({where}, ticket {ticket})")
        return None  # 200 OK


def builder(user: str, handler: CallHandler | None = None) -> SessionManagerBuilder:
    out = SessionManagerBuilder().with_sip_port(0).with_local_address(f"sip:{user}@127.0.0.1")
    return out.with_handler(handler) if handler is not None else out


async def main() -> None:
    async with await builder("bob", Bob()).build() as bob, await builder("alice").build() as alice:
        host, port = bob.local_sip_address
        bob_uri = f"sip:bob@{host}:{port}"
        await SessionControl.send_message(alice, bob_uri, "lunch?", headers={"X-Ticket": "7"})
        try:
            await alice.send_message(bob_uri, b"<vcard/>", "application/xml")
        except RequestFailed as exc:
            print(f"alice: {exc.method} refused with {exc.status}")
        call = await alice.create_outgoing_call(
            "sip:alice@127.0.0.1",
            bob_uri,
            headers={"P-Asserted-Identity": "<sip:+15550100@127.0.0.1>"},
        )
        await alice.wait_for_answer(call.id, 5)
        await alice.send_message("", "can you hear me?", session_id=call.id)
        await alice.terminate_session(call.id, headers={"Reason": 'SIP;cause=200;text="done"'})
        await anyio.sleep(0.2)  # let Bob's hooks print
    print("alice: done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
